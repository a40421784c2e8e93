"""peft LoRA adapters, shared by the media whose models are torch modules wrapped by peft.

Strength at generation time: a LoRA layer adds ``scaling * B(A(x))``; strength multiplies
``scaling`` (0 is the base, 1 the adapter as trained, up to ``MAX_STRENGTH``) for the one
generation, then puts it back, so a version's adapter is never changed on disk or in memory.
``adapter_active`` switches a handle (``.model``, ``.peft``, ``.adapters``) between its versions
without reloading the base; ``PeftTask`` is the part of a tune task every such medium shares.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from .errors import StudioError


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


@contextlib.contextmanager
def adapter_active(handle: Any, adapter: str | None, strength: float = 1.0) -> Iterator[None]:
    """Run the base (``None``) or a LoRA adapter folder scaled by ``strength``; a folder loads once.

    ``handle`` has ``model`` (the base module), ``peft`` (None until an adapter loads) and ``adapters``
    (folder -> adapter name)."""
    if adapter is None:
        if handle.peft is None:
            yield
        else:
            with handle.peft.disable_adapter():
                yield
        return
    folder = Path(adapter)
    if not (folder / "adapter_config.json").exists():
        raise StudioError(f"The adapter folder {folder} has no adapter_config.json.")
    key = str(folder.resolve())
    if key not in handle.adapters:
        from peft import PeftModel

        name = f"v{len(handle.adapters) + 1}"
        if handle.peft is None:
            handle.peft = PeftModel.from_pretrained(handle.model, key, adapter_name=name, is_trainable=False)
        else:
            handle.peft.load_adapter(key, adapter_name=name, is_trainable=False)
        handle.peft.eval()
        handle.adapters[key] = name
    handle.peft.set_adapter(handle.adapters[key])
    with peft_strength(handle.peft, handle.adapters[key], strength):
        yield


def pristine_copy(handle: Any) -> Any:
    """A deep copy of the base model with no LoRA layers in it (a tune's starting point)."""
    import copy

    if handle.peft is None:
        return copy.deepcopy(handle.model)
    return copy.deepcopy(handle.peft).unload()


@contextlib.contextmanager
def extrapolated(params: dict[str, Any], start: dict[str, Any] | None, times: float) -> Iterator[None]:
    """The LoRA ``times`` as far from ``start`` as training took it, for the duration (ExPO, Zheng et al. 2024,
    on the adapter): each up-projection B (``params`` named ``...lora_B...``) goes to start + times (trained -
    start) and A stays as trained, so a new LoRA (B from zero) adds exactly ``times`` what it learned and one
    grown from a parent about ``times`` its change (exactly, where A did not move); back as trained after."""
    import torch

    if times == 1.0:
        yield
        return
    ups = {name: p for name, p in params.items() if ".lora_B." in name}
    trained = {name: p.detach().clone() for name, p in ups.items()}
    with torch.no_grad():
        for name, p in ups.items():
            begin = start[name].to(p.device, p.dtype)
            p.copy_(begin + times * (trained[name] - begin))
    try:
        yield
    finally:
        with torch.no_grad():
            for name, p in ups.items():
                p.copy_(trained[name])


class PeftTask:
    """The trainable part of a tune task whose ``peft`` is a peft model: its LoRA weights, checkpoints of
    them, and the finished adapter in peft's own format."""

    peft: Any
    batch_size: int

    def pick(self, count: int, generator: Any) -> list[int]:
        """A training step's rows: ``batch_size`` (at most ``count``) indices drawn with replacement."""
        import torch

        return torch.randint(count, (min(self.batch_size, count),), generator=generator).tolist()

    def parameters(self) -> list[Any]:
        return [p for p in self.peft.parameters() if p.requires_grad]

    def adapter_state(self) -> dict[str, Any]:
        return {n: p for n, p in self.peft.named_parameters() if p.requires_grad}

    def load_adapter_state(self, state: dict[str, Any]) -> None:
        import torch

        params = dict(self.peft.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value.to(params[name].device))

    def save(self, out_dir: Path) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.peft.save_pretrained(str(out_dir))


def peft_lora(model: Any, targets: list[str], settings: dict[str, Any], parent_adapter: str | None,
              alpha_per_rank: float, **config: Any) -> Any:
    """``model`` frozen and wrapped in a trainable LoRA: the parent version's adapter when given (the new
    version grows from it), else a new one of ``settings['rank']`` seeded by ``settings['seed']``."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    for param in model.parameters():
        param.requires_grad_(False)
    torch.manual_seed(int(settings["seed"]))  # the LoRA init is part of the reproducible recipe
    if parent_adapter:
        if not (Path(parent_adapter) / "adapter_config.json").exists():
            raise StudioError(f"The parent adapter folder {parent_adapter} has no adapter_config.json.")
        return PeftModel.from_pretrained(model, parent_adapter, is_trainable=True)
    rank = int(settings["rank"])
    alpha = settings["alpha"] if settings["alpha"] is not None else alpha_per_rank * rank
    lora = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets, bias="none", **config)
    return get_peft_model(model, lora)
