"""Fit the card: what a generation or a tune needs in memory, the options that lower it, a quantized base.

The estimates are arithmetic, not measurements: weights are the loaded modules' parameters times
their bytes (a quantized denoiser's linear weights at 1 byte for int8, half a byte for NF4); a
LoRA's trainable weights cost 16 bytes each (fp32 weight, gradient and Adam's two moments);
activations follow the latent tokens, the denoiser's first width and the batch, with the factors
below (rough: GPU peaks were not measured on the machine these were written on).  A device whose
memory is known (CUDA) refuses a job that will not fit, in one sentence saying what to change.
"""
from __future__ import annotations

from typing import Any, Sequence

from studio.errors import StudioError

GIB = 1024 ** 3
GENERATE_ACTIVATION = 48  # bytes of denoiser activations per latent token x first width x dtype byte (SDPA)
VAE_DECODE_ACTIVATION = 8 * 128  # per output pixel x dtype byte: the decoder's widest stage, a few buffers
VAE_TILE = 512  # pixels a side a tiled VAE decodes at once
TUNE_ACTIVATION = {True: 24, False: 160}  # per latent token x first width x 2 bytes, gradient checkpointing on/off
LORA_BYTES = 16  # per trainable LoRA weight: fp32 value, gradient, Adam's two moments
from .settings import OFFLOAD, QUANTIZE  # noqa: E402  (the choices live with the settings)


def _module_bytes(module, quantize: str = "none") -> int:
    total = 0
    for name, p in module.named_parameters():
        if quantize != "none" and p.ndim == 2:  # a linear weight of a quantized module
            total += p.numel() * (1 if quantize == "int8" else 0.5)
        else:
            total += p.numel() * p.element_size()
    for b in module.buffers():
        total += b.numel() * b.element_size()
    return int(total)


def _first_width(denoiser) -> int:
    config = denoiser.config
    channels = getattr(config, "block_out_channels", None)
    if channels:
        return int(channels[0])
    heads, dim = getattr(config, "num_attention_heads", 0), getattr(config, "attention_head_dim", 0)
    return int(heads * dim) or 1024


def _denoiser(pipe):
    return getattr(pipe, "unet", None) or pipe.transformer


def generate_need(handle, width: int, height: int, batch: int, guidance: float, offload: str = "none",
                  vae_tiling: bool = False) -> dict[str, Any]:
    """Bytes a generation needs on the device: the weights it holds there, the denoiser's and VAE's activations."""
    import torch

    pipe = handle.pipe
    parts = {name: _module_bytes(m) for name, m in pipe.components.items() if isinstance(m, torch.nn.Module)}
    if offload == "model":  # one component on the device at a time
        weights = max(parts.values(), default=0)
    elif offload == "sequential":  # one layer at a time: a small share of the largest
        weights = max(parts.values(), default=0) // 10
    else:
        weights = sum(parts.values())
    itemsize = torch.tensor([], dtype=handle.dtype).element_size()
    scale = getattr(pipe, "vae_scale_factor", 8)
    tokens = (height // scale) * (width // scale) * (2 if guidance > 1 else 1)
    activations = batch * tokens * _first_width(_denoiser(pipe)) * GENERATE_ACTIVATION * itemsize
    decode_pixels = min(width * height, VAE_TILE * VAE_TILE) if vae_tiling else width * height
    decode = (1 if vae_tiling else batch) * decode_pixels * VAE_DECODE_ACTIVATION * itemsize
    return {"weights": weights, "activations": activations + decode, "total": weights + activations + decode}


def lora_weights(denoiser, targets, rank: int) -> int:
    import torch

    count = 0
    for name, module in denoiser.named_modules():
        if not any(name == t or name.endswith("." + t) for t in targets):
            continue
        module = getattr(module, "base_layer", module)  # a LoRA left by an earlier tune in this process: its layer
        if isinstance(module, torch.nn.Linear):
            count += rank * (module.in_features + module.out_features)
        elif isinstance(module, torch.nn.Conv2d):  # down: the conv's own kernel to rank channels; up: 1x1
            kh, kw = module.kernel_size
            count += rank * (module.in_channels // module.groups * kh * kw + module.out_channels)
    return count


def tune_need(handle, family, shapes, batch: int, rank: int, quantize: str, checkpointing: bool,
              offload_encoders: bool, targets: Sequence[str]) -> dict[str, Any]:
    """Bytes a tune needs on the device: the frozen base, the LoRA and its optimiser, the activations."""
    import torch

    pipe = handle.pipe
    denoiser = getattr(pipe, family.denoiser)
    weights = _module_bytes(denoiser, quantize)
    if not offload_encoders or not handle.device.startswith("cuda"):  # the text encoders and VAE stay there
        weights += sum(_module_bytes(m) for n, m in pipe.components.items()
                       if isinstance(m, torch.nn.Module) and n != family.denoiser)
    lora = lora_weights(denoiser, targets, rank) * LORA_BYTES
    scale = getattr(pipe, "vae_scale_factor", 8)
    tokens = max((w // scale) * (h // scale) for w, h in shapes)
    activations = batch * tokens * _first_width(denoiser) * TUNE_ACTIVATION[bool(checkpointing)] * 2
    return {"weights": weights, "lora": lora, "activations": activations, "total": weights + lora + activations}


def device_memory(device: str) -> int | None:
    """The memory of ``device`` in bytes where it is known and separate (a CUDA card); None elsewhere."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    return None


def check_fits(need: dict[str, Any], device: str, what: str, advice: str) -> None:
    """One sentence when ``need`` is more than the device has."""
    have = device_memory(device)
    if have is not None and need["total"] > have:
        raise StudioError(f"{what} needs about {need['total'] / GIB:.1f} GB ({need['weights'] / GIB:.1f} GB of "
                          f"weights), more than the {have / GIB:.1f} GB this GPU has; {advice}.")


# -- the options that lower it ---------------------------------------------------------------------

def apply_generation_options(handle, offload: str, vae_tiling: bool) -> None:
    """Model CPU offload (each component on the GPU only while it runs) or sequential offload (layer by
    layer), and VAE slicing + tiling; switched per generation, a no-op where there is no GPU to spare."""
    pipe = handle.pipe
    if offload not in OFFLOAD:
        raise StudioError(f"Unknown offload '{offload}'; use one of {', '.join(OFFLOAD)}.")
    current = getattr(handle, "offload", "none")
    if offload != current and handle.device.startswith("cuda"):
        if current != "none":
            pipe.remove_all_hooks()
            pipe.to(handle.device)
        if offload == "model":
            pipe.enable_model_cpu_offload(device=handle.device)
        elif offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=handle.device)
        handle.offload = offload
    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "enable_tiling"):
        if vae_tiling:
            vae.enable_slicing()
            vae.enable_tiling()
        else:
            vae.disable_slicing()
            vae.disable_tiling()


def quantize_base(module, mode: str, device: str) -> None:
    """Quantize a frozen denoiser's linear weights in place (QLoRA-style: the LoRA trains beside them).

    ``int8``: torchao's int8 weight-only tensors (CPU and GPU); ``nf4``: bitsandbytes' 4-bit NF4
    layers (CUDA only).  peft attaches LoRA to both kinds of layer.
    """
    if mode == "none":
        return
    if mode not in QUANTIZE:
        raise StudioError(f"Unknown quantize '{mode}'; use one of {', '.join(QUANTIZE)}.")
    if mode == "int8":
        try:
            from torchao.quantization import Int8WeightOnlyConfig, quantize_
        except ImportError:
            raise StudioError("quantize=int8 needs the torchao package (pip install torchao).") from None
        import torch

        quantize_(module, Int8WeightOnlyConfig(), filter_fn=lambda m, name: isinstance(m, torch.nn.Linear))
        return
    if not device.startswith("cuda"):
        raise StudioError("quantize=nf4 needs a CUDA GPU (bitsandbytes' 4-bit layers); use int8 here.")
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise StudioError("quantize=nf4 needs the bitsandbytes package (pip install bitsandbytes).") from None
    _replace_with_nf4(module, bnb, device)


def _replace_with_nf4(module, bnb, device: str) -> None:
    import torch

    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.Linear):
            dtype = child.weight.dtype
            layer = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=dtype if dtype != torch.float32 else torch.bfloat16,
                                      quant_type="nf4")
            layer.weight = bnb.nn.Params4bit(child.weight.data.to("cpu"), requires_grad=False, quant_type="nf4")
            if child.bias is not None:
                layer.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(module, name, layer.to(device))  # moving to the GPU quantizes the weight
        else:
            _replace_with_nf4(child, bnb, device)
