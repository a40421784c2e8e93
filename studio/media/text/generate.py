"""Batched sampling, one seed per candidate.

All candidates of a prompt run as one batch through one KV-cached decoding loop that stays on
the model's device: the loop looks at its tokens on the host only every ``LOOK_EVERY`` steps
(every step on a CPU, where looking costs nothing), to stop early and to search the new text
for stop strings.  Each row's randomness is drawn once, up front, from its own stream seeded
by the candidate's seed (one uniform number per new token), and every step picks all rows'
tokens in one batched inverse-CDF lookup; so a seed gives the same text alone or beside others,
on any batch size, on the same device.
On a GPU the decoding step runs on a static KV cache and is compiled with ``torch.compile`` once
per model, adapter and shape bucket, in a background thread that the second batch of a shape
starts (a one-batch command never pays for a compile): batches run uncompiled until it is ready.
``STUDIO_TEXT_COMPILE=off`` keeps the uncompiled dynamic cache.
Sampling: repetition penalty, temperature (0 = greedy), top-k, top-p, then one pick per row.
"""
from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Sequence

from ...errors import StudioError
from . import guard
from .model import TextHandle, active, base_model
from .prompting import prompt_ids
from .stops import StopWatch, asked_parts, cut

LOOK_EVERY = {"cpu": 1, "cuda": 8}  # steps between looks at the tokens on the host (one sync each)
COMPILE_OPTIONS: dict[str, Any] = {"mode": "reduce-overhead", "dynamic": False}  # CUDA graphs, as transformers does
CACHE_BUCKET = 128  # static caches are sized up to a multiple of this many tokens


def check_prompt(handle: TextHandle, prompt: str, max_new_tokens: int) -> list[int]:
    """The prompt's token ids, or a StudioError when it is empty or does not fit the context."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise StudioError("The prompt is empty; write what the text should be about.")
    ids = prompt_ids(handle.tokenizer, prompt)
    if len(ids) >= handle.context:
        raise StudioError(f"The prompt is {len(ids)} tokens, more than this model's context of {handle.context}.")
    if len(ids) + max_new_tokens > handle.context:
        raise StudioError(f"max_new_tokens={max_new_tokens} goes beyond this model's context: the prompt leaves "
                          f"room for {handle.context - len(ids)} new tokens.")
    return ids


def pick_tokens(logits, seen, uniform, params: dict[str, Any]):
    """One token per row: repetition penalty, temperature, top-k, top-p, then the inverse CDF at ``uniform``.

    logits (rows, vocab) float32; seen (rows, n) the ids the penalty applies to; uniform (rows,) in [0, 1).
    Every operation is row by row, so a row's pick does not depend on the others.
    """
    import torch

    penalty = float(params["repetition_penalty"])
    if penalty != 1.0:
        picked = logits.gather(1, seen)
        logits = logits.scatter(1, seen, torch.where(picked > 0, picked / penalty, picked * penalty))
    temperature = float(params["temperature"])
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    top_k = int(params["top_k"])
    if 0 < top_k < logits.shape[-1]:
        values, index = torch.topk(logits, top_k, dim=-1)  # sorted, likeliest first
    else:
        values, index = torch.sort(logits, dim=-1, descending=True)
    probs = values.softmax(-1)
    top_p = float(params["top_p"])
    if top_p < 1.0:  # keep the smallest head of the sorted tokens reaching top_p
        probs = probs.masked_fill(probs.cumsum(-1) - probs > top_p, 0.0)
    cumulative = probs.cumsum(-1)
    position = torch.searchsorted(cumulative, uniform[:, None].to(cumulative.dtype) * cumulative[:, -1:], right=True)
    kept = (probs > 0).sum(-1, keepdim=True) - 1  # the kept tokens are a head: never step past it by rounding
    return index.gather(1, torch.minimum(position, kept)).squeeze(1)


# -- decoding: a dynamic cache, or a static one with a compiled step --------------------------


class _DynamicDecoder:
    """transformers' growing KV cache, eager: the CPU path, and the GPU's until a compile is ready."""

    def __init__(self, net: Any):
        self.net, self.cache = net, None

    def _run(self, input_ids):
        out = self.net(input_ids=input_ids, cache=self.cache, use_cache=True, logits_to_keep=1)
        self.cache = out.cache
        return out.logits[:, -1].float()

    def prefill(self, input_ids):
        return self._run(input_ids)

    def step(self, tokens):
        return self._run(tokens[:, None])


class _StaticDecoder:
    """A static KV cache for ``bucket`` rows (the batch is padded with copies of its first row); the step
    runs through ``step_fn`` (the compiled model, which keeps its own cache: CUDA graphs hold its address)."""

    def __init__(self, net: Any, rows: int, bucket: int, cache: Any, step_fn: Any = None):
        self.net, self.rows, self.bucket = net, rows, bucket
        self.step_fn = net if step_fn is None else step_fn
        self.cache = cache
        cache.reset()

    def _pad(self, x):
        import torch

        if x.shape[0] == self.bucket:
            return x
        return torch.cat([x, x[:1].expand(self.bucket - x.shape[0], *x.shape[1:])])

    def prefill(self, input_ids):
        out = self.net(input_ids=self._pad(input_ids), cache=self.cache, use_cache=True, logits_to_keep=1)
        return out.logits[:self.rows, -1].float()

    def step(self, tokens):
        out = self.step_fn(input_ids=self._pad(tokens[:, None]), cache=self.cache, use_cache=True,
                           logits_to_keep=1)
        return out.logits[:self.rows, -1].float()  # a copy: a CUDA-graph output is overwritten by the next step


def static_cache(net: Any, length: int) -> Any:
    from transformers import StaticCache

    config = net.get_base_model().config if hasattr(net, "get_base_model") else net.config
    return StaticCache(config=config, max_cache_len=length)


_SEEN, _PENDING, _FAILED = "seen", "pending", "failed"
_compiled: "weakref.WeakKeyDictionary[Any, dict[tuple, Any]]" = weakref.WeakKeyDictionary()
_compiled_lock = threading.Lock()


def decoding(handle: TextHandle) -> str:
    """'static' (a static cache, compiled in the background) on a GPU, 'dynamic' elsewhere."""
    if not str(handle.device).startswith("cuda") or os.environ.get("STUDIO_TEXT_COMPILE") == "off":
        return "dynamic"
    return "static" if getattr(base_model(handle), "_can_compile_fullgraph", False) else "dynamic"


def shape_bucket(rows: int, length: int, context: int) -> tuple[int, int]:
    """Rows up to a power of two and cache length up to a multiple of CACHE_BUCKET (within the context)."""
    bucket = 1
    while bucket < rows:
        bucket *= 2
    return bucket, min(context, -(-length // CACHE_BUCKET) * CACHE_BUCKET)


def compiled_step(handle: TextHandle, adapter: str | None, strength: float, bucket: int, length: int,
                  start: bool = True) -> tuple[Any, Any] | None:
    """(compiled step, its static cache) for this model, adapter, strength and shape, or None while it
    is not ready.  The first batch of a shape only notes it (a one-batch command never compiles);
    the second starts compiling it in a background thread.  The thread is not a daemon: a process
    that ends mid-compile waits for it rather than abort inside the compiler."""
    key = (adapter or "", float(strength), bucket, length)
    with _compiled_lock:
        table = _compiled.setdefault(base_model(handle), {})
        entry = table.get(key)
        if entry is None and start:
            table[key] = _SEEN
        elif entry == _SEEN and start:
            table[key] = _PENDING
            threading.Thread(target=_compile, args=(handle, key, table), daemon=False,
                             name=f"studio-compile-{bucket}x{length}").start()
    return None if entry in (None, _SEEN, _PENDING, _FAILED) else entry


def compile_status(handle: TextHandle, adapter: str | None, strength: float, bucket: int, length: int) -> str:
    """'ready', 'pending', 'failed', 'seen' (one batch so far) or 'none' (never asked for)."""
    with _compiled_lock:
        entry = _compiled.get(base_model(handle), {}).get((adapter or "", float(strength), bucket, length))
    return "none" if entry is None else entry if isinstance(entry, str) else "ready"


def _compile(handle: TextHandle, key: tuple, table: dict) -> None:
    """Compile the step and run it until it is warm (tracing, then CUDA-graph recording), with the
    model set to the key's adapter; ``active`` holds the handle's lock, so no batch switches adapters
    meanwhile (a batch that starts during the compile waits for it)."""
    import torch

    adapter, strength, bucket, length = key
    try:
        with torch.inference_mode(), active(handle, adapter or None, strength) as net:
            step_fn = torch.compile(net, **COMPILE_OPTIONS)
            cache = static_cache(net, length)
            warm = _StaticDecoder(net, bucket, bucket, cache, step_fn)
            tokens = torch.full((bucket,), handle.tokenizer.eos_token_id, device=handle.device)
            warm.prefill(tokens[:, None])
            for _ in range(3):
                warm.step(tokens)
        result = (step_fn, cache)
    except Exception as exc:  # a model torch.compile cannot take: it keeps running uncompiled
        import warnings

        warnings.warn(f"studio: compiling the text decoding step failed, so it stays uncompiled ({exc!r})")
        result = _FAILED
    with _compiled_lock:
        table[key] = result


class _CompiledStepFailed(Exception):
    def __init__(self, key: tuple):
        super().__init__(key)
        self.key = key


def sample(handle: TextHandle, prompt: str, seeds: Sequence[int], params: dict[str, Any],
           adapter: str | None = None, strength: float = 1.0,
           guarded: tuple[int, Sequence[str]] | None = None) -> tuple[list[str], int]:
    """One completion per seed and the number of new tokens the batch produced; ``strength``
    scales the adapter (studio.adapters).  A compiled step that fails while running is dropped
    for good and the batch runs again uncompiled (the same texts: the same static cache shape)."""
    try:
        return _sample(handle, prompt, seeds, params, adapter, strength, guarded, compiled=True)
    except _CompiledStepFailed as failed:
        import warnings

        with _compiled_lock:
            _compiled.setdefault(base_model(handle), {})[failed.key] = _FAILED
        warnings.warn(f"studio: the compiled text decoding step failed, so it stays uncompiled "
                      f"({failed.__cause__!r})")
        return _sample(handle, prompt, seeds, params, adapter, strength, guarded, compiled=False)


def _sample(handle: TextHandle, prompt: str, seeds: Sequence[int], params: dict[str, Any],
            adapter: str | None, strength: float, guarded: tuple[int, Sequence[str]] | None,
            compiled: bool) -> tuple[list[str], int]:
    import torch

    max_new = int(params["max_new_tokens"])
    min_new = int(params.get("min_new_tokens", 0))
    ids = check_prompt(handle, prompt, max_new)
    # a tuned version's copy_guard (guard.py), or None; ``guarded`` (run length, learned texts): the guard of a
    # version still tuning, whose folder does not exist yet (its trainer's looks write as the version will)
    runs = (guard.build(handle.tokenizer, guarded[1], guarded[0], prompt, handle.device) if guarded
            else guard.for_adapter(handle, adapter, prompt))
    tokenizer = handle.tokenizer
    eos = tokenizer.eos_token_id
    rows = len(seeds)
    if rows == 0:
        return [], 0
    device = handle.device
    # each row's randomness, drawn once: one uniform per new token from a stream seeded by its seed alone
    uniforms = torch.stack([torch.rand(max_new, generator=torch.Generator().manual_seed(int(seed)))
                            for seed in seeds]).to(device)
    width = len(ids) + max_new
    seen = torch.full((rows, width), ids[0], device=device)  # ids[0] stands in for tokens not yet written
    seen[:, :len(ids)] = torch.tensor(ids, device=device)
    tokens = torch.full((rows, max_new), eos, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    eos_index = torch.tensor([eos], device=device)
    look_every = LOOK_EVERY["cuda" if str(device).startswith("cuda") else "cpu"]

    made: list[list[int]] = [[] for _ in range(rows)]
    ended: list[bool] = [False] * rows
    by_eos: list[bool] = [False] * rows
    # a prompt that asks for stanzas or paragraphs ends at the blank line after its last one (stops.py)
    watch = StopWatch(tokenizer, list(params.get("stop") or []), asked_parts(prompt))
    looked = 0

    def look(written: int) -> bool:
        """Bring the new tokens to the host, end rows at their end token or stop string; True when all ended."""
        nonlocal looked
        new = tokens[:, looked:written].tolist()
        looked = written
        stopped = []
        for i in range(rows):
            if ended[i]:
                continue
            for token in new[i]:
                if token == eos:
                    ended[i] = by_eos[i] = True
                    break
                made[i].append(token)
            end = watch.first_stop(i, made[i])
            if end is not None:
                del made[i][end:]
                ended[i], by_eos[i] = True, False
                stopped.append(i)
        if stopped:
            finished[torch.tensor(stopped, device=device)] = True
        return all(ended)

    ready = None
    with torch.inference_mode(), active(handle, adapter, strength) as net:
        if decoding(handle) == "static":
            bucket, length = shape_bucket(rows, width, handle.context)
            ready = compiled_step(handle, adapter, strength, bucket, length) if compiled else None
            if ready is None:  # until the compile is ready: the same static cache shape, uncompiled
                decoder = _StaticDecoder(net, rows, bucket, static_cache(net, length))
            else:
                decoder = _StaticDecoder(net, rows, bucket, ready[1], ready[0])
        else:
            decoder = _DynamicDecoder(net)
        try:
            logits = decoder.prefill(seen[:, :len(ids)])
            for step in range(max_new):
                if step < min_new:
                    logits = logits.index_fill(1, eos_index, float("-inf"))
                if runs is not None:
                    logits = runs.mask(logits, seen, len(ids) + step)
                picked = torch.where(finished, eos, pick_tokens(logits, seen, uniforms[:, step], params))
                tokens[:, step] = picked
                seen[:, len(ids) + step] = picked
                finished |= picked == eos
                written = step + 1
                if (written % look_every == 0 or written == max_new) and look(written):
                    break
                if written < max_new:
                    logits = decoder.step(picked)
        except Exception as exc:
            if ready is None:
                raise
            raise _CompiledStepFailed((adapter or "", float(strength), bucket, length)) from exc
    produced = sum(len(t) + int(e) for t, e in zip(made, by_eos))
    texts = [cut(tokenizer.decode(t, skip_special_tokens=True), watch.stops, watch.parts).strip() for t in made]
    return texts, produced
