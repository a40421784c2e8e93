"""The shared loading module: dtype choice, local or hub, safetensors only, and freeing a model on a switch."""
from __future__ import annotations

import gc
import weakref

import pytest

from studio import loading
from studio.engine import Studio
from studio.errors import StudioError


def test_dtype_follows_the_device_and_the_override(monkeypatch):
    monkeypatch.delenv("STUDIO_DTYPE", raising=False)
    assert loading.dtype_name("cpu") == "float32"
    assert loading.dtype_name("mps") == "float16"
    monkeypatch.setenv("STUDIO_DTYPE", "bfloat16")
    assert loading.dtype_name("cpu") == "bfloat16"
    assert loading.dtype_name("cpu", "float32") == "float32"  # an explicit choice wins over the variable
    monkeypatch.setenv("STUDIO_DTYPE", "half")
    with pytest.raises(StudioError, match="Unknown dtype 'half'"):
        loading.dtype_name("cpu")


def test_pickle_only_and_empty_folders_are_one_sentence(tmp_path):
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "model.ckpt").write_bytes(b"x")
    with pytest.raises(StudioError, match="pickle weights only"):
        loading.check_weights(tmp_path / "pickled", "model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudioError, match="holds no .safetensors"):
        loading.check_weights(tmp_path / "empty", "model")
    (tmp_path / "m.ckpt").write_bytes(b"x")
    with pytest.raises(StudioError, match="not a .safetensors file"):
        loading.local_path(str(tmp_path / "m.ckpt"), "model", files=True)


def test_load_error_never_fails_on_an_empty_message():
    assert str(loading.load_error("image model", "m", OSError(""))) == "The image model 'm' could not be loaded: OSError."
    assert "remote code" in str(loading.load_error("text model", "m", ValueError("set trust_remote_code=True")))


def test_a_hub_id_not_in_the_cache_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(StudioError, match="studio models pull owner/absent"):
        loading.hub_snapshot("owner/absent", "image model")


def test_switching_models_frees_the_old_one(workspace, fake, tmp_path):
    from fake_medium import make_model

    studio = Studio(workspace)
    first = studio.handle("fake")
    alive = weakref.ref(first)
    del first
    other = make_model(tmp_path / "other-model")
    studio.handle("fake", str(other))
    gc.collect()
    assert alive() is None  # the first model is gone, not kept for the life of the process
    assert studio.loaded_models() == {"fake": str(other)}
    studio.release("fake")
    assert studio.loaded_models() == {}


def test_the_library_lists_a_clip_model_for_the_scorers(workspace, tmp_path, monkeypatch):
    from huggingface_hub import constants
    from transformers import CLIPConfig, CLIPModel

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    from studio.library import Library

    folder = tmp_path / "models" / "my-clip"
    CLIPModel(CLIPConfig(text_config=dict(hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                          num_attention_heads=1, vocab_size=20),
                         vision_config=dict(hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                            num_attention_heads=1, image_size=16, patch_size=8),
                         projection_dim=8)).save_pretrained(folder, safe_serialization=True)
    studio = Studio(workspace)
    Library(studio.store).add_folder(str(tmp_path / "models"))
    assert Library(studio.store).choices("scorer") == [str(folder)]


@pytest.mark.parametrize("medium", ["image", "text", "music"])
def test_every_medium_says_how_to_get_an_uncached_hub_model(medium, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from studio import media

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(StudioError, match="is not on this machine; get it first with "
                                          "`studio models pull nobody/nothing`"):
        media.get(medium).load("nobody/nothing", "cpu")
