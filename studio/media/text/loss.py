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


def counted(hidden: Any, labels: Any) -> tuple[Any, Any]:
    """(hidden states, next-token targets) at the positions the loss counts, in row order.

    hidden (rows, length, d); labels (rows, length) with IGNORE where the loss does not count.
    """
    states = hidden[:, :-1].flatten(0, 1)
    targets = labels[:, 1:].flatten().to(states.device)
    keep = targets != IGNORE
    return states[keep], targets[keep]  # the only positions the head has to see


def _chunked_mean(loss_sum: Any, head: Any, hidden: Any, chunk: int, *per_position: Any) -> Any:
    """The mean over positions of ``loss_sum(head, *chunk_of_each)``, one recomputed chunk at a time."""
    import torch
    from torch.utils.checkpoint import checkpoint

    n = per_position[0].shape[0]
    if n == 0:  # nothing counted: a zero that still reaches the weights
        return hidden.sum().float() * 0.0
    total = torch.zeros((), dtype=torch.float32, device=per_position[0].device)
    for start in range(0, n, chunk):
        total = total + checkpoint(loss_sum, head, *(t[start:start + chunk] for t in per_position),
                                   use_reentrant=False)
    return total / n


def chunked_cross_entropy(hidden: Any, head: Any, labels: Any, chunk: int | None = None) -> Any:
    """Mean cross-entropy of ``head(hidden[:, t])`` against ``labels[:, t + 1]`` over the counted positions."""
    states, targets = counted(hidden, labels)
    return _chunked_mean(_chunk_loss, head, hidden, chunk or max(1, CHUNK_ELEMENTS // head.weight.shape[0]),
                         states, targets)


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

    ``anchor`` holds the starting model's hidden states at the counted positions (``counted``
    before the tune moved): the loss learns the kept tokens while each position keeps ``weight`` of
    the starting model's alternatives, which is what stops a tune on a few texts from reciting them
    (the minimum of each position's loss is the mix ``(1 - weight) * kept token + weight * anchor``).
    """
    import functools

    states, targets = counted(hidden, labels)
    anchor = anchor.to(states.device, states.dtype)
    chunk = chunk or max(1, CHUNK_ELEMENTS // (2 * head.weight.shape[0]))  # two logit rows per position
    return _chunked_mean(functools.partial(_anchored_chunk, weight=weight), head, hidden, chunk,
                         states, anchor, targets)


def _token_log_probs(head: Any, hidden: Any, labels: Any) -> Any:
    import torch

    logits = head(hidden).float()
    return logits.gather(-1, labels[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def summed_log_probs(hidden: Any, head: Any, labels: Any, chunk: int | None = None) -> Any:
    """Per row, the summed log-prob of its counted next tokens (one example per row): a preference
    objective's log pi(y | x), the head run chunk by chunk on counted positions only, as above."""
    import torch
    from torch.utils.checkpoint import checkpoint

    states, targets = counted(hidden, labels)
    targets_all = labels[:, 1:].to(states.device)
    rows = torch.arange(labels.shape[0], device=states.device)[:, None].expand_as(targets_all)
    row_of = rows[targets_all != IGNORE]
    total = torch.zeros(labels.shape[0], dtype=torch.float32, device=states.device)
    chunk = chunk or max(1, CHUNK_ELEMENTS // head.weight.shape[0])
    for start in range(0, states.shape[0], chunk):
        values = checkpoint(_token_log_probs, head, states[start:start + chunk], targets[start:start + chunk],
                            use_reentrant=False)
        total = total.index_add(0, row_of[start:start + chunk], values)
    return total


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
