"""Instrument sound: the candidates' MIDI rendered by FluidSynth with a General MIDI soundfont.

Chosen automatically when the ``fluidsynth`` command and a GM soundfont are installed
(Debian: ``apt-get install fluidsynth fluid-soundfont-gm``, or the smaller
``timgm6mb-soundfont``; ``scripts/setup`` installs them when run as root); the studio's own
additive synth (``synth.py``) otherwise.  The MIDI file carries one GM program change per
voice (``vocab.STYLE_ENSEMBLE``, or the instruments the prompt names), so a reel plays on a
fiddle over piano chords and a bass, and a chorale on four voices of a choir.

``STUDIO_MUSIC_RENDERER`` picks by hand (``auto``, ``fluidsynth`` or ``synth``) and
``STUDIO_SOUNDFONT`` names another soundfont.  The candidates of one call render in parallel,
one FluidSynth process each (a process loads the soundfont in a fraction of a second).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import StudioError
from .synth import PEAK, TAIL_SECONDS

# Debian's GM soundfonts, best first (default-GM.sf2 is the alternatives link to the installed one)
SOUNDFONTS = ("/usr/share/sounds/sf2/default-GM.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2",
              "/usr/share/sounds/sf3/default-GM.sf3", "/usr/share/sounds/sf3/MuseScore_General.sf3",
              "/usr/share/sounds/sf2/TimGM6mb.sf2")
RENDERERS = ("auto", "fluidsynth", "synth")
SILENCE = 1e-4  # trailing samples below this (after normalising) are cut


def soundfont() -> Path | None:
    """The GM soundfont to use: ``STUDIO_SOUNDFONT`` when set, else the first installed one."""
    named = os.environ.get("STUDIO_SOUNDFONT")
    if named:
        return Path(named) if Path(named).is_file() else None
    return next((Path(p) for p in SOUNDFONTS if Path(p).is_file()), None)


def renderer() -> str:
    """``fluidsynth`` when it can run (or is asked for), else ``synth``."""
    choice = os.environ.get("STUDIO_MUSIC_RENDERER", "auto").strip().lower() or "auto"
    if choice not in RENDERERS:
        raise StudioError(f"STUDIO_MUSIC_RENDERER must be one of {', '.join(RENDERERS)}, not '{choice}'.")
    available = shutil.which("fluidsynth") is not None and soundfont() is not None
    if choice == "fluidsynth" and not available:
        raise StudioError("STUDIO_MUSIC_RENDERER=fluidsynth needs the fluidsynth command and a General MIDI "
                          "soundfont (apt-get install fluidsynth fluid-soundfont-gm).")
    if choice == "synth" or not available:
        return "synth"
    return "fluidsynth"


def _mono(path: Path, sample_rate: int, seconds: float) -> np.ndarray:
    """The rendering as mono, normalised, cut at the music's end plus the release tail."""
    import soundfile

    signal, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    if rate != sample_rate:
        raise RuntimeError(f"FluidSynth wrote {rate} Hz, not {sample_rate} Hz")
    signal = signal.mean(axis=1)[: int((seconds + TAIL_SECONDS) * sample_rate)]
    peak = float(np.abs(signal).max()) if signal.size else 0.0
    if peak > 0:
        signal = signal * (PEAK / peak)
    loud = np.flatnonzero(np.abs(signal) > SILENCE)
    return signal[: loud[-1] + 1 if loud.size else 0].astype(np.float32)


def _seconds(midi: bytes) -> float:
    import io

    import mido

    """When the last note ends (a file may run on to the end of its bar in silence)."""
    now, last = 0.0, 0.0
    for message in mido.MidiFile(file=io.BytesIO(midi)):  # iterating a file gives times in seconds
        now += message.time
        if message.type == "note_off" or (message.type == "note_on" and message.velocity == 0):
            last = now
    return last


def render_midi(midis: Sequence[bytes], sample_rate: int) -> list[np.ndarray]:
    """Each MIDI file as a mono float32 signal at ``sample_rate``, peak at -1 dBFS (one process each)."""
    font = soundfont()
    command = shutil.which("fluidsynth")
    if font is None or command is None:
        raise StudioError("FluidSynth rendering needs the fluidsynth command and a General MIDI soundfont.")
    at_once = max(2, os.cpu_count() or 2)
    with tempfile.TemporaryDirectory(prefix="studio-fluid-") as tmp:
        running, signals = [], []

        def finish(process, out, midi):
            _, err = process.communicate()
            if process.returncode != 0 or not out.is_file():
                first = (err or b"").decode(errors="replace").strip().splitlines()[:1]
                raise RuntimeError(f"fluidsynth failed ({first[0] if first else process.returncode})")
            signals.append(_mono(out, sample_rate, _seconds(midi)))

        for i, midi in enumerate(midis):
            src, out = Path(tmp) / f"{i}.mid", Path(tmp) / f"{i}.wav"
            src.write_bytes(midi)
            # -n no MIDI input, -i no shell, -q quiet, -F render to a file as fast as possible; load only
            # the samples the piece's instrument uses (half the time and a quarter of the memory)
            args = [command, "-n", "-i", "-q", "-o", "synth.dynamic-sample-loading=1", "-g", "0.5",
                    "-r", str(sample_rate), "-T", "wav", "-F", str(out), str(font), str(src)]
            running.append((subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out, midi))
            if len(running) >= at_once:
                finish(*running.pop(0))
        while running:
            finish(*running.pop(0))
    return signals


def render_or_none(midis: Sequence[bytes], sample_rate: int) -> list[np.ndarray] | None:
    """FluidSynth's renderings when it is the chosen renderer; None means: use the studio's synth."""
    if renderer() != "fluidsynth":
        return None
    try:
        return render_midi(midis, sample_rate)
    except (OSError, RuntimeError) as exc:  # a broken install: the candidates still sound
        warnings.warn(f"FluidSynth could not render ({exc}); using the studio's synth.", RuntimeWarning)
        return None
