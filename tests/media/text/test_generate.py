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
                                             ("sea " * 6000, "characters"), ("sea " * 400, "context")])
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
