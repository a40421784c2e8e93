"""The studio's own small synthesizer: a melody to a WAV the browser can play.

Additive timbres (a sum of harmonics) shaped by ADSR envelopes, mixed in numpy and
normalised to a peak of -1 dBFS, so nothing ever clips.  Each style has a timbre; a
setting can name another.
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
STYLE_TIMBRE = {"waltz": "piano", "march": "brass", "lullaby": "flute", "reel": "fiddle", "chorale": "organ"}


def timbre_for(style: str, timbre: str = "auto") -> str:
    return STYLE_TIMBRE.get(style, "piano") if timbre == "auto" else timbre


def _envelope(n_hold: int, sr: int, adsr: tuple[float, float, float, float]) -> np.ndarray:
    attack, decay, sustain, release = (max(1, int(x * sr)) if i != 2 else x for i, x in enumerate(adsr))
    held = np.full(n_hold, sustain, dtype=np.float64)
    a = min(attack, n_hold)
    held[:a] = np.linspace(0.0, 1.0, a, endpoint=False)
    d = min(decay, max(0, n_hold - a))
    held[a:a + d] = np.linspace(1.0, sustain, d, endpoint=False)
    level = held[-1] if n_hold else 0.0
    return np.concatenate([held, np.linspace(level, 0.0, release)])


def render_notes(notes, seconds_per_step: float, timbre: str, sr: int = SAMPLE_RATE) -> np.ndarray:
    """notes: (start, length, pitch, velocity) in steps; a float32 mono signal, peak at -1 dBFS."""
    spec = TIMBRES[timbre]
    end = max((s + n for s, n, _, _ in notes), default=0)
    out = np.zeros(int((end * seconds_per_step + TAIL_SECONDS) * sr) + 1, dtype=np.float64)
    for start, length, pitch, velocity in notes:
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


def render_piece(piece, timbre: str = "auto", sr: int = SAMPLE_RATE) -> np.ndarray:
    seconds_per_step = 60.0 / piece.tempo_bpm / 4  # a step is a sixteenth; the tempo counts quarters
    return render_notes(piece.notes(), seconds_per_step, timbre_for(piece.tags["style"], timbre), sr)


def wav_bytes(signal: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV; the signal is clipped to the peak first so rounding cannot reach full scale."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(signal, -PEAK, PEAK), sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
