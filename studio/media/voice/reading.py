"""How one seed reads a line: the built-in voice's predictions moved by seeded noise.

Each take draws a pace, a pitch shift and a pitch range for the whole line, and small per-phoneme
changes of length and pitch (rhythm and intonation), all from ``torch.Generator(seed)``; a style
before a colon ("slow, warm: ...") moves the centres of those draws.  Same seed, same take.
"""
from __future__ import annotations

import dataclasses
import math
import re

from ...errors import StudioError

# style words -> (pace factor on durations, pitch shift in semitones, pitch range factor)
STYLE_WORDS = {
    "slow": (1.25, 0.0, 1.0), "slowly": (1.25, 0.0, 1.0), "fast": (0.8, 0.0, 1.0), "quick": (0.8, 0.0, 1.0),
    "brisk": (0.88, 0.0, 1.0), "relaxed": (1.12, 0.0, 0.9), "warm": (1.05, -1.5, 1.0), "deep": (1.0, -3.0, 1.0),
    "low": (1.0, -3.0, 1.0), "high": (1.0, 3.0, 1.0), "bright": (1.0, 1.5, 1.15), "lively": (0.95, 1.0, 1.4),
    "expressive": (1.0, 0.0, 1.5), "excited": (0.88, 2.0, 1.5), "calm": (1.1, -0.5, 0.7), "flat": (1.0, 0.0, 0.4),
    "monotone": (1.0, 0.0, 0.2), "soft": (1.05, -0.5, 0.85), "neutral": (1.0, 0.0, 1.0),
}
STYLE_PREFIX = re.compile(r"^\s*([A-Za-z ,]+):\s*(.+)$", re.S)


@dataclasses.dataclass
class Style:
    pace: float = 1.0
    shift: float = 0.0
    range: float = 1.0
    words: tuple[str, ...] = ()


def split_style(prompt: str) -> tuple[Style, str]:
    """("slow, warm: Hello.") -> (the style, "Hello.").  A prefix of unknown words is an error,
    so a typo does not get read aloud."""
    match = STYLE_PREFIX.match(prompt)
    if not match:
        return Style(), prompt.strip()
    words = tuple(w for w in re.split(r"[\s,]+", match.group(1).strip().lower()) if w)
    unknown = [w for w in words if w not in STYLE_WORDS]
    if unknown:
        raise StudioError(f"Unknown voice style '{unknown[0]}' before the colon; known: {', '.join(sorted(STYLE_WORDS))}.")
    style = Style(words=words)
    for word in words:
        pace, shift, spread = STYLE_WORDS[word]
        style.pace *= pace
        style.shift += shift
        style.range *= spread
    return style, match.group(2).strip()


def centre(params: dict, style: Style) -> tuple[float, float, float]:
    """Where the seeds' draws centre: (pace, shift in semitones, range factor) from the settings and the style."""
    return (float(params["pace"]) * style.pace, float(params["pitch"]) + style.shift,
            float(params["pitch_range"]) * style.range)


def controls(seed: int, count_ids: int, params: dict, style: Style):
    """The seed's draws: (pace, shift in semitones, range factor, per-id log-duration noise, per-id pitch noise)."""
    import torch

    generator = torch.Generator().manual_seed(int(seed))
    spread = float(params["variation"])
    pace_centre, shift_centre, range_centre = centre(params, style)
    pace = pace_centre * math.exp(0.12 * spread * torch.randn((), generator=generator).item())
    shift = shift_centre + 1.5 * spread * torch.randn((), generator=generator).item()
    pitch_range = range_centre * math.exp(0.25 * spread * torch.randn((), generator=generator).item())
    rhythm = 0.12 * spread * torch.randn(count_ids, generator=generator)
    # intonation noise smoothed over neighbouring phonemes, so it moves words rather than jitters
    raw = torch.randn(count_ids + 4, generator=generator)
    intonation = 0.35 * spread * torch.nn.functional.avg_pool1d(raw[None, None], 5, 1).reshape(-1)[:count_ids] * 2
    return pace, shift, pitch_range, rhythm, intonation, generator
