"""Each built-in scorer rewards what its docstring says, in [0, 1]."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from studio.errors import StudioError
from studio.medium import Candidate, ScoringContext


def _cand(tmp_path, name, image, prompt="a picture", decision="pending") -> Candidate:
    path = tmp_path / f"{name}.png"
    image.save(path)
    return Candidate(id=name, medium="image", prompt=prompt, seed=0, params={}, version="base", model="m",
                     path=str(path), files={"png": str(path)}, decision=decision)


def _flat(rgb, size=32):
    return Image.new("RGB", (size, size), rgb)


def _disc(bg, fg, size=32, blur=0):
    image = _flat(bg, size)
    ImageDraw.Draw(image).ellipse([8, 8, 24, 24], fill=fg)
    return image.filter(ImageFilter.GaussianBlur(blur)) if blur else image


def _score(medium, name, cands, **ctx):
    ctx.setdefault("favourites", [])
    ctx.setdefault("decided", [])
    scores = medium.scorers()[name](ScoringContext(medium=medium, **ctx))(cands)
    assert len(scores) == len(cands) and all(0.0 <= s <= 1.0 for s in scores)
    return scores


def test_every_scorer_documents_what_it_rewards(medium):
    for name, factory in medium.scorers().items():
        assert "Rewards" in (factory.__doc__ or ""), name
    assert medium.default_scorer in medium.scorers()


def test_pixel_scorers_order_pictures(medium, tmp_path):
    grey = _cand(tmp_path, "grey", _flat((128, 128, 128)))
    vivid = _cand(tmp_path, "vivid", _disc((30, 60, 210), (245, 220, 30)))
    white = _cand(tmp_path, "white", _flat((250, 250, 250)))
    blurred = _cand(tmp_path, "blur", _disc((0, 0, 0), (255, 255, 255), blur=3))
    crisp = _cand(tmp_path, "crisp", _disc((0, 0, 0), (255, 255, 255)))
    c = _score(medium, "colourfulness", [grey, vivid])
    assert c[0] < 0.01 < 0.3 < c[1]
    b = _score(medium, "brightness", [grey, white])
    assert b[1] > 0.95 and abs(b[0] - 0.5) < 0.02
    k = _score(medium, "contrast", [grey, crisp])
    assert k[0] == 0 and k[1] > 0.5
    s = _score(medium, "sharpness", [blurred, crisp, grey])
    assert s[1] > s[0] > s[2] == 0


def test_palette_from_options_and_prompt(medium, tmp_path):
    red_blue = _cand(tmp_path, "rb", _disc((30, 60, 210), (220, 30, 30)), "a red circle on a blue background")
    green = _cand(tmp_path, "g", _flat((40, 170, 60)), "a red circle on a blue background")
    by_prompt = _score(medium, "palette", [red_blue, green])
    assert by_prompt[0] > 0.8 > 0.2 > by_prompt[1]
    by_option = _score(medium, "palette", [red_blue, green], options={"colors": ["green"]})
    assert by_option[1] > 0.9 > 0.2 > by_option[0]
    assert _score(medium, "palette", [green], options={"colors": ["#28aa3c"]})[0] > 0.95
    with pytest.raises(StudioError, match="target colours"):
        _score(medium, "palette", [_cand(tmp_path, "x", _flat((1, 2, 3)), "a thing")])
    with pytest.raises(StudioError, match="not a colour"):
        _score(medium, "palette", [green], options={"colors": ["octarine"]})


def test_favourites_prefers_lookalikes(medium, tmp_path):
    fav = _cand(tmp_path, "fav", _disc((30, 60, 210), (220, 30, 30)))
    like = _cand(tmp_path, "like", _disc((40, 70, 200), (210, 40, 40)))
    unlike = _cand(tmp_path, "unlike", _flat((245, 220, 30)))
    s = _score(medium, "favourites", [like, unlike], favourites=[fav])
    assert s[0] > 0.9 and s[0] > s[1]
    assert _score(medium, "favourites", [like, unlike]) == [0.5, 0.5]


def test_preference_learns_hand_decisions_fast(medium, tmp_path):
    rng = np.random.default_rng(0)
    decided = []
    for i in range(40):  # the artist keeps warm pictures, rejects cool ones
        warm = i % 2 == 0
        base = (200, 90, 40) if warm else (40, 90, 200)
        rgb = tuple(int(v) for v in np.clip(np.array(base) + rng.integers(-30, 30, 3), 0, 255))
        decided.append(_cand(tmp_path, f"d{i}", _disc(rgb, (128, 128, 128)),
                             decision="hand_accepted" if warm else "hand_rejected"))
    new_warm = _cand(tmp_path, "nw", _disc((210, 100, 30), (128, 128, 128)))
    new_cool = _cand(tmp_path, "nc", _disc((30, 100, 210), (128, 128, 128)))
    began = time.time()
    s = _score(medium, "preference", [new_warm, new_cool], decided=decided)
    assert time.time() - began < 1.0
    assert s[0] > 0.8 and s[1] < 0.2
    assert _score(medium, "preference", [new_warm], decided=decided[:1]) == [0.5]


def test_clip_scorer_with_a_tiny_clip(medium, tmp_path):
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from studio.media.image.scenes import vocabulary
    from studio.media.image.vocab import save_tokenizer

    torch.manual_seed(0)
    folder = tmp_path / "clip"
    tok = save_tokenizer(vocabulary(), folder)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    a = _cand(tmp_path, "a", _disc((30, 60, 210), (220, 30, 30)), "a red circle on a blue background")
    b = _cand(tmp_path, "b", _flat((40, 170, 60)), "three stars")
    s = _score(medium, "clip", [a, b], options={"model": str(folder)})
    assert s[0] != s[1]
    assert s == _score(medium, "clip", [a, b], options={"model": str(folder)})
    with pytest.raises(StudioError, match="needs a CLIP model: get one with `studio models pull openai/clip-vit-base-patch32`"):
        _score(medium, "clip", [a])
    # with no model option, the library's CLIP model (an added folder, a pulled starter)
    assert _score(medium, "clip", [a, b], scorer_models=lambda: [str(folder)]) == s
    with pytest.raises(StudioError, match="does not exist"):
        _score(medium, "clip", [a], options={"model": str(tmp_path / "none")})


def test_embed_and_diversity(medium, tmp_path):
    same = [_cand(tmp_path, f"s{i}", _flat((200, 30, 30))) for i in range(3)]
    mixed = [_cand(tmp_path, "m0", _flat((200, 30, 30))), _cand(tmp_path, "m1", _flat((30, 30, 200))),
             _cand(tmp_path, "m2", _disc((245, 245, 245), (20, 20, 20)))]
    assert medium.embed(None, same).shape == (3, 192)
    assert medium.diversity(None, same) < 1e-9 < 0.3 < medium.diversity(None, mixed)
