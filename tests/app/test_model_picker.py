"""The page's model picker: filled from the model library (added folders, the cache), the built-in first."""
from __future__ import annotations

import pytest

from studio.engine import Studio
from studio.library import Library


@pytest.fixture
def webui(tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "webui" / "models" / "Stable-diffusion"
    folder.mkdir(parents=True)
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
               "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": torch.zeros(2, 2)},
              str(folder / "dreamy.safetensors"))
    return folder


def test_the_picker_lists_an_added_folders_checkpoint(workspace, webui, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from studio.app import generate_panel
    from studio.app.context import TabContext

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    studio = Studio(workspace)
    Library(studio.store).add_folder(str(webui))
    ctx = TabContext(studio, "image", None)
    choices = generate_panel._models(ctx)
    assert choices[0] == ("built-in", studio.medium("image").default_model())
    assert ("dreamy.safetensors", str(webui / "dreamy.safetensors")) in choices


@pytest.mark.browser
@pytest.mark.slow
def test_the_picker_in_the_page_shows_an_added_folder(workspace, webui, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from flow import Flow, chromium, free_port
    from studio.app import launch

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    studio = Studio(workspace)
    Library(studio.store).add_folder(str(webui))
    started = launch(studio, port=free_port(), block=False, names=["image"])
    try:
        with chromium() as browser:
            page = browser.new_page()
            flow = Flow(page, started.local_url, "image")
            flow.open()
            assert flow.dropdown(".model-picker") == "built-in"
            flow.tab.locator(".model-picker input").click()
            flow.tab.locator(".model-picker input").fill("dream")  # the picker is searchable
            page.get_by_role("option", name="dreamy.safetensors", exact=True).wait_for()
    finally:
        started.close()
