"""Music benchmark: prints one JSON object.

CPU (default): the embedded symbolic default, batched vs one-at-a-time generation of the same
seeds, measured side by side (alternating, median of ``--repeats``), plus the sampler alone.

    python benchmarks/bench_music.py [--n 8] [--bars 8] [--repeats 3] [--threads 0]

GPU: a MusicGen-small-sized model built from configs with random weights (T5-base text
encoder, 32 kHz EnCodec with 4 codebooks, 24-layer 1024-wide decoder): seconds per clip
generated, audio encoding of clips, and seconds per LoRA tune step through the medium's task.

    python benchmarks/bench_music.py --device cuda --musicgen-small-sized [--seconds 5]
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


def build_musicgen_small_sized(folder: Path) -> None:
    """MusicGen-small's shapes with random weights, and a word-level tokenizer for the prompts."""
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, PreTrainedTokenizerFast, T5Config)

    torch.manual_seed(0)
    text = T5Config(vocab_size=32128, d_model=768, d_ff=3072, d_kv=64, num_layers=12, num_heads=12)
    audio = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=64, hidden_size=128,
                          upsampling_ratios=[8, 5, 4, 4], codebook_size=2048, target_bandwidths=[2.2],
                          num_lstm_layers=2, normalize=False, chunk_length_s=None, use_causal_conv=False)
    decoder = MusicgenDecoderConfig(vocab_size=2048, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                    ffn_dim=4096, num_codebooks=4, max_position_embeddings=2048, pad_token_id=2048,
                                    bos_token_id=2048, decoder_start_token_id=2048)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=decoder.to_dict())
    model = MusicgenForConditionalGeneration(config)
    for key in ("decoder_start_token_id", "pad_token_id", "bos_token_id"):
        setattr(model.generation_config, key, 2048)
    model.save_pretrained(folder)
    words = ["<pad>", "</s>", "<unk>"] + "calm upbeat piano guitar drums music with a slow fast song".split()
    core = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)


def bench_musicgen(args) -> dict:
    import numpy as np
    import soundfile
    import torch

    from studio import training
    from studio.media import get
    from studio.medium import Candidate

    medium = get("music")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        began = time.perf_counter()
        build_musicgen_small_sized(tmp / "model")
        build_seconds = time.perf_counter() - began
        handle = medium.load(str(tmp / "model"), args.device)
        params = medium.validate_params({"duration": args.seconds, "top_k": 250})
        prompt = "calm piano music"
        medium.generate(handle, prompt, [0], medium.validate_params({"duration": 0.5}))  # warm-up
        _sync(args.device)
        began = time.perf_counter()
        gens = medium.generate(handle, prompt, list(range(args.clips)), params)
        _sync(args.device)
        gen_seconds = (time.perf_counter() - began) / args.clips
        clips = []
        for g in gens:
            path = tmp / f"{g.seed}.wav"
            path.write_bytes(g.files["wav"])
            signal, rate = soundfile.read(path)
            assert np.abs(signal).max() < 1.0
            clips.append(Candidate(id=str(g.seed), medium="music", prompt=prompt, seed=g.seed, params={},
                                   version="base", model="bench", path=str(path), files={"wav": str(path)},
                                   decision="auto_accepted"))
        settings = dict(medium.tune_defaults, steps=args.tune_steps, batch_size=args.clips, seed=0)
        began = time.perf_counter()
        task = medium.tune_task(handle, clips, settings, None)
        _sync(args.device)
        build_task_seconds = time.perf_counter() - began
        began = time.perf_counter()
        result = training.run_tune(task, dict(settings, checkpoint_every=10_000), tmp / "job")
        _sync(args.device)
        tune_seconds = time.perf_counter() - began
        trainable = sum(p.numel() for p in task.parameters())
    return {
        "mode": "musicgen-small-sized (random weights)", "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "decoder_parameters": sum(p.numel() for p in handle.model.decoder.parameters()),
        "build_seconds": round(build_seconds, 1), "clip_seconds": args.seconds, "clips": args.clips,
        "seconds_per_clip_generated": round(gen_seconds, 3),
        "realtime_factor": round(args.seconds / gen_seconds, 2),
        "tune_task_build_seconds(encode clips)": round(build_task_seconds, 3),
        "tune_steps": args.tune_steps, "tune_batch": args.clips,
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
    parser.add_argument("--musicgen-small-sized", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0, help="MusicGen clip length")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--tune-steps", type=int, default=20)
    args = parser.parse_args(argv)
    report = bench_musicgen(args) if args.musicgen_small_sized else bench_symbolic(args)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
