"""The shipped built-in model (slow: it loads and samples the real model) meets issue 18's checks:
a chorale sounds three or more notes at most onsets, a fast reel runs over 100 bpm on a bass."""
import io

import mido
import numpy as np
import pytest

from studio.media import get
from studio.media.music import ASSETS
from studio.media.music.events import read_midi
from studio.media.music.features import sonorities

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (ASSETS / "model.safetensors").exists(), reason="the built-in model is not built")]


@pytest.fixture(scope="module")
def music():
    medium = get("music")
    return medium, medium.load(medium.default_model(), "cpu")


@pytest.fixture(autouse=True)
def _studio_synth(monkeypatch):
    monkeypatch.setenv("STUDIO_MUSIC_RENDERER", "synth")  # the MIDI is what is checked here


def chord_share(piece) -> float:
    """The share of onsets where three or more notes sound."""
    onsets = sonorities(piece)
    return sum(sum(p is not None for p in s) >= 3 for _, s, _ in onsets) / max(1, len(onsets))


def test_a_four_part_chorale_sounds_chords(music):
    medium, handle = music
    gens = medium.generate(handle, "a four-part chorale in G major", [0, 1, 2, 3], medium.validate_params({}))
    for g in gens:
        piece = read_midi(g.files["mid"])
        assert piece.tags == {"style": "chorale", "meter": piece.tags["meter"], "key": "G", "mode": "major"}
        assert len(piece.bars) == 8 and all(piece.voice_notes())
        assert chord_share(piece) >= 0.6


def test_a_fast_reel_is_a_dance_over_a_bass(music):
    medium, handle = music
    gens = medium.generate(handle, "a fast reel in D", [0, 1, 2, 3], medium.validate_params({}))
    for g in gens:
        mid = mido.MidiFile(file=io.BytesIO(g.files["mid"]))
        bpm = [mido.tempo2bpm(m.tempo) for m in mid.tracks[0] if m.type == "set_tempo"][0]
        assert bpm > 100
        piece = read_midi(g.files["mid"])
        melody, *_, bass = piece.voice_notes()
        assert piece.tags["style"] == "reel" and piece.tags["key"] == "D"
        assert len(melody) >= 4 * len(piece.bars)  # a dance tune: quavers, not whole notes
        assert len(bass) >= len(piece.bars) and np.mean([p for *_, p in bass]) < np.mean([p for *_, p in melody]) - 12
