"""Image benchmark: prints one JSON object.

Side by side in one process:
- generation: n candidates in one batch vs one at a time (same seeds, same settings);
- tuning: the studio's cached tune step (latents and prompt embeddings computed once) vs a
  plain reference loop that reads, VAE-encodes and text-encodes its batch on every step.
Each is reported as a ratio (reference time / studio time; > 1 means the studio is faster).

    python benchmarks/bench_image.py                      # the embedded default, CPU
    python benchmarks/bench_image.py --device cuda --sd15  # SD-1.5-sized UNet/VAE/text encoder, random weights
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: str):
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.startswith("cuda") else None


def build_sd15(device: str):
    """An SD-1.5-sized pipeline (UNet 860M, VAE 84M, CLIP-L-sized text encoder) with random weights."""
    import torch
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from studio.media.image.model import ImageHandle, pick_dtype
    from studio.media.image.scenes import vocabulary
    from studio.media.image.vocab import save_tokenizer

    torch.manual_seed(0)
    dtype = pick_dtype(device)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8,
                                block_out_channels=(320, 640, 1280, 1280), layers_per_block=2)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512, scaling_factor=0.18215)
    tokenizer = save_tokenizer(vocabulary(), Path(tempfile.mkdtemp()) / "tok")
    tokenizer.model_max_length = 77
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    scheduler = DPMSolverMultistepScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                            steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False).to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    if device.startswith("cuda"):
        from diffusers.models.attention_processor import AttnProcessor2_0

        unet.set_attn_processor(AttnProcessor2_0())
    sizes = {"unet_params_m": round(sum(p.numel() for p in unet.parameters()) / 1e6, 1),
             "vae_params_m": round(sum(p.numel() for p in vae.parameters()) / 1e6, 1),
             "text_encoder_params_m": round(sum(p.numel() for p in text_encoder.parameters()) / 1e6, 1)}
    return ImageHandle(pipe=pipe, model="sd15-sized-random", device=device, dtype=dtype, native_size=512), sizes


def to_candidates(gens, prompt: str, folder: Path):
    from studio.medium import Candidate

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for g in gens:
        path = folder / f"{g.seed}.png"
        path.write_bytes(g.files["png"])
        out.append(Candidate(id=str(g.seed), medium="image", prompt=prompt, seed=g.seed, params={},
                             version="base", model="bench", path=str(path), files={"png": str(path)}))
    return out


def bench_generation(medium, handle, prompt: str, n: int, steps: int, size: int) -> dict:
    params = {"steps": steps, "batch_size": n, "width": size, "height": size}
    medium.generate(handle, prompt, [0], {**params, "batch_size": 1})  # warm-up
    _peak_reset(handle.device)
    _sync(handle.device)
    began = time.perf_counter()
    gens = medium.generate(handle, prompt, list(range(n)), params)
    _sync(handle.device)
    batched = time.perf_counter() - began
    peak = _peak_mib(handle.device)
    began = time.perf_counter()
    medium.generate(handle, prompt, list(range(n)), {**params, "batch_size": 1})
    _sync(handle.device)
    single = time.perf_counter() - began
    return {"n": n, "steps": steps, "batched_s": round(batched, 3), "one_at_a_time_s": round(single, 3),
            "ratio": round(single / batched, 2), "peak_mib": peak}, gens


def reference_step(task, pipe, curated, batch_idx, generator):
    """A plain loop's step: read the pictures, VAE-encode them and encode the prompts every time."""
    import torch
    import torch.nn.functional as F

    from studio.media.image.tune import _load_pictures

    chosen = [curated[i] for i in batch_idx.tolist()]
    with torch.no_grad():
        size = task.latents.shape[-1] * pipe.vae_scale_factor
        x = _load_pictures(chosen, size, size).to(task.device, pipe.vae.dtype)
        shift = getattr(pipe.vae.config, "shift_factor", None) or 0.0
        x0 = (pipe.vae.encode(x).latent_dist.mean.float() - shift) * pipe.vae.config.scaling_factor
        rows, shared = task.family.encode(pipe, [c.prompt for c in chosen], task.device, task.size)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    noisy, timesteps, target = task._noised(x0, noise, generator)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=task.device.startswith("cuda")):
        pred = task.family.predict(pipe, noisy, timesteps, {**rows, **shared})
    return F.mse_loss(pred.float(), target.float())


def bench_tune(medium, handle, curated, steps: int, batch_size: int, size: int) -> dict:
    import torch

    settings = {**medium.tune_defaults, "batch_size": batch_size, "size": size}
    began = time.perf_counter()
    task = medium.tune_task(handle, curated, settings, None)
    _sync(handle.device)
    build = time.perf_counter() - began
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-4)

    def run(step_fn) -> float:
        _sync(handle.device)
        began = time.perf_counter()
        for step in range(steps):
            loss = step_fn(step, torch.Generator().manual_seed(step))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _sync(handle.device)
        return (time.perf_counter() - began) / steps

    def cached(step, generator):
        return task.loss(step, generator)

    def reference(step, generator):
        idx = torch.randint(0, len(curated), (batch_size,), generator=generator)
        return reference_step(task, handle.pipe, curated, idx, generator)

    run(cached)  # warm-up both paths once
    _peak_reset(handle.device)
    cached_s = run(cached)
    peak = _peak_mib(handle.device)
    reference_s = run(reference)
    task.release()
    return {"steps": steps, "batch_size": batch_size, "cache_build_s": round(build, 3),
            "cached_step_s": round(cached_s, 4), "reference_step_s": round(reference_s, 4),
            "ratio": round(reference_s / cached_s, 2), "peak_mib": peak}


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sd15", action="store_true", help="an SD-1.5-sized model with random weights")
    parser.add_argument("-n", type=int, default=8, help="candidates per generation")
    parser.add_argument("--steps", type=int, default=12, help="denoising steps")
    parser.add_argument("--tune-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8, help="tune batch")
    parser.add_argument("--size", type=int, default=0, help="pixels (0 = the model's native size)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from studio.media.image import ImageMedium

    medium = ImageMedium()
    report = {"device": args.device, "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
              "machine": platform.machine()}
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name()
    if args.sd15:
        handle, sizes = build_sd15(args.device)
        report.update(model="sd15-sized (random weights)", **sizes)
    else:
        handle = medium.load(medium.default_model(), args.device)
        report["model"] = "embedded default"
    report["dtype"] = str(handle.dtype).replace("torch.", "")
    report["size"] = args.size or handle.native_size
    prompt = "a red circle on a blue background"
    report["generation"], gens = bench_generation(medium, handle, prompt, args.n, args.steps, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        curated = to_candidates(gens, prompt, Path(tmp))
        report["tune"] = bench_tune(medium, handle, curated, args.tune_steps, args.batch_size,
                                    args.size)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
