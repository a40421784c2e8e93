"""Batched generation, one ``torch.Generator`` per seed, PNG files that carry their settings.

Each seed gets its own CPU generator, so a candidate's pixels depend on its prompt, seed,
settings and adapter, not on which batch it was drawn in or on the device's RNG.  The PNG
holds a ``parameters`` text chunk in the form AUTOMATIC1111 writes (ComfyUI and most image
tools read it) and a ``studio`` chunk with the same settings as JSON.
"""
from __future__ import annotations

import io
import json
from typing import Any, Sequence

from studio.errors import StudioError
from studio.medium import Generated

from .model import ImageHandle, use_adapter
from .samplers import sampler_name, using_sampler
from .settings import parse_lora


def resolve_size(handle: ImageHandle, params: dict[str, Any]) -> tuple[int, int]:
    return int(params["width"]) or handle.native_size, int(params["height"]) or handle.native_size


def parameters_text(prompt: str, seed: int, params: dict[str, Any], size: tuple[int, int], sampler: str,
                    model: str, version: str) -> str:
    """The generation settings as AUTOMATIC1111 writes them into a PNG."""
    lines = [prompt]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    lines.append(f"Steps: {params['steps']}, Sampler: {sampler}, CFG scale: {params['guidance']}, Seed: {seed}, "
                 f"Size: {size[0]}x{size[1]}, Model: {model}, Version: {version}")
    return "\n".join(lines)


def png_bytes(image, text: dict[str, str]) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def adapter_schedule(handle: ImageHandle, adapter: str | None, active: list[tuple[str, float]], steps: int,
                     start: float):
    """A step-end callback that switches the version's adapter (``active[0]``) on once ``start`` of the
    steps are done (None when it is on from the first step); the denoiser runs it at weight 0 until
    then.  Community LoRAs (the rest of ``active``) stay on throughout."""
    import math

    first = math.ceil(start * steps) if adapter else 0
    if first <= 0:
        return None
    denoiser = getattr(handle.pipe, "unet", None) or handle.pipe.transformer
    names = [n for n, _ in active]
    denoiser.set_adapters(names, weights=[0.0] + [w for _, w in active[1:]])

    def switch(pipe, step: int, timestep, callback_kwargs):
        if step + 1 == first:
            denoiser.set_adapters(names, weights=[w for _, w in active])
        return callback_kwargs

    return switch


def generate(handle: ImageHandle, prompt: str, seeds: Sequence[int], params: dict[str, Any],
             adapter: str | None = None, strength: float = 1.0) -> list[Generated]:
    import numpy as np
    import torch

    from .memory import apply_generation_options, check_fits, generate_need

    active = use_adapter(handle, adapter, strength, [parse_lora(text) for text in params.get("loras") or ()])
    width, height = resolve_size(handle, params)
    batch = max(1, int(params["batch_size"]))
    offload, tiling = params.get("offload", "none"), bool(params.get("vae_tiling", False))
    need = generate_need(handle, width, height, min(batch, len(seeds)), float(params["guidance"]), offload, tiling)
    check_fits(need, handle.device, f"Generating {min(batch, len(seeds))} pictures of {width}x{height} at once",
               "lower batch_size or the size, or set offload=model and vae_tiling=true")
    apply_generation_options(handle, offload, tiling)
    sampler = params.get("sampler", "model")
    sampler_text = sampler_name(handle.pipe.scheduler, sampler)
    version = "base" if adapter is None else str(adapter)
    negative = params.get("negative_prompt") or None
    results: list[Generated] = []
    with using_sampler(handle.pipe, sampler):  # one scheduler for every chunk, the model's own back after
        for start in range(0, len(seeds), batch):
            chunk = [int(s) for s in seeds[start:start + batch]]
            generators = [torch.Generator("cpu").manual_seed(s) for s in chunk]
            steps = int(params["steps"])
            switch = adapter_schedule(handle, adapter, active, steps, float(params.get("adapter_from", 0.0)))
            try:
                with torch.inference_mode():
                    images = handle.pipe(prompt=[prompt] * len(chunk),
                                         # only when given: PixArt's default is "", and None breaks it
                                         **({"negative_prompt": [negative] * len(chunk)} if negative else {}),
                                         num_inference_steps=steps, guidance_scale=float(params["guidance"]),
                                         width=width, height=height, generator=generators, output_type="np",
                                         **({"callback_on_step_end": switch} if switch else {})).images
            except ValueError as exc:  # the pipeline's own check of the settings (sizes, lengths, ...)
                first = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
                raise StudioError(f"The {type(handle.pipe).__name__} refused these settings ({first}).") from exc
            if not np.isfinite(images).all():  # saved as it is, a black picture: say so instead
                raise StudioError(f"The sampler drew no picture at {steps} steps (its numbers overflowed): try "
                                  "more steps or another sampler.")
            for seed, image in zip(chunk, handle.pipe.numpy_to_pil(images)):
                text = parameters_text(prompt, seed, params, (width, height), sampler_text, handle.model, version)
                settings = json.dumps({"prompt": prompt, "seed": seed, "params": params, "model": handle.model,
                                       "adapter": adapter}, sort_keys=True)
                results.append(Generated(seed=seed, files={"png": png_bytes(image, {"parameters": text,
                                                                                     "studio": settings})}))
    return results
