"""Built-in music scorers by name; each returns floats in [0, 1], higher is better.

Options come from ``ScoringContext.options`` (a preset's scorer table).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...errors import StudioError
from ...medium import Candidate, ScoringContext
from ...scoring import fit_preference
from .features import audio_features, embed, key_correlations, melody, read_audio
from .vocab import BEAT_LENGTH, KEY_ALIASES, KEYS


def key(ctx: ScoringContext):
    """Rewards a melody whose duration-weighted pitch classes fit one key (Krumhansl-Kessler
    profiles): the best Pearson r over the 24 keys, or over the key in options['key'] ("D minor")."""
    target = None
    if ctx.options.get("key"):
        name, _, mode = str(ctx.options["key"]).partition(" ")
        if name not in KEY_ALIASES:
            raise StudioError(f"The key scorer's key '{ctx.options['key']}' is not a key like 'D minor'.")
        target = KEYS.index(KEY_ALIASES[name]) + (12 if mode.strip().lower() == "minor" else 0)

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            pitches, durations, *_ = melody(c)
            r = key_correlations(pitches, durations)
            out.append(float(np.clip(r[target] if target is not None else r.max(), 0.0, 1.0)))
        return out

    return score


def rhythm(ctx: ScoringContext):
    """Rewards rhythmic regularity: notes that start on the beat, few distinct durations, and
    bars that repeat one another's rhythm."""

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            pitches, durations, onsets, n_bars, meter = melody(c)
            if len(pitches) == 0:
                out.append(0.0)
                continue
            on_beat = float(np.mean(onsets % (BEAT_LENGTH[meter] // 2 or 1) == 0))
            _, counts = np.unique(durations, return_counts=True)
            p = counts / counts.sum()
            evenness = 1.0 - float(-(p * np.log(p)).sum() / np.log(8))
            out.append(float(np.clip(0.5 * on_beat + 0.5 * evenness, 0.0, 1.0)))
        return out

    return score


# how a melodic interval (semitones) sounds to the smoothness scorer
_INTERVAL_WEIGHT = {0: 0.6, 1: 1.0, 2: 1.0, 3: 0.7, 4: 0.6, 5: 0.35, 6: 0.1, 7: 0.3}


def smoothness(ctx: ScoringContext):
    """Rewards stepwise motion: steps (1-2 semitones) score 1, thirds 0.6-0.7, fourths and fifths
    about 0.3, leaps beyond a fifth 0; the mean over the melody's intervals."""

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            pitches = melody(c)[0]
            steps = np.abs(np.diff(pitches))
            out.append(float(np.mean([_INTERVAL_WEIGHT.get(int(s), 0.0) for s in steps])) if len(steps) else 0.0)
        return out

    return score


def range_(ctx: ScoringContext):
    """Rewards a pitch span near options['semitones'] (default 12, an octave); exp(-|span - target| / 6)."""
    target = float(ctx.options.get("semitones", 12))

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            pitches = melody(c)[0]
            span = float(pitches.max() - pitches.min()) if len(pitches) else 0.0
            out.append(float(np.exp(-abs(span - target) / 6)))
        return out

    return score


def density(ctx: ScoringContext):
    """Rewards a note density near options['notes_per_bar'] (default 4); exp(-|d - target| / target)."""
    target = float(ctx.options.get("notes_per_bar", 4))
    if target <= 0:
        raise StudioError("The density scorer's notes_per_bar must be positive.")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            pitches, _, _, n_bars, _ = melody(c)
            out.append(float(np.exp(-abs(len(pitches) / max(1, n_bars) - target) / target)))
        return out

    return score


def _features(ctx: ScoringContext, candidates):
    return np.asarray(ctx.embed(candidates) if ctx.embed else embed(candidates), dtype=np.float64)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return a @ b.T


def favourites(ctx: ScoringContext):
    """Rewards likeness to the accepted favourites: the best cosine similarity of the candidate's
    features to any favourite's (0.5 for all when nothing is accepted yet)."""
    fav = _features(ctx, ctx.favourites) if ctx.favourites else None

    def score(candidates: Sequence[Candidate]) -> list[float]:
        if fav is None or not len(candidates):
            return [0.5] * len(candidates)
        sims = _cosine(_features(ctx, candidates), fav).max(axis=1)
        return [float(np.clip(s, 0.0, 1.0)) for s in sims]

    return score


def preference(ctx: ScoringContext):
    """Rewards what the artist accepted by hand: a logistic model on the features, fit to the
    hand decisions (0.5 for all until there is at least one accept and one reject)."""
    decided = [c for c in ctx.decided if c.hand_decided]
    labels = np.array([1.0 if c.decision == "hand_accepted" else 0.0 for c in decided])
    model = None
    if len(set(labels.tolist())) == 2:
        model = fit_preference(_features(ctx, decided), labels)

    def score(candidates: Sequence[Candidate]) -> list[float]:
        if model is None or not len(candidates):
            return [0.5] * len(candidates)
        return [float(p) for p in model(_features(ctx, candidates))]

    return score


def loudness(ctx: ScoringContext):
    """Rewards an RMS level near options['dbfs'] (default -18 dBFS); exp(-|level - target| / 10)."""
    target = float(ctx.options.get("dbfs", -18.0))

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            signal, _ = read_audio(c)
            level = 20 * np.log10(float(np.sqrt(np.mean(signal ** 2))) + 1e-9)
            out.append(float(np.exp(-abs(level - target) / 10)))
        return out

    return score


def brightness(ctx: ScoringContext):
    """Rewards a spectral centroid near options['hz'] (default 1500 Hz), on a log-frequency scale."""
    target = float(ctx.options.get("hz", 1500.0))

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            _, rate = read_audio(c)
            centroid = audio_features(c)[-3] * rate / 2
            out.append(float(np.exp(-abs(np.log2(max(centroid, 1.0) / target)))))
        return out

    return score


def tonality(ctx: ScoringContext):
    """Rewards pitched, tonal sound over noise: 1 minus the spectral flatness."""

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [float(np.clip(1.0 - audio_features(c)[-2], 0.0, 1.0)) for c in candidates]

    return score


def clap(ctx: ScoringContext):
    """Rewards agreement between the audio and options['text'] (else the candidate's prompt) by a
    CLAP model from options['model'] (a local folder): cosine similarity mapped from [-1, 1] to [0, 1]."""
    folder = ctx.options.get("model")
    if not folder:
        raise StudioError("The clap scorer needs options['model'], the folder of a CLAP model.")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        import torch
        from scipy.signal import resample_poly
        from transformers import ClapModel, ClapProcessor

        model = ClapModel.from_pretrained(folder, use_safetensors=True).eval()
        processor = ClapProcessor.from_pretrained(folder)
        rate = processor.feature_extractor.sampling_rate
        out = []
        for c in candidates:
            signal, sr = read_audio(c)
            if sr != rate:
                from math import gcd

                g = gcd(sr, rate)
                signal = resample_poly(signal, rate // g, sr // g)
            inputs = processor(text=[ctx.options.get("text") or c.prompt], audios=[signal], sampling_rate=rate,
                               return_tensors="pt", padding=True)
            with torch.no_grad():
                a = model.get_audio_features(input_features=inputs["input_features"])
                t = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            out.append(float((torch.nn.functional.cosine_similarity(a, t).item() + 1) / 2))
        return out

    return score


SCORERS = {"key": key, "rhythm": rhythm, "smoothness": smoothness, "range": range_, "density": density,
           "favourites": favourites, "preference": preference, "loudness": loudness,
           "brightness": brightness, "tonality": tonality, "clap": clap}
