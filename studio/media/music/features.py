"""Features of a candidate: what the scorers measure and ``embed`` returns.

Symbolic: the melody's pitch-class histogram (12), interval histogram (13: |interval| 0..11,
12+) and rhythm (8 duration shares, on-beat share, notes per bar / 16), then the harmony's
interval classes over the bass at onsets (12) and how many voices sound at an onset (4 shares):
51 numbers.  Audio: 24 log-spaced band energies, spectral centroid, flatness, loudness.
"""
from __future__ import annotations

import functools

import numpy as np

from ...errors import StudioError
from .vocab import BEAT_LENGTH, VOICES

DURATION_BINS = [1, 2, 3, 4, 6, 8, 12, 16]  # sixteenths; a note counts in the nearest bin

# Krumhansl-Kessler key profiles (probe-tone ratings), C major and C minor
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@functools.lru_cache(maxsize=512)
def _cached_piece(path: str, stamp: tuple[int, int]):
    from .events import read_midi

    return read_midi(path, name=path)


def _piece(path: str):
    """A parsed MIDI file, cached by path, modification time and size (scorers read it often)."""
    import os

    try:
        info = os.stat(path)
    except OSError:
        raise StudioError(f"The MIDI file {path} is missing.") from None
    return _cached_piece(path, (info.st_mtime_ns, info.st_size))


def piece_of(candidate):
    path = candidate.files.get("mid") or (candidate.path if candidate.path.endswith(".mid") else None)
    if path is None:
        raise StudioError(f"Candidate {candidate.id} has no MIDI file; symbolic scorers need one.")
    return _piece(path)


def melody(candidate):
    """(pitches, durations, onsets within the bar, n_bars, meter) of a candidate's top voice."""
    piece = piece_of(candidate)
    notes = piece.voice_notes()[0]
    return (np.array([p for _, _, p in notes], dtype=np.int64), np.array([n for _, n, _ in notes], dtype=np.int64),
            np.array([s % piece.bar_length for s, _, _ in notes], dtype=np.int64), len(piece.bars),
            piece.tags["meter"])


def sonorities(piece) -> list[tuple[int, tuple, tuple]]:
    """At every onset of any voice: (time, sounding pitch or None per voice, which voices strike)."""
    voices = piece.voice_notes()
    starts = sorted({s for notes in voices for s, _, _ in notes})
    out = []
    index = [0] * VOICES
    for t in starts:
        sounding, struck = [], []
        for v, notes in enumerate(voices):
            while index[v] < len(notes) and notes[index[v]][0] + notes[index[v]][1] <= t:
                index[v] += 1
            note = notes[index[v]] if index[v] < len(notes) and notes[index[v]][0] <= t else None
            sounding.append(note[2] if note else None)
            struck.append(bool(note and note[0] == t))
        out.append((t, tuple(sounding), tuple(struck)))
    return out


def harmony_features(piece) -> np.ndarray:
    """Interval classes above the lowest sounding note at onsets (12) and voice-count shares (4)."""
    classes, counts = np.zeros(12), np.zeros(VOICES)
    for _, sounding, _ in sonorities(piece):
        pitches = sorted(p for p in sounding if p is not None)
        if pitches:
            counts[len(pitches) - 1] += 1
            for p in pitches[1:]:
                classes[(p - pitches[0]) % 12] += 1
    return np.concatenate([classes / max(1.0, classes.sum()), counts / max(1.0, counts.sum())])


def key_correlations(pitches, durations) -> np.ndarray:
    """Pearson r of the duration-weighted pitch-class profile with the 24 keys (12 major, 12 minor)."""
    profile = np.zeros(12)
    np.add.at(profile, pitches % 12, durations)
    if profile.std() == 0:
        return np.zeros(24)
    out = []
    for base in (MAJOR_PROFILE, MINOR_PROFILE):
        for tonic in range(12):
            out.append(np.corrcoef(profile, np.roll(base, tonic))[0, 1])
    return np.array(out)


def symbolic_features(candidate) -> np.ndarray:
    pitches, durations, onsets, n_bars, meter = melody(candidate)
    pcs = np.zeros(12)
    intervals = np.zeros(13)
    rhythm = np.zeros(len(DURATION_BINS) + 2)
    if len(pitches):
        np.add.at(pcs, pitches % 12, durations)
        pcs /= pcs.sum()
        steps = np.minimum(np.abs(np.diff(pitches)), 12)
        if len(steps):
            np.add.at(intervals, steps, 1)
            intervals /= intervals.sum()
        for d in durations:
            rhythm[int(np.argmin([abs(b - d) for b in DURATION_BINS]))] += 1 / len(durations)
        rhythm[-2] = float(np.mean(onsets % BEAT_LENGTH[meter] == 0))
        rhythm[-1] = len(pitches) / max(1, n_bars) / 16
    return np.concatenate([pcs, intervals, rhythm, harmony_features(piece_of(candidate))])


def read_audio(candidate):
    import soundfile

    path = candidate.files.get("wav") or (candidate.path if candidate.path.endswith(".wav") else None)
    if path is None:
        raise StudioError(f"Candidate {candidate.id} has no WAV file; audio scorers need one.")
    signal, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return signal.mean(axis=1), rate


def audio_features(candidate) -> np.ndarray:
    signal, rate = read_audio(candidate)
    n_fft = 2048
    if len(signal) < n_fft:
        signal = np.pad(signal, (0, n_fft - len(signal)))
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::n_fft // 2] * np.hanning(n_fft)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0) + 1e-12
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    edges = np.geomspace(40, rate / 2, 25)
    bands = np.array([power[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:])])
    bands = np.log10(bands / bands.sum() + 1e-9) / 9 + 1  # 0..1
    centroid = float((freqs * power).sum() / power.sum()) / (rate / 2)
    flatness = float(np.exp(np.mean(np.log(power))) / np.mean(power))
    rms = float(np.sqrt(np.mean(signal ** 2)))
    loudness = (20 * np.log10(rms + 1e-9) + 60) / 60  # -60..0 dBFS to 0..1
    return np.concatenate([bands, [centroid, flatness, loudness]])


def embed(candidates) -> np.ndarray:
    if not candidates:
        return np.zeros((0, 51))
    symbolic = all(c.files.get("mid") or c.path.endswith(".mid") for c in candidates)
    rows = [symbolic_features(c) if symbolic else audio_features(c) for c in candidates]
    return np.vstack(rows).astype(np.float64)
