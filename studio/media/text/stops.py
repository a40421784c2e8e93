"""Where a text ends: at the first of its stop strings that ends it.

A stop string made of line breaks alone marks a break in the writing, and a text ends at a break only after some
writing and not after a line that ends in a colon (an introduction: "Here are five ideas for a painting of winter:",
"Ingredients:").  A blank line (SmolLM2's default) also does not end a list between its items ("2. The Aurora ...",
"- 2 cups of flour"); a single line break (the slogan preset's "one line") does, since there a list's items are its
lines.  Whether a blank line comes before a list item is known only once the next paragraph has begun, so such a
stop waits for its first character; at the end of the text it ends there.  Any other stop string ends the text
where it first appears.

A prompt that asks for its text in parts ("a poem in three stanzas", "two verses", "paragraphs") ends at the blank
line after its last part: ``asked_parts`` reads how many (none named: no blank line ends it), and the first
``parts - 1`` blank lines that would end a text go by.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

INTRODUCTION = (":", "：")  # a paragraph ending in a colon leads into what follows
LIST_ITEM = re.compile(r"(\d{1,3}[.)]|[-*•+])\s")  # "1. " "2) " "- " "* " "• " "+ " open a list's next item
MAY_BE_LIST_ITEM = re.compile(r"\d{1,3}[.)]?|[-*•+]")  # the start of one, not yet followed by a space
NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
           "a couple of": 2}
PARTS = re.compile(r"\b(?:(\d{1,2}|" + "|".join(NUMBERS) + r")[\s-]+(?:\w+\s+)?(?:stanza|verse|paragraph)s?"
                   r"|(?:stanzas|verses|paragraphs))\b", re.IGNORECASE)  # "three (short) stanzas", "3-verse", "in stanzas"
EVERY = 10_000  # parts when the prompt names none: no blank line ends the text


def asked_parts(prompt: str) -> int:
    """How many blank-line-separated parts ``prompt`` asks for: 1 unless it names stanzas, verses or paragraphs in
    the plural ("three stanzas": 3, "a poem in stanzas": every blank line goes by)."""
    found = PARTS.search(prompt)
    if not found:
        return 1
    count = (found.group(1) or "").lower()
    if not count:
        return EVERY
    return int(count) if count.isdigit() else NUMBERS[count]


def _ends_here(text: str, at: int, stop: str, final: bool) -> bool | None:
    """Whether ``stop`` found at ``at`` ends ``text``: True, False, or None (not known until more is written)."""
    if stop.strip() or "\n" not in stop:  # not a line break
        return True
    before = text[:at].rstrip()
    if not before or before.endswith(INTRODUCTION):
        return False
    if stop.count("\n") < 2:  # a line break, not a blank line
        return True
    after = text[at + len(stop):].lstrip()
    if not after or MAY_BE_LIST_ITEM.fullmatch(after):
        return True if final else None
    return not LIST_ITEM.match(after)


def _is_blank_line(stop: str) -> bool:
    return not stop.strip() and stop.count("\n") >= 2


def _scan(text: str, stops: Sequence[str], final: bool, parts: int = 1) -> tuple[int, bool] | None:
    """The first stop string that ends ``text`` or may yet end it: (index, whether known), or None.  A blank line
    ends it only after ``parts - 1`` others that would have."""
    ends = []
    for stop in stops:
        passed = 0
        at = text.find(stop) if stop else -1
        while at >= 0:
            verdict = _ends_here(text, at, stop, final)
            if verdict is True and passed < parts - 1 and _is_blank_line(stop):
                passed += 1  # the end of a part, of several asked for: the text goes on
                after = at + len(stop)
                while after < len(text) and text[after] in "\r\n":  # the break's own extra lines are not another
                    after += 1
                at = text.find(stop, after)
                continue
            if verdict is not False:
                ends.append((at, verdict is True))
                break
            at = text.find(stop, at + 1)
    return min(ends) if ends else None


def find_end(text: str, stops: Sequence[str], final: bool = False, parts: int = 1) -> int | None:
    """Where ``text`` ends by its stop strings (the index it is cut at), or None: it goes on, or (before the final
    text) its first break waits for the next paragraph to begin.  ``parts``: ``asked_parts`` of the prompt."""
    found = _scan(text, stops, final, parts)
    return found[0] if found and found[1] else None


def cut(text: str, stops: Sequence[str], parts: int = 1) -> str:
    """The finished text, cut where it ends."""
    end = find_end(text, [s for s in stops if s], final=True, parts=parts)
    return text if end is None else text[:end]


class StopWatch:
    """Finds the number of a row's new tokens after which its text has ended, decoding the whole row only when the
    tokens added since the last look (with a few before them: a stop string may straddle two looks) hold a stop
    string, or a break was waiting for its next paragraph."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], parts: int = 1):
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.parts = parts
        self.overlap = max((len(s) for s in self.stops), default=0) + 4  # tokens: nearly all are >= 1 character
        self.checked: dict[int, int] = {}
        self.waiting: set[int] = set()  # rows whose break waits for its next paragraph to begin

    def _decode(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode(list(tokens))

    def first_stop(self, row: int, tokens: Sequence[int]) -> int | None:
        """The number of tokens at which the row's text has ended, or None."""
        if not self.stops:
            return None
        checked = self.checked.get(row, 0)
        start = max(0, checked - self.overlap)
        self.checked[row] = len(tokens)
        if len(tokens) == checked:
            return None
        if row not in self.waiting:
            window = self._decode(tokens[start:])
            if not any(s in window for s in self.stops):
                return None
        found = _scan(self._decode(tokens), self.stops, final=False, parts=self.parts)
        self.waiting.discard(row)
        if found is None:
            return None
        if not found[1]:
            self.waiting.add(row)
            return None
        for end in range(checked + 1, len(tokens) + 1):
            if find_end(self._decode(tokens[:end]), self.stops, parts=self.parts) is not None:
                return end
        return len(tokens)
