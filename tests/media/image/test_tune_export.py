"""LoRA tune on a tiny standard pipeline: cached inputs, resume, stock diffusers loads the exports."""
from __future__ import annotations


import dataclasses
import json

import numpy as np
import pytest
import torch

from helpers import has_trained_lora, to_candidates
from killed import KilledAt
from studio.errors import StudioError
from studio.medium import Version
from studio.training import run_tune

PROMPT = "a red circle on a blue background"
SETTINGS = {"steps": 6, "lr": 5e-2, "rank": 4, "batch_size": 4, "checkpoint_every": 3}


@pytest.fixture
def curated(medium, tiny_handle, tmp_path):
    gens = medium.generate(tiny_handle, PROMPT, [0, 1, 2, 3], {"steps": 2})
    return to_candidates(gens, PROMPT, tmp_path / "curated")


@pytest.fixture
def tuned(medium, tiny_model, curated, tmp_path):
    handle = medium.load(str(tiny_model), "cpu")
    task = medium.tune_task(handle, curated, SETTINGS, None)
    run_tune(task, {**medium.tune_defaults, **SETTINGS}, tmp_path / "job")
    task.save(tmp_path / "v1" / "adapter")
    return Version(medium="image", name="v1", parent="base", model=str(tiny_model), settings=SETTINGS,
                   curated=[c.id for c in curated], path=str(tmp_path / "v1" / "adapter"))


def _stock_pipe(folder):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), use_safetensors=True, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _stock_image(pipe) -> np.ndarray:
    out = pipe(PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np")
    return out.images[0]


def test_cache_is_built_once(medium, tiny_handle, curated):
    task = medium.tune_task(tiny_handle, curated, SETTINGS, None)
    assert task.latents.shape == (4, 4, 8, 8) and task.cond["encoder_hidden_states"].shape[0] == 4

    def forbidden(*args, **kwargs):
        raise AssertionError("a step must not re-encode images or prompts")

    tiny_handle.pipe.vae.encode = forbidden
    tiny_handle.pipe.text_encoder.forward = forbidden
    loss = task.loss(0, torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is not None for p in task.parameters())
    names = list(task.adapter_state())
    assert names and all("lora_" in n for n in names)
    assert any(".to_q." in n for n in names) and any(".to_out.0." in n for n in names)


def test_same_generator_same_loss(medium, tiny_handle, curated):
    task = medium.tune_task(tiny_handle, curated, SETTINGS, None)
    a = float(task.loss(3, torch.Generator().manual_seed(11)))
    b = float(task.loss(3, torch.Generator().manual_seed(11)))
    assert a == b


def test_prior_preservation_mixes_its_share_of_unkept_pictures_into_each_batch(medium, tiny_handle, curated):
    kept, prior = curated[:2], curated[2:]
    task = medium.tune_task(tiny_handle, kept, {**SETTINGS, "objective": "sft", "prior_weight": 0.5}, None, prior=prior)
    assert task.kept_rows == 2 and task.latents.shape[0] == 4  # the un-kept pictures' latents after the kept
    picked = []
    real_randint = torch.randint

    def spy(low, high=None, size=None, **kwargs):
        out = real_randint(low, high, size, **kwargs)
        if high is not None and size is not None and len(size) == 1:
            picked.append((low, high, len(out)))
        return out

    torch.randint = spy
    try:
        task.loss(0, torch.Generator().manual_seed(0))
    finally:
        torch.randint = real_randint
    assert (0, 2, 2) in picked and (2, 4, 2) in picked  # half the batch of 4 from each
    off = medium.tune_task(tiny_handle, kept, {**SETTINGS, "objective": "sft", "prior_weight": 0.0}, None, prior=prior)
    assert off.latents.shape[0] == 2


def test_mirror_learns_from_each_kept_picture_and_its_mirror_image(medium, tiny_handle, curated, tmp_path):
    from PIL import Image

    task = medium.tune_task(tiny_handle, curated, {**SETTINGS, "mirror": True}, None)
    flipped = []
    for c in curated:  # the mirror images as files: their latents are what the tune's mirrored rows hold
        path = tmp_path / f"mirrored-{c.id}.png"
        with Image.open(c.path) as image:
            image.transpose(Image.FLIP_LEFT_RIGHT).save(path)
        flipped.append(dataclasses.replace(c, path=str(path), files={"png": str(path)}))
    mirrored = medium.tune_task(tiny_handle, flipped, SETTINGS, None)
    bucket = task.buckets[0]
    assert torch.allclose(bucket["mirrored"], mirrored.latents, atol=1e-5)
    assert not torch.allclose(bucket["mirrored"], bucket["latents"], atol=1e-3)
    drawn = []
    task._noised = lambda x0, noise, generator, paired=False: (drawn.append(x0) or (x0, torch.zeros(len(x0)), x0))
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):
        task._draw(generator)
    rows = torch.cat(drawn)
    plain = [any(torch.equal(r, x) for x in bucket["latents"]) for r in rows]
    flip = [any(torch.equal(r, x) for x in bucket["mirrored"]) for r in rows]
    assert all(p or f for p, f in zip(plain, flip)) and any(plain) and any(flip)
    assert "mirrored" not in medium.tune_task(tiny_handle, curated, SETTINGS, None).buckets[0]


def test_empty_curated_set(medium, tiny_handle):
    with pytest.raises(StudioError, match="kept set is empty"):
        medium.tune_task(tiny_handle, [], SETTINGS, None)


def test_diffusers_export_loads_in_stock_diffusers_and_changes_output(medium, tiny_model, tuned, tmp_path):
    files = medium.export(None, tuned, "diffusers", tmp_path / "out", [])
    assert (tmp_path / "out" / "pytorch_lora_weights.safetensors") in files
    pipe = _stock_pipe(tiny_model)
    before = _stock_image(pipe)
    pipe.load_lora_weights(str(tmp_path / "out"))
    after = _stock_image(pipe)
    assert np.abs(before - after).mean() > 1e-3


def test_kohya_export_keys_and_stock_load(medium, tiny_model, tuned, tmp_path):
    from safetensors import safe_open

    (path,) = medium.export(None, tuned, "kohya", tmp_path / "kohya", [])
    with safe_open(str(path), framework="pt") as fh:
        keys = list(fh.keys())
        meta = fh.metadata()
    assert all(k.startswith("lora_unet_") for k in keys)
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight" in keys
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.alpha" in keys
    assert meta["ss_network_dim"] == "4"
    pipe = _stock_pipe(tiny_model)
    before = _stock_image(pipe)
    pipe.load_lora_weights(str(path.parent), weight_name=path.name)
    after = _stock_image(pipe)
    assert np.abs(before - after).mean() > 1e-3
    # kohya and diffusers exports give the same pictures
    pipe2 = _stock_pipe(tiny_model)
    pipe2.load_lora_weights(tuned.path)
    assert np.abs(_stock_image(pipe2) - after).max() < 1e-3


def test_a_tune_with_the_text_encoder_exports_kohya_names_a1111_reads(medium, tiny_model, curated, tmp_path):
    """train_text_encoder: the CLIP's LoRA in the kohya file under sd-scripts' names (``lora_te_text_model_
    encoder_layers_N_...``, which AUTOMATIC1111 and ComfyUI map), and stock diffusers reads it back to the same
    pictures as the diffusers folder, text encoder and all."""
    from safetensors import safe_open

    handle = medium.load(str(tiny_model), "cpu")
    settings = {**SETTINGS, "train_text_encoder": True}
    task = medium.tune_task(handle, curated, settings, None)
    run_tune(task, {**medium.tune_defaults, **settings}, tmp_path / "job")
    task.save(tmp_path / "adapter")
    task.release()
    version = Version(medium="image", name="v1", parent="base", model=str(tiny_model), settings=settings,
                      curated=[c.id for c in curated], path=str(tmp_path / "adapter"))
    (path,) = medium.export(None, version, "kohya", tmp_path / "kohya", [])
    with safe_open(str(path), framework="pt") as fh:
        keys = list(fh.keys())
    te = [k for k in keys if k.startswith("lora_te_")]
    assert te and all(k.startswith("lora_te_text_model_encoder_layers_") for k in te), te[:3]
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight" in keys
    pipe, folder_pipe = _stock_pipe(tiny_model), _stock_pipe(tiny_model)
    pipe.load_lora_weights(str(path.parent), weight_name=path.name)
    folder_pipe.load_lora_weights(version.path)
    for loaded in (pipe, folder_pipe):
        assert has_trained_lora(loaded.text_encoder)
    assert np.abs(_stock_image(pipe) - _stock_image(folder_pipe)).max() < 1e-3


def test_imagefolder_export_reads_with_datasets(medium, curated, tmp_path):
    import datasets

    files = medium.export(None, None, "imagefolder", tmp_path / "set", curated)
    assert len(files) == len(curated) + 1
    ds = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "set"), split="train")
    assert len(ds) == len(curated)
    assert set(ds["text"]) == {PROMPT}
    assert ds[0]["image"].size == (16, 16)


@pytest.mark.parametrize("fmt,version,curated_set,match", [
    ("imagefolder", None, [], "kept set is empty"),
    ("diffusers", None, None, "base has none"),
    ("gif", None, None, "Unknown image export format"),
])
def test_bad_exports_write_nothing(medium, curated, tmp_path, fmt, version, curated_set, match):
    with pytest.raises(StudioError, match=match):
        medium.export(None, version, fmt, tmp_path / "nothing", curated if curated_set is None else curated_set)
    assert not (tmp_path / "nothing").exists()


def test_adapter_switching_without_reload_and_parent_init(medium, tiny_model, tuned, curated, tmp_path):
    handle = medium.load(str(tiny_model), "cpu")
    pipe_id = id(handle.pipe)
    base = medium.generate(handle, PROMPT, [5], {"steps": 2})[0].files["png"]
    v1 = medium.generate(handle, PROMPT, [5], {"steps": 2}, adapter=tuned.path)[0].files["png"]
    assert v1 != base
    assert medium.generate(handle, PROMPT, [5], {"steps": 2})[0].files["png"] == base
    assert medium.generate(handle, PROMPT, [5], {"steps": 2}, adapter=tuned.path)[0].files["png"] == v1
    assert id(handle.pipe) == pipe_id and len(handle.adapters) == 1
    # a tune from v1 starts from v1's weights
    child = medium.tune_task(medium.load(str(tiny_model), "cpu"), curated, SETTINGS, tuned.path)
    from safetensors.torch import load_file

    parent = load_file(str(tuned.path) + "/pytorch_lora_weights.safetensors")
    state = child.state_dicts()["unet"]
    assert set(state) == {k.removeprefix("unet.") for k in parent} or set(state) == set(parent)
    for key, value in parent.items():
        assert torch.allclose(state.get(key.removeprefix("unet."), state.get(key)), value)


def test_resume_matches_a_straight_run(medium, tiny_model, curated, tmp_path):
    settings = {**medium.tune_defaults, **SETTINGS}
    straight = medium.tune_task(medium.load(str(tiny_model), "cpu"), curated, settings, None)
    run_tune(straight, settings, tmp_path / "a")
    crashed = medium.tune_task(medium.load(str(tiny_model), "cpu"), curated, settings, None)
    with pytest.raises(RuntimeError):
        run_tune(KilledAt(crashed, 4), settings, tmp_path / "b")
    resumed = medium.tune_task(medium.load(str(tiny_model), "cpu"), curated, settings, None)
    run_tune(resumed, settings, tmp_path / "b")  # picks up the step-3 checkpoint
    want, got = straight.adapter_state(), resumed.adapter_state()
    assert set(want) == set(got)
    for name in want:
        assert torch.allclose(want[name], got[name], atol=1e-5), name


def test_unsupported_family_names_the_supported_ones_in_one_sentence(medium, curated):
    from studio.media.image.model import ImageHandle

    class PixArtAlphaPipeline:  # a real diffusers pipeline name that no family entry covers
        pass

    handle = ImageHandle(pipe=PixArtAlphaPipeline(), model="pixart", device="cpu", dtype=torch.float32,
                         native_size=16)
    with pytest.raises(StudioError) as err:
        medium.tune_task(handle, curated, SETTINGS, None)
    message = str(err.value)
    assert message.count(". ") == 0 and message.endswith(".")
    for name in ("Stable Diffusion 1.x/2.x", "SDXL", "SD3/SD3.5", "Flux.1", "PixArtAlphaPipeline"):
        assert name in message


def test_a_portrait_set_tunes_at_its_shape(medium, tiny_handle, tmp_path):
    """Aspect-ratio buckets: 16x32 portraits keep their shape in the latents (they were squashed to squares)."""
    import dataclasses

    portraits = to_candidates(medium.generate(tiny_handle, PROMPT, [0, 1, 2], {"steps": 1, "width": 16, "height": 32}),
                              PROMPT, tmp_path / "portraits")
    task = medium.tune_task(tiny_handle, portraits, SETTINGS, None)
    (bucket,) = task.buckets
    height, width = bucket["latents"].shape[-2:]
    assert bucket["shape"] == (16, 32) and height == 2 * width  # the latents keep the 1:2 aspect ratio
    landscape = to_candidates(medium.generate(tiny_handle, PROMPT, [5], {"steps": 1, "width": 48, "height": 16}),
                              PROMPT, tmp_path / "landscape")
    mixed = medium.tune_task(tiny_handle, portraits + landscape, SETTINGS, None)
    assert sorted(b["shape"] for b in mixed.buckets) == [(16, 32), (48, 16)]
    seen, predict = set(), mixed.family.predict

    def recording(pipe, noisy, timesteps, cond):
        seen.add(tuple(noisy.shape[-2:]))
        return predict(pipe, noisy, timesteps, cond)

    mixed.family = dataclasses.replace(mixed.family, predict=recording)
    for step in range(8):  # each step trains one shape; both come up
        assert torch.isfinite(mixed.loss(step, torch.Generator().manual_seed(step)))
    assert seen == {(16, 8), (8, 24)}


def _tuned_to_kohya(medium, task, settings, tiny_model, curated, tmp_path):
    """Run the tune, save it as version v1, export it for kohya: the version and the kohya file."""
    run_tune(task, {**medium.tune_defaults, **settings}, tmp_path / "job")
    task.save(tmp_path / "v1" / "adapter")
    version = Version(medium="image", name="v1", parent="base", model=str(tiny_model), settings=settings,
                      curated=[c.id for c in curated], path=str(tmp_path / "v1" / "adapter"))
    (path,) = medium.export(None, version, "kohya", tmp_path / "kohya", [])
    return version, path


def test_conv_adapts_the_resnets_too_and_its_kohya_export_loads_as_a_locon(medium, tiny_model, curated, tmp_path):
    from safetensors import safe_open

    handle = medium.load(str(tiny_model), "cpu")
    plain = medium.tune_task(handle, curated, {**SETTINGS, "conv": False}, None)
    assert not any(".conv1.lora_A" in n for n in plain.adapter_state())  # attention alone, when asked
    again = medium.tune_task(handle, curated, {**SETTINGS, "conv": False}, None)  # the first left its LoRA layers
    assert again.memory_need["lora"] == plain.memory_need["lora"] > 0  # counted all the same
    settings = {**SETTINGS, "conv": True}
    task = medium.tune_task(handle, curated, settings, None)  # a new task on the handle starts clean
    trained = list(task.adapter_state())
    assert any(".resnets.0.conv1.lora_A" in n for n in trained) and any(".to_q.lora_A" in n for n in trained)
    assert task.memory_need["lora"] > plain.memory_need["lora"]  # the convolutions' LoRA is counted
    version, path = _tuned_to_kohya(medium, task, settings, tiny_model, curated, tmp_path)
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()  # kohya's words for a LoCon: the convolutions' rank and alpha (half the attention's)
        assert json.loads(meta["ss_network_args"]) == {"conv_dim": "4",
                                                       "conv_alpha": str(float(meta["ss_network_alpha"]) / 2)}
        down = fh.get_tensor("lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight")
        up = fh.get_tensor("lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight")
    assert down.shape[0] == 4 and down.shape[2:] == (3, 3) and up.shape[1:] == (4, 1, 1)  # kohya's LoCon shapes
    pipe = _stock_pipe(tiny_model)
    pipe.load_lora_weights(str(path.parent), weight_name=path.name)
    reference = _stock_pipe(tiny_model)
    reference.load_lora_weights(version.path)
    without = _stock_pipe(tiny_model)
    assert np.abs(_stock_image(reference) - _stock_image(without)).mean() > 1e-3
    assert np.abs(_stock_image(reference) - _stock_image(pipe)).max() < 1e-3  # the same LoRA, read either way
    # a LoCon file (as Civitai has them) starts a version: its convolutions train on, and save in peft's names
    child = medium.tune_task(handle, curated, SETTINGS, str(path))
    assert any(".resnets.0.conv1.lora_A" in n for n in child.adapter_state())
    run_tune(child, {**medium.tune_defaults, **SETTINGS}, tmp_path / "job2")
    child.save(tmp_path / "v2" / "adapter")
    again = _stock_pipe(tiny_model)
    again.load_lora_weights(str(tmp_path / "v2" / "adapter"))
    loaded = {n for n, m in again.unet.named_modules() if getattr(m, "lora_A", None)}
    assert any(n.endswith("attn1.to_q") for n in loaded) and any(n.endswith("resnets.0.conv1") for n in loaded)


def _scales(unet, ending):
    return {float(s) for n, m in unet.named_modules() if n.endswith(ending) and getattr(m, "scaling", None)
            for s in m.scaling.values()}


def test_conv_alpha_scales_the_convolutions_alone_and_every_export_keeps_it(medium, tiny_model, curated, tmp_path):
    from safetensors import safe_open

    handle = medium.load(str(tiny_model), "cpu")
    with pytest.raises(StudioError, match="turn conv on too"):
        medium.tune_task(handle, curated, {**SETTINGS, "conv": False, "conv_alpha": 1.0}, None)
    settings = {**SETTINGS, "conv": True, "conv_alpha": 0.5}  # rank 4, alpha 4: attention scale 1, convolutions 1/8
    task = medium.tune_task(handle, curated, settings, None)
    assert _scales(handle.pipe.unet, "resnets.0.conv1") == {0.125} and _scales(handle.pipe.unet, "attn1.to_q") == {1.0}
    version, path = _tuned_to_kohya(medium, task, settings, tiny_model, curated, tmp_path)
    with safe_open(str(path), framework="pt") as fh:
        assert json.loads(fh.metadata()["ss_network_args"]) == {"conv_dim": "4", "conv_alpha": "0.5"}
        assert float(fh.get_tensor("lora_unet_down_blocks_0_resnets_0_conv1.alpha")) == 0.5
        assert float(fh.get_tensor("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha")) == 4
    folder, kohya = _stock_pipe(tiny_model), _stock_pipe(tiny_model)
    folder.load_lora_weights(version.path)
    kohya.load_lora_weights(str(path.parent), weight_name=path.name)
    for pipe in (folder, kohya):  # stock diffusers reads the convolutions' own scale back from either
        assert _scales(pipe.unet, "resnets.0.conv1") == {0.125} and _scales(pipe.unet, "attn1.to_q") == {1.0}
    assert np.abs(_stock_image(folder) - _stock_image(kohya)).max() < 1e-3
    child = medium.tune_task(handle, curated, SETTINGS, version.path)  # the next version keeps it
    assert child.conv_alpha == 0.5 and _scales(handle.pipe.unet, "resnets.0.conv1") == {0.125}
