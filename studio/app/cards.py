"""What the curation and compare panels show, computed from the store without Gradio.

A card is a plain dict (so it can live in a ``gr.State``): the candidate's id, seed, files,
its combined score, P(accept) under the current rule and its decision.  Moving the threshold
or temperature re-decides from the stored scores: nothing is regenerated or rescored.
"""
from __future__ import annotations

import dataclasses
import html
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import sampling
from ..engine import DEFAULT_KEEP, MIN_SCORE_SPREAD, Studio, top_threshold
from ..errors import StudioError
from ..medium import Candidate
from ..store import DEFAULT_SERIES
from ..scoring import COMBINED

IMAGE_EXTS = ("png", "jpg", "jpeg", "webp")
AUDIO_EXTS = ("wav", "mp3", "ogg", "flac")
MAX_TEXT_CHARS = 4000  # a card shows this much of a text candidate


def kind(files: dict[str, str]) -> str:
    """How to show a candidate, from its files (never from its medium): ``sound`` (a player, beside its
    picture or a ``mid`` file's piano roll), ``picture`` or ``words``.  Sound wins: a sound may come with a
    picture of itself."""
    if any(ext in files for ext in AUDIO_EXTS) or "mid" in files:
        return "sound"
    if any(ext in files for ext in IMAGE_EXTS):
        return "picture"
    return "words"


def card(candidate: Candidate, probability: float | None, rule: str | None = None,
         near_copy: bool = False) -> dict[str, Any]:
    """``rule`` is what the rule alone decides for it (what clearing a hand decision falls back to);
    ``near_copy``: the rule's chance let it through but it nearly copies a better kept one ("Skip near-copies")."""
    files = dict(candidate.files) or {Path(candidate.path).suffix.lstrip("."): candidate.path}
    text = None
    if kind(files) == "words":
        try:
            text = Path(candidate.path).read_text(encoding="utf-8", errors="replace")[:MAX_TEXT_CHARS]
        except OSError:
            text = "(the file is missing)"
    return {"id": candidate.id, "medium": candidate.medium, "seed": candidate.seed, "version": candidate.version,
            "model": candidate.model, "kind": kind(files), "detail": detail(candidate),
            "files": files, "words": text, "score": candidate.scores.get(COMBINED),
            "scores": {k: v for k, v in candidate.scores.items() if k != COMBINED},
            "p": probability, "decision": candidate.decision, "rule": rule, "near_copy": near_copy,
            "prompt": candidate.prompt, "params": candidate.params}


def detail(candidate: Candidate) -> str | None:
    """The medium's own line of HTML for the card (``Medium.card_detail``); None for an unknown medium."""
    from .. import media

    try:
        return media.get(candidate.medium).card_detail(candidate)
    except StudioError:
        return None


def setting_label(medium: str | None, name: str) -> str:
    """A generation setting's label in the page (its typed settings' label), else its own name."""
    from .. import media

    try:
        fields = {f.name: f for f in media.get(medium).generate_settings.fields()} if medium else {}
    except StudioError:
        fields = {}
    return fields[name].label if name in fields else name.replace("_", " ")


DECISION_WORDS = {"hand_accepted": "kept by you", "auto_accepted": "kept by the rule",
                  "auto_rejected": "dropped by the rule", "hand_rejected": "dropped by you", "pending": "undecided"}


def caption(c: dict[str, Any]) -> str:
    score = "not scored" if c["score"] is None else f"score {c['score']:.3f}"
    return f"seed {c['seed']} · {score} · {DECISION_WORDS.get(c['decision'], c['decision'])}"


def rule_decisions(studio: Studio, pool: Sequence[Candidate], threshold: float, temperature: float,
                   keep: str = DEFAULT_KEEP) -> dict[str, str]:
    """What the rule alone decides for each scored candidate, hand decisions set aside."""
    scored = [dataclasses.replace(c, decision="pending") for c in pool if COMBINED in c.scores]
    if not scored:
        return {}
    decisions, _ = studio.decide(scored, [c.scores[COMBINED] for c in scored], threshold, temperature,
                                 seed=min(c.batch or 0 for c in scored), keep=keep)
    return decisions


def probabilities(pool: Sequence[Candidate], threshold: float, temperature: float) -> list[float | None]:
    scores = [c.scores.get(COMBINED) for c in pool]
    known = [s for s in scores if s is not None]
    if not known:
        return [None] * len(pool)
    probs = iter(sampling.acceptance_probability(known, threshold, temperature).tolist())
    return [None if s is None else next(probs) for s in scores]


def latest_shown(studio: Studio, medium: str) -> list[str]:
    """The ids of the current series' newest curation batch that holds candidates (what a fresh page shows)."""
    pool = studio.store.candidates(medium, purpose="curate", series=studio.current_series(medium))
    if not pool:
        return []
    newest = max(c.batch or 0 for c in pool)
    return [c.id for c in pool if (c.batch or 0) == newest]


def batch_view(studio: Studio, medium: str, shown: Sequence[str] | None, threshold: float,
               temperature: float, keep: str = DEFAULT_KEEP) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The shown candidates' cards and their figures under the current rule.

    The app tracks the ids it shows rather than a batch number: generating a prompt and seed
    again finds the existing candidate, which keeps the batch it was first made in.
    """
    pool = studio.store.candidates(medium, ids=list(shown)) if shown else []
    probs = probabilities(pool, threshold, temperature)
    rules = rule_decisions(studio, pool, threshold, temperature, keep)
    # what the rule's chance alone keeps (the same draws, no copy test): a drop it would have kept is a near-copy
    chance = rule_decisions(studio, pool, threshold, temperature, "all") if keep != "all" else rules
    near = {i for i, d in rules.items() if d == "auto_rejected" and chance.get(i) == "auto_accepted"}
    cards = [card(c, p, rules.get(c.id), c.id in near) for c, p in zip(pool, probs)]
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


KEEP_BY = ("score above", "top share of the batch")  # the page's absolute and relative rules


def score_range(scores: Sequence[float]) -> float:
    """The batch's score range (highest minus lowest), the unit of the page's softness: at least
    MIN_SCORE_SPREAD (closer scores cannot tell candidates apart), and the whole 0-1 scale without a range."""
    values = [float(s) for s in scores]
    if len(values) < 2:
        return 1.0
    return max(max(values) - min(values), MIN_SCORE_SPREAD)


def rule_temperature(softness: float, scores: Sequence[float]) -> float:
    """The engine's temperature for the page's softness (0-1), counted in units of the batch's score range.

    The engine's rule stays P(accept) = min(1, exp(-(threshold - score) / temperature)); a fixed 0-1
    temperature is far coarser than a batch whose scores spread over 0.65-0.77 (0.29 keeps 9 in 10),
    while ``softness * range`` means the same on any batch: a candidate ``softness`` of the batch's range
    below the threshold is kept with chance e^-1 (about 1 in 3), and softness 1 keeps even the batch's
    lowest at least that often."""
    return max(0.0, float(softness or 0.0)) * score_range(scores)


def softness_for(temperature: float, scores: Sequence[float]) -> float:
    """The page's softness for an engine temperature (a preset's) on this batch: the inverse of
    ``rule_temperature``, within the slider's 0-1."""
    return min(1.0, max(0.0, float(temperature) / score_range(scores)))


def shown_scores(studio: Studio, medium: str, shown: Sequence[str] | None) -> list[float]:
    """The combined scores of the shown candidates that have one."""
    pool = studio.store.candidates(medium, ids=list(shown)) if shown else []
    return [c.scores[COMBINED] for c in pool if COMBINED in c.scores]


def rule_threshold(studio: Studio, medium: str, shown: Sequence[str] | None, keep_by: str | None,
                   threshold: float, top_share: float | None) -> float:
    """The threshold the page's rule uses: the slider's, or the shown batch's top share's lowest score."""
    if keep_by != KEEP_BY[1] or top_share is None:
        return threshold
    pool = [c for c in studio.store.candidates(medium, ids=list(shown or [])) if COMBINED in c.scores]
    return top_threshold([c.scores[COMBINED] for c in pool], float(top_share)) if pool else threshold


def shown_cut(keep_by: str | None, threshold: float) -> dict[str, float]:
    """With the top share, the threshold slider shows where the share cuts the shown batch (rounded down to the
    slider's step, so switching to "score above" there keeps the same candidates)."""
    return {"threshold": math.floor(threshold * 100 + 1e-9) / 100} if keep_by == KEEP_BY[1] else {}


def apply_rule(studio: Studio, medium: str, shown: Sequence[str] | None, threshold: float,
               temperature: float, keep: str = DEFAULT_KEEP) -> int:
    """Re-decide the shown candidates from their stored scores (hand decisions stay); returns how many.

    ``keep="spread"`` (the CLI's default too) drops what near-copies a better kept candidate; ``"all"`` does not.
    """
    pool = [c for c in studio.store.candidates(medium, ids=list(shown or [])) if COMBINED in c.scores]
    if not pool:
        return 0
    # the rule's random draws are seeded by the batch, so the same slider position gives the same decisions
    seed = min(c.batch or 0 for c in pool)
    decisions, _ = studio.decide(pool, [c.scores[COMBINED] for c in pool], threshold, temperature, seed=seed,
                                 keep=keep)
    studio.store.set_decisions(decisions)
    return len(decisions)


def curated_summary(studio: Studio, medium: str) -> str:
    """The size of the kept set (what the next tune learns from: the current series'), as HTML."""
    total = len(studio.next_kept_set(medium))
    series = studio.current_series(medium)
    where = "" if series == DEFAULT_SERIES else f" of the series <i>{html.escape(series)}</i>"
    return f"Kept set{where}: <b>{total}</b> across all rounds (the next fine-tune learns from these)"


def rate_summary(stats: dict[str, Any]) -> str:
    """The batch's counts as HTML; ``culling.js`` rewrites the same sentence as keys are pressed."""
    if not stats["n"]:
        return "No candidates yet: generate a batch."
    return (f"<b>Kept {stats['accepted']} of {stats['n']}</b> · by you: {stats['hand_accepted']} kept, "
            f"{stats['hand_rejected']} dropped")


def store_decisions(studio: Studio, medium: str, shown: Sequence[str], changes: Sequence[Sequence[str]],
                    threshold: float, temperature: float, keep: str = DEFAULT_KEEP) -> dict[str, str]:
    """Hand decisions from the page: ``[id, hand_accepted|hand_rejected|clear]`` for shown candidates.

    Clearing gives the candidate back to the rule.  Returns the stored decision of each changed candidate.
    """
    allowed = set(shown or [])
    updates: dict[str, str] = {}
    for change in changes:
        if len(change) != 2 or change[0] not in allowed or change[1] not in ACTIONS:
            continue  # a stale page (an older batch) or a malformed message: nothing to store
        updates[change[0]] = "pending" if change[1] == "clear" else change[1]
    if not updates:
        return {}
    studio.store.set_decisions(updates)
    if "pending" in updates.values():
        apply_rule(studio, medium, shown, threshold, temperature, keep)
    return {c.id: c.decision for c in studio.store.candidates(medium, ids=list(updates))}


ACTIONS = ("hand_accepted", "hand_rejected", "clear")


def compare_pairs(studio: Studio, medium: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Before and after cards side by side, paired by seed."""
    threshold, temperature = result["threshold"], result["temperature"]
    sides = {}
    for label in ("before", "after"):
        pool = studio.store.candidates(medium, ids=result[label]["candidates"])
        sides[label] = [card(c, p) for c, p in zip(pool, probabilities(pool, threshold, temperature))]
    return [{"seed": b["seed"], "before": b, "after": a} for b, a in zip(sides["before"], sides["after"])]


METRIC_WORDS = {  # engine.compare's keys in plain words, with what each means (a tooltip)
    "acceptance_rate": ("kept share", "The share of candidates the rule keeps (its expected acceptance rate)."),
    "mean_score": ("average score", "The average combined score of the candidates, 0 to 1."),
    "diversity": ("variety", "How different the candidates are from one another: 0 means all alike."),
    "distinct_2": ("word-pair variety", "The share of distinct word pairs across the texts: 1 means no repeats."),
    "variety_vs_kept": ("variety vs the kept set", "The tuned side's variety divided by the kept set's; "
                        "near 1 means the tune stays as varied as what you kept."),
    "copies": ("copies of kept ones", "The share of tuned candidates that nearly duplicate one you kept; "
               "0 is best."),
    "copies_over_rule": ("copies among the kept-by-rule", "Of the candidates the rule would keep on this side, "
                         "the share that nearly duplicate one you kept (on the base side: how often what the "
                         "rule leans toward repeats a kept one by chance)."),
    "unfinished": ("cut off at the length limit", "The share that generation cut off at its length limit before "
                   "it ended by itself; a tuned side far above the base and your keeps has stopped ending."),
    "looping": ("loops", "The share that says its own words again and again (a quarter or more of its three-word "
                         "runs repeat); a tuned side far above the base and your keeps has fallen into loops."),
    "spread": ("its most spread word", "The word the tuned side holds most beyond your keeps and the base: the "
                                       "share of each side's candidates that hold it; a tuned side far above both "
                                       "carries one word into much of what it makes."),
    "n": ("candidates", "How many candidates each side generated, on the same seeds."),
}
SKIPPED = ("candidates",)  # lists of ids, not figures
SHARES = ("acceptance_rate", "copies", "copies_over_rule", "unfinished", "looping")  # shown as percentages


def metric_words(key: str) -> tuple[str, str]:
    return METRIC_WORDS.get(key, (key.replace("_", " "), f"The comparison's '{key}' figure."))


def metrics_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The compare table: a row per metric in plain words, a column per side plus best-of-n from base."""
    before, after, best = result["before"], result["after"], result["best_of_n_base"]
    headers = ["", f"before ({result['before_version']})", f"after ({result['after_version']})",
               f"best of {best['n']} from base"]
    keys = [k for k in ("acceptance_rate", "mean_score", "diversity") if k in before or k in after]
    keys += sorted(k for k in {**before, **after} if k not in keys and k not in SKIPPED and k != "n"
                   and all(isinstance(side.get(k), (int, float, type(None))) for side in (before, after))
                   and any(side.get(k) is not None for side in (before, after)))  # a figure, given on one side
    rows = [[metric_words(k)[0], *(fmt(side.get(k), k in SHARES) for side in (before, after, best))] for k in keys]
    spread = result.get("spread")
    if spread:
        rows.append([metric_words("spread")[0], *(f"'{spread['word']}' {fmt(spread[side], True)}"
                                                  for side in ("before", "after")), ""])
    rows.append([metric_words("n")[0], before.get("n", ""), after.get("n", ""), ""])
    return headers, rows


def metrics_html(result: dict[str, Any]) -> str:
    """The compare table as HTML: each metric's name carries its meaning as a tooltip."""
    headers, rows = metrics_rows(result)
    tips = {metric_words(k)[0]: metric_words(k)[1] for k in list(METRIC_WORDS) + list(result["after"])}
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr><th><abbr title=\"{}\">{}</abbr></th>{}</tr>".format(
        html.escape(tips.get(r[0], "")), html.escape(r[0]),
        "".join(f'<td class="num">{html.escape(str(v))}</td>' for v in r[1:])) for r in rows)
    before_rate, after_rate = result["before"].get("acceptance_rate"), result["after"].get("acceptance_rate")
    note = ""
    if isinstance(before_rate, (int, float)) and isinstance(after_rate, (int, float)):
        note = (f'<p class="metrics-note">Kept share on {len(result["seeds"])} new seeds neither version learned '
                f"from: <b>{fmt(before_rate, True)}</b> before, <b>{fmt(after_rate, True)}</b> after"
                + change_words(before_rate, after_rate) + ".</p>")
    verdict = (f'<p class="verdict">{html.escape(result["verdict"])}</p>' if result.get("verdict") else "")
    return f'<div class="metrics-table">{verdict}<table><tr>{head}</tr>{body}</table>{note}</div>'


def change_words(before: float, after: float) -> str:
    """How the kept share moved, in words: never "1.0x as many" for no change."""
    if fmt(before, True) == fmt(after, True):
        return " (no change)"
    if before < 0.05 or after < 0.05 or round(after / before, 1) == 1.0:  # never "0.0× as many"
        return f" ({round(after * 100) - round(before * 100):+d} points)"
    return f" ({after / before:.1f}× as many)"


def rewards_words(rewards: dict[str, float]) -> str:
    """A preference tune's late rewards (runner.late_rewards) in words: whether the kept and the dropped candidates
    became more or less likely than under the version the tune started from.  A side that moved less than a tenth
    as far as the other is "about as likely".  Empty when a side is missing."""
    kept, dropped = rewards.get("kept_reward"), rewards.get("dropped_reward")
    if kept is None or dropped is None:
        return ""
    scale = max(abs(kept), abs(dropped))
    if scale == 0:  # both under the log's 3 places (a short tune)
        return "Compared with the version it started from, the tune has hardly moved what you kept or dropped."

    def likely(value: float) -> str:
        if abs(value) < 0.1 * scale:
            return "about as likely"
        return "more likely" if value > 0 else "less likely"

    kept_words = likely(kept)
    line = (f"Compared with the version it started from, what you kept is now {kept_words} and what you dropped "
            f"{likely(dropped)}.")
    if kept_words == "less likely" and dropped < kept:
        line += " It learned what to avoid more than what you want."
    return line


def fmt(value: Any, share: bool = False) -> Any:
    """A figure for the page: 3 decimals, or a percentage for a share."""
    if value is None:
        return ""
    if share and isinstance(value, (int, float)):
        return f"{value * 100:.0f}%"
    return f"{value:.3f}" if isinstance(value, float) else value
