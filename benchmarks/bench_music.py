"""Music benchmark: prints one JSON object naming the device.

CPU (default): the embedded symbolic default, batched vs one-at-a-time generation of the same
seeds, measured side by side (alternating, median of ``--repeats``), plus the sampler alone.

    python benchmarks/bench_music.py [--n 8] [--bars 8] [--repeats 3] [--threads 0]

MusicGen: a model built from configs with random weights, ``--musicgen-tiny`` (runs anywhere)
or ``--musicgen-small-sized`` (T5-base text encoder, 32 kHz EnCodec with 4 codebooks,
24-layer 1024-wide decoder; for a GPU): clips per second for ``--clips`` clips of
``--seconds`` s, all seeds in one ``generate`` vs one at a time (alternating, best of
``--repeats``), whether each seed gave the same clip both ways, and seconds per LoRA tune step.

    python benchmarks/bench_music.py --musicgen-tiny --clips 8 --seconds 5
    python benchmarks/bench_music.py --device cuda --musicgen-small-sized --clips 8 --seconds 5
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def bench_symbolic(args) -> dict:
    import torch

    from studio.media import get
    from studio.media.music import generate as gen_module

    if args.threads:
        torch.set_num_threads(args.threads)
    medium = get("music")
    handle = medium.load(args.model or medium.default_model(), args.device)
    params = medium.validate_params({"bars": args.bars})
    prompt = args.prompt
    seeds = list(range(args.n))
    medium.generate(handle, prompt, seeds[:2], params)  # warm-up
    batched, single, sampler_batched, sampler_single = [], [], [], []
    for _ in range(args.repeats):
        began = time.perf_counter()
        a = medium.generate(handle, prompt, seeds, params)
        batched.append(time.perf_counter() - began)
        began = time.perf_counter()
        b = [medium.generate(handle, prompt, [s], params)[0] for s in seeds]
        single.append(time.perf_counter() - began)
        began = time.perf_counter()
        gen_module.sample_tokens(handle, prompt, seeds, args.bars)
        sampler_batched.append(time.perf_counter() - began)
        began = time.perf_counter()
        for s in seeds:
            gen_module.sample_tokens(handle, prompt, [s], args.bars)
        sampler_single.append(time.perf_counter() - began)
    same = sum(x.files["mid"] == y.files["mid"] for x, y in zip(a, b))
    med = statistics.median
    return {
        "mode": "symbolic", "device": args.device, "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(), "n": args.n, "bars": args.bars, "repeats": args.repeats,
        "batched_seconds": round(med(batched), 3), "one_at_a_time_seconds": round(med(single), 3),
        "ratio_one_at_a_time_over_batched": round(med(single) / med(batched), 2),
        "sampler_batched_seconds": round(med(sampler_batched), 3),
        "sampler_one_at_a_time_seconds": round(med(sampler_single), 3),
        "sampler_ratio": round(med(sampler_single) / med(sampler_batched), 2),
        "identical_candidates": f"{same}/{args.n}",
    }


def build_musicgen(folder: Path, size: str) -> None:
    """MusicGen-small's shapes (``small``) or a tiny model (``tiny``) with random weights, and a
    word-level tokenizer for the prompts."""
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, PreTrainedTokenizerFast, T5Config)

    torch.manual_seed(0)
    words = ["<pad>", "</s>", "<unk>"] + "calm upbeat piano guitar drums music with a slow fast song".split()
    if size == "small":
        text = T5Config(vocab_size=32128, d_model=768, d_ff=3072, d_kv=64, num_layers=12, num_heads=12)
        audio = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=64, hidden_size=128,
                              upsampling_ratios=[8, 5, 4, 4], codebook_size=2048, target_bandwidths=[2.2],
                              num_lstm_layers=2, normalize=False, chunk_length_s=None, use_causal_conv=False)
        decoder = MusicgenDecoderConfig(vocab_size=2048, hidden_size=1024, num_hidden_layers=24,
                                        num_attention_heads=16, ffn_dim=4096, num_codebooks=4,
                                        max_position_embeddings=2048, pad_token_id=2048, bos_token_id=2048,
                                        decoder_start_token_id=2048)
    else:  # 8 kHz EnCodec at 25 frames a second, a 2-layer 64-wide decoder over 4 codebooks
        text = T5Config(vocab_size=len(words), d_model=32, d_ff=64, d_kv=8, num_layers=1, num_heads=4,
                        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
        audio = EncodecConfig(sampling_rate=8000, hidden_size=16, num_filters=4, codebook_size=256, codebook_dim=16,
                              compress=1, num_residual_layers=1, num_lstm_layers=1, upsampling_ratios=[8, 5, 4, 2],
                              target_bandwidths=[0.8], audio_channels=1, normalize=False, chunk_length_s=None)
        decoder = MusicgenDecoderConfig(vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                        ffn_dim=128, num_codebooks=4, max_position_embeddings=512, pad_token_id=256,
                                        bos_token_id=256, decoder_start_token_id=256, tie_word_embeddings=False)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=decoder.to_dict())
    model = MusicgenForConditionalGeneration(config)
    with torch.no_grad():  # random codebooks, so that each code sounds different
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    for key in ("decoder_start_token_id", "pad_token_id", "bos_token_id"):
        setattr(model.generation_config, key, decoder.pad_token_id)
    model.save_pretrained(folder)
    core = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)


def bench_musicgen(args, size: str) -> dict:
    import io

    import numpy as np
    import soundfile
    import torch

    from studio import training
    from studio.media import get
    from studio.medium import Candidate

    if args.threads:
        torch.set_num_threads(args.threads)
    medium = get("music")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        began = time.perf_counter()
        build_musicgen(tmp / "model", size)
        build_seconds = time.perf_counter() - began
        handle = medium.load(str(tmp / "model"), args.device)
        params = medium.validate_params({"duration": args.seconds, "top_k": 250})
        prompt = "calm piano music"
        seeds = list(range(args.clips))
        medium.generate(handle, prompt, seeds[:2], medium.validate_params({"duration": 0.5}))  # warm-up
        batched_s, single_s = [], []
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        for _ in range(args.repeats):  # alternate, keep the best of each (a shared machine is noisy)
            _sync(args.device)
            began = time.perf_counter()
            gens = medium.generate(handle, prompt, seeds, params)
            _sync(args.device)
            batched_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            alone = [medium.generate(handle, prompt, [s], params)[0] for s in seeds]
            _sync(args.device)
            single_s.append(time.perf_counter() - began)
        generation_peak = (round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
                           if args.device.startswith("cuda") else None)

        def samples(g):
            return soundfile.read(io.BytesIO(g.files["wav"]))[0]

        same = sum(float(np.abs(samples(a) - samples(b)).max()) <= 2 / 32768 for a, b in zip(gens, alone))
        clips = []
        for g in gens:
            path = tmp / f"{g.seed}.wav"
            path.write_bytes(g.files["wav"])
            clips.append(Candidate(id=str(g.seed), medium="music", prompt=prompt, seed=g.seed, params={},
                                   version="base", model="bench", path=str(path), files={"wav": str(path)},
                                   decision="auto_accepted"))
        settings = dict(medium.tune_defaults, steps=args.tune_steps, batch_size=min(args.clips, 4), seed=0)
        began = time.perf_counter()
        task = medium.tune_task(handle, clips, settings, None)
        _sync(args.device)
        build_task_seconds = time.perf_counter() - began
        began = time.perf_counter()
        result = training.run_tune(task, dict(settings, checkpoint_every=10_000), tmp / "job")
        _sync(args.device)
        tune_seconds = time.perf_counter() - began
        trainable = sum(p.numel() for p in task.parameters())
    batched, single = min(batched_s), min(single_s)
    return {
        "mode": f"musicgen-{size}{'-sized' if size == 'small' else ''} (random weights)", "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
        "decoder_parameters": sum(p.numel() for p in handle.model.decoder.parameters()),
        "build_seconds": round(build_seconds, 1), "clip_seconds": args.seconds, "clips": args.clips,
        "repeats": args.repeats,
        "batched": {"seconds": round(batched, 3), "clips_per_second": round(args.clips / batched, 3)},
        "one_at_a_time": {"seconds": round(single, 3), "clips_per_second": round(args.clips / single, 3)},
        "ratio_batched_over_one_at_a_time": round(single / batched, 2),
        "realtime_factor_batched": round(args.seconds * args.clips / batched, 2),
        "same_clip_alone_and_in_batch": f"{same}/{args.clips}",
        "generation_peak_gpu_memory_gib": generation_peak,
        "tune_task_build_seconds(encode clips)": round(build_task_seconds, 3),
        "tune_steps": args.tune_steps, "tune_batch": settings["batch_size"],
        "seconds_per_tune_step": round(tune_seconds / args.tune_steps, 4),
        "lora_trainable_parameters": trainable, "final_loss": round(result["loss"], 4),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
        if args.device.startswith("cuda") else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="a symbolic music model folder (default: the embedded one)")
    parser.add_argument("--prompt", default="a cheerful waltz in G major")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--musicgen-small-sized", action="store_true", help="MusicGen-small's shapes (a GPU)")
    parser.add_argument("--musicgen-tiny", action="store_true", help="a tiny MusicGen (runs on a CPU)")
    parser.add_argument("--seconds", type=float, default=5.0, help="MusicGen clip length")
    parser.add_argument("--clips", type=int, default=8, help="MusicGen clips per call")
    parser.add_argument("--tune-steps", type=int, default=20)
    args = parser.parse_args(argv)
    if args.musicgen_small_sized or args.musicgen_tiny:
        report = bench_musicgen(args, "small" if args.musicgen_small_sized else "tiny")
    else:
        report = bench_symbolic(args)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
