"""Built-in image scorers: each maps candidates to floats in [0, 1], higher is better.

Pixel scorers read the candidate's PNG and need no model.  ``clip`` loads a CLIP model from
``options['model']`` (a folder or a hub id in the cache) or the model library, ``favourites`` compares with the accepted candidates and
``preference`` learns from the artist's hand decisions.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from studio.errors import StudioError
from studio.medium import Candidate, ScoringContext
from studio.scoring import fit_preference

from .scenes import COLOURS

EXTRA_COLOURS = {"grey": (128, 128, 128), "violet": (140, 60, 200), "magenta": (230, 40, 200),
                 "teal": (20, 140, 140), "gold": (230, 190, 40), "silver": (192, 192, 192)}
PALETTE = {**COLOURS, **EXTRA_COLOURS}
PALETTE_WIDTH = 60.0  # RGB distance at which a pixel counts ~37% as "on palette"


def pixels(candidate: Candidate):
    """The candidate's picture as a float array (H, W, 3) in 0..255."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(candidate.path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.float64)
    except OSError as exc:
        raise StudioError(f"The image of candidate {candidate.id} cannot be read ({candidate.path}).") from exc


def _luma(rgb):
    return rgb @ [0.299, 0.587, 0.114]


def picture_features(image):
    """(192,): a PIL picture shrunk to 8x8, RGB centred on grey (cosine then means likeness)."""
    import numpy as np
    from PIL import Image

    small = image.convert("RGB").resize((8, 8), Image.BILINEAR)
    return np.asarray(small, dtype=np.float64).reshape(-1) / 127.5 - 1.0


def image_features(candidates: Sequence[Candidate]):
    """(n, 192): each candidate's ``picture_features``."""
    import numpy as np
    from PIL import Image

    rows = []
    for c in candidates:
        try:
            with Image.open(c.path) as image:
                rows.append(picture_features(image))
        except OSError as exc:
            raise StudioError(f"The image of candidate {c.id} cannot be read ({c.path}).") from exc
    return np.stack(rows) if rows else np.zeros((0, 192))


def colourfulness(ctx: ScoringContext):
    """Rewards vivid, saturated, varied colour (Hasler and Suesstrunk's colourfulness, /150)."""
    import numpy as np

    def score(candidates):
        out = []
        for c in candidates:
            rgb = pixels(c)
            rg = rgb[..., 0] - rgb[..., 1]
            yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
            m = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
            out.append(float(min(1.0, m / 150.0)))
        return out
    return score


def brightness(ctx: ScoringContext):
    """Rewards light pictures: mean luminance, 0 = black, 1 = white."""
    return lambda candidates: [float(_luma(pixels(c)).mean() / 255.0) for c in candidates]


def contrast(ctx: ScoringContext):
    """Rewards strong light/dark contrast: the luminance's standard deviation / 128."""
    return lambda candidates: [float(min(1.0, _luma(pixels(c)).std() / 128.0)) for c in candidates]


def sharpness(ctx: ScoringContext):
    """Rewards crisp edges and fine detail: variance of the luminance's Laplacian, squashed to [0, 1)."""
    import numpy as np

    def score(candidates):
        out = []
        for c in candidates:
            y = _luma(pixels(c))
            lap = -4 * y[1:-1, 1:-1] + y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]
            out.append(float(1.0 - np.exp(-lap.var() / 500.0)))
        return out
    return score


def parse_colour(value) -> tuple[float, float, float]:
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return tuple(float(v) for v in value)
    text = str(value).strip().lower()
    if re.fullmatch(r"#?[0-9a-f]{6}", text):
        text = text.lstrip("#")
        return tuple(float(int(text[i:i + 2], 16)) for i in (0, 2, 4))
    if text in PALETTE:
        return tuple(float(v) for v in PALETTE[text])
    raise StudioError(f"'{value}' is not a colour; use a name ({', '.join(sorted(COLOURS))}) or #rrggbb.")


def prompt_colours(prompt: str) -> list[tuple[float, float, float]]:
    words = re.findall(r"[a-z]+", prompt.lower())
    return [tuple(float(v) for v in PALETTE[w]) for w in dict.fromkeys(words) if w in PALETTE]


def palette(ctx: ScoringContext):
    """Rewards pictures made of the target colours: options['colors'] (names or #rrggbb),
    else the colour words of each candidate's prompt.  Mean over pixels of
    exp(-(distance to the nearest target / 60)^2)."""
    import numpy as np

    fixed = [parse_colour(v) for v in ctx.options.get("colors", [])]

    def score(candidates):
        out = []
        for c in candidates:
            targets = fixed or prompt_colours(c.prompt)
            if not targets:
                raise StudioError("The palette scorer needs target colours: set its 'colors' option or "
                                  "name colours in the prompt.")
            rgb = pixels(c).reshape(-1, 1, 3)
            dist = np.linalg.norm(rgb - np.asarray(targets)[None], axis=2).min(axis=1)
            out.append(float(np.exp(-(dist / PALETTE_WIDTH) ** 2).mean()))
        return out
    return score


CLIP_STARTER = "openai/clip-vit-base-patch32"  # the library's starter for this scorer


@lru_cache(maxsize=2)
def _clip(folder: str):
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    path = Path(folder)
    if not path.is_dir():
        raise StudioError(f"The CLIP model folder '{folder}' does not exist.")
    if not any(path.glob("*.safetensors")):
        raise StudioError(f"The CLIP model in '{folder}' has no safetensors weights.")
    try:
        model = CLIPModel.from_pretrained(folder, use_safetensors=True, trust_remote_code=False).eval()
        return model, CLIPTokenizer.from_pretrained(folder), CLIPImageProcessor.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise StudioError(f"The CLIP model in '{folder}' could not be loaded ({exc.__class__.__name__}).") from exc


def clip_folder(ctx: ScoringContext) -> str:
    """The CLIP model's folder: the 'model' option (a folder or a hub id in the cache), else the library's
    first CLIP model; one sentence saying how to get one otherwise."""
    from studio.loading import hub_snapshot, looks_local

    chosen = ctx.options.get("model")
    if not chosen:
        found = ctx.scorer_models() if ctx.scorer_models else []  # the library lists CLIP models as scorers
        if not found:
            raise StudioError(f"The clip scorer needs a CLIP model: get one with `studio models pull {CLIP_STARTER}` "
                              "(or set the scorer's model option to a folder).")
        chosen = CLIP_STARTER if CLIP_STARTER in found else found[0]
    chosen = str(chosen)
    return chosen if looks_local(chosen) else str(hub_snapshot(chosen, "CLIP model"))


def clip(ctx: ScoringContext):
    """Rewards agreement between picture and prompt: (cosine of CLIP image and text embeddings + 1) / 2,
    with the CLIP model of options['model'] (a folder or hub id), else the one in the model library."""
    import torch
    from PIL import Image

    model, tokenizer, processor = _clip(clip_folder(ctx))

    def score(candidates):
        if not candidates:
            return []
        images = []
        for c in candidates:
            with Image.open(c.path) as image:
                images.append(image.convert("RGB"))
        with torch.inference_mode():
            pix = processor(images=images, return_tensors="pt")["pixel_values"]
            tok = tokenizer([c.prompt for c in candidates], padding=True, truncation=True, return_tensors="pt")
            img = model.get_image_features(pixel_values=pix)
            txt = model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
            img = getattr(img, "pooler_output", img)
            txt = getattr(txt, "pooler_output", txt)
            cos = torch.nn.functional.cosine_similarity(img.float(), txt.float(), dim=-1)
        return [float((v + 1) / 2) for v in cos.clamp(-1, 1)]
    return score


def _features(ctx: ScoringContext, candidates):
    import numpy as np

    feats = ctx.embed(candidates) if ctx.embed is not None else image_features(candidates)
    feats = np.asarray(feats, dtype=np.float64)
    return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)


def favourites(ctx: ScoringContext):
    """Rewards likeness to the accepted favourites: (highest cosine similarity to one of them + 1) / 2;
    0.5 for every candidate while there are no favourites yet."""
    def score(candidates):
        if not ctx.favourites:
            return [0.5] * len(candidates)
        sim = _features(ctx, candidates) @ _features(ctx, ctx.favourites).T
        return [float((row.max() + 1) / 2) for row in sim]
    return score


def preference(ctx: ScoringContext):
    """Rewards what the artist has accepted by hand: a logistic model on picture features, refit on
    every hand decision (accepted = 1, rejected = 0); 0.5 for all until both kinds exist."""
    import numpy as np

    decided = [c for c in ctx.decided if c.hand_decided]
    labels = np.array([1.0 if c.decision == "hand_accepted" else 0.0 for c in decided])
    model = None
    if decided and 0 < labels.sum() < len(labels):
        model = fit_preference(_features(ctx, decided), labels)

    def score(candidates):
        if model is None or not len(candidates):
            return [0.5] * len(candidates)
        return [float(v) for v in model(_features(ctx, candidates))]
    return score


SCORERS = {"colourfulness": colourfulness, "brightness": brightness, "contrast": contrast,
           "sharpness": sharpness, "palette": palette, "clip": clip, "favourites": favourites,
           "preference": preference}
