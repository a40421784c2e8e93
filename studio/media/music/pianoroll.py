"""A piano-roll PNG of a piece: time across, pitch up, bar lines, one colour per voice."""
from __future__ import annotations

import io

STEP_PX = 8  # one sixteenth
ROW_PX = 6  # one semitone
MARGIN = 2  # semitones above and below the music
VOICE_COLOURS = [(200, 60, 50), (60, 130, 200), (70, 160, 90), (90, 60, 150)]  # melody, inner, inner, bass


def piano_roll_png(notes, steps: int, bar_length: int) -> bytes:
    """notes: (start, length, pitch, velocity, voice) in sixteenths; ``steps`` the piece's length."""
    from PIL import Image, ImageDraw

    pitches = [n[2] for n in notes] or [60]
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
    for start, length, pitch, velocity, voice in notes:
        y = (high - pitch) * ROW_PX
        colour = VOICE_COLOURS[voice % len(VOICE_COLOURS)]
        draw.rectangle([start * STEP_PX + 1, y, (start + length) * STEP_PX - 2, y + ROW_PX - 2],
                       fill=colour, outline=tuple(c // 2 for c in colour))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
