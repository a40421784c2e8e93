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


def test_a_starter_downloads_from_the_picker_with_progress(workspace, tmp_path, monkeypatch):
    """One pick of a starter not in the cache pulls it (the line under the picker follows), then it is a model."""
    import sys
    from pathlib import Path

    from huggingface_hub import constants

    from standin_hub import StandinHub, repo_from_folder
    from studio import library
    from studio.app import generate_panel
    from studio.app.context import TabContext
    from studio.errors import StudioError

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "media" / "image"))
    from helpers import tiny_sd_pipeline

    repo = repo_from_folder(tiny_sd_pipeline(tmp_path / "tiny-sd"))
    starter = library.Starter("studio-test/tiny-sd", "image", 0.001, 1, "MIT", False)
    monkeypatch.setattr(library, "STARTERS", (starter, *library.STARTERS))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    ctx = TabContext(Studio(workspace), "image", None)
    offered = dict((value, label) for label, value in generate_panel._models(ctx))
    pick = generate_panel.DOWNLOAD + starter.id
    assert offered[pick].startswith("Download studio-test/tiny-sd (0.001 GB, about 1 GB of GPU memory, MIT")
    with pytest.raises(StudioError, match="not one of the recommended image models"):
        list(generate_panel._download(ctx, "someone/anything"))  # a page never names an arbitrary download
    with StandinHub({starter.id: repo}, slow={"unet/diffusion_pytorch_model.safetensors": 2e5}) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # what HF_ENDPOINT sets when the client is imported
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        steps = generate_panel._download(ctx, starter.id)
        lines = []
        try:
            while True:
                lines.append(next(steps)[1])
        except StopIteration as stop:
            assert stop.value == starter.id
    assert any("Downloading studio-test/tiny-sd: pulled" in line for line in lines), lines
    assert lines[-1] == "Downloaded studio-test/tiny-sd; loading it..."
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what was pulled loads without the hub
    assert ctx.studio.use_model("image", starter.id) == starter.id
    offered = dict((value, label) for label, value in generate_panel._models(ctx))
    assert starter.id in offered and pick not in offered
