"""How varied a set is and whether it copies another: the measures behind a faithful round.

A round keeps a sample of "the model leaning toward the score"; a faithful tune makes more
of it on new seeds, about as varied as the kept set (``variety_vs_kept`` near 1) and without
copying kept examples (``copies`` near 0).  These helpers are medium-agnostic: features are
rows of a float array, content is a sequence of hashable items (words, pitches).
Nothing here imports torch.
"""
from __future__ import annotations

import re
from typing import Hashable, Sequence

import numpy as np

COPY_RUN = 8  # a shared run this long (8 words, 8 consecutive pitches) is a copy, not an echo

# Text copies as an artist hears them (docs/copies.md).  Two lines are near-identical when they
# differ by at most one word swapped per three words, and never more than two (word-level edit
# distance): "the trail remembers the burning branch" echoes "the branch remembers the burning
# deer".  One such line alone is chance on a model that writes to frames: 2 to 4 of 5 independent
# base poems of the built-in text model had a line within one or two words of one of 16 other
# base poems, so a copy needs a kept poem's template back, i.e. at least TEMPLATE_LINES of its
# lines and TEMPLATE_SHARE of the shorter poem's, each near-identical to a distinct line of that
# poem.  A line that echoes REFRAIN or more kept poems is the kept style's refrain or frame, not
# one poem's line: it fills the template but does not make the copy.  Calibrated on 64 base poems
# of the built-in text model per prompt, 4 prompts, 4 random kept/candidate splits
# (benchmarks/copies_calibration.py): the template test flags base poems 1.6% of the time against
# 16 kept base poems and 1.2% against 32 (without the refrain rule 2.6% and 6.2%, worst prompt 10%);
# with the 8-word run (which crosses line breaks: a frame's end and a stock closing line) the whole
# test flags 1.8% and 3.1% (worst prompt 9.4% at 32 kept, 5.2% at 16).
LINE_SWAPS = 2  # at most this many words swapped in a near-identical line
WORDS_PER_SWAP = 3  # and at most one per this many words (a 2-word line must match exactly)
TEMPLATE_LINES = 2
TEMPLATE_SHARE = 0.75
REFRAIN = 3
# A single long line (LONG_LINE words or more) back with one word swapped (two from 10 words) is a
# copy on its own: the built-in model's lines never reached it by chance (0 of 1,024 tries).
LONG_LINE = 8


def unit_rows(features) -> np.ndarray:
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        feats = feats.reshape(len(feats), -1)
    return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)


def near_duplicates(features, kept_features, cutoff: float) -> list[bool]:
    """For each row of ``features``: is its cosine similarity to some kept row >= ``cutoff``?"""
    a, b = unit_rows(features), unit_rows(kept_features)
    if not len(a) or not len(b):
        return [False] * len(a)
    return [bool(x) for x in (a @ b.T).max(axis=1) >= cutoff]


def nearest_distances(features, kept_features, own: bool = False) -> np.ndarray:
    """For each row of ``features``, the cosine distance to its nearest kept row; ``own``: the rows are the
    kept rows themselves followed by others, and a kept row's nearest is another kept row (inf with none)."""
    a, b = unit_rows(features), unit_rows(kept_features)
    sim = a @ b.T
    if own:
        sim[np.arange(len(b)), np.arange(len(b))] = -np.inf
    return 1.0 - sim.max(axis=1)


CENTRE_ROWS = 8  # centre features only on a set this large: the mean of two pictures is their midpoint


def near_duplicates_centred(features, kept_features, cutoff: float) -> list[bool]:
    """``near_duplicates`` that also asks it of the features centred on the mean of both sets: a
    shared background or layout (every base picture of "a red star on a blue sky" is mostly the same
    blue) makes raw features alike, what sits on it does not.  Fewer than CENTRE_ROWS rows in all
    (two rows centre to opposites) and a row centring leaves at zero keep the raw answer."""
    a, b = np.asarray(features, dtype=np.float64), np.asarray(kept_features, dtype=np.float64)
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    raw = near_duplicates(a, b, cutoff)
    if not len(a) or not len(b) or len(a) + len(b) < CENTRE_ROWS:
        return raw
    mean = np.concatenate([a, b]).mean(axis=0)
    ca, cb = a - mean, b - mean
    sim = unit_rows(ca) @ unit_rows(cb).T
    flat_a = np.linalg.norm(ca, axis=1) <= 1e-9 * np.maximum(np.linalg.norm(a, axis=1), 1e-12)
    flat_b = np.linalg.norm(cb, axis=1) <= 1e-9 * np.maximum(np.linalg.norm(b, axis=1), 1e-12)
    raw_sim = unit_rows(a) @ unit_rows(b).T
    centred_ok = np.where(flat_a[:, None] | flat_b[None, :], raw_sim >= cutoff, sim >= cutoff)
    return [bool(r and c) for r, c in zip(raw, ((raw_sim >= cutoff) & centred_ok).any(axis=1))]


def runs(items: Sequence[Hashable], length: int = COPY_RUN) -> set[tuple]:
    """Every window of ``length`` consecutive items."""
    items = tuple(items)
    return {items[i:i + length] for i in range(len(items) - length + 1)}


def shares_run(candidates: Sequence[Sequence[Hashable]], kept: Sequence[Sequence[Hashable]],
               length: int = COPY_RUN) -> list[bool]:
    """For each candidate sequence: does it share ``length`` consecutive items with a kept one?"""
    seen: set[tuple] = set()
    for k in kept:
        seen |= runs(k, length)
    return [bool(runs(c, length) & seen) for c in candidates]


def shares_near_run(candidates: Sequence[Sequence[Hashable]], kept: Sequence[Sequence[Hashable]],
                    length: int, changes: int = 1) -> list[bool]:
    """For each candidate: does it share a run of ``length`` items with a kept one, with up to
    ``changes`` (0 or 1) of them changed (a melody back with one note altered)?"""
    if changes not in (0, 1):
        raise ValueError("shares_near_run allows 0 or 1 changed item")
    if not changes:
        return shares_run(candidates, kept, length)
    wild = object()  # stands for the one changed item

    def masked(items: Sequence[Hashable]) -> set[tuple]:
        return {w[:i] + (wild,) + w[i + 1:] for w in runs(items, length) for i in range(length)}

    seen: set[tuple] = set()
    for k in kept:
        seen |= masked(k)
    return [bool(masked(c) & seen) for c in candidates]


def words(text: str) -> list[str]:
    """Lower-case words (letters, digits, apostrophes): punctuation and line breaks do not hide a copy."""
    return re.findall(r"[a-z0-9']+", text.lower())


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two sequences (of words, of pitches)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def poem_lines(text: str) -> list[list[str]]:
    """A text's non-empty lines, each as its lower-case words."""
    return [w for w in (words(line) for line in text.splitlines()) if w]


def near_line(a: Sequence[str], b: Sequence[str]) -> bool:
    """The same line with at most one word swapped per WORDS_PER_SWAP words (LINE_SWAPS at most)."""
    allowed = min(LINE_SWAPS, max(len(a), len(b)) // WORDS_PER_SWAP)
    return abs(len(a) - len(b)) <= allowed and edit_distance(a, b) <= allowed


def _long_line_echo(a: Sequence[str], b: Sequence[str]) -> bool:
    if min(len(a), len(b)) < LONG_LINE:
        return False
    return edit_distance(a, b) <= (1 if max(len(a), len(b)) < 10 else 2)


def copies_template(candidate: Sequence[Sequence[str]], kept: Sequence[Sequence[Sequence[str]]]) -> bool:
    """Does a poem (its lines' words) bring back a kept poem's template or one of its long lines?"""
    echoes = [sum(any(near_line(line, other) for other in poem) for poem in kept) for line in candidate]
    for poem in kept:
        used: set[int] = set()
        matched = own = 0
        for line, spread in zip(candidate, echoes):
            for j, other in enumerate(poem):
                if j not in used and near_line(line, other):
                    used.add(j)
                    matched += 1
                    own += spread < REFRAIN
                    break
        if matched >= max(TEMPLATE_LINES, TEMPLATE_SHARE * min(len(candidate), len(poem))) and own >= TEMPLATE_LINES:
            return True
        if any(_long_line_echo(line, other) for line in candidate for other in poem):
            return True
    return False


def text_copies(candidates: Sequence[str], kept: Sequence[str]) -> list[bool]:
    """For each text: a shared run of COPY_RUN words with a kept text, a kept poem's template back, or, for a text
    too short for a run, a kept text back whole (at most one word swapped per three: "the first snows")."""
    texts, kept_words = [words(t) for t in candidates], [words(k) for k in kept]
    by_run = shares_run(texts, kept_words)
    kept_lines = [poem_lines(k) for k in kept]
    def short_copy(whole: list[str]) -> bool:
        return 0 < len(whole) < COPY_RUN and any(near_line(whole, k) for k in kept_words)

    return [run or short_copy(whole) or copies_template(poem_lines(text), kept_lines)
            for text, whole, run in zip(candidates, texts, by_run)]


def mean_pairwise_euclidean(features) -> float:
    """Mean Euclidean distance over distinct pairs: a spread that a change every row shares leaves alone."""
    feats = np.asarray(features, dtype=np.float64)
    feats = feats.reshape(len(feats), -1)
    n = len(feats)
    if n < 2:
        return 0.0
    return float(np.sqrt(((feats[:, None, :] - feats[None, :, :]) ** 2).sum(-1)).sum() / (n * (n - 1)))


def mean_pairwise_distance(features) -> float:
    """Mean cosine distance over distinct pairs (0 = all alike): the studio's variety figure."""
    feats = unit_rows(features)
    n = len(feats)
    if n < 2:
        return 0.0
    sim = feats @ feats.T
    return float((1.0 - sim)[~np.eye(n, dtype=bool)].mean())
