"""What a take sounds like, in numbers: pace, pitch, pauses and timbre, read from its WAV.

``prosody`` feeds the pace and pitch-range scorers, ``embed`` the variety figures and the
learned preference, ``timbre`` the likeness to a reference clip.  Cached per file.
"""
from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path

import numpy as np

from ...errors import StudioError
from ...medium import Candidate

VOWEL_GROUPS = re.compile(r"[aeiouy]+")


def syllables(line: str) -> int:
    """A spelling estimate: vowel groups per word, a silent final e dropped, at least one per word."""
    total = 0
    for word in re.findall(r"[a-z']+", line.lower()):
        count = len(VOWEL_GROUPS.findall(word))
        if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and count > 1:
            count -= 1
        total += max(1, count)
    return total


def wav_of(candidate: Candidate) -> str:
    path = candidate.files.get("wav") or (candidate.path if candidate.path.endswith(".wav") else None)
    if not path or not Path(path).exists():
        raise StudioError(f"Candidate {candidate.id} has no WAV file to listen to.")
    return path


def line_of(candidate: Candidate) -> str:
    """The line the take reads (its TXT, else the prompt without a style)."""
    txt = candidate.files.get("txt")
    if txt and Path(txt).exists():
        return Path(txt).read_text(encoding="utf-8").strip()
    from .reading import STYLE_PREFIX

    match = STYLE_PREFIX.match(candidate.prompt)
    return match.group(2).strip() if match else candidate.prompt.strip()


@functools.lru_cache(maxsize=2048)
def _analyse(path: str, stamp: float) -> dict:
    from .audio import HOP, read_wav, pitch_track

    audio, rate = read_wav(path)
    hop = max(1, HOP * rate // 22050)
    pitch = pitch_track(audio, rate, hop=hop)
    frames = max(1, len(audio) // hop)
    energy = np.array([np.sqrt(np.mean(audio[i * hop:(i + 1) * hop] ** 2)) for i in range(frames)]) if len(audio) else np.zeros(1)
    loud = energy > 0.06 * (np.percentile(energy, 95) if len(energy) else 0.0)
    first, last = (np.nonzero(loud)[0][[0, -1]] if loud.any() else (0, 0))
    inside = loud[first:last + 1]
    speech_seconds = max(1e-3, inside.sum() * hop / rate)
    span_seconds = max(1e-3, len(inside) * hop / rate)
    voiced = pitch[pitch > 0]
    semitones = 12 * np.log2(voiced / 100.0) if len(voiced) else np.zeros(1)
    return {"seconds": len(audio) / rate, "speech_seconds": float(speech_seconds), "span_seconds": float(span_seconds),
            "pause_share": float(1 - inside.mean()) if len(inside) else 0.0,
            "voiced_share": float(len(voiced) / max(1, len(pitch))),
            "pitch_median": float(np.median(semitones)), "pitch_std": float(np.std(semitones)),
            "pitch_range": float(np.percentile(semitones, 95) - np.percentile(semitones, 5)) if len(voiced) > 2 else 0.0,
            "timbre": timbre_of(audio, rate).tolist()}


def prosody(candidate: Candidate) -> dict:
    """Seconds, speech seconds (loud frames), span seconds (first sound to last), pause share, voiced share,
    pitch median/std/range (semitones re 100 Hz), syllables, and the speaking rate: syllables per second from
    the first sound to the last.  Pauses inside the line count, as in words a minute: counting loud frames
    only read the built-in voice's quiet consonants as pauses and put it at 5-7 syllables a second when it
    reads a line in the time a person takes at 3.7-3.9."""
    path = wav_of(candidate)
    found = dict(_analyse(path, os.path.getmtime(path)))
    found["syllables"] = syllables(line_of(candidate))
    found["rate"] = found["syllables"] / found["span_seconds"]
    return found


def timbre_of(audio: np.ndarray, rate: int) -> np.ndarray:
    """Mean and spread of 12 mel-cepstral coefficients over the loud frames (a voice's colour)."""
    import torch

    from .audio import SAMPLE_RATE, log_mel

    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(rate, SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, rate // g)
    if len(audio) < 2048:
        return np.zeros(24)
    mel = log_mel(torch.as_tensor(audio, dtype=torch.float32)).numpy()
    loud = mel.mean(axis=1) > np.percentile(mel.mean(axis=1), 40)
    mel = mel[loud] if loud.sum() > 2 else mel
    n = mel.shape[1]
    basis = np.cos(np.pi / n * (np.arange(n) + 0.5)[None, :] * np.arange(1, 13)[:, None])  # DCT-II, c1..c12
    cepstra = mel @ basis.T / n
    return np.concatenate([cepstra.mean(axis=0), cepstra.std(axis=0)])


# typical values of the built-in voice, so the embedding's numbers are centred and of one scale
CENTRE = {"rate": (4.5, 1.5), "pitch_median": (0.0, 4.0), "pitch_std": (2.5, 1.5), "pitch_range": (8.0, 4.0),
          "voiced_share": (0.4, 0.2), "pause_share": (0.15, 0.1), "speech_seconds": (3.0, 2.0)}


def embed(candidates) -> np.ndarray:
    """(n, 7) centred prosody per take: how it is read, not what it says."""
    rows = []
    for c in candidates:
        p = prosody(c)
        rows.append([(p[k] - mean) / scale for k, (mean, scale) in CENTRE.items()])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(CENTRE))


def is_copy(take: Candidate, kept: Candidate) -> bool:
    """Same line, read at the same pace and pitch (within 3% and a third of a semitone)."""
    if line_of(take).lower() != line_of(kept).lower():
        return False
    a, b = prosody(take), prosody(kept)
    return (abs(math.log(a["rate"] / b["rate"])) < 0.03 and abs(a["pitch_median"] - b["pitch_median"]) < 0.33
            and abs(a["pitch_range"] - b["pitch_range"]) < 0.5)
