"""Text medium benchmark: prints one JSON object, with the device named and every speed as a
ratio to a reference measured in the same process.

Default (the embedded model, CPU): studio's batched sampler against the same seeds one at a time
and against transformers' ``generate``, and the LoRA tune (packed rows, chunked loss) against the
plain full-logits loss and against padded rows.

``--device cuda --qwen-sized``: a Qwen2-0.5B-sized model built from its config with random
weights (bf16), 16 candidates x 128 new tokens against transformers' ``generate`` (dynamic and
static compiled cache), and the tune (packed 8 x 1024, LoRA r=16 on all linear layers) against
the plain loss and a peft + transformers ``Trainer`` reference, with its MFU:

    MFU = tokens/s x (6 N + 6 L d S) / peak bf16 FLOP/s

N the model's parameters (a tied embedding counted once, as the head), L layers, d the hidden
size, S the row length (6 N is the usual training rule; 6 L d S the causal attention, forward and
backward, an upper bound for packed rows whose examples are shorter than S).  LoRA skips the
frozen weights' gradients, so the work done is nearer 4 N: the figure is the usual convention.

    python benchmarks/bench_text.py
    python benchmarks/bench_text.py --device cuda --qwen-sized
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "a short sea poem"
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0, "H200": 989.0, "A100": 312.0,
                    "L40S": 362.0, "A10G": 70.0}  # dense bf16, by device name (first match)


def _timed(fn):
    began = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - began


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {model}, {torch.get_num_threads()} threads"


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def _wait_for_compile(handle, rows: int, params) -> float | None:
    """On a GPU the first batch of a shape starts the background compile; wait for it (seconds), None on a CPU."""
    from studio.media.text import generate

    if generate.decoding(handle) != "static":
        return None
    width = len(generate.check_prompt(handle, PROMPT, params["max_new_tokens"])) + params["max_new_tokens"]
    bucket, length = generate.shape_bucket(rows, width, handle.context)
    began = time.perf_counter()
    while generate.compile_status(handle, None, 1.0, bucket, length) == "pending":
        time.sleep(0.5)
    return round(time.perf_counter() - began, 2)


def bench_generation(handle, seeds, params, rounds: int = 3) -> dict:
    """Studio's batched sampler vs the same seeds one at a time vs transformers' ``generate`` (sampling,
    the same rows and new tokens), alternated ``rounds`` times, the best time of each kept (on a shared
    machine other processes slow some rounds; the best is the least disturbed)."""
    import torch

    from studio.media.text.generate import sample
    from studio.media.text.model import base_model
    from studio.media.text.prompting import prompt_ids

    rows, new = len(seeds), params["max_new_tokens"]
    params = {**params, "min_new_tokens": new}  # every row writes the whole budget, as generate does below
    _sync(handle.device)
    _, first_s = _timed(lambda: (sample(handle, PROMPT, seeds, params), _sync(handle.device)))
    sample(handle, PROMPT, seeds, params)  # the second batch of a shape starts its compile (on a GPU)
    compile_wait = _wait_for_compile(handle, rows, params)
    sample(handle, PROMPT, seeds[:1], params)
    sample(handle, PROMPT, seeds[:1], params)
    _wait_for_compile(handle, 1, params)
    net = base_model(handle)
    ids = torch.tensor([prompt_ids(handle.tokenizer, PROMPT)], device=handle.device)

    def reference(cache: str | None):
        kwargs = {"cache_implementation": cache} if cache else {}
        with torch.inference_mode():
            return net.generate(ids, do_sample=True, temperature=params["temperature"], top_p=params["top_p"],
                                top_k=params["top_k"], repetition_penalty=params["repetition_penalty"],
                                max_new_tokens=new, min_new_tokens=new, num_return_sequences=rows,
                                pad_token_id=handle.tokenizer.pad_token_id, **kwargs)

    references = {"transformers_generate_dynamic_cache": None}
    if handle.device.startswith("cuda"):
        references["transformers_generate_static_cache_compiled"] = "static"
    for cache in references.values():
        reference(cache)  # warm-up (the static one compiles here)
    times: dict[str, list[float]] = {"studio_batched": [], "studio_one_at_a_time": [], **{k: [] for k in references}}
    produced = 0
    for _ in range(rounds):
        _sync(handle.device)
        (batched, produced), seconds = _timed(lambda: (sample(handle, PROMPT, seeds, params), _sync(handle.device))[0])
        times["studio_batched"].append(seconds)
        singles, seconds = _timed(lambda: ([sample(handle, PROMPT, [s], params)[0][0] for s in seeds],
                                           _sync(handle.device))[0])
        times["studio_one_at_a_time"].append(seconds)
        for name, cache in references.items():
            _, seconds = _timed(lambda: (reference(cache), _sync(handle.device)))
            times[name].append(seconds)
    best = {k: min(v) for k, v in times.items()}
    out = {"candidates": rows, "new_tokens_each": new, "new_tokens": produced,
           "studio_first_batch_s": round(first_s, 3), "studio_compile_wait_s": compile_wait,
           "tokens_per_s": {k: round(rows * new / v, 1) for k, v in best.items()},
           "same_texts_alone_or_batched": batched == singles}
    out["studio_batched_vs"] = {k: round(v / best["studio_batched"], 2) for k, v in best.items()
                                if k != "studio_batched"}
    return out


def tune_throughput(handle, pairs, settings, steps: int, accelerator=None, loss: str = "chunked") -> dict:
    """Tokens per second through the model over ``steps`` shared-trainer steps after 2 warm-up steps;
    ``loss`` 'plain' is the reference: the full float32 logits of every position."""
    import torch

    from studio.media.text.tune import TextTuneTask
    from studio.training import run_tune

    task = TextTuneTask(handle, pairs, settings)
    if loss == "plain":
        task.split = None
    with tempfile.TemporaryDirectory() as job:
        run_tune(task, {**settings, "steps": 2}, Path(job) / "warm", accelerator=accelerator)
        task.tokens_seen = 0
        if handle.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        _sync(handle.device)
        result, seconds = _timed(lambda: run_tune(task, {**settings, "steps": steps}, Path(job) / "run",
                                                  accelerator=accelerator))
        _sync(handle.device)
    out = {"tokens_per_s": round(task.tokens_seen / seconds, 1), "seconds": round(seconds, 3),
           "tokens": task.tokens_seen, "final_loss": round(result["loss"], 4)}
    if handle.device.startswith("cuda"):
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    handle.model.requires_grad_(False)
    return out


def compare_tunes(handle, pairs, settings, steps: int, rounds: int, accelerator=None) -> dict:
    """Packed rows with the chunked loss (studio) vs the plain loss and vs padded rows, alternated."""
    variants = {"studio_packed_chunked_loss": ({"packing": "packed"}, "chunked"),
                "packed_plain_loss": ({"packing": "packed"}, "plain"),
                "padded_chunked_loss": ({"packing": "padded"}, "chunked")}
    if handle.device.startswith("cuda"):  # last: compiling the layers changes the model for what follows
        variants["studio_packed_chunked_loss_compiled_layers"] = ({"packing": "packed", "compile": "layers"}, "chunked")
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, (extra, loss) in variants.items():
            runs[name].append(tune_throughput(handle, pairs, {**settings, **extra}, steps, accelerator, loss))
    best = {k: max(v, key=lambda r: r["tokens_per_s"]) for k, v in runs.items()}
    studio = best["studio_packed_chunked_loss"]["tokens_per_s"]
    return {"steps": steps, "batch_size": settings["batch_size"], "seq_len": settings["seq_len"], "runs": best,
            "studio_vs": {k: round(studio / v["tokens_per_s"], 2) for k, v in best.items()
                          if k != "studio_packed_chunked_loss"}}


def bench_default(device: str, steps: int) -> dict:
    from studio.media import get
    from studio.media.text.generate import sample

    medium = get("text")
    handle = medium.load(medium.default_model(), device)
    params = medium.validate_params({"max_new_tokens": 60})
    generation = bench_generation(handle, list(range(8)), params)
    texts, _ = sample(handle, PROMPT, list(range(32)), params)
    pairs = [(PROMPT, t) for t in texts]
    settings = {**medium.tune_defaults, "seq_len": 128, "seed": 0, "checkpoint_every": 10_000}
    return {"mode": "default", "model": medium.default_model(), "generation": generation,
            "tune": compare_tunes(handle, pairs, settings, steps, rounds=3)}


def qwen_sized_config():
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       rope_theta=1_000_000.0, tie_word_embeddings=True)


def reference_trainer(folder: str, pairs, tokenizer, batch_size: int, steps: int, lr: float) -> dict:
    """Plain peft + transformers Trainer: one example per row, padded to the longest in its batch."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from studio.media.text.prompting import example_ids

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="sdpa",
                                                 use_safetensors=True).to("cuda")
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    rows = []
    for prompt, completion in pairs:
        ids, mask = example_ids(tokenizer, prompt, completion)
        rows.append({"input_ids": ids, "labels": [t if keep else -100 for t, keep in zip(ids, mask)]})

    def collate(batch):
        width = max(len(r["input_ids"]) for r in batch)
        pad = tokenizer.pad_token_id
        return {"input_ids": torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in batch]),
                "labels": torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in batch]),
                "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"]))
                                                for r in batch])}

    class Clock(TrainerCallback):  # time the steps after 2 warm-up steps, and count real tokens
        began = None
        tokens = 0

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                Clock.began = time.perf_counter()

    real_per_step = batch_size * sum(len(r["input_ids"]) for r in rows) / len(rows)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, max_steps=steps + 2, per_device_train_batch_size=batch_size,
                                 learning_rate=lr, bf16=True, logging_steps=10_000, save_strategy="no",
                                 report_to=[], dataloader_num_workers=0, remove_unused_columns=False,
                                 lr_scheduler_type="cosine", warmup_steps=1)
        Trainer(model=model, args=args, train_dataset=rows, data_collator=collate, callbacks=[Clock()]).train()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - Clock.began
    result = {"tokens_per_s": round(real_per_step * steps / seconds, 1), "seconds": round(seconds, 3),
              "batch_size": batch_size, "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    del model
    torch.cuda.empty_cache()
    return result


def mfu(tokens_per_s: float, parameters: int, config, seq_len: int, peak: float | None) -> dict:
    flops_per_token = 6 * parameters + 6 * config.num_hidden_layers * config.hidden_size * seq_len
    out = {"formula": "tokens/s x (6 N + 6 L d S) / peak", "N": parameters, "L": config.num_hidden_layers,
           "d": config.hidden_size, "S": seq_len, "flops_per_token": flops_per_token,
           "achieved_tflops": round(tokens_per_s * flops_per_token / 1e12, 1), "peak_bf16_tflops": peak}
    out["mfu"] = round(tokens_per_s * flops_per_token / (peak * 1e12), 4) if peak else None
    return out


def bench_qwen(device: str, steps: int) -> dict:
    import torch
    from accelerate import Accelerator
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    from studio.media import get
    from studio.media.text.corpus import examples
    from studio.media.text.prompting import example_ids

    medium = get("text")
    tokenizer = AutoTokenizer.from_pretrained(medium.default_model())  # any tokenizer: the weights are random
    torch.manual_seed(0)
    config = qwen_sized_config()
    with tempfile.TemporaryDirectory() as folder:
        with torch.device(device):
            model = Qwen2ForCausalLM(config).to(torch.bfloat16)
        parameters = sum(p.numel() for p in model.parameters())  # the tied embedding once
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        del model
        torch.cuda.empty_cache()

        handle = medium.load(folder, device)
        params = medium.validate_params({"max_new_tokens": 128, "repetition_penalty": 1.0})
        torch.cuda.reset_peak_memory_stats()
        generation = bench_generation(handle, list(range(16)), params, rounds=2)
        generation["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)

        pairs = examples(4000, seed=0)
        mean_len = sum(len(example_ids(tokenizer, p, c)[0]) for p, c in pairs) / len(pairs)
        settings = {**medium.tune_defaults, "seq_len": 1024, "batch_size": 8, "rank": 16, "lr": 2e-4, "seed": 0,
                    "checkpoint_every": 10_000}
        tune = compare_tunes(handle, pairs, settings, steps, rounds=1, accelerator=Accelerator(mixed_precision="bf16"))
        studio = tune["runs"]["studio_packed_chunked_loss"]["tokens_per_s"]
        equal_tokens_batch = max(1, round(settings["batch_size"] * settings["seq_len"] / mean_len))
        reference = reference_trainer(folder, pairs, tokenizer, equal_tokens_batch, steps, settings["lr"])
        tune["runs"]["reference_peft_trainer_padded_equal_tokens"] = reference
        tune["studio_vs"]["reference_peft_trainer_padded_equal_tokens"] = round(studio / reference["tokens_per_s"], 2)
        tune["mean_example_tokens"] = round(mean_len, 1)
        tune["mfu"] = mfu(studio, parameters, config, settings["seq_len"], peak_tflops(device_name(device)))
    return {"mode": "qwen-sized", "parameters": parameters, "generation": generation, "tune": tune}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the text medium; prints one JSON object.")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--qwen-sized", action="store_true",
                        help="a Qwen2-0.5B-sized model from config with random weights (needs --device cuda)")
    parser.add_argument("--steps", type=int, default=None, help="timed tune steps (default 10 on CPU, 20 on GPU)")
    args = parser.parse_args(argv)
    if args.qwen_sized and args.device != "cuda":
        parser.error("--qwen-sized needs --device cuda")
    if args.steps is None:
        args.steps = 20 if args.qwen_sized else 10
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    result = {"device": device_name(args.device)}
    result.update(bench_qwen(args.device, args.steps) if args.qwen_sized else bench_default(args.device, args.steps))
    result.update(python=platform.python_version(), torch=torch.__version__, threads=torch.get_num_threads())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
