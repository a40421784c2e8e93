"""Train the embedded symbolic default from scratch: ``studio train-defaults music``.

A small GPT-2 over the event vocabulary (``vocab.py``), trained on melodies composed from
rules (``compose.py``).  Everything is seeded, so the same seed gives the same weights on the
same machine.  Output (``save_pretrained`` layout, safetensors):

    config.json  generation_config.json  model.safetensors
    tokenizer.json  tokenizer_config.json  special_tokens_map.json   (WordLevel over events)
    studio_music.json   kind, max_bars, training figures

    python -m studio.media.music.defaults --out assets/music
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

# every default of the recipe, stated once (about 10 minutes on two CPU cores)
PIECES = 6000  # composed melodies (a fifth of them 16 bars, the rest 8)
N_EMBD = 128  # width of the transformer
N_LAYER = 4
N_HEAD = 4
N_POSITIONS = 320  # a 16-bar reel is about 300 tokens
MAX_BARS = 16  # the longest piece it was trained on; longer requests are refused
STEPS = 1500
BATCH = 16
LR = 3e-3
WARMUP = 100


def build_tokenizer():
    """A WordLevel tokenizer over the event tokens, as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    from .vocab import vocabulary

    vocab = {token: index for index, token in enumerate(vocabulary())}
    core = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")


def build_model(vocab_size: int, pad_id: int, bos_id: int, eos_id: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=vocab_size, n_positions=N_POSITIONS, n_embd=N_EMBD, n_layer=N_LAYER,
                        n_head=N_HEAD, n_inner=4 * N_EMBD, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    return GPT2LMHeadModel(config)


def train(out_dir: Path, device: str = "cpu", seed: int = 0, pieces: int = PIECES, steps: int = STEPS,
          log=print) -> dict:
    """Compose the corpus, train, save into ``out_dir``; return the training figures."""
    import random

    import torch

    from ...fsutil import atomic_write_text
    from .compose import corpus

    began = time.time()
    torch.manual_seed(seed)
    random.seed(seed)
    tokenizer = build_tokenizer()
    vocab = tokenizer.get_vocab()
    pad_id = vocab["<pad>"]
    data = [[vocab[t] for t in piece.tokens()] for piece in corpus(pieces, seed=seed)]
    held_out, data = data[:200], data[200:]
    model = build_model(len(vocab), pad_id, vocab["<bos>"], vocab["<eos>"]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.98))
    generator = torch.Generator().manual_seed(seed)

    def batch_of(rows):
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
        labels = ids.masked_fill(ids == pad_id, -100)
        return ids.to(device), (ids != pad_id).long().to(device), labels.to(device)

    def lr_at(step):
        if step < WARMUP:
            return LR * (step + 1) / WARMUP
        return LR * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - WARMUP) / max(1, steps - WARMUP))))

    model.train()
    loss_value = float("nan")
    for step in range(steps):
        picks = torch.randint(len(data), (BATCH,), generator=generator).tolist()
        ids, mask, labels = batch_of([data[i] for i in picks])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss_value = float(loss.detach())
        if step % 100 == 0 or step == steps - 1:
            log(json.dumps({"step": step, "loss": round(loss_value, 4), "seconds": round(time.time() - began, 1)}))
    model.eval()
    with torch.no_grad():
        losses = []
        for i in range(0, len(held_out), 50):
            ids, mask, labels = batch_of(held_out[i:i + 50])
            losses.append(float(model(input_ids=ids, attention_mask=mask, labels=labels).loss))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = pad_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    figures = {"kind": "symbolic", "max_bars": MAX_BARS, "pieces": pieces, "steps": steps, "seed": seed,
               "train_loss": round(loss_value, 4), "held_out_loss": round(sum(losses) / len(losses), 4),
               "parameters": sum(p.numel() for p in model.parameters()),
               "seconds": round(time.time() - began, 1), "device": device}
    atomic_write_text(out_dir / "studio_music.json", json.dumps(figures, indent=2) + "\n")
    return figures


def main(argv=None) -> int:
    from ...paths import model_cache

    parser = argparse.ArgumentParser(description="Train the music medium's embedded default from scratch.")
    parser.add_argument("--out", type=Path, default=model_cache("music-built-in"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--pieces", type=int, default=PIECES)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default); on a busy "
                        "two-core machine 1 is faster than 2")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    figures = train(args.out, args.device, args.seed, pieces=args.pieces, steps=args.steps)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
