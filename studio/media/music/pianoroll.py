"""A piano-roll PNG of a melody: time across, pitch up, bar lines, loudness as colour."""
from __future__ import annotations

import io

STEP_PX = 8  # one sixteenth
ROW_PX = 6  # one semitone
MARGIN = 2  # semitones above and below the melody


def piano_roll_png(notes, steps: int, bar_length: int) -> bytes:
    """notes: (start, length, pitch, velocity) in sixteenths; ``steps`` the piece's length."""
    from PIL import Image, ImageDraw

    pitches = [p for _, _, p, _ in notes] or [60]
    low, high = min(pitches) - MARGIN, max(pitches) + MARGIN
    width = max(1, steps) * STEP_PX
    height = (high - low + 1) * ROW_PX
    image = Image.new("RGB", (width, height), (250, 248, 242))
    draw = ImageDraw.Draw(image)
    for pitch in range(low, high + 1):  # shade the black keys' rows, as a keyboard would
        if pitch % 12 in (1, 3, 6, 8, 10):
            y = (high - pitch) * ROW_PX
            draw.rectangle([0, y, width, y + ROW_PX - 1], fill=(236, 233, 225))
    for x in range(0, width + 1, bar_length * STEP_PX):
        draw.line([x, 0, x, height], fill=(170, 165, 155), width=1)
    for start, length, pitch, velocity in notes:
        y = (high - pitch) * ROW_PX
        shade = int(40 + 180 * (1 - velocity / 127))
        draw.rectangle([start * STEP_PX + 1, y, (start + length) * STEP_PX - 2, y + ROW_PX - 2],
                       fill=(shade // 3, shade // 2 + 40, 200), outline=(20, 40, 90))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
