"""Batched sampling, one seed per candidate.

All candidates of a prompt run as one batch through one KV-cached decoding loop.  Each row
draws its tokens from its own ``torch.Generator`` (on the model's device) seeded by the
candidate's seed, so a seed gives the same text whether it runs alone or beside others, on
any batch size (texts differ between a CPU and a GPU, whose random streams differ).
Sampling: repetition penalty, temperature (0 = greedy), top-k, top-p, then one draw per row.
"""
from __future__ import annotations

from typing import Any, Sequence

from ...errors import StudioError
from .model import TextHandle, active
from .prompting import prompt_ids

MAX_PROMPT_CHARS = 20_000  # refuse before tokenizing a pasted novel


def check_prompt(handle: TextHandle, prompt: str, max_new_tokens: int) -> list[int]:
    """The prompt's token ids, or a StudioError when it is empty or does not fit the context."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise StudioError("The prompt is empty; write what the text should be about.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise StudioError(f"The prompt is {len(prompt)} characters long; keep it under {MAX_PROMPT_CHARS}.")
    ids = prompt_ids(handle.tokenizer, prompt)
    if len(ids) >= handle.context:
        raise StudioError(f"The prompt is {len(ids)} tokens, more than this model's context of {handle.context}.")
    if len(ids) + max_new_tokens > handle.context:
        raise StudioError(f"max_new_tokens={max_new_tokens} goes beyond this model's context: the prompt leaves "
                          f"room for {handle.context - len(ids)} new tokens.")
    return ids


def _filter(logits, seen, params: dict[str, Any]):
    """Logits after repetition penalty, temperature, top-k and top-p (float32)."""
    import torch

    penalty = float(params["repetition_penalty"])
    if penalty != 1.0:
        picked = logits.gather(1, seen)
        logits = logits.scatter(1, seen, torch.where(picked > 0, picked / penalty, picked * penalty))
    temperature = float(params["temperature"])
    if temperature == 0:
        return logits
    logits = logits / temperature
    top_k = int(params["top_k"])
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    top_p = float(params["top_p"])
    if top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative - ordered.softmax(-1) > top_p  # keep the smallest set reaching top_p
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def sample(handle: TextHandle, prompt: str, seeds: Sequence[int], params: dict[str, Any],
           adapter: str | None = None, strength: float = 1.0) -> tuple[list[str], int]:
    """One completion per seed and the number of new tokens the batch produced; ``strength``
    scales the adapter (studio.adapters)."""
    import torch

    max_new = int(params["max_new_tokens"])
    ids = check_prompt(handle, prompt, max_new)
    stops = list(params.get("stop") or [])
    tokenizer = handle.tokenizer
    eos = tokenizer.eos_token_id
    rows = len(seeds)
    if rows == 0:
        return [], 0
    device = handle.device
    # one generator per row, on the model's device, so sampling never leaves it
    generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]
    seen = torch.tensor([ids] * rows, device=device)
    new_tokens: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    produced = 0
    with torch.inference_mode(), active(handle, adapter, strength) as net:
        out = net(input_ids=seen, use_cache=True)
        for written in range(max_new):
            logits = out.logits[:, -1].float().clone()
            if written < int(params.get("min_new_tokens", 0)):
                logits[:, eos] = float("-inf")
            logits = _filter(logits, seen, params)
            if float(params["temperature"]) == 0:
                picked = logits.argmax(-1)
            else:
                probs = logits.softmax(-1)
                picked = torch.cat([torch.multinomial(probs[i], 1, generator=generators[i]) for i in range(rows)])
            picks = picked.tolist()
            for i in range(rows):
                if done[i]:
                    picks[i] = eos
                    continue
                produced += 1
                if picks[i] == eos:
                    done[i] = True
                    continue
                new_tokens[i].append(picks[i])
                if stops and _cut_at_stop(tokenizer.decode(new_tokens[i]), stops)[1]:
                    done[i] = True
            if all(done):
                break
            step = torch.tensor(picks, device=device)[:, None]
            seen = torch.cat([seen, step], dim=1)
            out = net(input_ids=step, past_key_values=out.past_key_values, use_cache=True)
    texts = [_cut_at_stop(tokenizer.decode(t, skip_special_tokens=True), stops)[0].strip() for t in new_tokens]
    return texts, produced
