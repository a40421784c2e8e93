"""What the curation and compare panels show, computed from the store without Gradio.

A card is a plain dict (so it can live in a ``gr.State``): the candidate's id, seed, files,
its combined score, P(accept) under the current rule and its decision.  Moving the threshold
or temperature re-decides from the stored scores: nothing is regenerated or rescored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import sampling
from ..engine import Studio
from ..medium import Candidate
from ..scoring import COMBINED

IMAGE_EXTS = ("png", "jpg", "jpeg", "webp")
AUDIO_EXTS = ("wav", "mp3", "ogg", "flac")
MAX_TEXT_CHARS = 4000  # a card shows this much of a text candidate


def kind(files: dict[str, str]) -> str:
    """How to show a candidate, from its files: ``image``, ``audio`` (with ``mid`` a piano roll) or ``text``."""
    if any(ext in files for ext in IMAGE_EXTS):
        return "image"
    if any(ext in files for ext in AUDIO_EXTS) or "mid" in files:
        return "audio"
    return "text"


def card(candidate: Candidate, probability: float | None) -> dict[str, Any]:
    files = dict(candidate.files) or {Path(candidate.path).suffix.lstrip("."): candidate.path}
    text = None
    if kind(files) == "text":
        try:
            text = Path(candidate.path).read_text(encoding="utf-8", errors="replace")[:MAX_TEXT_CHARS]
        except OSError:
            text = "(the file is missing)"
    return {"id": candidate.id, "seed": candidate.seed, "version": candidate.version, "kind": kind(files),
            "files": files, "text": text, "score": candidate.scores.get(COMBINED),
            "scores": {k: v for k, v in candidate.scores.items() if k != COMBINED},
            "p": probability, "decision": candidate.decision}


def caption(c: dict[str, Any]) -> str:
    score = "not scored" if c["score"] is None else f"score {c['score']:.3f}"
    p = "" if c["p"] is None else f" · P {c['p']:.2f}"
    return f"seed {c['seed']} · {score}{p} · {c['decision']}"


def probabilities(pool: Sequence[Candidate], threshold: float, temperature: float) -> list[float | None]:
    scores = [c.scores.get(COMBINED) for c in pool]
    known = [s for s in scores if s is not None]
    if not known:
        return [None] * len(pool)
    probs = iter(sampling.acceptance_probability(known, threshold, temperature).tolist())
    return [None if s is None else next(probs) for s in scores]


def latest_shown(studio: Studio, medium: str) -> list[str]:
    """The ids of the newest curation batch that holds candidates (what a fresh page shows)."""
    pool = studio.store.candidates(medium, purpose="curate")
    if not pool:
        return []
    newest = max(c.batch or 0 for c in pool)
    return [c.id for c in pool if (c.batch or 0) == newest]


def batch_view(studio: Studio, medium: str, shown: Sequence[str] | None, threshold: float,
               temperature: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The shown candidates' cards and their figures under the current rule.

    The app tracks the ids it shows rather than a batch number: generating a prompt and seed
    again finds the existing candidate, which keeps the batch it was first made in.
    """
    pool = studio.store.candidates(medium, ids=list(shown)) if shown else []
    probs = probabilities(pool, threshold, temperature)
    cards = [card(c, p) for c, p in zip(pool, probs)]
    accepted = sum(c.accepted for c in pool)
    known = [p for p in probs if p is not None]
    stats = {"n": len(pool), "accepted": accepted,
             "hand_accepted": sum(c.decision == "hand_accepted" for c in pool),
             "hand_rejected": sum(c.decision == "hand_rejected" for c in pool),
             "rate": accepted / len(pool) if pool else 0.0,
             "expected_rate": float(np.mean(known)) if known else None,
             "scores": [c.scores[COMBINED] for c in pool if COMBINED in c.scores],
             "accepted_mask": [c.accepted for c in pool if COMBINED in c.scores]}
    return cards, stats


def apply_rule(studio: Studio, medium: str, shown: Sequence[str] | None, threshold: float,
               temperature: float) -> int:
    """Re-decide the shown candidates from their stored scores (hand decisions stay); returns how many."""
    pool = [c for c in studio.store.candidates(medium, ids=list(shown or [])) if COMBINED in c.scores]
    if not pool:
        return 0
    # the rule's random draws are seeded by the batch, so the same slider position gives the same decisions
    seed = min(c.batch or 0 for c in pool)
    decisions, _ = studio.decide(pool, [c.scores[COMBINED] for c in pool], threshold, temperature, seed=seed)
    studio.store.set_decisions(decisions)
    return len(decisions)


def curated_summary(studio: Studio, medium: str) -> str:
    """The size of the curated set now and what each round learned from."""
    total = len(studio.store.curated(medium))
    rounds = studio.store.rounds(medium)
    parts = [f"**Curated set: {total}** accepted across all rounds"]
    if rounds:
        parts.append(" · ".join(f"{r['version']}: {r['curated']}" for r in rounds) + " (learned from)")
    return "  \n".join(parts)


def rate_summary(stats: dict[str, Any]) -> str:
    if not stats["n"]:
        return "No candidates yet: generate a batch."
    expected = "" if stats["expected_rate"] is None else f" (rule's expected rate {stats['expected_rate']:.2f})"
    return (f"**Accepted {stats['accepted']} of {stats['n']}** · acceptance rate {stats['rate']:.2f}{expected}"
            f" · by hand: {stats['hand_accepted']} accepted, {stats['hand_rejected']} rejected")


def compare_pairs(studio: Studio, medium: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Before and after cards side by side, paired by seed."""
    threshold, temperature = result["threshold"], result["temperature"]
    sides = {}
    for label in ("before", "after"):
        pool = studio.store.candidates(medium, ids=result[label]["candidates"])
        sides[label] = [card(c, p) for c, p in zip(pool, probabilities(pool, threshold, temperature))]
    return [{"seed": b["seed"], "before": b, "after": a} for b, a in zip(sides["before"], sides["after"])]


def metrics_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The compare table: a row per metric, a column per side plus best-of-n from base."""
    before, after, best = result["before"], result["after"], result["best_of_n_base"]
    headers = ["metric", f"before ({result['before_version']})", f"after ({result['after_version']})",
               f"best-of-{best['n']} from base"]
    keys = ["acceptance_rate", "mean_score", "diversity"] + sorted(
        k for k in before if k not in ("acceptance_rate", "mean_score", "diversity", "n", "candidates"))
    rows = []
    for key in keys:
        rows.append([key.replace("_", " "), _fmt(before.get(key)), _fmt(after.get(key)), _fmt(best.get(key))])
    rows.append(["candidates", before["n"], after["n"], ""])
    lift = result.get("lift")
    rows.append(["lift (after / before acceptance)", "", "" if lift is None else f"{lift:.2f}x", ""])
    return headers, rows


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    return f"{value:.3f}" if isinstance(value, float) else value
