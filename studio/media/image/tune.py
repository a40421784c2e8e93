"""The image LoRA tune: peft LoRA on the UNet's attention (optionally the text encoder).

Everything that does not change during a tune is computed once, when the task is built:
the VAE latents of the curated pictures and their prompts' text embeddings (or token ids
when the text encoder trains too).  A step then costs one UNet forward and backward: noise
the cached latents at random timesteps drawn from the step's generator and regress the
scheduler's target (noise for epsilon models, velocity for v-prediction models).

``save`` writes the standard diffusers LoRA folder (``pytorch_lora_weights.safetensors``
with its LoRA config as metadata) that stock ``pipeline.load_lora_weights(folder)`` reads.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from studio.errors import StudioError
from studio.medium import Candidate

from .model import ImageHandle

ADAPTER = "studio_train"  # the adapter being trained, by its peft name
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def _check_pipeline(pipe) -> None:
    if getattr(pipe, "unet", None) is None or getattr(pipe, "text_encoder", None) is None:
        raise StudioError(f"LoRA tuning supports UNet pipelines with one text encoder (Stable Diffusion 1.x "
                          f"and 2.x); this model is a {type(pipe).__name__}.")
    if getattr(pipe, "text_encoder_2", None) is not None:
        raise StudioError("LoRA tuning of SDXL-style pipelines (two text encoders) is not supported yet; "
                          "tune a Stable Diffusion 1.x or 2.x model.")


def _load_pictures(examples: Sequence[Candidate], width: int, height: int):
    import numpy as np
    import torch
    from PIL import Image

    rows = []
    for c in examples:
        try:
            with Image.open(c.path) as image:
                rgb = image.convert("RGB")
                if rgb.size != (width, height):
                    rgb = rgb.resize((width, height), Image.BICUBIC)
                rows.append(np.asarray(rgb, dtype=np.float32))
        except OSError as exc:
            raise StudioError(f"The image of curated candidate {c.id} cannot be read ({c.path}).") from exc
    return torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2) / 127.5 - 1.0


class ImageTuneTask:
    """A LoRA fine-tune of a diffusers pipeline on curated candidates (``studio.training`` drives it)."""

    def __init__(self, handle: ImageHandle, examples: Sequence[Candidate], settings: dict[str, Any],
                 parent_adapter: str | None):
        import torch
        from diffusers import DDPMScheduler

        if not examples:
            raise StudioError("The curated set is empty; accept some candidates before tuning.")
        pipe = handle.pipe
        _check_pipeline(pipe)
        self.handle, self.pipe, self.device = handle, pipe, handle.device
        self.batch_size = int(settings.get("batch_size", 8))
        self.train_text = bool(settings.get("train_text_encoder", False))
        self.rank = int(settings.get("rank", 8))
        self.alpha = float(settings.get("alpha", self.rank))
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.prediction = self.noise_scheduler.config.prediction_type
        for part in (pipe.unet, pipe.text_encoder, pipe.vae):
            part.requires_grad_(False)

        size = int(settings.get("size", 0)) or handle.native_size
        with torch.no_grad():  # the cache: latents and prompt embeddings, once per tune
            pictures = _load_pictures(examples, size, size)
            vae = pipe.vae
            latents = []
            for i in range(0, len(pictures), 16):
                x = pictures[i:i + 16].to(self.device, vae.dtype)
                latents.append(vae.encode(x).latent_dist.mean.float())
            shift = getattr(vae.config, "shift_factor", None) or 0.0
            self.latents = (torch.cat(latents) - shift) * vae.config.scaling_factor
            tokens = pipe.tokenizer([c.prompt for c in examples], padding="max_length", truncation=True,
                                    max_length=pipe.tokenizer.model_max_length, return_tensors="pt")
            self.token_ids = tokens.input_ids.to(self.device)
            self.embeds = None if self.train_text else pipe.text_encoder(self.token_ids)[0]

        with torch.random.fork_rng(devices=[]):  # the LoRA's random init follows the tune's seed
            torch.manual_seed(int(settings.get("seed", 0)))
            self._add_lora(parent_adapter)
        if settings.get("gradient_checkpointing") and self.device.startswith("cuda"):
            pipe.unet.enable_gradient_checkpointing()
        self.params = {}
        for prefix, module in (("unet", pipe.unet), ("text_encoder", pipe.text_encoder)):
            for name, p in module.named_parameters():
                if "lora_" in name and f".{ADAPTER}." in name + ".":
                    p.requires_grad_(True)
                    if p.dtype != torch.float32:  # LoRA weights train in fp32 on a bf16/fp16 base
                        p.data = p.data.float()
                    self.params[f"{prefix}.{name}"] = p
        if not self.params:
            raise StudioError("The model has no attention layers LoRA can attach to (to_q/to_k/to_v/to_out).")

    def _add_lora(self, parent_adapter: str | None) -> None:
        from peft import LoraConfig

        pipe = self.pipe
        for module in (pipe.unet, pipe.text_encoder):  # a tune restarted in this process starts clean
            if ADAPTER in getattr(module, "peft_config", {}):
                module.delete_adapters(ADAPTER) if hasattr(module, "delete_adapters") else module.delete_adapter(ADAPTER)
        if parent_adapter:
            folder = Path(parent_adapter)
            if not folder.is_dir() or not any(folder.glob("*.safetensors")):
                raise StudioError(f"The parent version's adapter '{parent_adapter}' is missing.")
            pipe.load_lora_weights(str(folder), adapter_name=ADAPTER)
            self.train_text = self.train_text or ADAPTER in getattr(pipe.text_encoder, "peft_config", {})
            config = pipe.unet.peft_config[ADAPTER]
            self.rank, self.alpha = int(config.r), float(config.lora_alpha)
        else:
            pipe.unet.add_adapter(LoraConfig(r=self.rank, lora_alpha=self.alpha, init_lora_weights="gaussian",
                                             target_modules=UNET_TARGETS), adapter_name=ADAPTER)
            if self.train_text:
                pipe.text_encoder.add_adapter(LoraConfig(r=self.rank, lora_alpha=self.alpha,
                                                         init_lora_weights="gaussian",
                                                         target_modules=TEXT_TARGETS), adapter_name=ADAPTER)
        pipe.enable_lora()
        pipe.unet.set_adapters([ADAPTER])
        if self.train_text:
            pipe.text_encoder.set_adapter(ADAPTER)

    # the TuneTask protocol -------------------------------------------------------------------

    def parameters(self) -> list:
        return list(self.params.values())

    def loss(self, step: int, generator):
        import torch
        import torch.nn.functional as F

        n = len(self.latents)
        idx = torch.randint(0, n, (self.batch_size,), generator=generator)
        x0 = self.latents[idx.to(self.latents.device)]
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        steps = self.noise_scheduler.config.num_train_timesteps
        t = torch.randint(0, steps, (len(idx),), generator=generator).to(x0.device)
        noisy = self.noise_scheduler.add_noise(x0, noise, t)
        target = noise if self.prediction == "epsilon" else self.noise_scheduler.get_velocity(x0, noise, t)
        unet = self.pipe.unet
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.startswith("cuda"))
        with autocast:
            states = self.embeds[idx.to(self.embeds.device)] if self.embeds is not None else \
                self.pipe.text_encoder(self.token_ids[idx.to(self.token_ids.device)])[0]
            pred = unet(noisy.to(unet.dtype), t, states.to(unet.dtype)).sample
        return F.mse_loss(pred.float(), target.float())

    def adapter_state(self) -> dict[str, Any]:
        return {name: p.detach() for name, p in self.params.items()}

    def load_adapter_state(self, state: dict[str, Any]) -> None:
        import torch

        missing = set(self.params) - set(state)
        if missing:
            raise StudioError("The checkpoint does not match this tune's LoRA layers; start the tune again.")
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state[name].to(p.device, p.dtype))

    def state_dicts(self) -> dict[str, dict[str, Any]]:
        """The LoRA weights in diffusers' layout, by component ('unet', 'text_encoder')."""
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        out = {}
        for prefix, module in (("unet", self.pipe.unet), ("text_encoder", self.pipe.text_encoder)):
            if ADAPTER not in getattr(module, "peft_config", {}):
                continue
            state = get_peft_model_state_dict(module, adapter_name=ADAPTER)
            out[prefix] = {k: v.detach().float().contiguous().cpu()
                           for k, v in convert_state_dict_to_diffusers(state).items()}
        return out

    def save(self, out_dir: Path) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        states = self.state_dicts()
        metadata = {}
        for prefix, module in (("unet", self.pipe.unet), ("text_encoder", self.pipe.text_encoder)):
            if prefix in states:
                config = module.peft_config[ADAPTER].to_dict()
                metadata[f"{prefix}_lora_adapter_metadata"] = {k: sorted(v) if isinstance(v, set) else v
                                                               for k, v in config.items()}
        type(self.pipe).save_lora_weights(str(out_dir), unet_lora_layers=states.get("unet"),
                                          text_encoder_lora_layers=states.get("text_encoder"),
                                          safe_serialization=True, **metadata)
        (out_dir / "studio_adapter.json").write_text(json.dumps(
            {"rank": self.rank, "alpha": self.alpha, "text_encoder": "text_encoder" in states,
             "base_model": self.handle.model}, indent=1), encoding="utf-8")

    def release(self) -> None:
        """Remove the training adapter from the loaded model (after ``save``)."""
        for module in (self.pipe.unet, self.pipe.text_encoder):
            if ADAPTER in getattr(module, "peft_config", {}):
                module.delete_adapters(ADAPTER) if hasattr(module, "delete_adapters") else module.delete_adapter(ADAPTER)
