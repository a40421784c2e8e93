"""Melodies composed from rules: the training set of the symbolic default.

Each piece picks a style (its meter, tempo, modes, rhythms, dynamics and range), a key and
mode, a chord progression, and a phrase form over two-bar units (AABA, ABAB', ...).  Notes
land on chord tones on the beat and move by scale steps or leaps between; how often it steps
is drawn per piece, so the set spans smooth tunes and jumpy ones (the scorers can tell them
apart, and a tune can lean toward either).  The last bar cadences on the tonic.
"""
from __future__ import annotations

import random

from .events import Bar, Piece
from .vocab import BAR_LENGTH, BEAT_LENGTH, KEYS, PITCH_HIGH, PITCH_LOW

SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10],
          "dorian": [0, 2, 3, 5, 7, 9, 10], "mixolydian": [0, 2, 4, 5, 7, 9, 10]}

# rhythms of one bar in sixteenths, by meter; the last list of each style holds cadence bars
RHYTHMS = {
    "waltz": {"3/4": [[4, 4, 4], [8, 4], [4, 2, 2, 4], [6, 2, 4], [4, 8], [2, 2, 4, 4]]},
    "march": {"2/4": [[4, 4], [3, 1, 4], [2, 2, 4], [6, 2], [2, 2, 2, 2], [3, 1, 2, 2]],
              "4/4": [[4, 4, 4, 4], [6, 2, 4, 4], [4, 2, 2, 4, 4], [3, 1, 3, 1, 4, 4], [8, 4, 4], [2, 2, 4, 8]]},
    "lullaby": {"6/8": [[4, 2, 4, 2], [6, 6], [6, 4, 2], [4, 2, 6], [2, 2, 2, 6]],
                "3/4": [[8, 4], [4, 4, 4], [12], [6, 2, 4]]},
    "reel": {"4/4": [[2, 2, 2, 2, 2, 2, 2, 2], [4, 2, 2, 2, 2, 2, 2], [2, 2, 2, 2, 4, 4],
                     [1, 1, 2, 2, 2, 2, 2, 2, 2], [2, 2, 4, 2, 2, 4]]},
    "chorale": {"4/4": [[4, 4, 4, 4], [8, 4, 4], [4, 4, 8], [6, 2, 4, 4], [4, 4, 6, 2]]},
}
CADENCE = {"3/4": [[12], [8, 4]], "2/4": [[8], [4, 4]], "4/4": [[16], [8, 8], [4, 4, 8]],
           "6/8": [[12], [6, 6]]}
STYLE = {  # meters, tempos, modes with weights, dynamics, degree range (scale steps from the tonic)
    "waltz": dict(meters=["3/4"], tempos=["moderate", "fast"], modes={"major": 7, "minor": 3},
                  dynamics=["mp", "mf"], low=-2, high=9),
    "march": dict(meters=["2/4", "4/4"], tempos=["moderate", "fast"], modes={"major": 8, "minor": 1, "mixolydian": 1},
                  dynamics=["mf", "f"], low=-3, high=8),
    "lullaby": dict(meters=["6/8", "6/8", "3/4"], tempos=["slow"], modes={"major": 6, "minor": 3, "dorian": 1},
                    dynamics=["p", "mp"], low=-1, high=6),
    "reel": dict(meters=["4/4"], tempos=["fast"], modes={"dorian": 4, "mixolydian": 3, "major": 3, "minor": 1},
                 dynamics=["mf", "f"], low=-3, high=10),
    "chorale": dict(meters=["4/4"], tempos=["slow", "moderate"], modes={"major": 6, "minor": 4},
                    dynamics=["mp", "mf"], low=-2, high=7),
}
PROGRESSIONS = {  # chord roots as scale degrees, one per bar of an eight-bar piece
    "tonal": [[0, 3, 4, 0, 0, 3, 4, 0], [0, 5, 3, 4, 0, 5, 4, 0], [0, 0, 3, 4, 0, 3, 4, 0],
              [0, 4, 5, 3, 0, 3, 4, 0], [0, 3, 0, 4, 5, 3, 4, 0]],
    "modal": [[0, 6, 0, 6, 0, 3, 6, 0], [0, 3, 0, 6, 0, 3, 4, 0], [0, 6, 3, 0, 0, 6, 4, 0]],
}
FORMS = ["AABA", "ABAB", "AABC", "ABAC", "AABB"]  # over two-bar units


def _pitch(tonic: int, scale: list[int], degree: int) -> int:
    return tonic + 12 * (degree // 7) + scale[degree % 7]


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def compose(rng: random.Random, style: str | None = None, n_bars: int = 8) -> Piece:
    """One melody of ``n_bars`` (a multiple of 8) composed from the rules above."""
    style = style or rng.choice(list(STYLE))
    spec = STYLE[style]
    meter = rng.choice(spec["meters"])
    mode = _weighted(rng, spec["modes"])
    key = rng.choice(KEYS)
    tags = {"style": style, "meter": meter, "key": key, "mode": mode, "tempo": rng.choice(spec["tempos"])}
    scale = SCALES[mode]
    tonic = 60 + KEYS.index(key)
    if tonic > 65:  # keep the tonic between C4 and F4 so the range fits the vocabulary
        tonic -= 12
    step_chance = rng.uniform(0.25, 0.95)  # smooth pieces step, jumpy ones leap
    rest_chance = rng.uniform(0.0, 0.35)
    low, high = spec["low"], spec["high"] + rng.choice([-2, -1, 0, 0, 1])
    rhythms = RHYTHMS[style][meter]
    beat = BEAT_LENGTH[meter]

    progression = []
    family = "modal" if mode in ("dorian", "mixolydian") else "tonal"
    for _ in range(n_bars // 8):
        progression += rng.choice(PROGRESSIONS[family])
    form = "".join(rng.choice(FORMS) for _ in range(n_bars // 8))

    units: dict[str, list[Bar]] = {}
    bars: list[Bar] = []
    degree = rng.choice([0, 2, 4])
    for unit_index, letter in enumerate(form):
        first_bar = unit_index * 2
        final_unit = unit_index == len(form) - 1
        if letter in units and not final_unit:
            bars += [Bar(b.velocity, list(b.events)) for b in units[letter]]
            continue
        unit = []
        for offset in range(2):
            bar_index = first_bar + offset
            cadence = bar_index == n_bars - 1
            pattern = rng.choice(CADENCE[meter] if cadence else rhythms)
            chord = [(progression[bar_index] + k) % 7 for k in (0, 2, 4)]
            events, pos = [], 0
            for note_index, dur in enumerate(pattern):
                last_note = note_index == len(pattern) - 1
                if cadence and last_note:
                    degree = min((0, 7, -7), key=lambda d: abs(d - degree))
                elif pos % beat == 0:  # on the beat: a chord tone, near (steps) or far (a leap)
                    options = [d for d in range(low, high + 1) if d % 7 in chord]
                    near = sorted(options, key=lambda d: abs(d - degree))[:2]
                    degree = rng.choice(near) if rng.random() < step_chance else rng.choice(options)
                else:  # off the beat: a passing step, or a leap anywhere in the scale
                    if rng.random() < step_chance:
                        degree += rng.choice([-1, 1])
                    else:
                        degree += rng.choice([-5, -4, -3, 3, 4, 5])
                degree = max(low, min(high, degree))
                pitch = _pitch(tonic, scale, degree)
                pitch = max(PITCH_LOW, min(PITCH_HIGH, pitch))
                rest = (last_note and len(pattern) > 1 and offset == 1 and not cadence and rng.random() < rest_chance)
                events.append((None if rest else pitch, dur))
                pos += dur
            unit.append(Bar(rng.choice(spec["dynamics"]), events))
        units.setdefault(letter, unit)
        bars += unit
    assert all(sum(d for _, d in b.events) == BAR_LENGTH[meter] for b in bars)
    return Piece(tags, bars)


def corpus(count: int, seed: int = 0, long_share: float = 0.2) -> list[Piece]:
    """``count`` pieces, styles in turn; ``long_share`` of them 16 bars, the rest 8."""
    rng = random.Random(seed)
    styles = list(STYLE)
    return [compose(rng, styles[i % len(styles)], 16 if rng.random() < long_share else 8) for i in range(count)]
