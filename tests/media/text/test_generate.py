"""Batched sampling: one seed per candidate, reproducible whatever the batch."""
from __future__ import annotations

import pytest

from studio.errors import StudioError


@pytest.fixture(scope="module")
def handle(tiny_llama):
    from studio.media import get

    return get("text").load(str(tiny_llama), "cpu")


def test_seed_gives_same_text_alone_or_in_a_batch(medium, handle):
    params = medium.validate_params({"max_new_tokens": 20})
    batch = {g.seed: g.text for g in medium.generate(handle, "a calm rain haiku", [5, 6, 7, 8], params)}
    alone = medium.generate(handle, "a calm rain haiku", [7], params)[0].text
    other = {g.seed: g.text for g in medium.generate(handle, "a calm rain haiku", [8, 1, 7], params)}
    assert alone == batch[7] == other[7]
    assert batch[8] == other[8]
    assert len(set(batch.values())) > 1  # different seeds, different texts


def test_greedy_ignores_the_seed(medium, handle):
    params = medium.validate_params({"max_new_tokens": 10, "temperature": 0})
    texts = {g.text for g in medium.generate(handle, "a sea poem", [0, 1, 2], params)}
    assert len(texts) == 1


def test_stop_strings_cut_the_completion(medium, handle):
    params = medium.validate_params({"max_new_tokens": 40})
    full = medium.generate(handle, "a sea poem", [3], params)[0].text
    stop = full.split()[2] if len(full.split()) > 3 else full[:2]
    cut = medium.generate(handle, "a sea poem", [3], {**params, "stop": [stop]})[0].text
    assert stop not in cut and full.startswith(cut)


def test_max_new_tokens_caps_length(medium, handle):
    import re

    from studio.media.text.generate import sample

    texts, produced = sample(handle, "a sea poem", [0, 1, 2], medium.validate_params({"max_new_tokens": 3}))
    assert 3 <= produced <= 9
    gens = medium.generate(handle, "a sea poem", [0, 1, 2], medium.validate_params({"max_new_tokens": 3}))
    assert [g.text for g in gens] == texts
    assert all(not re.search(r"<\|", g.text) for g in gens)  # special tokens never leak into text


@pytest.mark.parametrize("params, message", [
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_k": 2.5}, "top_k"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"stop": [""]}, "stop"),
    ({"beams": 4}, "Unknown text setting"),
])
def test_bad_settings(medium, params, message):
    with pytest.raises(StudioError, match=message):
        medium.validate_params(params)


@pytest.mark.parametrize("prompt, message", [("", "empty"), ("   \n", "empty"),
                                             ("sea " * 400, "context")])
def test_bad_prompts(medium, handle, prompt, message):
    with pytest.raises(StudioError, match=message):
        medium.generate(handle, prompt, [0], medium.validate_params({}))


def test_max_new_tokens_beyond_context(medium, handle):
    with pytest.raises(StudioError, match="beyond this model's context"):
        medium.generate(handle, "a sea poem", [0], medium.validate_params({"max_new_tokens": 500}))


def test_min_new_tokens_holds_back_the_end(medium, handle):
    from studio.media.text.generate import sample

    _, produced = sample(handle, "a sea poem", [0, 1], medium.validate_params({"max_new_tokens": 30,
                                                                                "min_new_tokens": 30}))
    assert produced == 60


def test_pick_is_row_by_row_and_follows_the_distribution():
    import torch

    from studio.media.text.generate import pick_tokens

    params = {"repetition_penalty": 1.0, "temperature": 1.0, "top_k": 3, "top_p": 1.0}
    logits = torch.log(torch.tensor([[0.1, 0.5, 0.05, 0.3, 0.05]])).repeat(4000, 1)
    uniform = (torch.arange(4000) + 0.5) / 4000
    seen = torch.zeros(4000, 1, dtype=torch.long)
    picks = pick_tokens(logits, seen, uniform, params)
    counts = torch.bincount(picks, minlength=5) / 4000
    # top-3 of (0.1, 0.5, 0.05, 0.3, 0.05) renormalised: 1/9, 5/9, 0, 3/9, 0
    assert torch.allclose(counts, torch.tensor([1 / 9, 5 / 9, 0, 3 / 9, 0]), atol=2e-3)
    alone = torch.cat([pick_tokens(logits[i:i + 1], seen[i:i + 1], uniform[i:i + 1], params)
                       for i in range(0, 4000, 397)])
    assert torch.equal(alone, picks[::397])
    nucleus = pick_tokens(logits, seen, uniform, {**params, "top_k": 0, "top_p": 0.45})
    assert set(nucleus.tolist()) == {1}  # 0.5 alone reaches top_p


def test_stop_strings_found_across_looks(medium, handle, monkeypatch):
    """Looking at the tokens every few steps (as on a GPU) ends rows exactly where looking every step does."""
    from studio.media.text import generate

    params = medium.validate_params({"max_new_tokens": 40})
    full = medium.generate(handle, "a sea poem", [3, 4], params)
    stops = [t.text.split()[2] for t in full if len(t.text.split()) > 3][:1] or [full[0].text[:2]]
    every_step = generate.sample(handle, "a sea poem", [3, 4, 9], {**params, "stop": stops})
    monkeypatch.setitem(generate.LOOK_EVERY, "cpu", 7)
    assert generate.sample(handle, "a sea poem", [3, 4, 9], {**params, "stop": stops}) == every_step


def test_static_cache_and_background_compile_give_the_same_texts(medium, handle, monkeypatch):
    """The GPU path on the CPU: a static cache (rows padded to a bucket), compiled in the background
    (dynamo's eager backend here), gives the texts of the dynamic cache, alone or in a batch."""
    import time

    from studio.media.text import generate

    params = medium.validate_params({"max_new_tokens": 12})
    dynamic = generate.sample(handle, "a calm rain haiku", [5, 6, 7], params)
    monkeypatch.setattr(generate, "decoding", lambda h: "static")
    monkeypatch.setattr(generate, "COMPILE_OPTIONS", {"backend": "eager", "dynamic": False})
    uncompiled = generate.sample(handle, "a calm rain haiku", [5, 6, 7], params)  # notes the shape
    bucket, length = generate.shape_bucket(3, 12 + len(generate.check_prompt(handle, "a calm rain haiku", 12)),
                                           handle.context)
    assert generate.compile_status(handle, None, 1.0, bucket, length) == "seen"
    assert generate.sample(handle, "a calm rain haiku", [5, 6, 7], params) == uncompiled  # starts the compile
    assert bucket == 4 and length % generate.CACHE_BUCKET == 0 or length == handle.context
    began = time.time()
    while generate.compile_status(handle, None, 1.0, bucket, length) == "pending":
        assert time.time() - began < 120, "the background compile did not finish"
        time.sleep(0.2)
    assert generate.compile_status(handle, None, 1.0, bucket, length) == "ready"
    compiled = generate.sample(handle, "a calm rain haiku", [5, 6, 7], params)
    alone = generate.sample(handle, "a calm rain haiku", [6], params)
    assert uncompiled[0] == compiled[0] == dynamic[0]
    assert alone[0][0] == dynamic[0][1]


def test_a_failing_compiled_step_falls_back_to_the_same_texts(medium, handle, monkeypatch):
    from studio.media.text import generate
    from studio.media.text.model import base_model

    params = medium.validate_params({"max_new_tokens": 8})
    dynamic = generate.sample(handle, "a sea poem", [1, 2], params)
    monkeypatch.setattr(generate, "decoding", lambda h: "static")
    bucket, length = generate.shape_bucket(2, 8 + len(generate.check_prompt(handle, "a sea poem", 8)), handle.context)

    def broken(**kwargs):
        raise RuntimeError("CUDA graph replay failed")

    key = ("", 1.0, bucket, length)
    monkeypatch.setitem(generate._compiled.setdefault(base_model(handle), {}), key,
                        (broken, generate.static_cache(handle.model, length)))
    with pytest.warns(UserWarning, match="stays uncompiled"):
        assert generate.sample(handle, "a sea poem", [1, 2], params) == dynamic
    assert generate.compile_status(handle, None, 1.0, bucket, length) == "failed"
