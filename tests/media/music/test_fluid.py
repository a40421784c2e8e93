"""Instrument sound: FluidSynth with a GM soundfont when installed, the studio's synth otherwise."""
from __future__ import annotations

import io
import shutil

import mido
import numpy as np
import pytest
import soundfile

from studio.errors import StudioError
from studio.media.music import fluid
from studio.media.music.synth import PEAK, SAMPLE_RATE, TIMBRES, timbre_of_program
from studio.media.music.vocab import INSTRUMENTS, STYLE_ENSEMBLE

PROMPT = "a cheerful waltz in G major"
HAS_FLUIDSYNTH = shutil.which("fluidsynth") is not None and fluid.soundfont() is not None
needs_fluidsynth = pytest.mark.skipif(not HAS_FLUIDSYNTH, reason="fluidsynth and a GM soundfont are not installed "
                                                                  "(scripts/setup installs them as root)")


@pytest.fixture(scope="module")
def music(tiny_model):
    from studio.media import get

    medium = get("music")
    return medium, medium.load(tiny_model, "cpu")


def _note(program: int, pitch: int = 69, seconds: float = 1.0) -> bytes:
    """One note held for ``seconds`` on a GM program (120 bpm, 480 ticks a beat)."""
    track = mido.MidiTrack([mido.Message("program_change", program=program, time=0),
                            mido.Message("note_on", note=pitch, velocity=100, time=0),
                            mido.Message("note_off", note=pitch, velocity=0, time=int(seconds * 960))])
    out = io.BytesIO()
    mido.MidiFile(tracks=[track], ticks_per_beat=480).save(file=out)
    return out.getvalue()


def _spectrum(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    window = signal[int(0.1 * SAMPLE_RATE):int(0.6 * SAMPLE_RATE)]
    power = np.abs(np.fft.rfft(window * np.hanning(len(window))))
    return np.fft.rfftfreq(len(window), 1 / SAMPLE_RATE), power / power.sum()


def test_every_voice_plays_a_general_midi_instrument(music):
    medium, handle = music
    for style, programs in STYLE_ENSEMBLE.items():
        assert len(programs) == 4 and all(0 <= p <= 127 and timbre_of_program(p) in TIMBRES for p in programs)
    (gen,) = medium.generate(handle, PROMPT, [3], medium.validate_params({"bars": 2}))
    mid = mido.MidiFile(file=io.BytesIO(gen.files["mid"]))
    programs = [(m.channel, m.program) for t in mid.tracks for m in t if m.type == "program_change"]
    assert programs == list(enumerate(STYLE_ENSEMBLE["waltz"]))
    (gen,) = medium.generate(handle, PROMPT + " for brass", [3], medium.validate_params({"bars": 2}))
    mid = mido.MidiFile(file=io.BytesIO(gen.files["mid"]))
    assert [m.program for t in mid.tracks for m in t if m.type == "program_change"][0] == INSTRUMENTS["trumpet"]


@needs_fluidsynth
def test_fluidsynth_renders_the_instrument_at_the_right_pitch():
    piano, flute = fluid.render_midi([_note(INSTRUMENTS["piano"]), _note(INSTRUMENTS["flute"])], SAMPLE_RATE)
    for signal in (piano, flute):
        assert signal.dtype == np.float32 and abs(float(np.abs(signal).max()) - PEAK) < 1e-3
        assert 1.0 <= len(signal) / SAMPLE_RATE <= 1.0 + 0.6 + 0.05  # the note and its release tail
        freqs, power = _spectrum(signal)
        strongest = freqs[np.argmax(power)]
        assert min(abs(strongest - f) for f in (440.0, 880.0, 1320.0)) < 8  # A4 or its harmonics
    freqs, p_piano = _spectrum(piano)
    _, p_flute = _spectrum(flute)
    assert 0.5 * np.abs(p_piano - p_flute).sum() > 0.2  # two instruments, two timbres
    again = fluid.render_midi([_note(INSTRUMENTS["flute"])], SAMPLE_RATE)[0]
    assert np.array_equal(again, flute)  # the same MIDI renders the same


@needs_fluidsynth
def test_candidates_sound_through_fluidsynth_when_installed(music, monkeypatch):
    medium, handle = music
    monkeypatch.setenv("STUDIO_MUSIC_RENDERER", "auto")
    gens = medium.generate(handle, PROMPT, [1, 2], medium.validate_params({"bars": 2}))
    for g in gens:
        wav = soundfile.read(io.BytesIO(g.files["wav"]))[0]
        (want,) = fluid.render_midi([g.files["mid"]], SAMPLE_RATE)
        assert np.abs(wav - want).max() <= 1 / 32768 + 1e-9


def test_without_fluidsynth_the_studio_synth_plays(music, monkeypatch):
    medium, handle = music
    params = medium.validate_params({"bars": 2})
    monkeypatch.setenv("STUDIO_MUSIC_RENDERER", "synth")
    (chosen,) = medium.generate(handle, PROMPT, [4], params)
    instrument = fluid.render_midi([chosen.files["mid"]], SAMPLE_RATE)[0] if HAS_FLUIDSYNTH else None
    monkeypatch.setenv("STUDIO_MUSIC_RENDERER", "auto")
    monkeypatch.setattr(fluid.shutil, "which", lambda name: None)  # as on a machine without fluidsynth
    assert fluid.renderer() == "synth"
    (fallback,) = medium.generate(handle, PROMPT, [4], params)
    assert fallback.files["wav"] == chosen.files["wav"] and fallback.files["mid"] == chosen.files["mid"]
    wav = soundfile.read(io.BytesIO(fallback.files["wav"]))[0]
    assert 0.5 < np.abs(wav).max() < 1.0
    if instrument is not None:  # and it is not FluidSynth's sound
        assert len(instrument) != len(wav) or np.abs(instrument - wav).max() > 0.05


def test_renderer_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_MUSIC_RENDERER", "synth")
    assert fluid.renderer() == "synth"
    monkeypatch.setenv("STUDIO_MUSIC_RENDERER", "wurlitzer")
    with pytest.raises(StudioError, match="STUDIO_MUSIC_RENDERER"):
        fluid.renderer()
    monkeypatch.setenv("STUDIO_MUSIC_RENDERER", "fluidsynth")
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(StudioError, match="soundfont"):
        fluid.renderer()
