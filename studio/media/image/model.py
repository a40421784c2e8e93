"""Loading any diffusers text-to-image pipeline: a local folder or a hub id, safetensors only.

The embedded default (``assets/image``) is an ordinary ``save_pretrained`` folder and takes
exactly this path.  CUDA runs in bf16 (fp16 where bf16 is missing) with PyTorch's SDPA
attention, Apple MPS in fp16, a CPU in fp32.  Adapters (the versions' LoRA folders) are
loaded once each under a name and switched on and off, never reloading the base.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from studio.errors import StudioError, hub_reason

SUPPORTED = ("StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusion3Pipeline",
             "FluxPipeline", "PixArtAlphaPipeline", "PixArtSigmaPipeline", "SanaPipeline",
             "AutoPipelineForText2Image")


@dataclasses.dataclass
class ImageHandle:
    """A loaded pipeline and what the other hooks need to know of it."""

    pipe: Any
    model: str
    device: str
    dtype: Any
    native_size: int
    adapters: dict[str, str] = dataclasses.field(default_factory=dict)  # adapter folder -> adapter name
    active: str | None = None  # the adapter folder switched on, None for base


def pick_device(device: str | None) -> str:
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str):
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


def _check_folder(folder: Path) -> str:
    """The pipeline's class name, after checking the folder is a usable safetensors pipeline."""
    index = folder / "model_index.json"
    if not index.is_file():
        raise StudioError(f"'{folder}' is not a diffusers pipeline folder (it has no model_index.json).")
    try:
        spec = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StudioError(f"The model_index.json in '{folder}' cannot be read ({exc.__class__.__name__}).") from exc
    cls = spec.get("_class_name", "")
    if cls not in SUPPORTED:
        raise StudioError(f"'{folder}' holds a {cls or 'unnamed'} pipeline, which is not a supported "
                          f"text-to-image pipeline ({', '.join(SUPPORTED[:3])}, ...).")
    for part, value in spec.items():
        if part.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        sub = folder / part
        if not sub.is_dir():
            raise StudioError(f"The model folder '{folder}' is broken: its '{part}' folder is missing.")
        weights = list(sub.glob("*.bin")) + list(sub.glob("*.pt")) + list(sub.glob("*.ckpt"))
        safe = list(sub.glob("*.safetensors"))
        if weights and not safe:
            raise StudioError(f"The '{part}' weights in '{folder}' are pickle files only; studio loads "
                              "safetensors weights only (convert them first).")
    return cls


def load(model: str, device: str | None = None) -> ImageHandle:
    """Load ``model`` (folder or hub id) for generation on ``device`` (auto when None)."""
    from diffusers import DiffusionPipeline

    from ...quiet import quiet_diffusers

    quiet_diffusers()  # no "Loading pipeline components" bar where studio silences libraries
    device = pick_device(device)
    dtype = pick_dtype(device)
    folder = Path(model).expanduser()
    looks_local = folder.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_local:
        if not folder.is_dir():
            raise StudioError(f"The model folder '{model}' does not exist.")
        cls = _check_folder(folder)
        source = str(folder)
    else:
        cls, source = "StableDiffusionPipeline", model
    extra = {"safety_checker": None, "requires_safety_checker": False} if cls == "StableDiffusionPipeline" else {}
    try:
        pipe = DiffusionPipeline.from_pretrained(source, dtype=dtype, use_safetensors=True,
                                                 trust_remote_code=False, **extra)
    except StudioError:
        raise
    except (OSError, ValueError, EnvironmentError) as exc:
        raise StudioError(f"The image model '{model}' could not be loaded: {hub_reason(exc)}.") from exc
    if type(pipe).__name__ not in SUPPORTED and not hasattr(pipe, "unet") and not hasattr(pipe, "transformer"):
        raise StudioError(f"'{model}' is a {type(pipe).__name__}, not a supported text-to-image pipeline.")
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if device.startswith("cuda") and hasattr(denoiser, "set_attn_processor"):
        from diffusers.models.attention_processor import AttnProcessor2_0

        try:  # PyTorch's fused scaled-dot-product attention
            denoiser.set_attn_processor(AttnProcessor2_0())
        except Exception:  # some transformer denoisers bring their own processors
            pass
    scale = getattr(pipe, "vae_scale_factor", 8)
    # a UNet or SD3's transformer says its latent size; Flux's pipeline keeps it (128 latents = 1024 px)
    sample = getattr(denoiser.config, "sample_size", None) or getattr(pipe, "default_sample_size", None) or 64
    sample = sample[0] if isinstance(sample, (list, tuple)) else sample
    return ImageHandle(pipe=pipe, model=model, device=device, dtype=dtype, native_size=int(sample * scale))


def use_adapter(handle: ImageHandle, adapter: str | None, strength: float = 1.0) -> None:
    """Switch ``adapter`` (a LoRA folder) on at ``strength``, or every adapter off for ``None``;
    load each once."""
    pipe = handle.pipe
    if adapter is None:
        if handle.adapters:
            pipe.disable_lora()
        handle.active = None
        return
    key = str(Path(adapter).resolve())
    if key not in handle.adapters:
        folder = Path(key)
        if not folder.is_dir() or not any(folder.glob("*.safetensors")):
            raise StudioError(f"The adapter folder '{adapter}' is missing or holds no safetensors weights.")
        name = f"v{len(handle.adapters) + 1}"
        try:
            pipe.load_lora_weights(key, adapter_name=name)
        except (OSError, ValueError, KeyError) as exc:
            raise StudioError(f"The adapter in '{adapter}' does not fit this model ({exc.__class__.__name__}).") from exc
        handle.adapters[key] = name
    pipe.enable_lora()
    pipe.set_adapters([handle.adapters[key]], adapter_weights=[float(strength)])
    handle.active = key
