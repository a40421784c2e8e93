"""The embedded default: a standard diffusers folder, small, and prompts change what it draws."""
from __future__ import annotations

import random

import numpy as np
import pytest

from studio.media.image import scenes, vocab
from studio.media.image.scorers import PALETTE

PARAMS = {}


def test_assets_are_a_standard_safetensors_pipeline(medium):
    from pathlib import Path

    folder = Path(medium.default_model())
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert (folder / "model_index.json").is_file()
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".ckpt", ".pkl")]
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20
    from diffusers import DiffusionPipeline, StableDiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(folder), use_safetensors=True)
    assert isinstance(pipe, StableDiffusionPipeline)


def test_every_caption_word_is_one_token(tmp_path):
    tok = vocab.save_tokenizer(scenes.vocabulary(), tmp_path / "tok")
    for word in scenes.vocabulary():
        assert len(tok(word, add_special_tokens=False).input_ids) == 1, word
    pieces = tok.convert_ids_to_tokens(tok("a purplish zebra", add_special_tokens=False).input_ids)
    assert tok.unk_token not in pieces


def test_drawing_is_reproducible():
    a = [scenes.draw(random.Random(5)) for _ in range(3)]
    b = [scenes.draw(random.Random(5)) for _ in range(3)]
    assert [c for _, c in a] == [c for _, c in b]
    assert np.array_equal(np.asarray(a[0][0]), np.asarray(b[0][0]))


def _fraction_near(rgb: np.ndarray, colour: str, width: float = 90.0) -> float:
    return float((np.linalg.norm(rgb - np.asarray(PALETTE[colour], dtype=float), axis=-1) < width).mean())


def _images(medium, handle, prompt):
    import io

    from PIL import Image

    gens = medium.generate(handle, prompt, list(range(8)), PARAMS)
    return [np.asarray(Image.open(io.BytesIO(g.files["png"])).convert("RGB"), dtype=float) for g in gens]


def test_prompts_matter_red_circle_on_blue(medium, default_handle):
    red_on_blue = _images(medium, default_handle, "a red circle on a blue background")
    green_on_yellow = _images(medium, default_handle, "a green square on a yellow background")
    blue_bg = np.mean([_fraction_near(im, "blue") for im in red_on_blue])
    red_fg = np.mean([_fraction_near(im[16:48, 16:48], "red") for im in red_on_blue])
    print(f"red-on-blue prompt: blue {blue_bg:.2f}, red in the middle {red_fg:.2f}")
    assert blue_bg > 0.4, "mostly blue background"
    assert red_fg > 0.15, "a red shape in the middle"
    assert np.mean([_fraction_near(im, "blue") for im in green_on_yellow]) < 0.1
    assert np.mean([_fraction_near(im, "red") for im in green_on_yellow]) < 0.05
    assert np.mean([_fraction_near(im, "yellow") for im in green_on_yellow]) > 0.4
    # round: the red blob fills its bounding box like a disc (~0.79), not like a square (1.0) or thin line
    fills = []
    for im in red_on_blue:
        mask = np.linalg.norm(im - np.asarray(PALETTE["red"], dtype=float), axis=-1) < 90
        ys, xs = np.nonzero(mask)
        if len(ys) > 20:
            fills.append(mask.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1)))
    print(f"red blob fill of its box: median {np.median(fills):.2f}")
    assert len(fills) >= 6 and 0.55 < np.median(fills) < 0.95


def test_the_prompt_length_against_the_text_encoder_is_known_before_generate(medium):
    """Issue 21: a prompt past what the text encoder reads is cut at generation; the medium counts it first,
    with the pipeline's tokenizer alone (the built-in reads vocab.MAX_LENGTH tokens, start and end included)."""
    model = medium.default_model()
    short = medium.prompt_length(model, "a red circle")
    assert short is not None and not short.over and short.limit == vocab.MAX_LENGTH
    long = medium.prompt_length(model, "a red circle on a blue sky " * 6)
    assert long.over and long.used > vocab.MAX_LENGTH and long.unit == "tokens"


def test_a_later_round_steps_at_a_third_of_the_rate(medium):
    """Measured on the sketchbook's two-round protocol (docs/objectives.md, "Pictures: a gentler later round")."""
    from studio.training import tune_lr

    settings = medium.parse_tune_settings({})
    assert settings["tuned_lr_scale"] == 0.3
    assert tune_lr(settings, None) == settings["lr"]
    assert tune_lr(settings, "v1/adapter") == pytest.approx(0.3 * settings["lr"])
