"""Text diversity: distinct-n, the share of word n-grams that are unique across candidates; and within one text,
the share of its word runs that repeat."""
from __future__ import annotations

import re
from typing import Sequence


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
