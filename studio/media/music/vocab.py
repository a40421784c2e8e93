"""The event vocabulary of the symbolic default and the prompt words that steer it.

A piece is one line of tokens::

    <bos> style:waltz meter:3/4 key:D mode:major tempo:moderate
          bar vel:mf p62 d4 p66 d4 p69 d4  bar vel:mf ...  <eos>

Tags come first in a fixed order (``TAG_ORDER``) so the sampler can force the ones the prompt
names and let the model choose the rest.  Each bar opens with ``bar`` and a velocity; then
notes (``pNN`` then ``dN``) and rests (``rest`` then ``dN``) fill it exactly.  Durations are in
sixteenth notes.  Pure Python: importing this costs nothing.
"""
from __future__ import annotations

import re

from ...errors import StudioError

SPECIAL = ["<pad>", "<bos>", "<eos>", "<unk>"]
STYLES = ["waltz", "march", "lullaby", "reel", "chorale"]
METERS = ["3/4", "2/4", "4/4", "6/8"]
KEYS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MODES = ["major", "minor", "dorian", "mixolydian"]
TEMPOS = ["slow", "moderate", "fast"]
TAG_ORDER = ["style", "meter", "key", "mode", "tempo"]
TAG_VALUES = {"style": STYLES, "meter": METERS, "key": KEYS, "mode": MODES, "tempo": TEMPOS}

PITCH_LOW, PITCH_HIGH = 48, 84  # C3..C6, the melody's playable range
DURATIONS = [1, 2, 3, 4, 6, 8, 12, 16]  # sixteenths: 16th, 8th, dotted 8th, quarter, dotted quarter...
VELOCITIES = {"p": 48, "mp": 64, "mf": 80, "f": 96}  # a bar's dynamic; the downbeat gets ACCENT more
ACCENT = 12
BAR_LENGTH = {"3/4": 12, "2/4": 8, "4/4": 16, "6/8": 12}  # sixteenths per bar
BEAT_LENGTH = {"3/4": 4, "2/4": 4, "4/4": 4, "6/8": 6}  # sixteenths per felt beat
TEMPO_BPM = {"slow": 66, "moderate": 96, "fast": 132}  # quarter notes per minute when rendering


def vocabulary() -> list[str]:
    """Every token, in id order (the tokenizer's WordLevel vocabulary)."""
    tokens = list(SPECIAL)
    for kind in TAG_ORDER:
        tokens += [f"{kind}:{value}" for value in TAG_VALUES[kind]]
    tokens += ["bar", "rest"]
    tokens += [f"vel:{name}" for name in VELOCITIES]
    tokens += [f"p{pitch}" for pitch in range(PITCH_LOW, PITCH_HIGH + 1)]
    tokens += [f"d{d}" for d in DURATIONS]
    return tokens


# ---- prompt words -> tags -------------------------------------------------------------------

STYLE_WORDS = {"waltz": "waltz", "waltzes": "waltz", "march": "march", "marching": "march",
               "lullaby": "lullaby", "cradle": "lullaby", "berceuse": "lullaby", "reel": "reel",
               "fiddle": "reel", "chorale": "chorale", "hymn": "chorale", "choral": "chorale"}
MODE_WORDS = {"major": "major", "ionian": "major", "minor": "minor", "aeolian": "minor",
              "dorian": "dorian", "mixolydian": "mixolydian"}
TEMPO_WORDS = {"slow": "slow", "slowly": "slow", "adagio": "slow", "largo": "slow", "lento": "slow",
               "andante": "moderate", "moderate": "moderate", "moderato": "moderate",
               "fast": "fast", "quick": "fast", "allegro": "fast", "presto": "fast", "vivace": "fast"}
# moods steer softly: they fill a tag the prompt leaves open, never override a named one
MOOD_WORDS = {"happy": {"mode": "major"}, "bright": {"mode": "major"}, "cheerful": {"mode": "major"},
              "joyful": {"mode": "major"}, "sunny": {"mode": "major"},
              "sad": {"mode": "minor"}, "melancholy": {"mode": "minor"}, "dark": {"mode": "minor"},
              "gloomy": {"mode": "minor"}, "mournful": {"mode": "minor"},
              "calm": {"tempo": "slow"}, "gentle": {"tempo": "slow"}, "peaceful": {"tempo": "slow"},
              "sleepy": {"tempo": "slow"}, "soothing": {"tempo": "slow"}, "dreamy": {"tempo": "slow"},
              "lively": {"tempo": "fast"}, "energetic": {"tempo": "fast"}, "upbeat": {"tempo": "fast"},
              "playful": {"tempo": "fast"}, "solemn": {"style": "chorale"}, "sacred": {"style": "chorale"}}
KEY_ALIASES = {"C": "C", "B#": "C", "C#": "C#", "Db": "C#", "D": "D", "D#": "Eb", "Eb": "Eb",
               "E": "E", "Fb": "E", "F": "F", "E#": "F", "F#": "F#", "Gb": "F#", "G": "G",
               "G#": "Ab", "Ab": "Ab", "A": "A", "A#": "Bb", "Bb": "Bb", "B": "B", "Cb": "B"}

_ACCIDENTAL = r"(#|b|♯|♭|-sharp|-flat| sharp| flat)?"
_KEY_WITH_MODE = re.compile(r"\b([A-Ga-g])" + _ACCIDENTAL + r"\s*(major|minor|maj|min|dorian|mixolydian)\b",
                            re.IGNORECASE)
_KEY_AFTER_IN = re.compile(r"\b(?:in|key of)\s+([A-G])" + _ACCIDENTAL + r"(?![\w'])")
_METER = re.compile(r"\b(3/4|2/4|4/4|6/8)\b")
_BPM = re.compile(r"\b(\d{2,3})\s*bpm\b", re.IGNORECASE)


def _key_name(letter: str, accidental: str | None) -> str:
    acc = (accidental or "").strip().lower()
    acc = {"♯": "#", "-sharp": "#", "sharp": "#", "♭": "b", "-flat": "b", "flat": "b"}.get(acc, acc)
    return KEY_ALIASES[letter.upper() + acc]


class PromptTags(dict):
    """The tags a prompt fixes (kind -> value) plus ``bpm`` when it names one."""

    bpm: int | None = None


def parse_prompt(prompt: str) -> PromptTags:
    """Map a prompt's style words to tags; two different values for one tag raise StudioError."""
    found: dict[str, list[tuple[str, str]]] = {kind: [] for kind in TAG_ORDER}  # kind -> (value, word)
    text = prompt or ""
    for match in _KEY_WITH_MODE.finditer(text):
        found["key"].append((_key_name(match.group(1), match.group(2)), match.group(0)))
    for match in _KEY_AFTER_IN.finditer(text):
        found["key"].append((_key_name(match.group(1), match.group(2)), match.group(0)))
    for match in _METER.finditer(text):
        found["meter"].append((match.group(1), match.group(1)))
    bpm = None
    for match in _BPM.finditer(text):
        bpm = int(match.group(1))
        found["tempo"].append(("slow" if bpm < 80 else "moderate" if bpm < 115 else "fast", match.group(0)))
    moods: dict[str, list[tuple[str, str]]] = {kind: [] for kind in TAG_ORDER}
    for word in re.findall(r"[a-z]+", text.lower()):
        for table, kind in ((STYLE_WORDS, "style"), (MODE_WORDS, "mode"), (TEMPO_WORDS, "tempo")):
            if word in table:
                found[kind].append((table[word], word))
        for kind, value in MOOD_WORDS.get(word, {}).items():
            moods[kind].append((value, word))
    tags = PromptTags()
    for kind in TAG_ORDER:
        for source in (found[kind], moods[kind]):
            values = {}
            for value, word in source:
                values.setdefault(value, word)
            if len(values) > 1:
                words = list(values.values())
                raise StudioError(f"The prompt asks for contradictory {kind}s ('{words[0]}' and '{words[1]}'); "
                                  "name one.")
            if values and kind not in tags:
                tags[kind] = next(iter(values))
    tags.bpm = bpm
    return tags
