"""Loading and generating: any standard folder, reproducible pixels, PNG parameters, bad input."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from studio.errors import StudioError


def _pixels(gen) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(gen.files["png"])).convert("RGB"), dtype=np.int16)


def test_tiny_standard_folder_loads_and_generates(medium, tiny_handle):
    gens = medium.generate(tiny_handle, "a red circle", [3, 4, 5], {"steps": 2, "batch_size": 2})
    assert [g.seed for g in gens] == [3, 4, 5]
    assert list(gens[0].files) == ["png"]
    assert Image.open(io.BytesIO(gens[0].files["png"])).size == (tiny_handle.native_size,) * 2


def test_same_seed_same_pixels_and_batches_do_not_matter(medium, default_handle):
    params = {"steps": 4}
    a = medium.generate(default_handle, "a blue star on a white background", [7, 8, 9], params)
    b = medium.generate(default_handle, "a blue star on a white background", [9, 7], {**params, "batch_size": 1})
    assert np.abs(_pixels(a[0]) - _pixels(b[1])).max() <= 2  # seed 7 in a batch of 1 = seed 7 in a batch of 3
    assert np.abs(_pixels(a[2]) - _pixels(b[0])).max() <= 2  # seed 9 alone = seed 9 in a batch
    assert np.abs(_pixels(a[0]) - _pixels(a[1])).mean() > 1  # different seeds differ
    again = medium.generate(default_handle, "a blue star on a white background", [7, 8, 9], params)
    assert [g.files["png"] for g in again] == [g.files["png"] for g in a]


def test_png_carries_parameters(medium, default_handle):
    params = {"steps": 3, "guidance": 2.5, "negative_prompt": "stripes"}
    (gen,) = medium.generate(default_handle, "a pink diamond", [42], params)
    info = Image.open(io.BytesIO(gen.files["png"])).text
    text = info["parameters"]
    assert text.startswith("a pink diamond\nNegative prompt: stripes\n")
    assert "Steps: 3" in text and "CFG scale: 2.5" in text and "Seed: 42" in text and "Size: 64x64" in text
    assert json.loads(info["studio"])["seed"] == 42


def test_negative_prompt_and_size_change_the_picture(medium, default_handle):
    base = medium.generate(default_handle, "a red circle on a blue background", [1], {"steps": 4})[0]
    neg = medium.generate(default_handle, "a red circle on a blue background", [1],
                          {"steps": 4, "negative_prompt": "blue background"})[0]
    assert np.abs(_pixels(base) - _pixels(neg)).mean() > 1
    wide = medium.generate(default_handle, "a red circle", [1], {"steps": 2, "width": 96, "height": 48})[0]
    assert Image.open(io.BytesIO(wide.files["png"])).size == (96, 48)


@pytest.mark.parametrize("params", [{"width": 60}, {"height": 33}, {"steps": 0}, {"guidance": -1},
                                    {"batch_size": 0}, {"sampler": "x"}])
def test_bad_settings_are_one_sentence(medium, params):
    with pytest.raises(StudioError) as err:
        medium.validate_params(params)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


def test_missing_folder(medium, tmp_path):
    with pytest.raises(StudioError, match="does not exist"):
        medium.load(str(tmp_path / "nowhere"), "cpu")


def test_folder_without_index(medium, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudioError, match="not a diffusers pipeline folder"):
        medium.load(str(tmp_path / "empty"), "cpu")


def test_pickle_only_checkpoint(medium, tiny_model, tmp_path):
    import shutil

    bad = tmp_path / "pickled"
    shutil.copytree(tiny_model, bad)
    for weights in bad.glob("*/*.safetensors"):
        weights.with_suffix(".bin").write_bytes(b"not really a pickle")
        weights.unlink()
    with pytest.raises(StudioError, match="pickle"):
        medium.load(str(bad), "cpu")


def test_broken_folder(medium, tiny_model, tmp_path):
    import shutil

    bad = tmp_path / "broken"
    shutil.copytree(tiny_model, bad)
    shutil.rmtree(bad / "unet")
    with pytest.raises(StudioError, match="broken"):
        medium.load(str(bad), "cpu")


def test_unsupported_pipeline(medium, tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "AudioLDMPipeline"}))
    with pytest.raises(StudioError, match="not a supported text-to-image pipeline"):
        medium.load(str(folder), "cpu")


def test_offline_hub_id_is_one_sentence(medium):
    with pytest.raises(StudioError, match="not on this machine; get it first with `studio models pull nobody-here/no-such-model`"):
        medium.load("nobody-here/no-such-model", "cpu")


def test_a_sampler_by_name_draws_each_seed_alike_and_gives_the_scheduler_back(medium, default_handle):
    own = default_handle.pipe.scheduler
    params = {"steps": 4, "sampler": "dpmpp_2m_sde"}
    a = medium.generate(default_handle, "a blue star", [7, 8], params)
    b = medium.generate(default_handle, "a blue star", [8], {**params, "batch_size": 1})
    assert default_handle.pipe.scheduler is own
    # the fresh noise of every step comes from the seed's own generator: a seed alone = the seed in a batch
    assert np.abs(_pixels(a[1]) - _pixels(b[0])).max() <= 2
    plain = medium.generate(default_handle, "a blue star", [7], {"steps": 4})[0]
    assert np.abs(_pixels(a[0]) - _pixels(plain)).mean() > 1
    assert "Sampler: DPM++ 2M SDE" in Image.open(io.BytesIO(a[0].files["png"])).text["parameters"]
    for name in ("euler", "euler_ancestral", "ddim", "dpmpp_2m"):
        (gen,) = medium.generate(default_handle, "a blue star", [7], {"steps": 4, "sampler": name})
        assert _pixels(gen).std() > 1  # a picture, not a blank
    assert default_handle.pipe.scheduler is own
    with pytest.raises(StudioError, match="drew no picture at 3 steps"):  # euler a overflows at 3 steps of a
        medium.generate(default_handle, "a blue star", [7], {"steps": 3, "sampler": "euler_ancestral"})  # cosine schedule
    assert default_handle.pipe.scheduler is own


@pytest.mark.parametrize("sampler", ["dpmpp_2m_sde", "euler_ancestral", "ddim"])
def test_a_standard_sd_folder_draws_with_each_sampler(medium, tiny_handle, sampler):
    own = tiny_handle.pipe.scheduler
    (gen,) = medium.generate(tiny_handle, "a red circle", [3], {"steps": 4, "sampler": sampler})
    assert _pixels(gen).std() > 0 and tiny_handle.pipe.scheduler is own


def test_a_flow_matching_model_refuses_another_sampler_in_one_sentence(medium, tmp_path):
    from helpers import tiny_sd3_pipeline

    handle = medium.load(str(tiny_sd3_pipeline(tmp_path / "sd3")), "cpu")
    with pytest.raises(StudioError) as err:
        medium.generate(handle, "a red circle", [0], {"steps": 2, "width": 32, "height": 32, "sampler": "euler"})
    assert "set sampler=model" in str(err.value) and str(err.value).count(". ") == 0
    assert "FlowMatch" in type(handle.pipe.scheduler).__name__
