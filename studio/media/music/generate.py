"""Batched generation: one candidate per seed, MIDI + WAV + piano roll (symbolic) or WAV (MusicGen).

The symbolic sampler is a grammar-constrained decoder over the event LM: tags the prompt
names are forced, the others sampled; onsets move forward within a bar, voices within an
onset go top to bottom, each voice only within its range; the last two bars are marked (so
the model cadences) and the piece ends after ``bars`` bars.  Each row draws from its own
``torch.Generator`` seeded by its seed, so a candidate does not depend on its batch-mates.
"""
from __future__ import annotations

from typing import Any, Sequence

from ...errors import StudioError
from ...medium import Generated
from .events import piece_from_tokens, to_midi_bytes
from .fluid import render_or_none
from .pianoroll import piano_roll_png
from .synth import SAMPLE_RATE, render_piece, wav_bytes
from .vocab import (BAR_LENGTH, MAX_BAR, STYLE_METERS, TAG_ORDER, TAG_VALUES, VOICES,
                    bar_token, ensemble, parse_prompt)

BATCH = 16  # rows per forward pass on the symbolic LM


class Grammar:
    """Token-id sets for each decoding state of the event language."""

    def __init__(self, tokenizer):
        vocab = tokenizer.get_vocab()
        self.id = vocab
        self.token = {i: t for t, i in vocab.items()}
        self.tags = {kind: [vocab[f"{kind}:{v}"] for v in TAG_VALUES[kind]] for kind in TAG_ORDER}
        self.positions = [vocab[f"pos:{k}"] for k in range(MAX_BAR)]
        self.voices = [[i for t, i in vocab.items() if t.startswith(f"v{v}:")] for v in range(VOICES)]
        self.bass_rest = vocab[f"v{VOICES - 1}:rest"]


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
    config = handle.model.config
    limit = int(getattr(config, "n_positions", None) or config.max_position_embeddings)
    out: list[list[str]] = []
    for begin in range(0, len(seeds), BATCH):
        chunk = list(seeds[begin:begin + BATCH])
        out += _sample_batch(handle, grammar, tags, chunk, bars, temperature, top_k, top_p, limit)
    return out


def _new_state() -> dict:
    """A row's decoding state before its first token: the tag stage, the bar and onset it is in, and which
    voices sound (``sounding``) and whether anything has sounded in this bar yet, between its onsets (``heard``)."""
    return {"stage": 0, "bars": 0, "pos": -1, "voice": None, "bar_length": 16, "style": "air", "done": False,
            "sounding": [False] * VOICES, "heard": False}


def _allowed(grammar, tags, state: dict, bars: int, length: int, limit: int) -> list[int]:
    """The token ids the grammar allows next for one row."""
    stage = state["stage"]
    if stage < len(TAG_ORDER):
        kind = TAG_ORDER[stage]
        if kind in tags:
            return [grammar.id[f"{kind}:{tags[kind]}"]]
        if kind == "meter":  # the metres of the style (named or just sampled)
            return [grammar.id[f"meter:{m}"] for m in STYLE_METERS[state["style"]]]
        return grammar.tags[kind]
    next_bar = [grammar.id["<eos>"] if state["bars"] == bars else grammar.id[bar_token(state["bars"], bars)]]
    if state["bars"] == 0 or length + (bars - state["bars"]) + 2 >= limit:
        return next_bar  # the first bar line, or no room left: the remaining bars hold what sounds
    later = [grammar.positions[k] for k in range(state["pos"] + 1, state["bar_length"])]
    if state["voice"] is None:  # between onsets
        return later + next_bar
    voices = [i for v in range(state["voice"] + 1, VOICES) for i in grammar.voices[v]]
    if state["voice"] < 0:  # an onset names at least one voice
        return voices
    return voices + later + next_bar


def _silence(grammar, state: dict, bars: int, allowed: list[int]) -> set[int]:
    """What a bar before the last may not do while nothing sounds and nothing has sounded in it yet: close
    while a later onset is still possible, and, at its last position, end an onset that sounds nothing (with
    the bar line or a rest in the bass, the last voice an onset names).  So such a bar sounds at the latest
    from its last sixteenth, and an opening rest followed by notes in the same bar is left alone.  The sampler
    draws from everything the grammar allows and draws again without these only when it picked one of them,
    so a piece the rule never touches comes out as it did before the rule."""
    if state["heard"] or any(state["sounding"]) or state["stage"] < len(TAG_ORDER) or not 0 < state["bars"] < bars:
        return set()
    avoid = {grammar.id[bar_token(state["bars"], bars)]}
    if state["voice"] is not None and state["pos"] + 1 >= state["bar_length"]:
        avoid.add(grammar.bass_rest)
    avoid &= set(allowed)
    return avoid if len(avoid) < len(allowed) else set()


def _advance(state: dict, token: str) -> None:
    kind, _, value = token.partition(":")
    if state["stage"] < len(TAG_ORDER):
        if kind == "meter":
            state["bar_length"] = BAR_LENGTH[value]
        elif kind == "style":
            state["style"] = value
        state["stage"] += 1
    elif token == "<eos>":
        state["done"] = True
    elif kind == "bar":
        state["bars"] += 1
        state["pos"], state["voice"] = -1, None
        state["heard"] = False  # whether something has sounded for a while in this bar (held over counts)
    elif kind == "pos":
        state["heard"] = state["heard"] or (int(value) > max(state["pos"], 0) and any(state["sounding"]))
        state["pos"], state["voice"] = int(value), -1
    else:
        state["voice"] = int(kind[1:])
        state["sounding"][state["voice"]] = value != "rest"


def _sample_batch(handle, grammar, tags, seeds, bars, temperature, top_k, top_p, limit):
    import torch

    n = len(seeds)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    rows: list[list[int]] = [[grammar.id["<bos>"]] for _ in range(n)]
    states = [_new_state() for _ in range(n)]
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
                if states[i]["done"]:
                    rows[i].append(pad)  # so every row has fed as many tokens as the cache holds
                    next_ids.append(pad)
                    continue
                allowed = _allowed(grammar, tags, states[i], bars, len(rows[i]), limit)
                choice = _sample_row(logits[i], allowed, generators[i], temperature, top_k, top_p)
                avoid = _silence(grammar, states[i], bars, allowed)
                if choice in avoid:
                    choice = _sample_row(logits[i], [a for a in allowed if a not in avoid], generators[i],
                                         temperature, top_k, top_p)
                rows[i].append(choice)
                next_ids.append(choice)
                _advance(states[i], grammar.token[choice])
            if all(state["done"] for state in states):
                break
            feed = torch.tensor(next_ids, device=handle.device).unsqueeze(1)
    return [[grammar.token[t] for t in row if t != pad] for row in rows]


def playing(prompt: str, style: str, timbre: str = "auto") -> tuple[int, tuple[int, ...]]:
    """(bpm, GM program per voice) for a piece of ``style``: the prompt's tempo and instrument
    words, else the style's; ``timbre`` (an instrument or ensemble word) comes before the prompt's."""
    tags = parse_prompt(prompt)
    named = list(tags.instruments)
    if timbre != "auto":
        named = [timbre] + [w for w in named if w != timbre]
    return tags.playing_bpm(style), ensemble(named, style)


def generate_symbolic(handle, prompt: str, seeds: Sequence[int], params: dict[str, Any]) -> list[Generated]:
    bars = int(params["bars"])
    if not 2 <= bars <= handle.max_bars:
        raise StudioError(f"{bars} bars is outside this model's range of 2 to {handle.max_bars} bars.")
    sequences = sample_tokens(handle, prompt, seeds, bars, float(params["temperature"]), int(params["top_k"]),
                              float(params["top_p"]))
    pieces = []
    for tokens in sequences:
        piece = piece_from_tokens(tokens)
        piece.bpm, piece.programs = playing(prompt, piece.tags["style"], params.get("timbre", "auto"))
        pieces.append(piece)
    midis = [to_midi_bytes(piece) for piece in pieces]
    # instrument sound through FluidSynth when it is installed, the studio's own synth otherwise
    signals = render_or_none(midis, SAMPLE_RATE) or [render_piece(p) for p in pieces]
    out = []
    for seed, piece, midi, signal in zip(seeds, pieces, midis, signals):
        files = {"mid": midi, "wav": wav_bytes(signal, SAMPLE_RATE),
                 "png": piano_roll_png(piece.notes(), piece.length, piece.bar_length)}
        out.append(Generated(seed=int(seed), files=files))
    return out


def generate(handle, prompt: str, seeds: Sequence[int], params: dict[str, Any], adapter: str | None = None,
             strength: float = 1.0) -> list[Generated]:
    """One piece per seed with ``adapter`` (a version) active at ``strength``: the built-in model writes notes,
    MusicGen sound (``musicgen.generate_audio``)."""
    from ...adapters import adapter_active

    with adapter_active(handle, adapter, strength):
        if handle.kind == "symbolic":
            return generate_symbolic(handle, prompt, seeds, params)
        from .musicgen import generate_audio

        return generate_audio(handle, prompt, seeds, params)
