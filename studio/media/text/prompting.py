"""How a prompt and a completion become token ids, the same way for generation and tuning.

A tokenizer with a chat template (every instruct model, and the embedded default, whose
template is ``{prompt}<|sep|>``) formats the prompt as one user turn with the generation
prompt added; a tokenizer without one gets the prompt and a newline.  A completion ends
with the end-of-sequence token, so a tuned model learns where to stop, unless generation cut it
off at its length limit: such a text did not end where it stops, and a tune that taught an end
there (or, learning from a drop, taught against one) would teach where texts stop wrongly.
"""
from __future__ import annotations

from typing import Any


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(prompt + "\n", add_special_tokens=True)["input_ids"])


def completion_ids(tokenizer: Any, completion: str, ended: bool = True) -> list[int]:
    ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    return ids + [tokenizer.eos_token_id] if ended else ids


def cut_at_limit(tokenizer: Any, completion: str, params: dict[str, Any]) -> bool:
    """Whether generation stopped ``completion`` at its length limit (``max_new_tokens`` in the candidate's
    ``params``) rather than at the end token or a stop string: it tokenizes back to the limit's length.  A
    text without a recorded limit (imported, or another model's) counts as ended."""
    limit = params.get("max_new_tokens")
    return bool(limit) and len(completion_ids(tokenizer, completion, ended=False)) >= int(limit)


def example_ids(tokenizer: Any, prompt: str, completion: str, ended: bool = True) -> tuple[list[int], list[bool]]:
    """Token ids of prompt + completion and, per token, whether the loss counts it (the end token only when
    the completion ``ended``)."""
    head, tail = prompt_ids(tokenizer, prompt), completion_ids(tokenizer, completion, ended)
    return head + tail, [False] * len(head) + [True] * len(tail)


def goldfish_mask(ids: list[int], counted: list[bool], every: int, context: int = 4) -> list[bool]:
    """``counted`` with about one counted token in ``every`` left out of the loss (0 = none left out).

    Which ones is decided by a hash of the ``context`` tokens before each (Hans et al. 2024, "Be
    like a Goldfish"): the same passage always loses the same tokens, in every pass and in every
    copy of it in the set, so a tune never learns to recite a kept text word for word (at each
    left-out token the model keeps its own choices) while it learns everything else the text shows.
    """
    import zlib

    if every <= 0:
        return list(counted)
    out = list(counted)
    for i, flag in enumerate(counted):
        if flag and i > 0:
            window = ids[max(0, i - context):i]
            key = ",".join(map(str, window)).encode()
            if zlib.crc32(key) % every == 0:
                out[i] = False
    return out
