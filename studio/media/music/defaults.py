"""Train the built-in symbolic model from scratch: ``studio train-defaults music``.

A small GPT-2 over the four-voice event vocabulary (``vocab.py``), trained on music21's free
repertoire (``repertoire.py``: Bach's chorales, Ryan's Mammoth Collection, Aird's Airs; the
fiddle tunes harmonised and accompanied).  Pieces are cut into windows of up to eight bars (a
window that reaches the end marks its last two bars, whose tokens weigh ``cadence_weight`` times
in the loss, so the model learns cadences) and each batch transposes every window by a random
interval.  Seeded: the same seed gives the same weights on the same machine.  Output
(``save_pretrained`` layout, safetensors):

    config.json  generation_config.json  model.safetensors
    tokenizer.json  tokenizer_config.json  special_tokens_map.json   (WordLevel over events)
    studio_music.json   kind, max_bars (what the loader reads)
    TRAINING.json       recipe, data, time, losses, measured quality

    python -m studio.media.music.defaults --out studio/media/music/assets --threads 1
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

# every default of the recipe, stated once (on one idle CPU thread the steps should run out first (not timed
# yet); on a busy machine the time budget ends it sooner, and TRAINING.json records the steps done)
RECIPE = {
    "minutes": 30.0,  # wall-clock budget: the schedule follows steps or time, whichever runs out first
    "window_bars": 8,  # the longest stretch the model sees, and so the longest piece it writes
    "window_hop": 4,  # windows start every 4 bars (and one more ends each piece)
    "max_tokens": 512,  # n_positions; denser windows are cut short
    "n_embd": 64,  # width of the transformer (small: a shared 2-core CPU trains it)
    "n_layer": 4,
    "n_head": 4,
    "steps": 4000,
    "batch": 12,
    "lr": 3e-3,
    "warmup": 100,
    "chorale_share": 0.4,  # of every batch; the rest fiddle tunes and airs
    "cadence_weight": 4.0,  # the loss on a piece's last two bars (bar:penultimate on), times this (learns cadences)
    "transpose": [-5, 6],  # semitones, drawn per window and batch (kept inside each voice's range)
    "held_out": 0.05,  # share of pieces kept out of training for the held-out loss
}
REPERTORIES = ("bach", "ryans", "aird")


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


def build_model(vocab_size: int, pad_id: int, bos_id: int, eos_id: int, recipe: dict = RECIPE):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=vocab_size, n_positions=recipe["max_tokens"], n_embd=recipe["n_embd"],
                        n_layer=recipe["n_layer"], n_head=recipe["n_head"], n_inner=4 * recipe["n_embd"],
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    return GPT2LMHeadModel(config)


def windows(piece, bars: int, hop: int, max_tokens: int) -> list:
    """Stretches of up to ``bars`` bars starting every ``hop`` bars, plus the last ``bars``; the
    ones that reach the piece's end keep their cadence marks; each fits ``max_tokens``."""
    from .events import Piece

    n = len(piece.bars)
    starts = sorted(set(list(range(0, max(1, n - bars + 1), hop)) + [max(0, n - bars)]))
    out = []
    for start in starts:
        stop = min(n, start + bars)
        while stop > start:
            part = Piece(piece.tags, piece.bars[start:stop], piece.bpm, piece.programs, ending=stop == n,
                         source=piece.source)
            if len(part.tokens()) <= max_tokens:
                out.append(part)
                break
            stop -= 1
    return out


class Windows:
    """Token-id rows of every window, with what a transposition needs to shift them."""

    def __init__(self, pieces, tokenizer, recipe: dict):
        import numpy as np

        from .vocab import KEYS, VOICE_RANGE, VOICES

        vocab = tokenizer.get_vocab()
        self.pad = vocab["<pad>"]
        is_pitch = np.zeros(len(vocab), dtype=bool)  # vN:pPP tokens: a transposition shifts their ids
        for token, index in vocab.items():
            is_pitch[index] = token[:1] == "v" and ":p" in token
        self.key0 = vocab[f"key:{KEYS[0]}"]
        self.rows, self.pitch_masks, self.shifts, self.chorale, self.cadence = [], [], [], [], []
        penultimate = vocab["bar:penultimate"]
        low, high = recipe["transpose"]
        for piece in pieces:
            for w in windows(piece, recipe["window_bars"], recipe["window_hop"], recipe["max_tokens"]):
                ids = np.array([vocab[t] for t in w.tokens()], dtype=np.int64)
                ranges = [(min(p), max(p)) for p in ([n[2] for n in v] for v in w.voice_notes()) if p]
                if not ranges:
                    continue
                by_voice = [[n[2] for n in v] for v in w.voice_notes()]
                allowed = [s for s in range(low, high + 1)
                           if all(not ps or (VOICE_RANGE[v][0] <= min(ps) + s and max(ps) + s <= VOICE_RANGE[v][1])
                                  for v, ps in enumerate(by_voice[:VOICES]))] or [0]
                self.rows.append(ids)
                self.pitch_masks.append(is_pitch[ids])
                self.shifts.append(allowed)
                self.chorale.append(w.tags["style"] == "chorale")
                marks = np.flatnonzero(ids == penultimate)  # only a window that ends its piece has one
                self.cadence.append(int(marks[0]) if len(marks) else len(ids))

    def batch(self, picks, rng, transpose: bool = True, cadence_weight: float = 1.0):
        """Padded (ids, mask, labels, weights) tensors; each row transposed by one of its allowed
        shifts; a token's weight is ``cadence_weight`` from its piece's ``bar:penultimate`` on, else 1."""
        import torch

        width = max(len(self.rows[i]) for i in picks)
        ids = torch.full((len(picks), width), self.pad, dtype=torch.long)
        weights = torch.ones((len(picks), width))
        for row, i in enumerate(picks):
            weights[row, self.cadence[i]:] = cadence_weight
            seq = self.rows[i].copy()
            if transpose:
                shift = int(rng.choice(self.shifts[i]))
                seq[self.pitch_masks[i]] += shift
                seq[3] = self.key0 + (seq[3] - self.key0 + shift) % 12  # <bos> style meter KEY mode
            ids[row, :len(seq)] = torch.from_numpy(seq)
        labels = ids.masked_fill(ids == self.pad, -100)
        return ids, (ids != self.pad).long(), labels, weights


def weighted_loss(logits, labels, weights):
    """Next-token cross-entropy, each predicted token weighted, over the weights' sum."""
    import torch

    logits, labels, weights = logits[:, :-1], labels[:, 1:], weights[:, 1:]
    each = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100,
                                             reduction="none").view(labels.shape)
    weights = weights * (labels != -100)
    return (each * weights).sum() / weights.sum().clamp(min=1)


def load_repertoire(cache: Path | None, log=print, names=REPERTORIES):
    """The named repertories' pieces, parsed once by music21 and kept as JSON in ``cache``; a
    repertory the cache lacks is read and added (so a cut-short first run is finished, not trusted)."""
    from . import repertoire

    pieces = repertoire.from_json(json.loads(cache.read_text())) if cache is not None and cache.exists() else []
    missing = [name for name in names if not any(p.source == name for p in pieces)]
    if missing:
        pieces += repertoire.read_repertoire(missing, log=log)
        if cache is not None:
            from ...fsutil import atomic_write_text

            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache, json.dumps(repertoire.to_json(pieces)))
    return [p for p in pieces if p.source in names]


def train(out_dir: Path, device: str = "cpu", seed: int = 0, pieces=None, steps: int | None = None,
          recipe: dict | None = None, cache: Path | None = None, log=print, names=REPERTORIES) -> dict:
    """Read the repertoire (or use ``pieces``), train, save into ``out_dir``; return the figures."""
    import random

    import numpy as np
    import torch

    from ...fsutil import atomic_write_text

    recipe = dict(RECIPE, **(recipe or {}))
    if steps is not None:
        recipe["steps"] = steps
    began = time.time()
    torch.manual_seed(seed)
    if pieces is None:
        from ...paths import model_cache

        pieces = load_repertoire(cache or model_cache("music-repertoire") / "pieces.json", log=log, names=names)
    read_seconds = time.time() - began
    order = list(range(len(pieces)))
    random.Random(seed).shuffle(order)
    n_held = max(1, int(len(pieces) * recipe["held_out"])) if len(pieces) > 1 else 0
    held_pieces = [pieces[i] for i in order[:n_held]]
    train_pieces = [pieces[i] for i in order[n_held:]] or held_pieces
    tokenizer = build_tokenizer()
    vocab = tokenizer.get_vocab()
    data = Windows(train_pieces, tokenizer, recipe)
    held = Windows(held_pieces, tokenizer, recipe)
    chorales = [i for i, c in enumerate(data.chorale) if c]
    folk = [i for i, c in enumerate(data.chorale) if not c]
    log(json.dumps({"pieces": len(pieces), "windows": len(data.rows), "chorale_windows": len(chorales),
                    "held_out_windows": len(held.rows), "read_seconds": round(read_seconds, 1)}))
    model = build_model(len(vocab), vocab["<pad>"], vocab["<bos>"], vocab["<eos>"], recipe).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=0.01, betas=(0.9, 0.98))
    rng = np.random.default_rng(seed)
    total = recipe["steps"]

    budget = 60.0 * float(recipe["minutes"]) if recipe.get("minutes") else math.inf

    def progress_at(step):  # 0..1 through the schedule: by steps or by the time budget, the further one
        return max(step / total, (time.time() - train_began) / budget)

    def lr_at(step):
        if step < recipe["warmup"]:
            return recipe["lr"] * (step + 1) / recipe["warmup"]
        return recipe["lr"] * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_at(step)))))

    def pick(size):
        out = []
        for _ in range(size):
            pool = chorales if chorales and (not folk or rng.random() < recipe["chorale_share"]) else folk
            out.append(int(pool[rng.integers(len(pool))]))
        return out

    model.train()
    loss_value, train_began, steps_done = float("nan"), time.time(), 0
    for step in range(total):
        if step > recipe["warmup"] and progress_at(step) >= 1.0:
            break
        ids, mask, labels, weights = data.batch(pick(recipe["batch"]), rng, cadence_weight=recipe["cadence_weight"])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        loss = weighted_loss(logits, labels.to(device), weights.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss_value, steps_done = float(loss.detach()), step + 1
        if step % 100 == 0 or step == total - 1:
            log(json.dumps({"step": step, "loss": round(loss_value, 4), "seconds": round(time.time() - began, 1)}))
    train_seconds = time.time() - train_began
    model.eval()
    losses = []
    with torch.no_grad():
        for i in range(0, len(held.rows), 16):
            ids, mask, labels, _ = held.batch(list(range(i, min(i + 16, len(held.rows)))), rng, transpose=False)
            losses.append(float(model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                      labels=labels.to(device)).loss))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = vocab["<pad>"]
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    atomic_write_text(out_dir / "studio_music.json",
                      json.dumps({"kind": "symbolic", "max_bars": recipe["window_bars"]}, indent=2) + "\n")
    from collections import Counter

    from .repertoire import SOURCES

    figures = {
        "recipe": recipe, "seed": seed, "device": device,
        "threads": torch.get_num_threads(),
        "data": {"repertories": {name: {"what": SOURCES[name][1], "licence": SOURCES[name][2],
                                         "pieces": sum(1 for p in pieces if p.source == name)}
                                  for name in REPERTORIES if any(p.source == name for p in pieces)},
                 "pieces": len(pieces), "styles": dict(Counter(p.tags["style"] for p in pieces)),
                 "windows": len(data.rows), "held_out_windows": len(held.rows)},
        "steps_done": steps_done,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_loss": round(loss_value, 4),
        "held_out_loss": round(sum(losses) / len(losses), 4) if losses else None,
        "seconds": {"read_corpus": round(read_seconds, 1), "train": round(train_seconds, 1),
                    "total": round(time.time() - began, 1)},
    }
    atomic_write_text(out_dir / "TRAINING.json", json.dumps(figures, indent=1) + "\n")
    return figures


def main(argv=None) -> int:
    from ...paths import model_cache

    parser = argparse.ArgumentParser(description="Train the music medium's built-in model from scratch "
                                     "(needs music21: pip install 'studio[train]').")
    parser.add_argument("--out", type=Path, default=model_cache("music-built-in"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=RECIPE["steps"])
    parser.add_argument("--minutes", type=float, default=RECIPE["minutes"], help="wall-clock budget of the training "
                        "loop (the learning-rate schedule follows whichever of steps and time runs out first)")
    parser.add_argument("--cache", type=Path, default=model_cache("music-repertoire") / "pieces.json",
                        help="where the parsed repertoire is kept between runs")
    parser.add_argument("--repertories", nargs="+", choices=REPERTORIES, default=list(REPERTORIES),
                        help="which of music21's repertories to learn from (the shipped weights: bach aird)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default); on a busy "
                        "two-core machine 1 is faster than 2")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    figures = train(args.out, args.device, args.seed, steps=args.steps, cache=args.cache,
                    recipe={"minutes": args.minutes}, names=tuple(args.repertories))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
