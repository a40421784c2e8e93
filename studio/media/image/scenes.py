"""The pictures the embedded default learns from: drawn here, each with its caption.

Shapes, colours, backgrounds, counts, sizes, positions and textures, plus one simple scene
(a sun over hills under a sky).  Everything is drawn with Pillow at twice the size and
scaled down, so edges are smooth.  ``draw(rng)`` returns one (image, caption) pair; the
same ``rng`` state gives the same pair.
"""
from __future__ import annotations

import random

from PIL import Image, ImageDraw

SIZE = 64  # native size of the default model, in pixels
SUPERSAMPLE = 2

COLOURS = {  # name -> RGB, the colour words the default model knows
    "red": (220, 30, 30), "orange": (245, 140, 20), "yellow": (245, 220, 30),
    "green": (40, 170, 60), "cyan": (40, 210, 220), "blue": (30, 60, 210),
    "purple": (130, 50, 170), "pink": (245, 130, 190), "white": (245, 245, 245),
    "black": (20, 20, 20), "gray": (128, 128, 128), "brown": (130, 80, 40),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond")
PLURAL = {s: s + "s" for s in SHAPES}
SIZES = {"small": 0.12, "": 0.2, "big": 0.32}  # radius as a fraction of the picture
COUNTS = {1: "a", 2: "two", 3: "three"}
POSITIONS = {  # words -> centre (fraction of width, fraction of height)
    "on the left": (0.28, 0.5), "on the right": (0.72, 0.5), "at the top": (0.5, 0.28),
    "at the bottom": (0.5, 0.72), "in the middle": (0.5, 0.5),
}
TEXTURES = ("striped", "dotted", "checkered")
EMPTY_CAPTION_RATE = 0.1  # captionless examples teach the unconditional model (guidance)


def vocabulary() -> list[str]:
    """Every word a caption can hold (the tokenizer is built from this list)."""
    words = set(COLOURS) | set(SHAPES) | set(PLURAL.values()) | set(COUNTS.values()) | set(TEXTURES)
    words |= {w for s in SIZES for w in s.split()}
    words |= {w for p in POSITIONS for w in p.split()}
    words |= {"on", "background", "sun", "over", "hills", "under", "sky", "one", "and", "with"}
    return sorted(w for w in words if w)


def _jitter(rgb: tuple[int, int, int], rng: random.Random, amount: int = 18) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    if sum(rgb) > 600:  # white: darken instead
        factor = 2 - factor
    if factor > 1:
        return tuple(int(c + (255 - c) * (factor - 1)) for c in rgb)
    return tuple(int(c * factor) for c in rgb)


def _background(draw: ImageDraw.ImageDraw, rgb, texture: str, rng: random.Random, size: int) -> None:
    draw.rectangle([0, 0, size, size], fill=rgb)
    other = _shade(rgb, 1.45 if sum(rgb) < 380 else 0.65)
    step = size // rng.choice((6, 8))
    if texture == "striped":
        for i in range(0, size, 2 * step):
            if rng.random() < 0.5:
                draw.rectangle([i, 0, i + step - 1, size], fill=other)
            else:
                draw.rectangle([0, i, size, i + step - 1], fill=other)
    elif texture == "dotted":
        r = step // 4
        for y in range(step // 2, size, step):
            for x in range(step // 2, size, step):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=other)
    elif texture == "checkered":
        for y in range(0, size, step):
            for x in range(0, size, step):
                if (x // step + y // step) % 2:
                    draw.rectangle([x, y, x + step - 1, y + step - 1], fill=other)


def _shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, rgb) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
    elif shape == "square":
        s = r * 0.85
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=rgb)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r * 0.95, cy + r * 0.75), (cx - r * 0.95, cy + r * 0.75)], fill=rgb)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)], fill=rgb)
    elif shape == "star":
        import math

        points = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + rad * math.cos(angle), cy + rad * math.sin(angle)))
        draw.polygon(points, fill=rgb)


def _pick_two_colours(rng: random.Random) -> tuple[str, str]:
    fg = rng.choice(list(COLOURS))
    bg = rng.choice([c for c in COLOURS if c != fg])
    return fg, bg


def _shapes_picture(rng: random.Random, size: int) -> tuple[Image.Image, str]:
    fg, bg = _pick_two_colours(rng)
    shape = rng.choice(SHAPES)
    count = rng.choices((1, 2, 3), weights=(6, 2, 2))[0]
    size_word = rng.choice(list(SIZES)) if count == 1 else rng.choice(("small", ""))
    texture = rng.choice(("",) * 3 + TEXTURES)
    position = rng.choice(list(POSITIONS) + [""] * 3) if count == 1 and size_word != "big" else ""
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    _background(draw, _jitter(COLOURS[bg], rng), texture, rng, size)
    colour = _jitter(COLOURS[fg], rng)
    radius = SIZES[size_word] * size * rng.uniform(0.85, 1.15)
    if count == 1:
        fx, fy = POSITIONS[position] if position else (0.5, 0.5)
        spread = 0.06 if position else 0.12
        centres = [(size * (fx + rng.uniform(-spread, spread)), size * (fy + rng.uniform(-spread, spread)))]
    else:
        centres = []
        for _ in range(200):  # rejection-sample centres that do not overlap
            c = (rng.uniform(radius, size - radius), rng.uniform(radius, size - radius))
            if all((c[0] - o[0]) ** 2 + (c[1] - o[1]) ** 2 > (2.1 * radius) ** 2 for o in centres):
                centres.append(c)
            if len(centres) == count:
                break
        count = len(centres)
    for cx, cy in centres:
        _shape(draw, shape, cx, cy, radius, colour)
    noun = shape if count == 1 else PLURAL[shape]
    words = [COUNTS[count], size_word, fg, noun, position, "on a", texture, bg, "background"]
    return image, " ".join(w for w in words if w)


def _scene_picture(rng: random.Random, size: int) -> tuple[Image.Image, str]:
    sun = rng.choice(("yellow", "orange", "white", "red"))
    sky = rng.choice(("blue", "cyan", "pink", "purple", "black", "orange"))
    ground = rng.choice(("green", "brown", "yellow", "gray"))
    if sky == sun:
        sky = "blue"
    image = Image.new("RGB", (size, size), _jitter(COLOURS[sky], rng))
    draw = ImageDraw.Draw(image)
    cx, cy, r = size * rng.uniform(0.25, 0.75), size * rng.uniform(0.2, 0.4), size * rng.uniform(0.1, 0.16)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_jitter(COLOURS[sun], rng))
    g = _jitter(COLOURS[ground], rng)
    for _ in range(rng.randint(1, 3)):
        hx, hr = size * rng.uniform(0, 1), size * rng.uniform(0.3, 0.6)
        top = size * rng.uniform(0.55, 0.75)
        draw.ellipse([hx - hr, top, hx + hr, top + 2 * hr], fill=g)
    draw.rectangle([0, size * 0.82, size, size], fill=g)
    return image, f"a {sun} sun over {ground} hills under a {sky} sky"


def draw(rng: random.Random, size: int = SIZE) -> tuple[Image.Image, str]:
    """One captioned picture at ``size`` pixels square."""
    big = size * SUPERSAMPLE
    if rng.random() < 0.12:
        image, caption = _scene_picture(rng, big)
    else:
        image, caption = _shapes_picture(rng, big)
    image = image.resize((size, size), Image.LANCZOS)
    if rng.random() < EMPTY_CAPTION_RATE:
        caption = ""
    return image, caption
