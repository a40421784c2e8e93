"""Train the embedded default image model from scratch: ``studio train-defaults image``.

A small latent diffusion pipeline of the Stable Diffusion family, made only of diffusers'
and transformers' own classes, trained on pictures this script draws itself
(``scenes.py``).  Two stages:

1. the VAE (AutoencoderKL, 64x64 pixels <-> 4x16x16 latents), on 32x32 crops: it is fully
   convolutional, so crops teach it the same thing for a quarter of the work;
2. the UNet and the CLIP text encoder together, on latents encoded once and cached,
   v-prediction on a cosine schedule (near-zero terminal SNR, so the model can choose a
   background colour instead of inheriting the noise's mean).

The result is saved with ``StableDiffusionPipeline.save_pretrained`` (safetensors), so it
loads through exactly the code path of any diffusers pipeline folder.

    python -m studio.media.image.defaults --out assets/image [--device cuda] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

# The whole recipe, stated once.  The same numbers run on a CPU and on a GPU.
RECIPE = {
    "images": 12000,          # pictures drawn for the UNet stage (each seen ~13 times)
    "vae_steps": 1200,        # VAE optimiser steps
    "vae_batch": 32,          # VAE batch (32x32 crops)
    "vae_crop": 32,           # crop size for the VAE stage, pixels
    "vae_lr": 1e-3,
    "vae_kl": 1e-6,           # KL weight: small, the latents only need to be smooth
    "unet_steps": 5000,       # UNet + text encoder optimiser steps
    "unet_batch": 32,
    "unet_lr": 6e-4,
    "warmup": 200,            # linear warm-up steps for both stages
}

UNET_CONFIG = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(32, 64, 128), norm_num_groups=16, cross_attention_dim=64, attention_head_dim=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
)
VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, sample_size=64,
    block_out_channels=(16, 32, 64), norm_num_groups=8, mid_block_add_attention=False,
    down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
)
TEXT_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   projection_dim=64, hidden_act="quick_gelu")
SCHEDULE = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")


def draw_dataset(n: int, seed: int):
    """``n`` pictures as a uint8 tensor (n, 3, 64, 64) and their captions."""
    import numpy as np
    import torch

    from .scenes import draw

    rng = random.Random(seed)
    pixels = np.empty((n, 64, 64, 3), dtype=np.uint8)
    captions = []
    for i in range(n):
        image, caption = draw(rng)
        pixels[i] = np.asarray(image)
        captions.append(caption)
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), captions


def _to_unit(pixels):
    return pixels.float() / 127.5 - 1.0


def _lr_lambda(warmup: int, total: int):
    import math

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return factor


def train_vae(vae, pixels, device: str, seed: int, log) -> float:
    import torch

    r = RECIPE
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=r["vae_lr"], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(r["warmup"], r["vae_steps"]))
    vae.train()
    crop, loss_value = r["vae_crop"], float("nan")
    for step in range(r["vae_steps"]):
        idx = torch.randint(0, len(pixels), (r["vae_batch"],), generator=gen)
        ox, oy = torch.randint(0, 64 - crop + 1, (2,), generator=gen).tolist()
        x = _to_unit(pixels[idx][:, :, oy:oy + crop, ox:ox + crop]).to(device)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=None)).sample
        loss = (recon - x).pow(2).mean() + 0.5 * (recon - x).abs().mean() + r["vae_kl"] * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = float(loss.detach())
        if step % 100 == 0 or step == r["vae_steps"] - 1:
            log(stage="vae", step=step, loss=round(loss_value, 5))
    vae.eval()
    return loss_value


def encode_latents(vae, pixels, device: str, batch: int = 256):
    """Latent means of every picture (the UNet stage trains on these, encoded once)."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(pixels), batch):
            x = _to_unit(pixels[i:i + batch]).to(device)
            out.append(vae.encode(x).latent_dist.mean.float().cpu())
    return torch.cat(out)


def train_unet(unet, text_encoder, latents, token_ids, noise_scheduler, device: str, seed: int, log) -> float:
    import torch
    import torch.nn.functional as F

    r = RECIPE
    gen = torch.Generator().manual_seed(seed + 1)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=r["unet_lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(r["warmup"], r["unet_steps"]))
    unet.train()
    text_encoder.train()
    loss_value = float("nan")
    for step in range(r["unet_steps"]):
        idx = torch.randint(0, len(latents), (r["unet_batch"],), generator=gen)
        x0 = latents[idx].to(device)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(idx),), generator=gen).to(device)
        noisy = noise_scheduler.add_noise(x0, noise, t)
        target = noise_scheduler.get_velocity(x0, noise, t)
        states = text_encoder(token_ids[idx].to(device))[0]
        pred = unet(noisy, t, states).sample
        loss = F.mse_loss(pred.float(), target.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        loss_value = float(loss.detach())
        if step % 250 == 0 or step == r["unet_steps"] - 1:
            log(stage="unet", step=step, loss=round(loss_value, 5))
    unet.eval()
    text_encoder.eval()
    return loss_value


def train(out_dir: Path, device: str = "cpu", seed: int = 0) -> dict:
    """Draw the pictures, train VAE then UNet + text encoder, save the pipeline to ``out_dir``.

    Returns a summary: seconds per stage, final losses, the latent scaling factor, MiB written.
    """
    import torch
    from diffusers import (AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler,
                           StableDiffusionPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    from .scenes import vocabulary
    from .vocab import MAX_LENGTH, save_tokenizer

    out_dir = Path(out_dir)
    began = time.time()
    torch.manual_seed(seed)

    def log(**fields):
        fields["seconds"] = round(time.time() - began, 1)
        print(json.dumps(fields), flush=True)

    staging = out_dir.with_name(f".{out_dir.name}.training")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = save_tokenizer(vocabulary(), staging / "tokenizer-src")
    pixels, captions = draw_dataset(RECIPE["images"], seed)
    token_ids = tokenizer(captions, padding="max_length", max_length=MAX_LENGTH, truncation=True,
                          return_tensors="pt").input_ids
    log(stage="data", images=len(pixels), vocabulary=len(tokenizer))

    vae = AutoencoderKL(**VAE_CONFIG).to(device)
    vae_loss = train_vae(vae, pixels, device, seed, log)
    vae_seconds = time.time() - began
    latents = encode_latents(vae, pixels, device)
    scaling = float(1.0 / latents.std())
    shift = float(latents.mean())
    vae.register_to_config(scaling_factor=scaling)
    latents = latents * scaling  # SD convention: no shift, unit-variance latents
    log(stage="latents", scaling_factor=round(scaling, 4), mean=round(shift * scaling, 4))

    text_config = CLIPTextConfig(vocab_size=len(tokenizer), max_position_embeddings=MAX_LENGTH,
                                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id, **TEXT_CONFIG)
    text_encoder = CLIPTextModel(text_config).to(device)
    unet = UNet2DConditionModel(**UNET_CONFIG).to(device)
    noise_scheduler = DDPMScheduler(**SCHEDULE)
    unet_loss = train_unet(unet, text_encoder, latents, token_ids, noise_scheduler, device, seed, log)

    scheduler = DPMSolverMultistepScheduler(**SCHEDULE, timestep_spacing="trailing", steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae.cpu(), text_encoder=text_encoder.cpu(), tokenizer=tokenizer,
                                   unet=unet.cpu(), scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    final = staging / "pipeline"
    pipe.save_pretrained(final, safe_serialization=True)
    (final / "TRAINING.json").write_text(json.dumps({"recipe": RECIPE, "seed": seed, "device": device},
                                                    indent=1), encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    final.rename(out_dir)
    shutil.rmtree(staging, ignore_errors=True)
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    summary = {"out": str(out_dir), "device": device, "seed": seed, "vae_loss": vae_loss, "unet_loss": unet_loss,
               "vae_seconds": round(vae_seconds, 1), "seconds": round(time.time() - began, 1),
               "scaling_factor": scaling, "mib": round(size / 2**20, 2)}
    log(stage="done", **summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    from studio.paths import model_cache

    parser = argparse.ArgumentParser(description="Train the embedded default image model from scratch.")
    parser.add_argument("--out", type=Path, default=model_cache("image-built-in"), help="folder to write (replaced)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train(args.out, device=args.device, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
