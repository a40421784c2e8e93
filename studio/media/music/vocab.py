"""The event vocabulary of the symbolic model and the prompt words that steer it.

A piece is four voices (0 melody or soprano, 1 and 2 inner voices or chords, 3 bass) written
as one line of tokens, onset by onset::

    <bos> style:reel meter:4/4 key:D mode:major
          bar pos:0 v0:p74 v1:p62 v2:p57 v3:p38  pos:2 v0:p76  pos:4 v0:p78 v1:rest v3:rest ...
          bar:penultimate ...  bar:last ...  <eos>

Tags come first in a fixed order (``TAG_ORDER``) so the sampler can force the ones the prompt
names and let the model choose the rest.  Each bar opens with ``bar`` (``bar:penultimate`` and
``bar:last`` for the last two, so the model knows where a cadence goes); then each onset, at a
position in sixteenths from the bar line, names the voices that change, in voice order: a new
pitch (``v0:p74``) or a rest (``v1:rest``); a voice not named holds what it was doing.  Each
voice has its own pitch tokens over its range (``VOICE_RANGE``), so the model never has to
count which voice a pitch belongs to.  Tempo and instruments are not in the tokens: they only
change how a piece is played.

``PROMPT_WORDS`` is the one list of words the prompt understands; the page shows ``prompt_help()``.
Pure Python: importing this costs nothing.
"""
from __future__ import annotations

import re

from ...errors import StudioError

SPECIAL = ["<pad>", "<bos>", "<eos>", "<unk>"]
STYLES = ["chorale", "air", "waltz", "march", "reel", "jig", "hornpipe", "strathspey"]
METERS = ["2/4", "3/4", "4/4", "6/8", "9/8"]
KEYS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MODES = ["major", "minor", "dorian", "mixolydian"]
TAG_ORDER = ["style", "meter", "key", "mode"]
TAG_VALUES = {"style": STYLES, "meter": METERS, "key": KEYS, "mode": MODES}

VOICES = 4  # melody (soprano), two inner voices (alto, tenor; or the accompaniment's chord), bass
VOICE_NAMES = ["melody", "inner 1", "inner 2", "bass"]
HOLD, REST = -1, -2  # a voice's value at an onset that is not a new pitch
VOICE_RANGE = [(55, 96), (45, 84), (40, 79), (28, 67)]  # each voice's pitch tokens (MIDI numbers)
PITCH_LOW, PITCH_HIGH = 28, 96  # E1..C7: every voice together
BAR_TOKENS = ["bar", "bar:penultimate", "bar:last"]
BAR_LENGTH = {"2/4": 8, "3/4": 12, "4/4": 16, "6/8": 12, "9/8": 18}  # sixteenths per bar
BEAT_LENGTH = {"2/4": 4, "3/4": 4, "4/4": 4, "6/8": 6, "9/8": 6}  # sixteenths per felt beat
MAX_BAR = max(BAR_LENGTH.values())

# the metres each style comes in (the sampler keeps to them unless the prompt names another)
STYLE_METERS = {"chorale": ["4/4", "3/4"], "air": METERS, "waltz": ["3/4"], "march": ["2/4", "4/4", "6/8"],
                "reel": ["4/4"], "jig": ["6/8", "9/8"], "hornpipe": ["4/4", "2/4"], "strathspey": ["4/4"]}
# playing speed in quarter notes a minute, by style; tempo words scale it
STYLE_BPM = {"chorale": 72, "air": 76, "waltz": 138, "march": 112, "reel": 120, "jig": 150,
             "hornpipe": 104, "strathspey": 96}
TEMPO_SCALE = {"slow": 0.8, "moderate": 1.0, "fast": 1.2}


def vocabulary() -> list[str]:
    """Every token, in id order (the tokenizer's WordLevel vocabulary)."""
    tokens = list(SPECIAL)
    for kind in TAG_ORDER:
        tokens += [f"{kind}:{value}" for value in TAG_VALUES[kind]]
    tokens += BAR_TOKENS
    tokens += [f"pos:{k}" for k in range(MAX_BAR)]
    for voice, (low, high) in enumerate(VOICE_RANGE):
        tokens.append(f"v{voice}:rest")
        tokens += [f"v{voice}:p{pitch}" for pitch in range(low, high + 1)]  # contiguous: a shift transposes
    return tokens


def fold(pitch: int, voice: int) -> int:
    """``pitch`` moved by octaves into ``voice``'s range."""
    low, high = VOICE_RANGE[voice]
    while pitch > high:
        pitch -= 12
    while pitch < low:
        pitch += 12
    return pitch


def transposed(tokens: list[str], shift: int) -> list[str] | None:
    """``tokens`` (a piece's, as ``Piece.tokens`` writes them) moved ``shift`` semitones, its key tag with it
    (``key:G`` up 2 is ``key:A``); None when a pitch would leave its voice's range."""
    out = []
    for token in tokens:
        kind, _, value = token.partition(":")
        if kind == "key" and value in KEYS:
            token = f"key:{KEYS[(KEYS.index(value) + shift) % 12]}"
        elif kind[:1] == "v" and value[:1] == "p":
            voice, pitch = int(kind[1:]), int(value[1:]) + shift
            low, high = VOICE_RANGE[voice]
            if not low <= pitch <= high:
                return None
            token = f"{kind}:p{pitch}"
        out.append(token)
    return out


def bar_token(index: int, n_bars: int) -> str:
    """``bar``, or ``bar:penultimate`` / ``bar:last`` for the last two bars of ``n_bars``."""
    left = n_bars - index
    return "bar:last" if left == 1 else "bar:penultimate" if left == 2 else "bar"


# ---- instruments (General MIDI programs), one per voice -------------------------------------

INSTRUMENTS = {"piano": 0, "harpsichord": 6, "organ": 19, "accordion": 21, "guitar": 24, "harp": 46,
               "fiddle": 40, "violin": 40, "viola": 41, "cello": 42, "contrabass": 43,
               "voice": 52, "trumpet": 56, "trombone": 57, "tuba": 58, "horn": 60, "oboe": 68,
               "bassoon": 70, "clarinet": 71, "flute": 73, "recorder": 74, "whistle": 78, "bagpipes": 109}
# an ensemble word names every voice's instrument, top to bottom
ENSEMBLES = {"strings": (40, 40, 41, 42), "choir": (52, 52, 52, 52), "organ": (19, 19, 19, 19),
             "brass": (56, 60, 57, 58), "woodwinds": (73, 68, 71, 70), "piano": (0, 0, 0, 0)}
# what each style plays on when the prompt names no instrument
STYLE_ENSEMBLE = {"chorale": (52, 52, 52, 52), "air": (73, 0, 0, 42), "waltz": (21, 0, 0, 32),
                  "march": (56, 0, 0, 58), "reel": (40, 0, 0, 32), "jig": (40, 0, 0, 32),
                  "hornpipe": (40, 0, 0, 32), "strathspey": (40, 0, 0, 32)}
INSTRUMENT_ALIASES = {"pianoforte": "piano", "keyboard": "piano", "harmonium": "organ", "squeezebox": "accordion",
                      "violins": "violin", "fiddles": "fiddle", "violoncello": "cello", "cellos": "cello",
                      "flutes": "flute", "trumpets": "trumpet", "horns": "horn", "guitars": "guitar",
                      "pipes": "bagpipes", "bagpipe": "bagpipes", "singers": "choir", "voices": "choir",
                      "chorus": "choir", "quartet": "strings", "orchestra": "strings", "string": "strings",
                      "winds": "woodwinds", "woodwind": "woodwinds", "doublebass": "contrabass",
                      "tinwhistle": "whistle"}


def ensemble(named: list[str], style: str) -> tuple[int, int, int, int]:
    """The four voices' GM programs: the style's ensemble, changed by the instruments the prompt
    names (one: the melody; two: melody and bass; three: melody, inner voices, bass; four: each;
    an ensemble word: all four)."""
    programs = list(STYLE_ENSEMBLE.get(style, STYLE_ENSEMBLE["air"]))
    if len(named) == 1 and named[0] in ENSEMBLES:
        return ENSEMBLES[named[0]]
    voices = {1: [0], 2: [0, 3], 3: [0, 1, 3], 4: [0, 1, 2, 3]}.get(len(named), [0, 1, 2, 3])
    for voice, word in zip(voices, named):
        programs[voice] = INSTRUMENTS.get(word, ENSEMBLES.get(word, (0,) * 4)[min(voice, 3)])
        if len(named) == 3 and voice == 1:
            programs[2] = programs[1]
    return tuple(programs)


# ---- prompt words -> tags, tempo, instruments -------------------------------------------------

STYLE_WORDS = {"chorale": "chorale", "chorales": "chorale", "hymn": "chorale", "choral": "chorale",
               "bach": "chorale", "four-part": "chorale", "air": "air", "song": "air", "ballad": "air",
               "lament": "air", "lullaby": "air", "waltz": "waltz", "waltzes": "waltz", "minuet": "waltz",
               "march": "march", "quickstep": "march", "polka": "march", "reel": "reel", "reels": "reel",
               "jig": "jig", "jigs": "jig", "hornpipe": "hornpipe", "clog": "hornpipe",
               "strathspey": "strathspey", "fling": "strathspey"}
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

# the words the prompt understands, by kind: what the page lists under the prompt box
PROMPT_WORDS = {
    "style": sorted(STYLE_WORDS),
    "key": ["in D", "in F# minor", "Bb major", "A dorian", "G mixolydian"],
    "mode": sorted(MODE_WORDS),
    "metre": METERS,
    "tempo": sorted(TEMPO_WORDS) + ["120 bpm"],
    "mood": sorted(MOOD_WORDS),
    "instruments": sorted(INSTRUMENTS) + sorted(set(ENSEMBLES) - set(INSTRUMENTS)),
}


def prompt_help() -> str:
    """The words the symbolic model understands, one Markdown list item per kind (shown under the prompt)."""
    lines = ["Words the built-in model understands (the rest of the prompt is free text):", ""]
    for kind, words in PROMPT_WORDS.items():
        lines.append(f"- **{kind}:** {', '.join(words)}")
    lines += ["", "One instrument named plays the melody, two the melody and bass, an ensemble word (strings, "
                  "brass, choir, organ, woodwinds, piano) all four voices."]
    return "\n".join(lines)


_ACCIDENTAL = r"(#|b|♯|♭|-sharp|-flat| sharp| flat)?"
_KEY_WITH_MODE = re.compile(r"\b([A-Ga-g])" + _ACCIDENTAL + r"\s*(major|minor|maj|min|dorian|mixolydian)\b",
                            re.IGNORECASE)
_KEY_AFTER_IN = re.compile(r"\b(?:in|key of)\s+([A-G])" + _ACCIDENTAL + r"(?![\w'])")
_METER = re.compile(r"(?<![\d/])(2/4|3/4|4/4|6/8|9/8)(?![\d/])")
_BPM = re.compile(r"\b(\d{2,3})\s*bpm\b", re.IGNORECASE)


def _key_name(letter: str, accidental: str | None) -> str:
    acc = (accidental or "").strip().lower()
    acc = {"♯": "#", "-sharp": "#", "sharp": "#", "♭": "b", "-flat": "b", "flat": "b"}.get(acc, acc)
    return KEY_ALIASES[letter.upper() + acc]


class PromptTags(dict):
    """The tags a prompt fixes (kind -> value), plus ``tempo`` (a TEMPO_SCALE word), ``bpm`` and
    ``instruments`` (instrument or ensemble words, in the prompt's order) when it names them."""

    tempo: str | None = None
    bpm: int | None = None
    instruments: list[str]

    def playing_bpm(self, style: str) -> int:
        """Quarter notes a minute: the named bpm, else the style's speed scaled by the tempo word."""
        if self.bpm:
            return self.bpm
        return round(STYLE_BPM.get(style, 96) * TEMPO_SCALE[self.tempo or "moderate"])


def parse_prompt(prompt: str) -> PromptTags:
    """Map a prompt's words to tags; two different values for one tag raise StudioError."""
    kinds = TAG_ORDER + ["tempo"]
    found: dict[str, list[tuple[str, str]]] = {kind: [] for kind in kinds}  # kind -> (value, word)
    text = prompt or ""
    for match in _KEY_WITH_MODE.finditer(text):
        found["key"].append((_key_name(match.group(1), match.group(2)), match.group(0)))
        mode = match.group(3).lower()
        found["mode"].append(({"maj": "major", "min": "minor"}.get(mode, mode), match.group(0)))
    for match in _KEY_AFTER_IN.finditer(text):
        found["key"].append((_key_name(match.group(1), match.group(2)), match.group(0)))
    for match in _METER.finditer(text):
        found["meter"].append((match.group(1), match.group(1)))
    bpm = None
    for match in _BPM.finditer(text):
        bpm = int(match.group(1))
        found["tempo"].append(("slow" if bpm < 80 else "moderate" if bpm < 115 else "fast", match.group(0)))
    moods: dict[str, list[tuple[str, str]]] = {kind: [] for kind in kinds}
    instruments: list[str] = []
    for word in re.findall(r"[a-z][a-z-]*", text.lower()):
        for table, kind in ((STYLE_WORDS, "style"), (MODE_WORDS, "mode"), (TEMPO_WORDS, "tempo")):
            if word in table:
                found[kind].append((table[word], word))
        for kind, value in MOOD_WORDS.get(word, {}).items():
            moods[kind].append((value, word))
        name = INSTRUMENT_ALIASES.get(word, word)
        if (name in INSTRUMENTS or name in ENSEMBLES) and name not in instruments:
            instruments.append(name)
    tags = PromptTags()
    resolved: dict[str, str] = {}
    for kind in kinds:
        for source in (found[kind], moods[kind]):
            values: dict[str, str] = {}
            for value, word in source:
                values.setdefault(value, word)
            if len(values) > 1 and source is found[kind]:
                words = list(values.values())
                raise StudioError(f"The prompt asks for contradictory {kind}s ('{words[0]}' and '{words[1]}'); "
                                  "name one.")
            if values and kind not in resolved:
                resolved[kind] = next(iter(values))
    for kind in TAG_ORDER:
        if kind in resolved:
            tags[kind] = resolved[kind]
    tags.tempo = resolved.get("tempo")
    tags.bpm = bpm
    tags.instruments = instruments
    return tags
