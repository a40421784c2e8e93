"""Adapter strength at generation time, shared by the media whose adapters are peft LoRA.

A LoRA layer adds ``scaling * B(A(x))``; strength multiplies ``scaling`` (0 is the base, 1 the
adapter as trained, up to ``MAX_STRENGTH``) for the one generation, then puts it back, so a
version's adapter is never changed on disk or in memory.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator


@contextlib.contextmanager
def peft_strength(model: Any, adapter_name: str, strength: float) -> Iterator[None]:
    """Run with the named peft adapter scaled by ``strength``; restored afterwards."""
    if strength == 1.0:
        yield
        return
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer) and adapter_name in m.scaling]
    saved = [m.scaling[adapter_name] for m in layers]
    for layer in layers:
        layer.scaling[adapter_name] = layer.scaling[adapter_name] * float(strength)
    try:
        yield
    finally:
        for layer, value in zip(layers, saved):
            layer.scaling[adapter_name] = value
