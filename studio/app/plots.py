"""Small charts: the score histogram (SVG, crisp at any size), the loss curve and a MIDI piano roll (PIL).

PIL is already a dependency; a plotting library would be a heavy one for three pictures.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

WIDTH, HEIGHT, MARGIN = 480, 180, 28  # pixels
BINS = 20  # histogram bins over [0, 1]
INK, GRID, BAR, KEPT, LINE = "#333333", "#dddddd", "#9aa9c4", "#4f8f5a", "#c0392b"


def _frame(title: str) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, 4), title, fill=INK)
    draw.line([(MARGIN, HEIGHT - MARGIN), (WIDTH - 8, HEIGHT - MARGIN)], fill=INK)
    draw.line([(MARGIN, 18), (MARGIN, HEIGHT - MARGIN)], fill=INK)
    return image, draw


def histogram(scores: Sequence[float], threshold: float, accepted: Sequence[bool] | None = None) -> Image.Image:
    """Scores in BINS bins over [0, 1]; the accepted share of each bin in green; the threshold in red."""
    image, draw = _frame(f"scores (n={len(scores)}), threshold {threshold:.2f}")
    accepted = list(accepted) if accepted is not None else [False] * len(scores)
    counts, kept = [0] * BINS, [0] * BINS
    for score, ok in zip(scores, accepted):
        b = min(BINS - 1, max(0, int(score * BINS)))
        counts[b] += 1
        kept[b] += int(ok)
    top = max(counts, default=0) or 1
    plot_w, plot_h = WIDTH - 8 - MARGIN, HEIGHT - MARGIN - 22
    bar_w = plot_w / BINS
    base = HEIGHT - MARGIN
    for b in range(BINS):
        x0, x1 = MARGIN + b * bar_w + 1, MARGIN + (b + 1) * bar_w - 1
        if counts[b]:
            draw.rectangle([x0, base - plot_h * counts[b] / top, x1, base - 1], fill=BAR)
        if kept[b]:
            draw.rectangle([x0, base - plot_h * kept[b] / top, x1, base - 1], fill=KEPT)
    x = MARGIN + threshold * plot_w
    draw.line([(x, 18), (x, base)], fill=LINE, width=2)
    for tick in (0.0, 0.5, 1.0):
        draw.text((MARGIN + tick * plot_w - 6, base + 4), f"{tick:g}", fill=INK)
    draw.text((4, base - plot_h), str(top), fill=INK)
    return image


def histogram_svg(scores: Sequence[float], threshold: float, temperature: float,
                  kept: Sequence[bool] | None = None, width: int = 320, height: int = 150) -> str:
    """Scores in BINS bins over [0, 1] (kept by the rule in green), the threshold in red, and the
    rule's keep probability as a curve (a step at temperature 0, a slope as it grows)."""
    import math

    kept = list(kept) if kept is not None else [False] * len(scores)
    counts, kept_counts = [0] * BINS, [0] * BINS
    for score, ok in zip(scores, kept):
        b = min(BINS - 1, max(0, int(score * BINS)))
        counts[b] += 1
        kept_counts[b] += int(ok)
    left, right, top, bottom = 22, 6, 8, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    tallest = max(counts, default=0) or 1
    x = lambda v: left + v * plot_w  # noqa: E731
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
        s = i / 100
        p = 1.0 if s >= threshold else (0.0 if temperature <= 0 else math.exp(-(threshold - s) / temperature))
        curve.append(f"{x(s):.1f},{top + plot_h - p * plot_h:.1f}")
    parts.append(f'<polyline points="{" ".join(curve)}" fill="none" stroke="#e0a526" stroke-width="1.5"/>')
    parts.append(f'<line x1="{x(threshold):.1f}" y1="{top}" x2="{x(threshold):.1f}" y2="{top + plot_h}" '
                 f'stroke="{LINE}" stroke-width="2"/>')
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="{x(tick):.1f}" y="{height - 6}" text-anchor="middle" fill="{INK}">{tick:g}</text>')
    parts.append(f'<text x="2" y="{top + 8}" fill="{INK}">{tallest}</text></svg>')
    return "".join(parts)


def loss_curve(losses: Sequence[Sequence[float]], steps: int) -> Image.Image:
    """Loss by step, the x axis spanning the whole tune so progress shows as the line grows."""
    image, draw = _frame("loss" + (f" (last {losses[-1][1]:.4f})" if losses else ""))
    if not losses:
        return image
    values = [float(loss) for _, loss in losses]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    plot_w, plot_h = WIDTH - 8 - MARGIN, HEIGHT - MARGIN - 22
    base = HEIGHT - MARGIN
    points = [(MARGIN + plot_w * step / max(steps, 1), base - plot_h * (loss - low) / span)
              for step, loss in zip((s for s, _ in losses), values)]
    if len(points) == 1:
        x, y = points[0]
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=LINE)
    else:
        draw.line(points, fill=LINE, width=2)
    draw.text((4, base - plot_h), f"{high:.3g}", fill=INK)
    draw.text((4, base - 10), f"{low:.3g}", fill=INK)
    draw.text((WIDTH - 60, base + 4), f"step {steps}", fill=INK)
    return image


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
