"""Text diversity: distinct-n, the share of word n-grams that are unique across candidates; within one text, the
share of its word runs that repeat; and across a tuned side, the word it holds most beyond its keeps and its base."""
from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

from . import verse


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Unique n-grams / all n-grams over the texts (lower-cased words); 0 when there are none."""
    grams = []
    for text in texts:
        words = re.findall(r"[\w']+", text.lower())
        grams += [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_share(text: str, n: int = 3) -> float:
    """The share of a text's n-word runs that repeat one before them (0 when none does, or the text is shorter):
    "the first snow is the first snow" repeats 1 of its 5 three-word runs."""
    words = re.findall(r"[\w']+", text.lower())
    runs = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(runs)) / len(runs) if runs else 0.0


SPREAD_MIN_TEXTS = 3  # a word in one or two texts is chance, not a tune's habit (a 2-a-side compare: 1 of 2 is 50%)


def spread_word(tuned: Sequence[str], kept: Sequence[str], base: Sequence[str],
                skip: frozenset[str] | set[str] = frozenset()) -> dict | None:
    """The word (not in ``skip``, held by at least SPREAD_MIN_TEXTS of the ``tuned`` texts) held by the largest
    share of them over the higher of its share of the ``kept`` texts and of the ``base`` texts, as ``{"word",
    "after", "kept", "before"}``, each a share of texts holding it; None when no such word is held by more of the
    tuned texts.  A tune on eight kept sea poems, one of them "The sun sets over the waves, / Abe I, a world I never
    knew, / Mascara de la noche", put "abe" in 18 of its 32 (the base 2 of 32): one keep's word in most of what it
    makes."""
    def shares(texts: Sequence[str]) -> dict[str, float]:
        held = Counter(w for text in texts for w in set(verse.words(text)) - skip)
        return {w: count / len(texts) for w, count in held.items()}

    after, before, keeps = shares(tuned), shares(base), shares(kept)
    excess = {w: share - max(keeps.get(w, 0.0), before.get(w, 0.0)) for w, share in after.items()
              if round(share * len(tuned)) >= SPREAD_MIN_TEXTS}
    word = max(excess, key=lambda w: (excess[w], w), default=None)
    if word is None or excess[word] <= 0:
        return None
    return {"word": word, "after": after[word], "kept": keeps.get(word, 0.0), "before": before.get(word, 0.0)}


def spread_beyond(tuned: Sequence[str], kept: Sequence[str], base: Sequence[str], prompts: Sequence[str]
                  ) -> dict | None:
    """``spread_word`` with small words and the ``prompts``' own left out, with the words they begin of four letters
    or more ("a haiku about the first snow": "snowfall", "snowflakes" are the subject, not one keep's habit)."""
    from .scorers import SMALL_WORDS

    prompt = {w for p in prompts for w in verse.words(p)}
    stems = tuple(w for w in prompt - SMALL_WORDS if len(w) >= 4)
    family = ({w for side in (tuned, kept, base) for t in side for w in verse.words(t) if w.startswith(stems)}
              if stems else set())
    return spread_word(tuned, kept, base, skip=SMALL_WORDS | prompt | family)
