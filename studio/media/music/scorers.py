"""Built-in music scorers by name; each returns floats in [0, 1], higher is better.

Each factory's docstring starts with a one-line description (``describe()`` lists them).
Harmony scorers read every voice of the MIDI (``voice_leading``, ``voice_range``, ``consonance``,
``cadence``, ``stability``); melody scorers the top voice (``key``, ``rhythm``, ``smoothness``,
``range``, ``density``); audio scorers the WAV.  Options come from ``ScoringContext.options``
(a preset's scorer table).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...errors import StudioError
from ...medium import Candidate, ScoringContext
from ...scoring import fit_preference
from .features import (MAJOR_PROFILE, MINOR_PROFILE, audio_features, embed, key_correlations, melody, piece_of,
                       read_audio, sonorities)
from .vocab import BEAT_LENGTH, KEY_ALIASES, KEYS, VOICES


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


def _per_piece(measure):
    """A scorer factory that applies ``measure(piece) -> float`` to each candidate's MIDI."""

    def factory(ctx: ScoringContext):
        def score(candidates: Sequence[Candidate]) -> list[float]:
            return [float(np.clip(measure(piece_of(c)), 0.0, 1.0)) for c in candidates]

        return score

    factory.__doc__ = measure.__doc__
    return factory


def parallel_share(piece) -> float:
    """Rewards clean voice leading: 1 minus 4 times the share of voice pairs moving from one onset
    to the next that move in parallel fifths or octaves (0 when a quarter or more do)."""
    moving = parallel = 0
    previous = None
    for _, sounding, _ in sonorities(piece):
        if previous is not None:
            for i in range(VOICES):
                for j in range(i + 1, VOICES):
                    a0, b0, a1, b1 = previous[i], previous[j], sounding[i], sounding[j]
                    if None in (a0, b0, a1, b1) or (a0 == a1 and b0 == b1):
                        continue
                    moving += 1
                    same_way = (a1 - a0) * (b1 - b0) > 0
                    if same_way and (a0 - b0) % 12 in (0, 7) and (a0 - b0) % 12 == (a1 - b1) % 12:
                        parallel += 1
        previous = sounding
    return 1.0 - 4.0 * parallel / moving if moving else 0.5


# each voice's comfortable range, by family: a chorale's SATB, a dance's melody, chords and bass
RANGES = {"chorale": [(60, 81), (53, 74), (48, 69), (40, 62)],
          "dance": [(55, 88), (48, 74), (45, 72), (33, 57)]}


def in_range(piece) -> float:
    """Rewards each voice in its range (chorale: S C4-A5, A F3-D5, T C3-A4, B E2-D4; dances: melody
    G3-E6, chords A2-D5, bass A1-A3): the share of notes inside times the share of onsets where no
    voice crosses the one above it."""
    ranges = RANGES["chorale" if piece.tags["style"] == "chorale" else "dance"]
    inside = total = 0
    for v, notes in enumerate(piece.voice_notes()):
        for _, _, pitch in notes:
            total += 1
            inside += ranges[v][0] <= pitch <= ranges[v][1]
    if not total:
        return 0.0
    onsets = sonorities(piece)
    crossed = sum(1 for _, s, _ in onsets
                  if any(s[v] is not None and s[v + 1] is not None and s[v] < s[v + 1] for v in range(VOICES - 1)))
    return inside / total * (1 - crossed / max(1, len(onsets)))


DISSONANT = {1, 2, 6, 10, 11}  # seconds, tritone, sevenths (a fourth only against the bass)


def strong_beat_consonance(piece) -> float:
    """Rewards consonant harmony on the beats: at onsets on a beat with two or more notes
    sounding, the share of note pairs that are consonant (a fourth over the bass counts as
    dissonant); 0 when nothing sounds together on a beat."""
    beat = BEAT_LENGTH[piece.tags["meter"]]
    good = pairs = 0
    for t, sounding, _ in sonorities(piece):
        if t % beat:
            continue
        pitches = sorted(p for p in sounding if p is not None)
        for a in range(len(pitches)):
            for b in range(a + 1, len(pitches)):
                interval = (pitches[b] - pitches[a]) % 12
                pairs += 1
                good += not (interval in DISSONANT or (interval == 5 and a == 0))
    return good / pairs if pairs else 0.0


def closing_cadence(piece) -> float:
    """Rewards a closing cadence in the piece's key: the bass's last note on the tonic (0.4), the
    melody's last note on the tonic (0.3), the bass coming to it from the dominant or subdominant
    (0.3)."""
    tonic = KEYS.index(piece.tags["key"])
    voices = piece.voice_notes()
    melody_notes, bass = voices[0], voices[-1] or next((v for v in reversed(voices) if v), [])
    if not melody_notes or not bass:
        return 0.0
    score = 0.4 * (bass[-1][2] % 12 == tonic) + 0.3 * (melody_notes[-1][2] % 12 == tonic)
    if len(bass) > 1 and bass[-1][2] % 12 == tonic and (bass[-2][2] - tonic) % 12 in (7, 5):
        score += 0.3
    return score


def tonal_stability(piece) -> float:
    """Rewards staying in the piece's key: the mean over two-bar stretches of the correlation of
    all voices' duration-weighted pitch classes with the key's Krumhansl-Kessler profile."""
    tonic = KEYS.index(piece.tags["key"])
    profile = np.roll(MINOR_PROFILE if piece.tags["mode"] in ("minor", "dorian") else MAJOR_PROFILE, tonic)
    span = 2 * piece.bar_length
    stretches = [np.zeros(12) for _ in range(max(1, -(-piece.length // span)))]
    for notes in piece.voice_notes():
        for start, length, pitch in notes:
            stretches[min(start // span, len(stretches) - 1)][pitch % 12] += length
    rs = [np.corrcoef(h, profile)[0, 1] for h in stretches if h.std() > 0]
    return float(np.mean(np.clip(rs, 0, 1))) if rs else 0.0


voice_leading = _per_piece(parallel_share)
voice_range = _per_piece(in_range)
consonance = _per_piece(strong_beat_consonance)
cadence = _per_piece(closing_cadence)
stability = _per_piece(tonal_stability)


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


SCORERS = {"voice_leading": voice_leading, "voice_range": voice_range, "consonance": consonance,
           "cadence": cadence, "stability": stability, "key": key, "rhythm": rhythm, "smoothness": smoothness, "range": range_, "density": density,
           "favourites": favourites, "preference": preference, "loudness": loudness,
           "brightness": brightness, "tonality": tonality, "clap": clap}


def describe() -> dict[str, str]:
    """Each built-in scorer's description on one line (its docstring)."""
    return {name: " ".join((factory.__doc__ or "").split()) for name, factory in SCORERS.items()}
