"""The lines the built-in voice learns to read and the held-out lines it is measured on.

A small seeded grammar over a few hundred everyday words (statements, questions, lists,
exclamations, numbers and names), so every English phoneme turns up in many contexts.  The
held-out lines come from another seed and never repeat a training line, and a few
hand-written sentences of other shapes are added to them.  Pure Python.
"""
from __future__ import annotations

import random

NAMES = ["Anna", "Ben", "Clara", "David", "Ella", "Frank", "Grace", "Henry", "Iris", "Jack", "Kate", "Leo",
         "Maria", "Noah", "Olivia", "Peter", "Quinn", "Rosa", "Sam", "Tom", "Vera", "Walter", "Zoe", "Hugo"]
NOUNS = ["dog", "cat", "house", "garden", "river", "window", "teacher", "doctor", "letter", "table", "kitchen",
         "bridge", "car", "train", "station", "market", "book", "song", "morning", "evening", "forest", "village",
         "city", "machine", "picture", "question", "answer", "friend", "neighbour", "child", "mother", "father",
         "brother", "sister", "office", "meeting", "journey", "island", "mountain", "valley", "ocean", "boat",
         "storm", "sunlight", "shadow", "bottle", "basket", "jacket", "chair", "pencil", "computer", "telephone",
         "newspaper", "museum", "library", "bakery", "engine", "bicycle", "winter", "summer", "holiday", "birthday",
         "orange", "apple", "sandwich", "coffee", "breakfast", "dinner", "voice", "story", "treasure", "puzzle",
         "garage", "theatre", "hospital", "factory", "schedule", "package", "measure", "vision", "pleasure", "judge",
         "zebra", "giraffe", "penguin", "whale", "thunder", "feather", "leather", "rhythm", "mirror", "ladder"]
ADJECTIVES = ["old", "new", "quiet", "loud", "bright", "dark", "warm", "cold", "small", "huge", "happy", "tired",
              "careful", "strange", "beautiful", "broken", "empty", "heavy", "gentle", "yellow", "purple", "green",
              "famous", "hidden", "wooden", "golden", "busy", "lazy", "curious", "patient", "smooth", "rough",
              "thick", "thin", "early", "late", "usual", "unusual", "friendly", "serious"]
VERBS_PAST = ["opened", "closed", "found", "lost", "painted", "carried", "watched", "visited", "fixed", "cleaned",
              "bought", "sold", "borrowed", "noticed", "remembered", "forgot", "moved", "pushed", "pulled",
              "described", "measured", "judged", "thanked", "chose", "built", "followed", "washed", "checked"]
VERBS_NOW = ["likes", "needs", "wants", "sees", "keeps", "brings", "takes", "reads", "hears", "enjoys", "misses",
             "shares", "wishes", "teaches", "watches", "changes", "reaches", "catches"]
PLACES = ["near the station", "by the river", "in the kitchen", "at the market", "behind the house",
          "under the bridge", "on the island", "in the old village", "across the street", "inside the museum",
          "at the top of the hill", "next to the library", "in the garden", "along the beach", "through the forest"]
TIMES = ["yesterday", "this morning", "last night", "on Monday", "every Sunday", "after dinner", "before lunch",
         "in the spring", "at noon", "three weeks ago", "in the evening", "on Friday afternoon", "today", "soon"]
ADVERBS = ["slowly", "quickly", "quietly", "carefully", "happily", "suddenly", "finally", "always", "rarely",
           "gently", "proudly", "nearly"]
NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "twenty",
           "fifty", "a hundred"]


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def _noun(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    return f"the {rng.choice(NOUNS)}"


def _sentence(rng: random.Random) -> str:
    kind = rng.randrange(9)
    name, other = rng.sample(NAMES, 2)
    if kind == 0:
        return f"{name} {rng.choice(VERBS_PAST)} {_noun(rng)} {rng.choice(PLACES)}."
    if kind == 1:
        return f"{rng.choice(TIMES).capitalize()}, {name} {rng.choice(ADVERBS)} {rng.choice(VERBS_PAST)} {_noun(rng)}."
    if kind == 2:
        return f"Did {name} see {_noun(rng)} {rng.choice(PLACES)}?"
    if kind == 3:
        return f"{name} {rng.choice(VERBS_NOW)} {_noun(rng)}, but {other} {rng.choice(VERBS_NOW)} {_noun(rng)}."
    if kind == 4:
        return f"There are {rng.choice(NUMBERS)} {rng.choice(ADJECTIVES)} {_plural(rng.choice(NOUNS))} {rng.choice(PLACES)}."
    if kind == 5:
        return f"What a {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}!"
    if kind == 6:
        return f"Where is {_noun(rng)} that {name} {rng.choice(VERBS_PAST)} {rng.choice(TIMES)}?"
    if kind == 7:
        return (f"{_noun(rng).capitalize()} was {rng.choice(ADJECTIVES)}, so {name} {rng.choice(VERBS_PAST)} "
                f"it {rng.choice(ADVERBS)}.")
    return f"Please ask {name} to bring {rng.choice(NUMBERS)} {_plural(rng.choice(NOUNS))} {rng.choice(TIMES)}."


# hand-written held-out lines of shapes the grammar does not make
EXTRA_HELD_OUT = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "A cup of tea would be lovely right now.",
    "Turn left at the second light and keep going.",
    "The weather will be cloudy with a chance of rain.",
    "I have never seen such a tall building.",
    "Could you speak a little more slowly, please?",
    "Our train leaves at half past seven.",
]


def training_lines(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    lines: list[str] = []
    while len(lines) < count:
        line = _sentence(rng)
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def held_out_lines(count: int, training: list[str] | None = None, seed: int = 10_000) -> list[str]:
    """``count`` lines no training line repeats: the hand-written ones first, then grammar lines."""
    exclude = set(training or ())
    rng = random.Random(seed)
    lines = [line for line in EXTRA_HELD_OUT if line not in exclude][:count]
    while len(lines) < count:
        line = _sentence(rng)
        if line not in exclude and line not in lines:
            lines.append(line)
    return lines
