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


def words(text: str) -> list[str]:
    """Lower-case words (letters, digits, apostrophes): punctuation and line breaks do not hide a copy."""
    return re.findall(r"[a-z0-9']+", text.lower())


def mean_pairwise_distance(features) -> float:
    """Mean cosine distance over distinct pairs (0 = all alike): the studio's variety figure."""
    feats = unit_rows(features)
    n = len(feats)
    if n < 2:
        return 0.0
    sim = feats @ feats.T
    return float((1.0 - sim)[~np.eye(n, dtype=bool)].mean())
