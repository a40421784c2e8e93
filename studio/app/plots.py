"""Small charts: the score histogram and the loss curve (SVG, crisp at any size) and a MIDI piano roll (PIL).

PIL is already a dependency; a plotting library would be a heavy one for three pictures.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

BINS = 20  # histogram bins over the shown score range
INK, BAR, KEPT, LINE = "#333333", "#9aa9c4", "#4f8f5a", "#c0392b"


def histogram_svg(scores: Sequence[float], threshold: float, temperature: float,
                  kept: Sequence[bool] | None = None, width: int = 320, height: int = 150) -> str:
    """Scores in BINS bins (kept by the rule in green), the threshold in red, and the rule's keep
    probability as a curve (a step at temperature 0, a slope as it grows).  The axis spans the scores
    and the threshold (not all of [0, 1]), so a tight batch still shows its spread."""
    import math

    kept = list(kept) if kept is not None else [False] * len(scores)
    lo, hi = min([*scores, threshold]), max([*scores, threshold])
    pad = max(0.02, (hi - lo) * 0.1)
    lo, hi = (max(0.0, lo - pad), min(1.0, hi + pad)) if scores else (0.0, 1.0)  # no batch yet: the whole scale
    span = (hi - lo) or 1.0
    counts, kept_counts = [0] * BINS, [0] * BINS
    for score, ok in zip(scores, kept):
        b = min(BINS - 1, max(0, int((score - lo) / span * BINS)))
        counts[b] += 1
        kept_counts[b] += int(ok)
    left, right, top, bottom = 22, 10, 8, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    tallest = max(counts, default=0) or 1
    x = lambda v: left + (v - lo) / span * plot_w  # noqa: E731
    parts = [f'<svg viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="score histogram, threshold {threshold:.2f}" font-size="10" font-family="sans-serif">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{INK}"/>']
    bar_w = plot_w / BINS
    for b in range(BINS):
        for count, colour in ((counts[b], BAR), (kept_counts[b], KEPT)):
            if count:
                h = plot_h * count / tallest
                parts.append(f'<rect x="{left + b * bar_w + 1:.1f}" y="{top + plot_h - h:.1f}" '
                             f'width="{bar_w - 2:.1f}" height="{h:.1f}" fill="{colour}"/>')
    curve = []
    for i in range(101):
        s = lo + span * i / 100
        p = 1.0 if s >= threshold else (0.0 if temperature <= 0 else math.exp(-(threshold - s) / temperature))
        curve.append(f"{x(s):.1f},{top + plot_h - p * plot_h:.1f}")
    parts.append(f'<polyline points="{" ".join(curve)}" fill="none" stroke="#e0a526" stroke-width="1.5"/>')
    parts.append(f'<line x1="{x(threshold):.1f}" y1="{top}" x2="{x(threshold):.1f}" y2="{top + plot_h}" '
                 f'stroke="{LINE}" stroke-width="2"/>')
    for i in range(5):
        tick = lo + span * i / 4
        parts.append(f'<text x="{x(tick):.1f}" y="{height - 6}" text-anchor="middle" fill="{INK}">{tick:.2f}</text>')
    if not scores:
        parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                     f'fill="{INK}">No scores yet: generate a batch</text>')
    parts.append(f'<text x="2" y="{top + 8}" fill="{INK}">{tallest if scores else ""}</text></svg>')
    return "".join(parts)


def loss_svg(losses: Sequence[Sequence[float]], steps: int, width: int = 360, height: int = 150) -> str:
    """The tune's loss by step as SVG, the x axis spanning the whole tune so progress shows as the line grows.
    Drawn about as wide as its column at 1024 px (its 11 px labels stay about 10 px there; studio.css caps its
    growth at 1.4x, as the histogram's)."""
    left, right, top, bottom = 44, 10, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [f'<svg viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="loss curve" font-size="11" font-family="sans-serif">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{INK}"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{INK}"/>',
             f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end" fill="{INK}">step {steps}</text>']
    if losses:
        values = [float(loss) for _, loss in losses]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        points = [(left + plot_w * step / max(steps, 1), top + plot_h - plot_h * (loss - low) / span)
                  for (step, _), loss in zip(losses, values)]
        parts.append(f'<polyline points="{" ".join(f"{px:.1f},{py:.1f}" for px, py in points)}" fill="none" '
                     f'stroke="{LINE}" stroke-width="2"/>')
        parts.append(f'<circle cx="{points[-1][0]:.1f}" cy="{points[-1][1]:.1f}" r="3" fill="{LINE}"/>')
        parts.append(f'<text x="4" y="{top + 10}" fill="{INK}">{high:.3g}</text>')
        parts.append(f'<text x="4" y="{top + plot_h}" fill="{INK}">{low:.3g}</text>')
    else:
        parts.append(f'<text x="{left + 10}" y="{top + plot_h / 2}" fill="{INK}">No steps yet.</text>')
    return "".join(parts) + "</svg>"


def piano_roll(midi_path: Path | str, width: int = 320, height: int = 120) -> Image.Image:
    """Notes as bars: time across, pitch up; drum channel (10) in grey."""
    import mido

    notes: list[tuple[float, float, int, int]] = []  # start, end (seconds), pitch, channel
    try:
        midi = mido.MidiFile(str(midi_path))
        now, sounding = 0.0, {}
        for message in midi:  # iterating a MidiFile yields delta times in seconds
            now += message.time
            if message.type == "note_on" and message.velocity > 0:
                sounding[(message.channel, message.note)] = now
            elif message.type in ("note_off", "note_on"):
                start = sounding.pop((message.channel, message.note), None)
                if start is not None:
                    notes.append((start, now, message.note, message.channel))
    except (OSError, ValueError, EOFError):
        notes = []
    image = Image.new("RGB", (width, height), "#fbfaf6")
    draw = ImageDraw.Draw(image)
    if not notes:
        draw.text((8, height // 2 - 6), "no notes", fill=INK)
        return image
    end = max(n[1] for n in notes) or 1.0
    low, high = min(n[2] for n in notes) - 1, max(n[2] for n in notes) + 1
    row = (height - 4) / max(high - low, 1)
    for start, stop, pitch, channel in notes:
        x0, x1 = 2 + (width - 4) * start / end, 2 + (width - 4) * stop / end
        y = height - 2 - (pitch - low) * row
        draw.rectangle([x0, y - max(row, 2), max(x1, x0 + 2), y], fill="#999999" if channel == 9 else "#3b5b92")
    return image
