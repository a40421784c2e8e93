"""Batched generation: one candidate per seed, MIDI + WAV + piano roll (symbolic) or WAV (MusicGen).

The symbolic sampler is a grammar-constrained decoder over the event LM: tags the prompt
names are forced, the others sampled; every bar is filled exactly (a duration never runs
past the bar line); the piece ends after ``bars`` bars.  Each row draws from its own
``torch.Generator`` seeded by its seed, so a candidate does not depend on its batch-mates.
"""
from __future__ import annotations

from typing import Any, Sequence

from ...errors import StudioError
from ...medium import Generated
from .events import piece_from_tokens, to_midi_bytes
from .fluid import render_or_none
from .pianoroll import piano_roll_png
from .synth import SAMPLE_RATE, render_piece, timbre_for, wav_bytes
from .vocab import BAR_LENGTH, DURATIONS, TAG_ORDER, TAG_VALUES, parse_prompt

BATCH = 16  # rows per forward pass on the symbolic LM


class Grammar:
    """Token-id sets for each decoding state of the event language."""

    def __init__(self, tokenizer):
        vocab = tokenizer.get_vocab()
        self.id = vocab
        self.token = {i: t for t, i in vocab.items()}
        self.tags = {kind: [vocab[f"{kind}:{v}"] for v in TAG_VALUES[kind]] for kind in TAG_ORDER}
        self.velocities = [i for t, i in vocab.items() if t.startswith("vel:")]
        self.events = [i for t, i in vocab.items() if t == "rest" or (t[0] == "p" and t[1:].isdigit())]
        self.durations = {d: vocab[f"d{d}"] for d in DURATIONS}


def _sample_row(logits, allowed: list[int], generator, temperature: float, top_k: int, top_p: float) -> int:
    import torch

    if len(allowed) == 1:
        return allowed[0]
    scores = logits[allowed].double()
    if temperature <= 0:
        return allowed[int(scores.argmax())]
    scores = scores / temperature
    order = torch.argsort(scores, descending=True, stable=True)
    scores = scores[order]
    if top_k and top_k < len(scores):
        scores[top_k:] = float("-inf")
    probs = torch.softmax(scores, dim=0)
    if top_p < 1.0:
        cumulative = torch.cumsum(probs, 0)
        cut = cumulative - probs >= top_p  # drop what lies wholly beyond the nucleus
        probs = probs.masked_fill(cut, 0.0)
        probs = probs / probs.sum()
    u = torch.rand(1, generator=generator, dtype=torch.float64)
    index = int(torch.searchsorted(torch.cumsum(probs, 0), u).clamp(max=len(probs) - 1))
    return allowed[int(order[index])]


def sample_tokens(handle, prompt: str, seeds: Sequence[int], bars: int, temperature: float = 1.0,
                  top_k: int = 0, top_p: float = 1.0) -> list[list[str]]:
    """Token sequences, one per seed, from the currently active weights of ``handle``."""
    tags = parse_prompt(prompt)
    grammar = Grammar(handle.tokenizer)
    limit = int(handle.model.config.max_position_embeddings if hasattr(handle.model.config, "max_position_embeddings")
                else handle.model.config.n_positions)
    out: list[list[str]] = []
    for begin in range(0, len(seeds), BATCH):
        chunk = list(seeds[begin:begin + BATCH])
        out += _sample_batch(handle, grammar, tags, chunk, bars, temperature, top_k, top_p, limit)
    return out


def _sample_batch(handle, grammar, tags, seeds, bars, temperature, top_k, top_p, limit):
    import torch

    n = len(seeds)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    rows: list[list[int]] = [[grammar.id["<bos>"]] for _ in range(n)]
    # per-row decoding state
    meter = [None] * n
    room = [0] * n  # sixteenths left in the current bar
    bars_done = [0] * n
    expect = ["tag0"] * n  # tagK, bar, vel, event, dur, done
    pad = grammar.id["<pad>"]
    past = None
    feed = torch.tensor([[grammar.id["<bos>"]]] * n, device=handle.device)
    model = handle.model
    with torch.no_grad():
        while True:
            seen = len(rows[0])  # every row has fed the same number of tokens (pads after <eos>)
            mask = torch.ones((n, seen), dtype=torch.long, device=handle.device)
            output = model(input_ids=feed, attention_mask=mask, past_key_values=past, use_cache=True)
            past = output.past_key_values
            logits = output.logits[:, -1, :].float().cpu()
            next_ids = []
            for i in range(n):
                state = expect[i]
                if state == "done":
                    next_ids.append(pad)
                    continue
                if state.startswith("tag"):
                    kind = TAG_ORDER[int(state[3:])]
                    allowed = [grammar.id[f"{kind}:{tags[kind]}"]] if kind in tags else grammar.tags[kind]
                elif state == "bar":
                    allowed = [grammar.id["bar"] if bars_done[i] < bars else grammar.id["<eos>"]]
                elif state == "vel":
                    allowed = grammar.velocities
                elif state == "event":
                    allowed = grammar.events
                else:  # a duration that fits the bar; near the context limit, fill the bar at once
                    fits = [d for d in DURATIONS if d <= room[i]]
                    future = (bars - bars_done[i]) * 4 + 6
                    if len(rows[i]) + future >= limit:
                        fits = [max(fits)]
                    allowed = [grammar.durations[d] for d in fits]
                choice = _sample_row(logits[i], allowed, generators[i], temperature, top_k, top_p)
                token = grammar.token[choice]
                rows[i].append(choice)
                next_ids.append(choice)
                # advance the grammar
                if state.startswith("tag"):
                    k = int(state[3:])
                    if TAG_ORDER[k] == "meter":
                        meter[i] = token.split(":", 1)[1]
                    expect[i] = f"tag{k + 1}" if k + 1 < len(TAG_ORDER) else "bar"
                elif state == "bar":
                    if token == "<eos>":
                        expect[i] = "done"
                    else:
                        bars_done[i] += 1
                        room[i] = BAR_LENGTH[meter[i]]
                        expect[i] = "vel"
                elif state == "vel":
                    expect[i] = "event"
                elif state == "event":
                    expect[i] = "dur"
                else:
                    room[i] -= int(token[1:])
                    expect[i] = "event" if room[i] > 0 else "bar"
            if all(state == "done" for state in expect):
                break
            feed = torch.tensor(next_ids, device=handle.device).unsqueeze(1)
    return [[grammar.token[t] for t in row] for row in rows]


def generate_symbolic(handle, prompt: str, seeds: Sequence[int], params: dict[str, Any]) -> list[Generated]:
    bars = int(params["bars"])
    if not 1 <= bars <= handle.max_bars:
        raise StudioError(f"{bars} bars is beyond this model's limit of {handle.max_bars} bars.")
    bpm = parse_prompt(prompt).bpm
    sequences = sample_tokens(handle, prompt, seeds, bars, float(params["temperature"]), int(params["top_k"]),
                              float(params["top_p"]))
    pieces = [piece_from_tokens(tokens, bpm=bpm) for tokens in sequences]
    timbres = [timbre_for(piece.tags["style"], params["timbre"]) for piece in pieces]
    midis = [to_midi_bytes(piece, timbre) for piece, timbre in zip(pieces, timbres)]
    # instrument sound through FluidSynth when it is installed, the studio's own synth otherwise
    signals = render_or_none(midis, SAMPLE_RATE) or [render_piece(p, t) for p, t in zip(pieces, timbres)]
    out = []
    for seed, piece, midi, signal in zip(seeds, pieces, midis, signals):
        files = {"mid": midi, "wav": wav_bytes(signal, SAMPLE_RATE),
                 "png": piano_roll_png(piece.notes(), len(piece.bars) * piece.bar_length, piece.bar_length)}
        out.append(Generated(seed=int(seed), files=files))
    return out
