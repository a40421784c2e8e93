"""The model families an image tune knows: one entry each, so adding a family is one entry.

An entry says, for its diffusers pipelines:

- ``encode``: how prompts become the conditioning the denoiser takes (the pipeline's own
  ``encode_prompt``, so a tune sees exactly what generation sees), split into rows (one per
  prompt, cached once per tune) and what every row shares;
- ``predict``: one denoiser call on noisy latents with that conditioning (SDXL's pooled
  embeddings and size ids, Flux's packed latents and guidance embedding);
- ``objective``: ``"ddpm"`` regresses the scheduler's target (noise for epsilon models,
  velocity for v-prediction, on a zero-terminal-SNR schedule when the scheduler's config says
  ``rescale_betas_zero_snr``), ``"flow"`` is flow matching (velocity ``noise - x0`` at sigmas
  bent by the scheduler's ``shift``, or by its resolution-dependent shift for Flux);
- ``lora_targets`` / ``text_encoders``: the denoiser's attention projections, and the
  CLIP-style text encoders that may train a LoRA too (never T5);
- ``kohya``: the single-file layout kohya-style tools read (see ``export.py``), None where
  the diffusers file is itself what those tools load.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from studio.errors import StudioError

UNET_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
UNET_CONV = ("conv1", "conv2")  # each resnet's two 3x3 convolutions (kohya's LoCon "conv_dim")
# MM-DiT blocks attend over image and text tokens with separate projections for each
MMDIT_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
# where the prompt enters the picture: the keys and values made from the text (Custom Diffusion, Kumari et al. 2023)
UNET_CROSS = ("attn2.to_k", "attn2.to_v")
MMDIT_CROSS = ("add_k_proj", "add_v_proj")
CLIP_ATTENTION = ("q_proj", "k_proj", "v_proj", "out_proj")
FLUX_TRAIN_GUIDANCE = 3.5  # the guidance a dev-style model is trained at (diffusers' and kohya's default)


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    pipelines: tuple[str, ...]  # diffusers pipeline class names
    denoiser: str  # the pipeline component that denoises: "unet" or "transformer"
    objective: str  # "ddpm" or "flow"
    lora_targets: tuple[str, ...]
    conv_targets: tuple[str, ...]  # what ``conv`` adds (empty: the family has none to adapt)
    cross_targets: tuple[str, ...]  # the text's keys and values alone (layers "cross")
    text_encoders: tuple[str, ...]  # components that may carry a LoRA
    encode: Callable[..., tuple[dict[str, Any], dict[str, Any]]]  # (pipe, prompts, device, size) -> rows, shared
    predict: Callable[..., Any]  # (pipe, noisy, timesteps, cond) -> prediction shaped like noisy
    kohya: str | None  # single-file layout: "sd", "sgm", "bfl" or None
    base_model_version: str  # what kohya's metadata calls the base (ss_base_model_version)


# Stable Diffusion 1.x / 2.x: one CLIP text encoder, a UNet -----------------------------------

def _encode_sd(pipe, prompts, device, size):
    embeds, _ = pipe.encode_prompt(prompts, device, 1, False)
    return {"encoder_hidden_states": embeds}, {}


def _predict_unet(pipe, noisy, timesteps, cond):
    unet = pipe.unet
    extra = {}
    if "text_embeds" in cond:
        extra["added_cond_kwargs"] = {"text_embeds": cond["text_embeds"].to(unet.dtype),
                                      "time_ids": cond["time_ids"].to(unet.dtype)}
    return unet(noisy.to(unet.dtype), timesteps, cond["encoder_hidden_states"].to(unet.dtype), **extra).sample


# SDXL: two CLIP text encoders, pooled embeddings and size/crop ids --------------------------------

def _encode_sdxl(pipe, prompts, device, size):
    import torch

    embeds, _, pooled, _ = pipe.encode_prompt(prompts, device=device, num_images_per_prompt=1,
                                              do_classifier_free_guidance=False)
    # original size, crop top-left, target size: the picture as it is, uncropped
    time_ids = torch.tensor([[size, size, 0, 0, size, size]] * len(prompts), dtype=torch.float32, device=device)
    return {"encoder_hidden_states": embeds, "text_embeds": pooled, "time_ids": time_ids}, {}


# SD3 / SD3.5: MM-DiT, two CLIPs and T5 --------------------------------------------------------------

def _encode_sd3(pipe, prompts, device, size):
    embeds, _, pooled, _ = pipe.encode_prompt(prompts, None, None, device=device, num_images_per_prompt=1,
                                              do_classifier_free_guidance=False)
    return {"encoder_hidden_states": embeds, "pooled_projections": pooled}, {}


def _predict_sd3(pipe, noisy, timesteps, cond):
    model = pipe.transformer
    return model(hidden_states=noisy.to(model.dtype), timestep=timesteps,
                 encoder_hidden_states=cond["encoder_hidden_states"].to(model.dtype),
                 pooled_projections=cond["pooled_projections"].to(model.dtype), return_dict=False)[0]


# Flux.1: CLIP (pooled) and T5, packed 2x2 latent patches, guidance embedding on dev-style models --

def _encode_flux(pipe, prompts, device, size):
    embeds, pooled, text_ids = pipe.encode_prompt(prompts, None, device=device, num_images_per_prompt=1)
    return {"encoder_hidden_states": embeds, "pooled_projections": pooled}, {"txt_ids": text_ids}


def _predict_flux(pipe, noisy, timesteps, cond):
    import torch

    model = pipe.transformer
    batch, channels, height, width = noisy.shape
    packed = pipe._pack_latents(noisy, batch, channels, height, width)
    image_ids = pipe._prepare_latent_image_ids(batch, height // 2, width // 2, noisy.device, model.dtype)
    guidance = None
    if model.config.guidance_embeds:
        guidance = torch.full((batch,), FLUX_TRAIN_GUIDANCE, device=noisy.device, dtype=torch.float32)
    out = model(hidden_states=packed.to(model.dtype), timestep=timesteps / 1000, guidance=guidance,
                pooled_projections=cond["pooled_projections"].to(model.dtype),
                encoder_hidden_states=cond["encoder_hidden_states"].to(model.dtype),
                txt_ids=cond["txt_ids"], img_ids=image_ids, return_dict=False)[0]
    return pipe._unpack_latents(out, height * pipe.vae_scale_factor, width * pipe.vae_scale_factor,
                                pipe.vae_scale_factor)


FAMILIES = (
    Family(name="Stable Diffusion 1.x/2.x", pipelines=("StableDiffusionPipeline",), denoiser="unet",
           objective="ddpm", lora_targets=UNET_ATTENTION, conv_targets=UNET_CONV, cross_targets=UNET_CROSS,
           text_encoders=("text_encoder",), encode=_encode_sd, predict=_predict_unet, kohya="sd",
           base_model_version="sd_v1"),
    Family(name="SDXL", pipelines=("StableDiffusionXLPipeline",), denoiser="unet", objective="ddpm",
           lora_targets=UNET_ATTENTION, conv_targets=UNET_CONV, cross_targets=UNET_CROSS,
           text_encoders=("text_encoder", "text_encoder_2"), encode=_encode_sdxl, predict=_predict_unet,
           kohya="sgm", base_model_version="sdxl_base_v1-0"),
    Family(name="SD3/SD3.5", pipelines=("StableDiffusion3Pipeline",), denoiser="transformer", objective="flow",
           lora_targets=MMDIT_ATTENTION, conv_targets=(), cross_targets=MMDIT_CROSS,
           text_encoders=("text_encoder", "text_encoder_2"), encode=_encode_sd3, predict=_predict_sd3, kohya=None,
           base_model_version="sd3"),
    Family(name="Flux.1", pipelines=("FluxPipeline",), denoiser="transformer", objective="flow",
           lora_targets=MMDIT_ATTENTION, conv_targets=(), cross_targets=MMDIT_CROSS, text_encoders=("text_encoder",),
           encode=_encode_flux, predict=_predict_flux, kohya="bfl", base_model_version="flux1"),
)


def family_of(pipe) -> Family:
    """The family of a loaded pipeline; StudioError naming the supported families otherwise."""
    cls = type(pipe).__name__
    for family in FAMILIES:
        if cls in family.pipelines:
            return family
    names = ", ".join(f.name for f in FAMILIES)
    raise StudioError(f"LoRA tuning supports {names} pipelines; this model is a {cls}.")


def by_name(name: str) -> Family:
    for family in FAMILIES:
        if family.name == name:
            return family
    raise StudioError(f"Unknown image model family '{name}'.")


def flow_sigmas(scheduler_config, u, image_seq_len: int):
    """Flow-matching noise levels from uniform ``u``, bent toward noise as the scheduler's shift says.

    A fixed ``shift`` s maps u to s*u / (1 + (s-1)*u) (SD3: 3.0); with dynamic shifting (Flux)
    the shift follows the image's token count: mu interpolates base_shift..max_shift over
    base_image_seq_len..max_image_seq_len and sigma = e^mu / (e^mu + 1/u - 1).
    """
    import math

    config = dict(scheduler_config)
    if config.get("use_dynamic_shifting"):
        base_len, max_len = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
        base_shift, max_shift = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
        slope = (max_shift - base_shift) / (max_len - base_len)
        mu = base_shift + slope * (image_seq_len - base_len)
        u = u.clamp(1e-5, 1.0)
        return math.exp(mu) / (math.exp(mu) + (1.0 / u - 1.0))
    shift = float(config.get("shift", 1.0))
    return shift * u / (1.0 + (shift - 1.0) * u)
