"""Text diversity: distinct-n, the share of word n-grams that are unique across candidates."""
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
