"""Built-in voice scorers by name; each returns floats in [0, 1], higher is better.

intelligibility  1 - the character error rate of pocketsphinx's transcript against the line
                 (the source's L(y, y'); a take nobody understands scores 0); the transcript is
                 stored beside the take (``heard.py``) for the page
clarity          how clearly the take says its line: the recogniser's confidence in the line forced onto
                 the take (continuous where intelligibility ties)
naturalness      DNSMOS's overall quality (MOS 1-5 mapped to 0-1)
pace             speaking rate (syllables per second, first sound to last) against options['syllables_per_second'] (default 3.5)
pitch_range      expressiveness: the pitch span (5th-95th percentile) against options['semitones'] (default 10)
likeness         closeness to a reference clip, options['reference'] (a WAV path): timbre and pitch level
preference       a logistic model on the takes' prosody, fit to the artist's hand decisions

Options come from ``ScoringContext.options`` (a preset's scorer table or ``--scorer name:key=value``).
The recogniser and DNSMOS answers are cached on disk by the WAV's content.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import StudioError
from ...medium import Candidate, ScoringContext
from ...scoring import fit_preference
from .features import embed, line_of, prosody, timbre_of, wav_of


def intelligibility(ctx: ScoringContext):
    """Rewards a take the recogniser understands: 1 - the character error rate of pocketsphinx's
    transcript against the line, floored at 0."""
    from .heard import store_transcript
    from .recognise import cached, character_error_rate, transcribe

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            wav = wav_of(c)
            heard = cached("transcript", wav, transcribe)
            store_transcript(wav, heard)  # beside the take, for the page (Medium.card_detail)
            out.append(float(max(0.0, 1.0 - character_error_rate(line_of(c), heard))))
        return out

    return score


def clarity(ctx: ScoringContext):
    """Rewards a take that says its line clearly: the recogniser's line forced onto the take, as the
    geometric mean per frame of P(the line's sound) / P(the best sound) (a goodness of pronunciation;
    continuous where intelligibility ties: 15 of 16 built-in takes of one line were all understood).  It
    favours unhurried readings: on the built-in voice it rose with a take's length (r 0.7-0.8)."""
    import hashlib

    from .recognise import cached
    from .recognise import clarity as said_clearly

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            line = line_of(c)
            kind = "clarity-" + hashlib.sha1(line.encode()).hexdigest()[:16]  # a take is scored against its line
            out.append(float(cached(kind, wav_of(c), lambda audio, rate: said_clearly(line, audio, rate))))
        return out

    return score


def naturalness(ctx: ScoringContext):
    """Rewards clean, natural-sounding speech: DNSMOS's overall opinion score (1 to 5) as (MOS - 1) / 4."""
    from .recognise import cached, overall_quality

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [float(np.clip((cached("dnsmos", wav_of(c), overall_quality) - 1.0) / 4.0, 0.0, 1.0))
                for c in candidates]

    return score


def pace(ctx: ScoringContext):
    """Rewards reading at options['syllables_per_second'] (default 3.5): exp(-|ln(rate / target)| / 0.3),
    1 at the target and 0.5 about 23% off it."""
    target = float(ctx.options.get("syllables_per_second", 3.5))
    if target <= 0:
        raise StudioError("The pace scorer's syllables_per_second must be positive.")

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [float(math.exp(-abs(math.log(max(prosody(c)["rate"], 1e-3) / target)) / 0.3)) for c in candidates]

    return score


def pitch_range(ctx: ScoringContext):
    """Rewards lively intonation: a pitch span (5th to 95th percentile) near options['semitones'] (default 10),
    exp(-|span - target| / 5); a flat reading scores low."""
    target = float(ctx.options.get("semitones", 10.0))

    def score(candidates: Sequence[Candidate]) -> list[float]:
        return [float(math.exp(-abs(prosody(c)["pitch_range"] - target) / 5.0)) for c in candidates]

    return score


def likeness(ctx: ScoringContext):
    """Rewards sounding like the reference clip options['reference'] (a WAV): exp(-timbre distance / 0.5)
    x exp(-|pitch level difference| / 6 semitones)."""
    reference = ctx.options.get("reference")
    if not reference:
        raise StudioError("The likeness scorer needs options['reference'], the path of a WAV clip of the voice to match.")
    path = Path(str(reference)).expanduser()
    if not path.is_file():
        raise StudioError(f"The likeness reference clip {path} does not exist.")
    from .audio import pitch_track, read_wav

    try:
        audio, rate = read_wav(path)
    except Exception:
        raise StudioError(f"The likeness reference {path} is not an audio file soundfile can read.") from None
    target_timbre = timbre_of(audio, rate)
    voiced = pitch_track(audio, rate, hop=max(1, 256 * rate // 22050))
    voiced = voiced[voiced > 0]
    target_pitch = float(np.median(12 * np.log2(voiced / 100.0))) if len(voiced) else 0.0

    def score(candidates: Sequence[Candidate]) -> list[float]:
        out = []
        for c in candidates:
            p = prosody(c)
            distance = float(np.linalg.norm(np.asarray(p["timbre"]) - target_timbre) / math.sqrt(len(target_timbre)))
            out.append(float(math.exp(-distance / 0.5) * math.exp(-abs(p["pitch_median"] - target_pitch) / 6.0)))
        return out

    return score


def _features(ctx: ScoringContext, candidates) -> np.ndarray:
    return np.asarray(ctx.embed(candidates) if ctx.embed else embed(candidates), dtype=np.float64)


def preference(ctx: ScoringContext):
    """Rewards what the artist kept by hand: a logistic model on the prosody features, fit to the hand
    decisions (0.5 for all until there is at least one keep and one drop)."""
    decided = [c for c in ctx.decided if c.hand_decided]
    labels = np.array([1.0 if c.decision == "hand_accepted" else 0.0 for c in decided])
    model = fit_preference(_features(ctx, decided), labels) if len(set(labels.tolist())) == 2 else None

    def score(candidates: Sequence[Candidate]) -> list[float]:
        if model is None or not len(candidates):
            return [0.5] * len(candidates)
        return [float(p) for p in model(_features(ctx, candidates))]

    return score


SCORERS = {"intelligibility": intelligibility, "clarity": clarity, "naturalness": naturalness, "pace": pace, "pitch_range": pitch_range,
           "likeness": likeness, "preference": preference}
