"""Image benchmark: prints one JSON object naming the device.

Side by side in one process:
- generation: n candidates in one batch vs one at a time (same seeds, same settings);
- tuning: the studio's cached tune step (latents and every prompt embedding computed once) vs a
  plain reference loop that reads, VAE-encodes and text-encodes its batch on every step, with
  each one's step time and peak GPU memory.
Each is reported as a ratio (reference / studio; > 1 means the studio is faster or smaller).
On a GPU the base runs in bf16 and the tune uses gradient checkpointing (the tune's default there).

    python benchmarks/bench_image.py                          # the embedded default, CPU
    python benchmarks/bench_image.py --device cuda --sd15     # SD-1.5-sized, random weights
    python benchmarks/bench_image.py --device cuda --sdxl -n 4 --batch-size 4   # SDXL-sized (2.6B UNet)
    python benchmarks/bench_image.py --device cuda --flux -n 4 --batch-size 1   # Flux.1-dev-sized (12B + T5-XXL)
    python benchmarks/bench_image.py --sdxl --tiny            # the same code path on tiny shapes (CPU)

``--sdxl`` and ``--flux`` build the models from config with random weights (no download);
``--tiny`` keeps each architecture but shrinks it, to check the path on a CPU.
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


def _clip_tokenizer(max_length: int = 77):
    from studio.media.image.scenes import vocabulary
    from studio.media.image.vocab import save_tokenizer

    tokenizer = save_tokenizer(vocabulary(), Path(tempfile.mkdtemp()) / "tok")
    tokenizer.model_max_length = max_length
    return tokenizer


def _clip(cls, tokenizer, hidden: int, layers: int, heads: int, ffn: int, projection: int):
    from transformers import CLIPTextConfig

    return cls(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=ffn,
                              num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
                              projection_dim=projection, hidden_act="gelu", bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))


def _sizes(**parts) -> dict:
    return {f"{name}_params_m": round(sum(p.numel() for p in module.parameters()) / 1e6, 1)
            for name, module in parts.items()}


def _built(pipe, name: str, device: str, dtype, native: int, parts: dict):
    from studio.media.image.model import ImageHandle

    pipe.set_progress_bar_config(disable=True)
    return ImageHandle(pipe=pipe, model=name, device=device, dtype=dtype, native_size=native), _sizes(**parts)


def _on(device: str, dtype):
    """Build modules straight onto the device in the target dtype (a 12B model never exists in fp32)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def scope():
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                yield
        finally:
            torch.set_default_dtype(previous)

    return scope()


def build_sdxl(device: str, tiny: bool):
    """SDXL-sized (UNet 2.6B, CLIP-L + OpenCLIP-bigG-sized encoders, 1024 px) or its tiny twin, random weights."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from studio.media.image.model import pick_dtype

    torch.manual_seed(0)
    dtype = pick_dtype(device)
    tokenizer = _clip_tokenizer()
    with _on(device, dtype):
        if tiny:
            unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=16,
                                        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                        use_linear_projection=True, addition_embed_type="text_time",
                                        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                                        projection_class_embeddings_input_dim=80, cross_attention_dim=64,
                                        norm_num_groups=8)
            vae = AutoencoderKL(block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                                up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8)
            te1 = _clip(CLIPTextModel, tokenizer, 32, 2, 4, 37, 32)
            te2 = _clip(CLIPTextModelWithProjection, tokenizer, 32, 2, 4, 37, 32)
        else:
            unet = UNet2DConditionModel(sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
                                        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                                        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                                        cross_attention_dim=2048, use_linear_projection=True,
                                        addition_embed_type="text_time", addition_time_embed_dim=256,
                                        projection_class_embeddings_input_dim=2816)
            vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                                sample_size=1024, scaling_factor=0.13025)
            te1 = _clip(CLIPTextModel, tokenizer, 768, 12, 12, 3072, 768)
            te2 = _clip(CLIPTextModelWithProjection, tokenizer, 1280, 32, 20, 5120, 1280)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    native = 32 if tiny else 1024
    return _built(pipe, f"sdxl-{'tiny' if tiny else 'sized'}-random", device, dtype, native,
                  {"unet": unet, "vae": vae, "text_encoder": te1, "text_encoder_2": te2})


def build_flux(device: str, tiny: bool):
    """Flux.1-dev-sized (transformer 12B with guidance embedding, CLIP-L, T5-XXL, 1024 px) or its tiny twin."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    from studio.media.image.model import pick_dtype
    from studio.media.image.scenes import vocabulary
    from studio.media.image.vocab import word_tokenizer

    torch.manual_seed(0)
    dtype = pick_dtype(device)
    tokenizer = _clip_tokenizer()
    t5_tokenizer = word_tokenizer(vocabulary(), 512)
    with _on(device, dtype):
        if tiny:
            transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=2,
                                                 attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                                 pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
                                                 guidance_embeds=True)
            vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                                up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
                                use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159,
                                scaling_factor=0.3611)
            clip = _clip(CLIPTextModel, tokenizer, 32, 2, 4, 37, 32)
            t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                         num_heads=4, pad_token_id=0, eos_token_id=1))
        else:  # the released dev model's shapes
            transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38,
                                                 attention_head_dim=128, num_attention_heads=24,
                                                 joint_attention_dim=4096, pooled_projection_dim=768,
                                                 guidance_embeds=True, axes_dims_rope=[16, 56, 56])
            vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16,
                                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                                use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159,
                                scaling_factor=0.3611, sample_size=1024)
            clip = _clip(CLIPTextModel, tokenizer, 768, 12, 12, 3072, 768)
            t5 = T5EncoderModel(T5Config(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                                         num_heads=64, feed_forward_proj="gated-gelu", pad_token_id=0,
                                         eos_token_id=1))
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    pipe = FluxPipeline(transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=clip, tokenizer=tokenizer,
                        text_encoder_2=t5, tokenizer_2=t5_tokenizer)
    native = 32 if tiny else 1024
    return _built(pipe, f"flux-dev-{'tiny' if tiny else 'sized'}-random", device, dtype, native,
                  {"transformer": transformer, "vae": vae, "text_encoder": clip, "text_encoder_2": t5})


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
    offloaded = list(task.offloaded)
    task.restore_encoders()  # the reference loop encodes on every step: its encoders stay on the device
    _peak_reset(handle.device)
    reference_s = run(reference)
    reference_peak = _peak_mib(handle.device)
    checkpointing = bool(getattr(task.denoiser, "is_gradient_checkpointing", False))
    task.release()
    out = {"family": task.family.name, "steps": steps, "batch_size": batch_size, "size": task.size,
           "gradient_checkpointing": checkpointing, "encoders_offloaded_while_training": offloaded,
           "cache_build_s": round(build, 3),
           "cached_step_s": round(cached_s, 4), "reference_step_s": round(reference_s, 4),
           "ratio": round(reference_s / cached_s, 2), "peak_mib": peak, "reference_peak_mib": reference_peak,
           "peak_ratio": round(reference_peak / peak, 2) if peak else None}
    if peak is not None:  # does the cached tune fit a 24 GB card (24 GiB less ~1 GiB for the CUDA context)?
        out["fits_24gb_card"] = peak < 23 * 1024
    return out


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sd15", action="store_true", help="an SD-1.5-sized model with random weights")
    parser.add_argument("--sdxl", action="store_true", help="an SDXL-sized model with random weights")
    parser.add_argument("--flux", action="store_true", help="a Flux.1-dev-sized model with random weights")
    parser.add_argument("--tiny", action="store_true", help="with --sdxl/--flux: the same architecture, tiny")
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
    else:
        report["note"] = "no GPU in this run: bf16, gradient checkpointing and peak memory are unmeasured"
    if args.sd15:
        handle, sizes = build_sd15(args.device)
        report.update(model="sd15-sized (random weights)", **sizes)
    elif args.sdxl or args.flux:
        handle, sizes = (build_sdxl if args.sdxl else build_flux)(args.device, args.tiny)
        report.update(model=f"{handle.model} (random weights)", **sizes)
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
