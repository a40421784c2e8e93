"""The studio's own small synthesizer: a piece to a WAV the browser can play without FluidSynth.

Additive timbres (a sum of harmonics) shaped by ADSR envelopes, mixed in numpy and
normalised to a peak of -1 dBFS, so nothing ever clips.  Each voice plays the timbre
nearest its General MIDI program (``timbre_of_program``).
"""
from __future__ import annotations

import io

import numpy as np

SAMPLE_RATE = 22050
PEAK = 10 ** (-1 / 20)  # -1 dBFS
TAIL_SECONDS = 0.6  # room for the last release

# harmonic amplitudes, per-harmonic decay (1/s, 0 = sustained), vibrato depth, ADSR (s, s, level, s)
TIMBRES = {
    "piano": dict(harmonics=[1.0, 0.5, 0.32, 0.2, 0.1, 0.05], decay=1.6, vibrato=0.0, adsr=(0.005, 0.35, 0.35, 0.18)),
    "flute": dict(harmonics=[1.0, 0.22, 0.06], decay=0.0, vibrato=0.004, adsr=(0.06, 0.1, 0.85, 0.12)),
    "organ": dict(harmonics=[1.0, 0.65, 0.42, 0.25, 0.16, 0.08], decay=0.0, vibrato=0.0, adsr=(0.012, 0.05, 0.95, 0.06)),
    "fiddle": dict(harmonics=[1.0 / h for h in range(1, 13)], decay=0.0, vibrato=0.006, adsr=(0.04, 0.08, 0.8, 0.1)),
    "brass": dict(harmonics=[1.0 / h ** 0.7 for h in range(1, 9)], decay=0.0, vibrato=0.002, adsr=(0.03, 0.08, 0.8, 0.08)),
}


def timbre_of_program(program: int) -> str:
    """The additive timbre nearest a General MIDI program."""
    if 16 <= program <= 23 or 52 <= program <= 55:
        return "organ"  # organs, accordions, choirs
    if 40 <= program <= 51:
        return "fiddle"  # strings
    if 56 <= program <= 71:
        return "brass"  # brass and reeds
    if 72 <= program <= 79 or program == 109:
        return "flute"  # pipes (and the bagpipe's chanter)
    return "piano"


def _envelope(n_hold: int, sr: int, adsr: tuple[float, float, float, float]) -> np.ndarray:
    attack, decay, sustain, release = (max(1, int(x * sr)) if i != 2 else x for i, x in enumerate(adsr))
    held = np.full(n_hold, sustain, dtype=np.float64)
    a = min(attack, n_hold)
    held[:a] = np.linspace(0.0, 1.0, a, endpoint=False)
    d = min(decay, max(0, n_hold - a))
    held[a:a + d] = np.linspace(1.0, sustain, d, endpoint=False)
    level = held[-1] if n_hold else 0.0
    return np.concatenate([held, np.linspace(level, 0.0, release)])


def render_notes(notes, seconds_per_step: float, timbres, sr: int = SAMPLE_RATE) -> np.ndarray:
    """notes: (start, length, pitch, velocity, voice) in steps, ``timbres`` one name per voice; a
    float32 mono signal, peak at -1 dBFS."""
    end = max((n[0] + n[1] for n in notes), default=0)
    out = np.zeros(int((end * seconds_per_step + TAIL_SECONDS) * sr) + 1, dtype=np.float64)
    for start, length, pitch, velocity, voice in notes:
        spec = TIMBRES[timbres[voice]]
        freq = 440.0 * 2 ** ((pitch - 69) / 12)
        env = _envelope(int(length * seconds_per_step * sr), sr, spec["adsr"])
        t = np.arange(len(env)) / sr
        phase = 2 * np.pi * freq * t
        if spec["vibrato"]:
            phase += spec["vibrato"] * freq / 5.5 * np.sin(2 * np.pi * 5.5 * t)  # 5.5 Hz vibrato
        wave = np.zeros_like(t)
        for h, amp in enumerate(spec["harmonics"], start=1):
            if h * freq >= sr / 2:  # above Nyquist it would alias
                break
            partial = amp * np.sin(h * phase)
            if spec["decay"]:
                partial *= np.exp(-spec["decay"] * h * 0.5 * t)
            wave += partial
        begin = int(start * seconds_per_step * sr)
        piece = wave * env * (velocity / 127.0)
        out[begin:begin + len(piece)] += piece[:len(out) - begin]
    peak = np.abs(out).max()
    if peak > 0:
        out *= PEAK / peak
    return out.astype(np.float32)


def render_piece(piece, sr: int = SAMPLE_RATE) -> np.ndarray:
    seconds_per_step = 60.0 / piece.bpm / 4  # a step is a sixteenth; the tempo counts quarters
    return render_notes(piece.notes(), seconds_per_step, [timbre_of_program(p) for p in piece.programs], sr)


def wav_bytes(signal: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV; the signal is clipped to the peak first so rounding cannot reach full scale."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(signal, -PEAK, PEAK), sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
