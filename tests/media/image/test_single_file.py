"""Single-file checkpoints (A1111/ComfyUI/Civitai layout) load offline, generate, tune and export; fp16 variant folders load."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from checkpoints import tiny_sd1, tiny_sdxl, write_checkpoint
from helpers import to_candidates
from studio.errors import StudioError
from studio.media.image import single_file
from studio.medium import Version
from studio.training import run_tune

PROMPT = "a red circle on a blue background"
PARAMS = {"steps": 2, "width": 32, "height": 32, "guidance": 4.0}


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory):
    """Converted configs and the CLIP tokenizer go to the model cache: a fresh one for these tests."""
    old = os.environ.get("STUDIO_CACHE")
    os.environ["STUDIO_CACHE"] = str(tmp_path_factory.mktemp("studio-cache"))
    yield
    if old is None:
        os.environ.pop("STUDIO_CACHE", None)
    else:
        os.environ["STUDIO_CACHE"] = old


@pytest.fixture(scope="module", params=["sd1", "sdxl"])
def checkpoint(request, tmp_path_factory):
    """(family, the tiny pipeline, its single-file checkpoint with nothing beside it)."""
    pipe = tiny_sd1() if request.param == "sd1" else tiny_sdxl()
    pipe.set_progress_bar_config(disable=True)
    path = write_checkpoint(pipe, tmp_path_factory.mktemp("alone") / f"tiny-{request.param}.safetensors")
    return request.param, pipe, path


def _image(pipe):
    return pipe(prompt=PROMPT, num_inference_steps=2, width=32, height=32, guidance_scale=4.0,
                generator=torch.Generator().manual_seed(0), output_type="np").images[0]


def test_the_checkpoint_rebuilds_the_same_pipeline(medium, checkpoint):
    family, pipe, path = checkpoint
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # nothing beside it
    assert single_file.detect(single_file.read_header(path)) == family
    handle = medium.load(str(path), "cpu")
    assert type(handle.pipe) is type(pipe)
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if getattr(pipe, part, None) is None:
            continue
        mine, theirs = getattr(handle.pipe, part).state_dict(), getattr(pipe, part).state_dict()
        assert set(mine) == set(theirs) and all(torch.equal(mine[k], theirs[k]) for k in mine), part
    assert np.abs(_image(handle.pipe) - _image(pipe)).max() == 0.0


def test_a_single_file_model_generates_tunes_and_exports(medium, checkpoint, tmp_path):
    family, _, path = checkpoint
    handle = medium.load(str(path), "cpu")
    gens = medium.generate(handle, PROMPT, [0, 1, 2, 3], PARAMS)
    assert len(gens) == 4 and all(g.files["png"].startswith(b"\x89PNG") for g in gens)
    curated = to_candidates(gens, PROMPT, tmp_path / "curated")
    settings = {**medium.tune_defaults, "steps": 3, "lr": 5e-2, "rank": 2, "batch_size": 4, "checkpoint_every": 10}
    task = medium.tune_task(handle, curated, settings, None)
    run_tune(task, settings, tmp_path / "job")
    task.save(tmp_path / "v1")
    task.release()
    spec = json.loads((tmp_path / "v1" / "studio_adapter.json").read_text())
    assert spec["base_model"] == str(path) and spec["family"] == ("SDXL" if family == "sdxl" else
                                                                   "Stable Diffusion 1.x/2.x")
    tuned = medium.generate(handle, PROMPT, [0], PARAMS, adapter=str(tmp_path / "v1"))
    assert tuned[0].files["png"] != gens[0].files["png"]
    version = Version(medium="image", name="v1", parent="base", model=str(path), settings=settings,
                      curated=[c.id for c in curated], path=str(tmp_path / "v1"))
    files = medium.export(handle, version, "kohya", tmp_path / "out", curated)
    from safetensors import safe_open

    with safe_open(str(files[0]), framework="pt") as fh:
        names = list(fh.keys())
    assert names and all(n.startswith("lora_unet_") for n in names)


def test_a_folder_holding_one_checkpoint_loads_it(medium, checkpoint):
    _, _, path = checkpoint
    handle = medium.load(str(path.parent), "cpu")
    assert handle.model == str(path.parent)


def test_a_folder_of_fp16_variants_loads(medium, tmp_path):
    pipe = tiny_sd1()
    pipe.save_pretrained(tmp_path / "fp16", safe_serialization=True, variant="fp16")
    assert not list((tmp_path / "fp16" / "unet").glob("diffusion_pytorch_model.safetensors"))
    handle = medium.load(str(tmp_path / "fp16"), "cpu")
    assert torch.equal(handle.pipe.unet.conv_in.weight, pipe.unet.conv_in.weight)


def _header_file(tmp_path, names: dict[str, tuple]):
    from safetensors.torch import save_file

    path = tmp_path / "file.safetensors"
    save_file({k: torch.zeros(shape) for k, shape in names.items()}, str(path))
    return path


@pytest.mark.parametrize("names, message", [
    ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (2, 4)}, "is a LoRA, not a model; use it with --lora"),
    ({"model.diffusion_model.input_blocks.0.0.weight": (4, 9, 3, 3)}, "inpainting"),
    ({"model.diffusion_model.input_blocks.0.0.weight": (4, 4, 3, 3),
      "conditioner.embedders.0.model.text_projection": (4, 4)}, "SDXL refiner"),
    ({"model.diffusion_model.input_blocks.0.0.weight": (4, 4, 3, 3)}, "no text encoder"),
    ({"something.else": (2,)}, "not a Stable Diffusion, SDXL, SD3 or Flux checkpoint"),
])
def test_what_is_not_a_whole_model_is_one_sentence(medium, tmp_path, names, message):
    with pytest.raises(StudioError, match=message):
        medium.load(str(_header_file(tmp_path, names)), "cpu")


@pytest.mark.parametrize("names, repo", [
    ({"double_blocks.0.img_attn.norm.key_norm.scale": (2,)}, "black-forest-labs/FLUX.1-schnell"),
    ({"model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale": (2,), "guidance_in.in_layer.bias": (2,)},
     "black-forest-labs/FLUX.1-dev"),
    ({"model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias": (2,)},
     "stabilityai/stable-diffusion-3.5-medium"),
])
def test_flux_and_sd3_files_name_the_repo_their_other_parts_come_from(medium, tmp_path, monkeypatch, names, repo):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(StudioError, match=f"come from {repo}, which is not in the Hugging Face cache: "
                                          f"run `studio models pull {repo}` first"):
        medium.load(str(_header_file(tmp_path, names)), "cpu")


def test_clip_tokenizer_from_open_clip_matches_clip_ids():
    tokenizer = single_file.clip_tokenizer("!")
    assert len(tokenizer) == 49408
    # CLIP's own ids for these words (its vocabulary: bytes, bytes</w>, merges, start, end)
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
