"""Loading any diffusers text-to-image pipeline: a local folder, a single-file checkpoint or a hub id.

The embedded default (``assets/``) is an ordinary ``save_pretrained`` folder and takes exactly
this path; a folder of ``*.fp16.safetensors`` variants loads as such; a single ``.safetensors``
checkpoint (AUTOMATIC1111, ComfyUI, Civitai) goes through ``single_file.py``.  Device and dtype
come from ``studio.loading`` (bf16/fp16 on CUDA, fp16 on MPS, fp32 on a CPU; ``$STUDIO_DTYPE``
overrides), with PyTorch's SDPA attention on CUDA.  Adapters (the versions' LoRA folders) are
loaded once each under a name and switched on and off, never reloading the base.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from studio.errors import StudioError, one_line
from studio.loading import PICKLE_SUFFIXES, hub_snapshot, load_error, local_path, looks_local, pick_device, pick_dtype
from studio.medium import PromptLength

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
    adapters: dict[str, str] = dataclasses.field(default_factory=dict)  # LoRA folder or file -> adapter name
    active: str | None = None  # the adapter folder switched on, None for base
    offload: str = "none"  # CPU offload in force (memory.apply_generation_options)


def _variant(folder: Path, spec: dict) -> str | None:
    """``"fp16"`` when the components hold only ``*.fp16.safetensors`` weights (a variant folder)."""
    plain = variant = False
    for part, value in spec.items():
        if part.startswith("_") or not isinstance(value, list) or value[0] is None or not (folder / part).is_dir():
            continue
        for f in (folder / part).glob("*.safetensors"):
            if f.name.endswith(".fp16.safetensors"):
                variant = True
            else:
                plain = True
    return "fp16" if variant and not plain else None


def _check_folder(folder: Path) -> tuple[str, dict]:
    """The pipeline's class name and its model_index, after checking the folder is a usable safetensors pipeline."""
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
        weights = [p for p in sub.iterdir() if p.suffix in PICKLE_SUFFIXES]
        safe = list(sub.glob("*.safetensors"))
        if weights and not safe:
            raise StudioError(f"The '{part}' weights in '{folder}' are pickle files only; studio loads "
                              "safetensors weights only (convert them first).")
    return cls, spec


def _single_checkpoint(folder: Path) -> Path | None:
    """The one ``.safetensors`` checkpoint a folder without model_index.json holds (A1111's way), if one."""
    if (folder / "model_index.json").exists():
        return None
    files = sorted(folder.glob("*.safetensors"))
    if len(files) == 1:
        return files[0]
    if len(files) > 1:
        names = ", ".join(f.name for f in files[:3])
        raise StudioError(f"'{folder}' holds several checkpoints ({names}, ...); give the one to use as the model.")
    return None


def _from_folder(folder: Path, dtype):
    from diffusers import DiffusionPipeline

    cls, spec = _check_folder(folder)
    extra = {"safety_checker": None, "requires_safety_checker": False} if cls == "StableDiffusionPipeline" else {}
    variant = _variant(folder, spec)
    return DiffusionPipeline.from_pretrained(str(folder), dtype=dtype, use_safetensors=True,
                                             trust_remote_code=False, **({"variant": variant} if variant else {}),
                                             **extra)


def load(model: str, device: str | None = None) -> ImageHandle:
    """Load ``model`` (a pipeline folder, a single-file checkpoint or a hub id in the cache) for
    generation on ``device`` (auto when None)."""
    from ...quiet import quiet_diffusers

    quiet_diffusers(importing=True)  # no "Loading pipeline components" bar where studio silences libraries
    device = pick_device(device)
    dtype = pick_dtype(device)
    try:
        if looks_local(model):
            path = local_path(model, "image model", files=True)
            checkpoint = path if path.is_file() else _single_checkpoint(path)
            if checkpoint is not None:
                from .single_file import load_single_file

                pipe = load_single_file(checkpoint, dtype)
            else:
                pipe = _from_folder(path, dtype)
        else:
            pipe = _from_folder(hub_snapshot(model, "image model"), dtype)
    except StudioError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise load_error("image model", model, exc) from exc
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


TOKENIZERS = ("tokenizer", "tokenizer_2", "tokenizer_3")  # a pipeline's text encoders' tokenizers
UNBOUNDED = 100_000  # a model_max_length above this is transformers' "no limit given"


def prompt_length(model: str, prompt: str) -> PromptLength | None:
    """The prompt's tokens against the longest prompt the pipeline's text encoders read (CLIP's 77, a T5's
    256 or 512): the end beyond it is cut.  Loads the tokenizers only; None for a single-file checkpoint."""
    from ...loading import count_tokens

    if looks_local(model):
        folder = local_path(model, "image model", files=True)
        if folder.is_file() or _single_checkpoint(folder) is not None:
            return None
    else:
        folder = hub_snapshot(model, "image model")
    found = [count_tokens(folder / name, lambda tokenizer: tokenizer(prompt)["input_ids"])
             for name in TOKENIZERS if (folder / name).is_dir()]
    found = [(used, limit) for used, limit in found if limit < UNBOUNDED]
    return PromptLength(*max(found, key=lambda pair: pair[1])) if found else None


def lora_source(path: str | Path):
    """What ``load_lora_weights`` takes for a LoRA: a version's folder as is, a file's tensors (safetensors only)."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".safetensors":
            raise StudioError(f"The LoRA '{path.name}' is not a .safetensors file; studio loads safetensors only.")
        from safetensors.torch import load_file

        return load_file(str(path))
    if not path.is_dir() or not any(path.glob("*.safetensors")):
        raise StudioError(f"The adapter folder '{path}' is missing or holds no safetensors weights.")
    return str(path)


def _adapter_name(handle: ImageHandle, path: str, prefix: str) -> str:
    """Load the LoRA at ``path`` (a version's folder or a community file) once; later only its name."""
    key = str(Path(path).resolve())
    if key not in handle.adapters:
        name = f"{prefix}{len(handle.adapters) + 1}"
        try:
            handle.pipe.load_lora_weights(lora_source(key), adapter_name=name)
        except StudioError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise StudioError(f"The LoRA '{Path(path).name}' does not fit this model "
                              f"({exc.__class__.__name__}: {one_line(exc, 120)}).") from exc
        handle.adapters[key] = name
    return handle.adapters[key]


def use_adapter(handle: ImageHandle, adapter: str | None, strength: float = 1.0,
                loras: Sequence[Sequence[Any]] = ()) -> list[tuple[str, float]]:
    """Switch on ``adapter`` (a version's LoRA folder) at ``strength`` and each community LoRA of ``loras``
    (``[path, strength]``) at its own strength, every other adapter off; each loads once.

    Returns the active (adapter name, weight) pairs, the version's first."""
    pipe = handle.pipe
    active = []
    if adapter is not None:
        active.append((_adapter_name(handle, adapter, "v"), float(strength)))
    for path, weight in loras:
        active.append((_adapter_name(handle, str(path), "lora"), float(weight)))
    handle.active = str(Path(adapter).resolve()) if adapter is not None else None
    if not active:
        if handle.adapters:
            pipe.disable_lora()
        return []
    pipe.enable_lora()
    pipe.set_adapters([n for n, _ in active], adapter_weights=[w for _, w in active])
    return active
