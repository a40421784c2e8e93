"""SDXL, SD3 and Flux: tiny pipelines from configs generate, tune 10 steps, export, and stock diffusers loads it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import has_trained_lora, tiny_flux_pipeline, tiny_sd3_pipeline, tiny_sdxl_pipeline, to_candidates
from studio.errors import StudioError
from studio.medium import Version
from studio.training import run_tune

PROMPT = "a red circle on a blue background"
SIZE = {"width": 32, "height": 32}
SETTINGS = {"steps": 10, "lr": 5e-2, "rank": 4, "batch_size": 4, "checkpoint_every": 100}
BUILDERS = {"sdxl": tiny_sdxl_pipeline, "sd3": tiny_sd3_pipeline, "flux": tiny_flux_pipeline}
PIPELINES = {"sdxl": "StableDiffusionXLPipeline", "sd3": "StableDiffusion3Pipeline", "flux": "FluxPipeline"}
ENCODERS = {"sdxl": ("text_encoder", "text_encoder_2"), "sd3": ("text_encoder", "text_encoder_2", "text_encoder_3"),
            "flux": ("text_encoder", "text_encoder_2")}


@pytest.fixture(scope="module", params=["sdxl", "sd3", "flux"])
def family(request, tmp_path_factory):
    folder = BUILDERS[request.param](tmp_path_factory.mktemp(request.param) / "model")
    return request.param, folder


@pytest.fixture(scope="module")
def tuned(family, medium, tmp_path_factory):
    """Generate four candidates, keep them all, tune 10 steps; the adapter folder and the candidates."""
    name, folder = family
    tmp = tmp_path_factory.mktemp(f"{name}-tune")
    handle = medium.load(str(folder), "cpu")
    assert type(handle.pipe).__name__ == PIPELINES[name]
    gens = medium.generate(handle, PROMPT, [0, 1, 2, 3], {"steps": 2, **SIZE})
    curated = to_candidates(gens, PROMPT, tmp / "curated")
    task = medium.tune_task(handle, curated, SETTINGS, None)

    def forbidden(*args, **kwargs):
        raise AssertionError("a step must not re-encode images or prompts")

    for encoder in ENCODERS[name]:  # the cache: no text encoder and no VAE runs during the tune
        getattr(handle.pipe, encoder).forward = forbidden
    handle.pipe.vae.encode = forbidden
    result = run_tune(task, {**medium.tune_defaults, **SETTINGS}, tmp / "job")
    assert np.isfinite(result["loss"])
    task.save(tmp / "adapter")
    version = Version(medium="image", name="v1", parent="base", model=str(folder), settings=SETTINGS,
                      curated=[c.id for c in curated], path=str(tmp / "adapter"))
    return name, folder, version, task


def _stock(name, folder):
    import diffusers

    pipe = getattr(diffusers, PIPELINES[name]).from_pretrained(str(folder), use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(pipe) -> np.ndarray:
    out = pipe(PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np", **SIZE)
    return out.images[0]


def test_generate_is_per_seed_and_sized(family, medium):
    name, folder = family
    handle = medium.load(str(folder), "cpu")
    a = medium.generate(handle, PROMPT, [5, 6], {"steps": 2, **SIZE})
    b = medium.generate(handle, PROMPT, [6], {"steps": 2, "batch_size": 1, **SIZE})
    from PIL import Image
    import io

    pixels = [np.asarray(Image.open(io.BytesIO(g.files["png"])), dtype=np.int16) for g in (a[1], b[0], a[0])]
    assert pixels[0].shape == (32, 32, 3)
    assert np.abs(pixels[0] - pixels[1]).max() <= 2  # seed 6 in a batch = seed 6 alone
    assert np.abs(pixels[0] - pixels[2]).mean() > 0.5  # another seed, another picture


@pytest.mark.parametrize("name", ["sd3", "flux"])  # SDXL's UNet has convolutions to adapt (the LoCon test below)
def test_conv_on_a_transformer_family_is_one_sentence(name, medium, tmp_path):
    folder = BUILDERS[name](tmp_path / "model")
    handle = medium.load(str(folder), "cpu")
    curated = to_candidates(medium.generate(handle, PROMPT, [0], {"steps": 1, **SIZE}), PROMPT, tmp_path / "c")
    with pytest.raises(StudioError, match="no convolutions in its denoiser to adapt; tune with conv off") as err:
        medium.tune_task(handle, curated, {**SETTINGS, "conv": True}, None)
    assert str(err.value).count(". ") == 0
    with pytest.raises(StudioError, match="has no convolutions in its denoiser; leave conv_alpha empty"):
        medium.tune_task(handle, curated, {**SETTINGS, "conv_alpha": 1.0}, None)
    # the default (conv empty): the attention alone, where there are no convolutions
    assert not any("conv" in n for n in medium.tune_task(handle, curated, SETTINGS, None).adapter_state())


def test_cross_layers_adapt_only_the_keys_and_values_made_from_the_prompt(family, medium, tmp_path):
    name, folder = family
    handle = medium.load(str(folder), "cpu")
    curated = to_candidates(medium.generate(handle, PROMPT, [0], {"steps": 1, **SIZE}), PROMPT, tmp_path / "c")
    layers = {n.split(".lora_", 1)[0].rsplit(".", 1)[-1] if name != "sdxl" else n.split(".lora_", 1)[0]
              for n in medium.tune_task(handle, curated, {**SETTINGS, "layers": "cross"}, None).adapter_state()}
    if name == "sdxl":  # the UNet's cross-attention (attn2), not its self-attention (attn1) nor its convolutions
        assert layers and all(n.endswith(("attn2.to_k", "attn2.to_v")) for n in layers)
    else:  # MM-DiT: the text stream's keys and values
        assert layers == {"add_k_proj", "add_v_proj"}
    with pytest.raises(StudioError, match="adapts the cross-attention alone; leave conv and conv_alpha empty") as err:
        medium.tune_task(handle, curated, {**SETTINGS, "layers": "cross", "conv": True}, None)
    assert str(err.value).count(". ") == 0


def test_tune_trains_the_denoisers_attention(tuned):
    name, _, _, task = tuned
    names = list(task.adapter_state())
    denoiser = "unet" if name == "sdxl" else "transformer"
    assert names and all(n.startswith(f"{denoiser}.") and "lora_" in n for n in names)
    assert any(".to_q." in n for n in names)
    if name != "sdxl":  # MM-DiT: the text stream's projections too
        assert any(".add_q_proj." in n for n in names)


def test_diffusers_export_loads_in_the_stock_pipeline_and_changes_output(tuned, medium, tmp_path):
    name, folder, version, task = tuned
    files = medium.export(None, version, "diffusers", tmp_path / "out", [])
    assert tmp_path / "out" / "pytorch_lora_weights.safetensors" in files
    pipe = _stock(name, folder)
    before = _image(pipe)
    pipe.load_lora_weights(str(tmp_path / "out"))
    after = _image(pipe)
    assert np.abs(before - after).mean() > 1e-3
    # every trained layer arrived, none dropped for an unread key
    denoiser = getattr(pipe, "unet" if name == "sdxl" else "transformer")
    loaded = {n for n, m in denoiser.named_modules() if getattr(m, "lora_A", None)}
    trained = {n.split(".", 1)[1].rsplit(".lora_", 1)[0].removesuffix(".base_layer")
               for n in task.adapter_state()}
    assert loaded == trained


def test_kohya_single_file(tuned, medium, tmp_path):
    from safetensors import safe_open

    name, folder, version, _ = tuned
    if name == "sd3":
        with pytest.raises(StudioError, match="diffusers") as err:
            medium.export(None, version, "kohya", tmp_path / "k", [])
        assert str(err.value).count(". ") == 0
        return
    (path,) = medium.export(None, version, "kohya", tmp_path / "k", [])
    with safe_open(str(path), framework="pt") as fh:
        state = {k: fh.get_tensor(k) for k in fh.keys()}
        meta = fh.metadata()
    if name == "sdxl":
        # the original UNet's names, as kohya sd-scripts writes SDXL LoRAs (A1111 and ComfyUI read them)
        assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight" in state
        assert "lora_unet_output_blocks_0_1_transformer_blocks_1_attn2_to_out_0.alpha" in state
        assert meta["ss_base_model_version"].startswith("sdxl")
        pipe = _stock(name, folder)
        pipe.load_lora_weights(str(path.parent), weight_name=path.name)
        kohya = _image(pipe)
        reference = _stock(name, folder)
        reference.load_lora_weights(version.path)
        assert np.abs(_image(reference) - kohya).max() < 1e-3  # the same LoRA, read either way
        return
    # Flux: Black Forest Labs' names, q/k/v fused (what kohya writes and ComfyUI / Forge load)
    assert set(k.rsplit(".", 2)[0] for k in state if k.endswith(".alpha")) >= {
        "lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_double_blocks_0_txt_attn_qkv",
        "lora_unet_double_blocks_0_img_attn_proj", "lora_unet_double_blocks_0_txt_attn_proj",
        "lora_unet_single_blocks_0_linear1"}
    assert meta["ss_base_model_version"] == "flux1"
    from safetensors.torch import load_file

    diffusers_state = load_file(str(version.path) + "/pytorch_lora_weights.safetensors")

    def delta(prefix: str) -> torch.Tensor:  # B @ A of one diffusers LoRA (alpha = rank here)
        return diffusers_state[f"{prefix}.lora_B.weight"] @ diffusers_state[f"{prefix}.lora_A.weight"]

    def fused(name_: str) -> torch.Tensor:
        down, up = state[f"{name_}.lora_down.weight"], state[f"{name_}.lora_up.weight"]
        return up @ down * (float(state[f"{name_}.alpha"]) / down.shape[0])

    for block, parts in (("double_blocks_0_img_attn_qkv", ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_k",
                                                           "transformer_blocks.0.attn.to_v"]),
                         ("single_blocks_0_linear1", ["single_transformer_blocks.0.attn.to_q",
                                                      "single_transformer_blocks.0.attn.to_k",
                                                      "single_transformer_blocks.0.attn.to_v"])):
        want = torch.cat([delta(f"transformer.{p}") for p in parts])
        got = fused(f"lora_unet_{block}")
        assert torch.allclose(got[:len(want)], want, atol=1e-6)
        assert torch.all(got[len(want):] == 0)  # linear1's MLP rows carry no LoRA
        if block.startswith("single"):
            assert got.shape[0] == len(want) + 4 * want.shape[0] // 3
    assert torch.allclose(fused("lora_unet_double_blocks_0_img_attn_proj"),
                          delta("transformer.transformer_blocks.0.attn.to_out.0"), atol=1e-6)
    # stock diffusers reads the double blocks back into the same updates (its kohya reader assumes the
    # released model's widths for single blocks, which a tiny model cannot have)
    from safetensors.torch import save_file

    doubles = {k: v for k, v in state.items() if "double_blocks" in k}
    save_file(doubles, str(tmp_path / "doubles.safetensors"))
    pipe = _stock(name, folder)
    pipe.load_lora_weights(str(tmp_path), weight_name="doubles.safetensors", adapter_name="k")
    attn = pipe.transformer.transformer_blocks[0].attn
    for module, prefix in ((attn.to_k, "to_k"), (attn.add_v_proj, "add_v_proj"), (attn.to_add_out, "to_add_out")):
        got = module.lora_B["k"].weight @ module.lora_A["k"].weight * module.scaling["k"]
        assert torch.allclose(got, delta(f"transformer.transformer_blocks.0.attn.{prefix}"), atol=1e-5), prefix


def test_sdxl_v_prediction_with_zero_terminal_snr(medium, tmp_path):
    from diffusers import EulerDiscreteScheduler

    folder = tiny_sdxl_pipeline(tmp_path / "vpred")
    handle = medium.load(str(folder), "cpu")
    handle.pipe.scheduler = EulerDiscreteScheduler.from_config(handle.pipe.scheduler.config,
                                                               prediction_type="v_prediction",
                                                               rescale_betas_zero_snr=True)
    gens = medium.generate(handle, PROMPT, [0, 1], {"steps": 2, **SIZE})
    curated = to_candidates(gens, PROMPT, tmp_path / "c")
    task = medium.tune_task(handle, curated, {**SETTINGS, "batch_size": 2}, None)
    assert task.prediction == "v_prediction"
    assert float(task.noise_scheduler.alphas_cumprod[-1]) < 1e-6  # the last step is pure noise
    x0, noise = task.latents[:1], torch.randn_like(task.latents[:1])
    noisy, t, target = task._noised(x0, noise, torch.Generator().manual_seed(0))
    assert torch.allclose(target, task.noise_scheduler.get_velocity(x0, noise, t))


def test_flow_sigmas_follow_the_schedulers_shift():
    from studio.media.image.families import flow_sigmas

    u = torch.tensor([0.1, 0.5, 0.9])
    assert torch.allclose(flow_sigmas({"shift": 1.0}, u, 64), u)
    shifted = flow_sigmas({"shift": 3.0}, u, 64)
    assert torch.allclose(shifted, 3 * u / (1 + 2 * u)) and bool((shifted > u).all())
    dynamic = {"use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15, "base_image_seq_len": 256,
               "max_image_seq_len": 4096}
    small, large = flow_sigmas(dynamic, u, 256), flow_sigmas(dynamic, u, 4096)
    assert bool((large > small).all())  # a bigger picture is noised harder, as Flux samples it


def test_text_encoder_lora_trains_and_loads_in_stock_diffusers(medium, tmp_path):
    """SDXL with LoRA on both CLIPs: the tune adds it through peft itself (transformers' ``add_adapter`` wants
    a newer peft than is released), both encoders learn, and stock diffusers loads all three parts."""
    folder = tiny_sdxl_pipeline(tmp_path / "te")
    handle = medium.load(str(folder), "cpu")
    curated = to_candidates(medium.generate(handle, PROMPT, [0, 1], {"steps": 2, **SIZE}), PROMPT, tmp_path / "c")
    settings = {**SETTINGS, "steps": 2, "batch_size": 2, "train_text_encoder": True}
    task = medium.tune_task(handle, curated, settings, None)
    run_tune(task, {**medium.tune_defaults, **settings}, tmp_path / "job")
    task.save(tmp_path / "adapter")
    task.release()
    assert not any(getattr(m, "lora_A", None) for m in handle.pipe.text_encoder.modules())  # the model as it was
    pipe = _stock("sdxl", folder)
    pipe.load_lora_weights(str(tmp_path / "adapter"))
    for part in ("unet", "text_encoder", "text_encoder_2"):
        assert has_trained_lora(getattr(pipe, part)), part
    # the kohya file names both CLIPs as sd-scripts does, and stock diffusers reads them back
    version = Version(medium="image", name="v1", parent="base", model=str(folder), settings=settings,
                      curated=[c.id for c in curated], path=str(tmp_path / "adapter"))
    (path,) = medium.export(None, version, "kohya", tmp_path / "kohya", [])
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        te = [k for k in fh.keys() if k.startswith("lora_te")]
    for prefix in ("lora_te1_text_model_encoder_layers_", "lora_te2_text_model_encoder_layers_"):
        assert any(k.startswith(prefix) for k in te), prefix
    assert all(k.startswith(("lora_te1_text_model_", "lora_te2_text_model_")) for k in te)
    from_kohya = _stock("sdxl", folder)
    from_kohya.load_lora_weights(str(path.parent), weight_name=path.name)
    for part in ("text_encoder", "text_encoder_2"):
        assert has_trained_lora(getattr(from_kohya, part)), part


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(family, medium, tmp_path):
    """The GPU default (recomputing activations) checked on a CPU: same loss, same LoRA gradients."""
    name, folder = family
    handle = medium.load(str(folder), "cpu")
    curated = to_candidates(medium.generate(handle, PROMPT, [0, 1], {"steps": 2, **SIZE}), PROMPT, tmp_path / "c")
    results = []
    for checkpointing in (False, True):
        task = medium.tune_task(medium.load(str(folder), "cpu"), curated,
                                {**SETTINGS, "batch_size": 2, "gradient_checkpointing": checkpointing}, None)
        assert task.denoiser.is_gradient_checkpointing == checkpointing
        loss = task.loss(0, torch.Generator().manual_seed(3))
        loss.backward()
        results.append((float(loss), [p.grad.clone() for p in task.parameters()]))
    (plain_loss, plain_grads), (ckpt_loss, ckpt_grads) = results
    assert abs(plain_loss - ckpt_loss) < 1e-6
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain_grads, ckpt_grads))


def test_an_sdxl_locon_exports_in_the_original_unets_names_and_loads_the_same(medium, tmp_path):
    """``conv``: the resnets' convolutions in kohya's SDXL names (``in_layers_2``, ``out_layers_3``), read back exactly."""
    from safetensors import safe_open

    folder = tiny_sdxl_pipeline(tmp_path / "model")
    handle = medium.load(str(folder), "cpu")
    curated = to_candidates(medium.generate(handle, PROMPT, [0, 1], {"steps": 2, **SIZE}), PROMPT, tmp_path / "c")
    settings = {**SETTINGS, "steps": 3, "conv": True}
    task = medium.tune_task(handle, curated, settings, None)
    run_tune(task, {**medium.tune_defaults, **settings}, tmp_path / "job")
    task.save(tmp_path / "adapter")
    version = Version(medium="image", name="v1", parent="base", model=str(folder), settings=settings,
                      curated=[c.id for c in curated], path=str(tmp_path / "adapter"))
    (path,) = medium.export(None, version, "kohya", tmp_path / "k", [])
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
    assert {"lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight", "lora_unet_middle_block_2_out_layers_3.alpha",
            "lora_unet_output_blocks_0_0_out_layers_3.lora_up.weight"} <= keys
    pipe = _stock("sdxl", folder)
    pipe.load_lora_weights(str(path.parent), weight_name=path.name)
    reference = _stock("sdxl", folder)
    reference.load_lora_weights(version.path)
    loaded = {n for n, m in pipe.unet.named_modules() if getattr(m, "lora_A", None)}
    wanted = {n for n, m in reference.unet.named_modules() if getattr(m, "lora_A", None)}
    assert loaded == wanted, sorted(wanted ^ loaded)
    assert np.abs(_image(reference) - _image(pipe)).max() < 1e-3
