"""Train the embedded default text model from scratch: ``studio train-defaults text``.

Writes its own corpus from the grammar in ``corpus.py``, trains a byte-level BPE tokenizer
on it with ``tokenizers``, then a small Llama-architecture causal LM, and saves both with
``save_pretrained`` (safetensors) so any transformers code loads the folder.  Seeded: the
same seed gives the same weights on the same machine.  About 15-20 minutes on 2 shared CPU cores.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

# Every default of the embedded model in one place (the spec of assets/text).
VOCAB_SIZE = 1024  # BPE merges learned on the corpus; tiny corpus, tiny vocabulary
HIDDEN = 128  # model width
LAYERS = 4
HEADS = 4
MLP = 384  # feed-forward width
CONTEXT = 256  # tokens: a prompt plus the longest completion fit with room to spare
EXAMPLES = 30_000  # (prompt, completion) pairs written by the grammar
SEQ_LEN = 128  # packed training rows
BATCH = 16  # rows per step
STEPS = 1800
LR = 3e-3
WARMUP = 100
SPECIAL = ["<|pad|>", "<|end|>", "<|sep|>"]
CHAT_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}{{ message['content'] }}"
                 "{% endif %}{% endfor %}{% if add_generation_prompt %}<|sep|>{% endif %}")


def build_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    raw.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<|pad|>", eos_token="<|end|>",
                                        model_max_length=CONTEXT)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=MLP,
                         num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=HEADS,
                         max_position_embeddings=CONTEXT, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config)


def _log_to_stderr(message: str) -> None:  # stdout stays free for the CLI's --json
    print(message, file=sys.stderr, flush=True)


def train(out_dir: Path, device: str = "cpu", seed: int = 0, steps: int = STEPS,
          log=_log_to_stderr) -> dict:
    """Write the corpus, train tokenizer and model, save them in ``out_dir``; return figures."""
    import torch

    from .corpus import examples
    from .packing import packed_rows
    from .prompting import example_ids

    began = time.time()
    out_dir = Path(out_dir)
    pairs = examples(EXAMPLES, seed=seed)
    tokenizer = build_tokenizer([p for p, _ in pairs] + [c for _, c in pairs])
    model = build_model(tokenizer, seed).to(device)
    encoded = [example_ids(tokenizer, p, c) for p, c in pairs]
    inputs, labels, positions = packed_rows(encoded, SEQ_LEN, seed=seed)
    inputs, labels, positions = (torch.tensor(x) for x in (inputs, labels, positions))
    log(f"corpus: {len(pairs)} examples, {inputs.numel()} tokens in {len(inputs)} rows; "
        f"{sum(p.numel() for p in model.parameters())} parameters")

    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.95))
    generator = torch.Generator().manual_seed(seed)
    model.train()
    loss_value = float("nan")
    for step in range(steps):
        lr = LR * min(1.0, (step + 1) / WARMUP) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = torch.randint(0, len(inputs), (BATCH,), generator=generator)
        # GPT-style pre-training: an example may attend to the ones before it in its row (the cache
        # that the forward builds turns transformers' packed-example mask off).  The corpus does
        # not repeat, so there is nothing to copy; the LoRA tune, whose few examples do repeat,
        # masks them apart (tune.py).
        logits = model(input_ids=inputs[rows].to(device), position_ids=positions[rows].to(device)).logits
        target = labels[rows].to(device)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target[:, 1:].flatten(),
                                                 ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss_value = float(loss.detach())
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step + 1}/{steps} loss {loss_value:.4f} ({time.time() - began:.0f} s)")

    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    size = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    figures = {"steps": steps, "loss": round(loss_value, 4), "seconds": round(time.time() - began, 1),
               "parameters": sum(p.numel() for p in model.parameters()), "size_bytes": size,
               "examples": len(pairs), "seed": seed, "device": device}
    (out_dir / "training.json").write_text(json.dumps(figures, indent=1) + "\n")
    return figures


def main(argv=None) -> int:
    from ...paths import model_cache

    parser = argparse.ArgumentParser(prog="studio train-defaults text", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=model_cache("text-built-in"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    figures = train(args.out, device=args.device, seed=args.seed, steps=args.steps)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
