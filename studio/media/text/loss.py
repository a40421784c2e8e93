"""Next-token loss without the full float32 logits.

The plain loss turns every position of a batch into a float32 row over the vocabulary (8 x 1024
positions x 151,936 entries is 5 GiB for a Qwen2-sized model) and keeps it for the backward pass.
Here the head runs only on the positions the loss counts (completion tokens: a prompt costs
nothing), in chunks of at most ``CHUNK_ELEMENTS`` logits, and each chunk's logits are recomputed
in the backward pass instead of kept (activation checkpointing), so one chunk exists at a time.
The value and gradients equal the plain loss up to float rounding (tests/media/text/test_loss.py).
"""
from __future__ import annotations

import importlib.util
from typing import Any

IGNORE = -100
CHUNK_ELEMENTS = 2 ** 27  # float32 logits per chunk: 512 MiB, ~880 positions of a 151,936-token vocabulary


def body_and_head(model: Any) -> tuple[Any, Any] | None:
    """(the transformer body, the output head) of a causal LM whose logits are exactly ``head(hidden)``;
    None for models that scale or cap their logits after the head (they keep the plain loss)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None) not in (None, 1, 1.0):
        return None
    try:
        body, head = base.get_decoder(), base.get_output_embeddings()
    except (AttributeError, NotImplementedError, ValueError):
        return None
    if body is None or head is None or body is base:
        return None
    return body, head


def _chunk_loss(head: Any, hidden: Any, labels: Any) -> Any:
    import torch

    return torch.nn.functional.cross_entropy(head(hidden).float(), labels, reduction="sum")


def chunked_cross_entropy(hidden: Any, head: Any, labels: Any, chunk: int | None = None) -> Any:
    """Mean cross-entropy of ``head(hidden[:, t])`` against ``labels[:, t + 1]`` over the counted positions.

    hidden (rows, length, d); labels (rows, length) with IGNORE where the loss does not count.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    states = hidden[:, :-1].flatten(0, 1)
    targets = labels[:, 1:].flatten().to(states.device)
    counted = targets != IGNORE
    states, targets = states[counted], targets[counted]  # the only positions the head has to see
    if states.shape[0] == 0:  # nothing counted: a zero that still reaches the weights
        return hidden.sum().float() * 0.0
    if chunk is None:
        chunk = max(1, CHUNK_ELEMENTS // head.weight.shape[0])
    total = torch.zeros((), dtype=torch.float32, device=states.device)
    for start in range(0, states.shape[0], chunk):
        total = total + checkpoint(_chunk_loss, head, states[start:start + chunk], targets[start:start + chunk],
                                   use_reentrant=False)
    return total / max(1, states.shape[0])


def counted_states(hidden: Any, labels: Any) -> Any:
    """The hidden states at the positions the loss counts, in ``chunked_cross_entropy``'s order."""
    states = hidden[:, :-1].flatten(0, 1)
    return states[(labels[:, 1:].flatten() != IGNORE).to(states.device)]


def _anchored_chunk(head: Any, hidden: Any, anchor: Any, labels: Any, weight: float) -> Any:
    import torch

    log_p = torch.log_softmax(head(hidden).float(), dim=-1)
    with torch.no_grad():
        log_q = torch.log_softmax(head(anchor).float(), dim=-1)
    hard = torch.nn.functional.nll_loss(log_p, labels, reduction="sum")
    kl = (log_q.exp() * (log_q - log_p)).sum()
    return (1.0 - weight) * hard + weight * kl


def anchored_cross_entropy(hidden: Any, anchor: Any, head: Any, labels: Any, weight: float,
                           chunk: int | None = None) -> Any:
    """``(1 - weight) * cross-entropy + weight * KL(anchor || model)`` per counted position, averaged.

    ``anchor`` holds the starting model's hidden states at the counted positions (``counted_states``
    before the tune moved): the loss learns the kept tokens while each position keeps ``weight`` of
    the starting model's alternatives, which is what stops a tune on a few texts from reciting them
    (the minimum of each position's loss is the mix ``(1 - weight) * kept token + weight * anchor``).
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    states = counted_states(hidden, labels)
    targets = labels[:, 1:].flatten().to(states.device)
    targets = targets[targets != IGNORE]
    if states.shape[0] == 0:
        return hidden.sum().float() * 0.0
    anchor = anchor.to(states.device, states.dtype)
    if chunk is None:
        chunk = max(1, CHUNK_ELEMENTS // (2 * head.weight.shape[0]))
    total = torch.zeros((), dtype=torch.float32, device=states.device)
    for start in range(0, states.shape[0], chunk):
        end = start + chunk
        total = total + checkpoint(_anchored_chunk, head, states[start:end], anchor[start:end], targets[start:end],
                                   weight, use_reentrant=False)
    return total / states.shape[0]


def varlen_attention_available(device: str, dtype: Any) -> bool:
    """Packed rows can run through FlashAttention's variable-length kernel (transformers' ``flash_attention_2``
    reads the example boundaries from the restarting position ids): a GPU, half precision, flash-attn installed."""
    import torch

    return (str(device).startswith("cuda") and dtype in (torch.bfloat16, torch.float16)
            and importlib.util.find_spec("flash_attn") is not None)


def compile_layers(body: Any, **options: Any) -> int:
    """``torch.compile`` each repeated block of the body in place (one compile serves every layer of the
    same shape); returns how many were compiled."""
    import torch

    blocks = next((m for m in body.children() if isinstance(m, torch.nn.ModuleList)), [])
    for block in blocks:
        block.compile(**{"dynamic": False, **options})
    return len(blocks)
