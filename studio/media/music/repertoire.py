"""The training repertoire of the built-in model, read from music21's corpus (training only).

Two families, four voices each:

- **Bach's four-part chorales** (``bach/*.mxl``, about 370 usable): soprano, alto, tenor and
  bass as written, ties joined, quantised to sixteenths.
- **Fiddle tunes and airs**: Ryan's Mammoth Collection (Boston 1883; ``ryansMammoth``, reels,
  jigs, hornpipes, strathspeys) and Aird's Airs (Glasgow 1782-1803; ``airdsAirs``, marches, airs,
  minuets, jigs).  They are melodies only, so ``harmonise`` gives each one a harmony and
  ``accompany`` plays it as a bass and a two-note chord in the style's pattern (oom-pah for a
  waltz, bass-chord vamp for a reel, long chords for an air).

Left out on purpose: the Essen folk songs (their licence note allows non-commercial use only),
O'Neill's 1850 and the rest of the corpus (no licence note of their own).  ``music21`` is
needed here only: ``pip install 'studio[train]'``.  Everything else in the module is pure
Python, so the harmoniser is tested without it.
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path

from .events import Piece, piece_from_notes
from .vocab import BAR_LENGTH, BEAT_LENGTH, KEY_ALIASES, KEYS, STYLE_BPM, STYLE_ENSEMBLE, VOICE_RANGE, fold

SOURCES = {  # repertory -> (music21 corpus folder, what it is, licence as the corpus states it)
    "bach": ("bach", "J. S. Bach, four-part chorales (BWV 250-438 and cantata chorales)",
             "compositions in the public domain; encodings distributed with music21 (BSD) by permission"),
    "ryans": ("ryansMammoth", "Ryan's Mammoth Collection of fiddle tunes (Boston, 1883)",
              "public-domain tunes; ABC transcriptions contributed to the public, distributed with music21"),
    "aird": ("airdsAirs", "Aird's Selection of Scotch, English, Irish and Foreign Airs (Glasgow, 1782-1803)",
             "public-domain tunes; ABC transcriptions by Jack Campin, distributed with music21"),
}
METER_NAMES = {"2/4": "2/4", "3/4": "3/4", "4/4": "4/4", "2/2": "4/4", "6/8": "6/8", "9/8": "9/8"}
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10],
          "dorian": [0, 2, 3, 5, 7, 9, 10], "mixolydian": [0, 2, 4, 5, 7, 9, 10]}
# how likely each scale degree's triad is, before the melody has its say (I, ii, iii, IV, V, vi, vii)
DEGREE_PRIOR = {"major": [1.0, 0.45, 0.15, 0.8, 0.85, 0.5, 0.05],
                "minor": [1.0, 0.1, 0.45, 0.75, 0.85, 0.5, 0.45],
                "dorian": [1.0, 0.3, 0.45, 0.75, 0.35, 0.1, 0.6],
                "mixolydian": [1.0, 0.35, 0.1, 0.75, 0.4, 0.3, 0.75]}


# ---- the harmoniser -------------------------------------------------------------------------

def triad(tonic: int, mode: str, degree: int) -> tuple[int, int, int]:
    """Pitch classes (root, third, fifth) of the diatonic triad on ``degree`` (0-based); minor's
    dominant takes the leading tone (harmonic minor)."""
    scale = SCALES[mode]
    pcs = [(tonic + scale[(degree + k) % 7]) % 12 for k in (0, 2, 4)]
    if mode == "minor" and degree == 4:
        pcs[1] = (pcs[1] + 1) % 12
    return pcs[0], pcs[1], pcs[2]


def harmonic_span(style: str, meter: str) -> int:
    """Sixteenths per chord: half a bar in 4/4, a bar otherwise."""
    return 8 if meter == "4/4" else BAR_LENGTH[meter]


def harmonise(melody: list[tuple[int, int, int]], tonic: int, mode: str, style: str, meter: str,
              n_bars: int) -> list[int]:
    """One chord (a scale degree) per harmonic span: the triad whose tones cover most of the
    melody sounding there (notes on the beat count double), leaning to common chords, to keeping
    the chord, and to the tonic at both ends."""
    span = harmonic_span(style, meter)
    beat = BEAT_LENGTH[meter]
    n_spans = max(1, n_bars * BAR_LENGTH[meter] // span)
    weights = [[0.0] * 12 for _ in range(n_spans)]
    for start, length, pitch in melody:
        for t in range(start, start + length):
            s = t // span
            if 0 <= s < n_spans:
                weights[s][pitch % 12] += 2.0 if t == start and start % beat == 0 else 1.0
    prior = DEGREE_PRIOR[mode]
    chords: list[int] = []
    for s, w in enumerate(weights):
        total = sum(w) or 1.0
        best, best_score = 0, -math.inf
        for degree in range(7):
            tones = triad(tonic, mode, degree)
            fit = sum(w[pc] for pc in tones) / total
            clash = sum(w[pc] for pc in range(12) if pc not in tones) / total
            score = fit - 0.5 * clash + 0.25 * prior[degree]
            if chords and degree == chords[-1]:
                score += 0.08
            if (s == 0 or s == n_spans - 1) and degree == 0:
                score += 0.4
            if s == n_spans - 2 and degree == 4:
                score += 0.15
            if score > best_score:
                best, best_score = degree, score
        chords.append(best)
    return chords


def accompaniment_pattern(style: str, meter: str) -> list[tuple[int, str, int]]:
    """(position, role, length) in one bar: role 'B' is the bass, 'C' the two-note chord, 'BC' both."""
    bar = BAR_LENGTH[meter]
    if style == "air":
        span = harmonic_span(style, meter)
        return [(p, "BC", span) for p in range(0, bar, span)]
    if meter == "3/4":
        return [(0, "B", 4), (4, "C", 3), (8, "C", 3)]
    if meter in ("6/8", "9/8"):
        return [(p + d, role, n) for p in range(0, bar, 6) for d, role, n in ((0, "B", 4), (4, "C", 2))]
    return [(p + d, role, 3 if role == "C" else 4) for p in range(0, bar, 8) for d, role in ((0, "B"), (4, "C"))]


def _nearest(pc: int, near: int, low: int, high: int) -> int:
    options = [p for p in range(low, high + 1) if p % 12 == pc]
    return min(options, key=lambda p: (abs(p - near), p))


def accompany(melody: list[tuple[int, int, int]], chords: list[int], tonic: int, mode: str, style: str,
              meter: str, n_bars: int) -> list[list[tuple[int, int, int]]]:
    """The inner voices and bass, (start, length, pitch) each, that play ``chords`` in the style's
    pattern: the bass on the chord's root (its fifth when the chord repeats within the span), the
    chord's third and fifth kept close from one chord to the next and below the melody."""
    bar, span = BAR_LENGTH[meter], harmonic_span(style, meter)
    sounding = {}
    for start, length, pitch in melody:
        for t in range(start, start + length):
            sounding[t] = pitch
    inner1, inner2, bass = [], [], []
    previous_bass, previous_inner = 43, (60, 55)
    last_span_bass = None
    for index in range(n_bars):
        for pos, role, length in accompaniment_pattern(style, meter):
            t = index * bar + pos
            s = min(t // span, len(chords) - 1)
            root, third, fifth = triad(tonic, mode, chords[s])
            if "B" in role:
                pc = fifth if last_span_bass == s else root
                previous_bass = _nearest(pc, previous_bass, 36, 52)
                bass.append((t, length, previous_bass))
                last_span_bass = s
            if "C" in role:
                top = min(sounding.get(t, 76) - 1, 69)
                a = _nearest(third, previous_inner[0], max(48, top - 11), max(top, 59))
                b = _nearest(fifth, previous_inner[1], a - 12, a - 1)
                previous_inner = (a, b)
                inner1.append((t, length, a))
                inner2.append((t, length, b))
    return [inner1, inner2, bass]


def style_of(title: str, meter: str, collection: str, long_notes: bool) -> str:
    """A style tag from a tune's title and metre."""
    words = title.lower()
    for word, style in (("slip", "jig"), ("jig", "jig"), ("reel", "reel"), ("hornpipe", "hornpipe"),
                        ("clog", "hornpipe"), ("strathspey", "strathspey"), ("fling", "strathspey"),
                        ("waltz", "waltz"), ("minuet", "waltz"), ("march", "march"), ("quick step", "march"),
                        ("quickstep", "march"), ("regt", "march"), ("air", "air")):
        if re.search(r"\b" + word, words):
            return style
    if meter == "3/4":
        return "waltz"
    if meter in ("6/8", "9/8"):
        return "jig"
    if collection == "ryans":
        return "reel" if meter == "4/4" else "march"
    return "air" if long_notes else "march"


def folk_piece(melody: list[tuple[int, int, int]], tonic: int, mode: str, style: str, meter: str,
               n_bars: int) -> Piece:
    """A melody made four voices: harmonised, then accompanied in its style."""
    chords = harmonise(melody, tonic, mode, style, meter, n_bars)
    inner1, inner2, bass = accompany(melody, chords, tonic, mode, style, meter, n_bars)
    tags = {"style": style, "meter": meter, "key": KEYS[tonic % 12], "mode": mode}
    return piece_from_notes(tags, [melody, inner1, inner2, bass], n_bars, STYLE_BPM[style], STYLE_ENSEMBLE[style])


# ---- reading music21 scores -----------------------------------------------------------------

def _key_name(name: str) -> str:
    return KEY_ALIASES[name.replace("-", "b")[:2] if len(name) > 1 else name]


def _pickup(part, bar_quarters: float) -> float:
    """Quarter notes before the first full bar (0 when the piece starts on a downbeat)."""
    measures = part.getElementsByClass("Measure")
    if len(measures) > 1 and (measures[0].number == 0 or measures[0].paddingLeft):
        return float(measures[1].offset) % bar_quarters
    return 0.0


def _notes(part, shift: int, scale: int, lowest: bool = False) -> list[tuple[int, int, int]]:
    """(start, length, pitch) in sixteenths (times ``scale``), shifted so bar lines fall on bars."""
    out = []
    for n in part.stripTies().flatten().notes:
        length = round(float(n.quarterLength) * 4 * scale)
        if length <= 0:
            continue  # grace notes
        pitches = [p.midi for p in n.pitches]
        out.append((round(float(n.offset) * 4 * scale) + shift, length, min(pitches) if lowest else max(pitches)))
    return out


def _meter_of(score) -> str | None:
    signatures = score.recurse().getElementsByClass("TimeSignature")
    return METER_NAMES.get(signatures[0].ratioString) if signatures else None


def _key_of(score) -> tuple[int, str]:
    from music21 import key as m21key

    keys = score.recurse().getElementsByClass(m21key.Key)
    k = keys[0] if keys else score.analyze("key")
    mode = {"ionian": "major", "aeolian": "minor"}.get(k.mode, k.mode)
    if mode not in SCALES:
        k, mode = score.analyze("key"), None
        mode = k.mode
    return KEYS.index(_key_name(k.tonic.name)), mode


def chorale(path) -> Piece | None:
    """One Bach chorale as a Piece in its own key; None when it is not four plain voices."""
    from music21 import corpus

    score = corpus.parse(str(path))
    meter = _meter_of(score)
    if meter not in ("4/4", "3/4"):
        return None
    parts = {}
    for part in score.parts:
        name = (part.partName or "").lower()
        for voice in ("soprano", "alto", "tenor", "bass"):
            if name.startswith(voice) and voice not in parts:
                parts[voice] = part
    if len(parts) < 4:
        if len(score.parts) != 4:
            return None
        parts = dict(zip(("soprano", "alto", "tenor", "bass"), score.parts))
    k = score.analyze("key")
    tonic, mode = KEYS.index(_key_name(k.tonic.name)), k.mode
    if mode not in ("major", "minor"):
        return None
    bar = BAR_LENGTH[meter]
    shift = round((bar / 4 - _pickup(parts["soprano"], bar / 4)) * 4) % bar
    voices = [_notes(parts[v], shift, 1, lowest=v == "bass") for v in ("soprano", "alto", "tenor", "bass")]
    if any(not v for v in voices):
        return None
    end = max(s + n for v in voices for s, n, _ in v)
    n_bars = -(-end // bar)
    tags = {"style": "chorale", "meter": meter, "key": KEYS[tonic], "mode": mode}
    return piece_from_notes(tags, voices, n_bars, STYLE_BPM["chorale"], STYLE_ENSEMBLE["chorale"])


def folk(score, collection: str) -> Piece | None:
    """One fiddle tune or air, harmonised and accompanied; None for metres the model does not know."""
    meter = _meter_of(score)
    if meter is None or not score.parts:
        return None
    tonic, mode = _key_of(score)
    title = (score.metadata.title or "") if score.metadata else ""
    part = score.parts[0]
    lengths = [float(n.quarterLength) for n in part.flatten().notes if n.quarterLength > 0]
    if len(lengths) < 16:
        return None
    sixteenths = sum(1 for q in lengths if q <= 0.25) / len(lengths)
    style = style_of(title, meter, collection, long_notes=sum(lengths) / len(lengths) >= 0.75)
    scale = 1
    bar_quarters = {"2/4": 2, "3/4": 3, "4/4": 4, "6/8": 3, "9/8": 4.5}[meter]
    if meter == "2/4" and style in ("reel", "hornpipe", "strathspey") and sixteenths > 0.3:
        meter, scale = "4/4", 2  # a reel in 2/4 sixteenths is the same tune as in 4/4 quavers
    bar = BAR_LENGTH[meter]
    pickup16 = round(_pickup(part, bar_quarters) * 4 * scale)
    shift = (bar - pickup16 % bar) % bar
    melody = _notes(part, shift, scale)
    low = min(p for _, _, p in melody)
    octave = 12 * max(0, -(-(VOICE_RANGE[0][0] + 5 - low) // 12))  # a low tune goes up an octave
    melody = [(s, n, p + octave) for s, n, p in melody]
    n_bars = -(-max(s + n for s, n, _ in melody) // bar)
    return folk_piece(melody, tonic, mode, style, meter, n_bars)


def read_repertoire(names=("bach", "ryans", "aird"), log=print) -> list[Piece]:
    """Every usable piece of the named repertories (a few minutes: music21 parses each file)."""
    try:
        from music21 import corpus
    except ImportError:
        from ...errors import StudioError

        raise StudioError("Training the music model reads music21's corpus: pip install 'studio[train]'.") from None
    import warnings

    pieces: list[Piece] = []
    began = time.time()
    root = Path(corpus.__file__).parent
    for name in names:
        folder = root / SOURCES[name][0]
        files = sorted(folder.glob("*.mxl")) if name == "bach" else sorted(folder.glob("*.abc"))
        count = 0
        for path in files:
            found = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    if name == "bach":
                        found = [chorale(path)]
                    else:
                        parsed = corpus.parse(str(path))
                        scores = parsed.scores if hasattr(parsed, "scores") and len(parsed.scores) else [parsed]
                        for score in scores:
                            try:
                                found.append(folk(score, name))
                            except Exception as exc:  # one odd tune in a book is skipped, not the book
                                log(f"skip a tune of {path.name}: {type(exc).__name__}")
                except Exception as exc:  # a file music21 cannot read is skipped, not fatal
                    log(f"skip {path.name}: {type(exc).__name__}")
            for piece in found:
                if piece is not None and len(piece.bars) >= 4:
                    piece.source = name
                    pieces.append(piece)
                    count += 1
        log(f"{name}: {count} pieces from {len(files)} files ({time.time() - began:.0f} s)")
    return pieces


def to_json(pieces: list[Piece]) -> list[dict]:
    return [{"tags": p.tags, "bars": [[[pos, list(v)] for pos, v in bar] for bar in p.bars], "source": p.source}
            for p in pieces]


def from_json(rows: list[dict]) -> list[Piece]:
    def folded(values):
        return tuple(v if v < 0 else fold(v, voice) for voice, v in enumerate(values))

    return [Piece(row["tags"], [[(pos, folded(v)) for pos, v in bar] for bar in row["bars"]],
                  STYLE_BPM[row["tags"]["style"]], STYLE_ENSEMBLE[row["tags"]["style"]], source=row["source"])
            for row in rows]
