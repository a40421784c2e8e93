"""Shared by the music tests: small pieces written by hand, and a tiny model trained on them in
seconds (the built-in model is loaded only by the tests marked slow)."""
from __future__ import annotations

import pytest

from studio.media.music import repertoire
from studio.media.music.events import Piece, piece_from_notes
from studio.media.music.vocab import BAR_LENGTH

TINY = {"n_embd": 32, "n_layer": 1, "n_head": 2, "batch": 4, "warmup": 1, "held_out": 0.2}


def scale_tune(style: str, meter: str, tonic: int, mode: str, bars: int, step: int = 2) -> Piece:
    """A melody that walks the scale up and down in notes of ``step`` sixteenths, harmonised and
    accompanied as the training script does the fiddle tunes."""
    scale, length = repertoire.SCALES[mode], BAR_LENGTH[meter]
    walk = [0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4, 3, 2, 1]
    melody = []
    for i, t in enumerate(range(0, bars * length - length, step)):
        d = walk[i % len(walk)]
        melody.append((t, step, 60 + tonic + 12 * (d // 7) + scale[d % 7]))
    melody.append((bars * length - length, length, 60 + tonic))  # the tonic to end on
    return repertoire.folk_piece(melody, tonic, mode, style, meter, bars)


def block_chorale(tonic: int = 7) -> Piece:
    """Four bars of four-part block chords in G (or moved to ``tonic``): I IV V I three times,
    then IV V and a half-note I to close."""
    tonic_chord, sub, dominant = (67, 62, 59, 43), (67, 64, 60, 48), (66, 62, 57, 50)
    plan = [(c, 4) for c in (tonic_chord, sub, dominant, tonic_chord)] * 3 + [(sub, 4), (dominant, 4), (tonic_chord, 8)]
    shift = tonic - 7
    voices = [[], [], [], []]
    t = 0
    for chord, length in plan:
        for v, p in enumerate(chord):
            voices[v].append((t, length, p + shift))
        t += length
    keys = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    tags = {"style": "chorale", "meter": "4/4", "key": keys[tonic % 12], "mode": "major"}
    return piece_from_notes(tags, voices, 4)


def small_repertoire() -> list[Piece]:
    return [scale_tune("reel", "4/4", 2, "major", 8), scale_tune("waltz", "3/4", 7, "major", 8, step=4),
            scale_tune("jig", "6/8", 9, "dorian", 8), scale_tune("air", "4/4", 0, "minor", 6, step=4),
            block_chorale(7), block_chorale(2)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """The folder of a tiny symbolic model trained for a few steps on ``small_repertoire``."""
    from studio.media.music import defaults

    folder = tmp_path_factory.mktemp("tiny-music") / "model"
    defaults.train(folder, "cpu", seed=0, pieces=small_repertoire() * 2, steps=4, recipe=TINY, log=lambda line: None)
    return str(folder)
