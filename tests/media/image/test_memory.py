"""Fit the card: the memory estimate and the refusal (tested on CPU with a pretend card), generation's memory
options, and a quantized frozen base for a tune (torchao int8 runs on CPU; NF4 needs CUDA)."""
from __future__ import annotations

import pytest
import torch

from helpers import to_candidates
from studio.errors import StudioError
from studio.media.image import memory
from studio.training import run_tune

PROMPT = "a red circle on a blue background"


def test_the_estimate_counts_the_weights_and_grows_with_size_and_batch(tiny_handle):
    pipe = tiny_handle.pipe
    params = sum(p.numel() for m in pipe.components.values() if isinstance(m, torch.nn.Module)
                 for p in m.parameters())
    small = memory.generate_need(tiny_handle, 16, 16, 1, 4.0)
    assert params * 4 <= small["weights"] <= params * 4 * 1.01  # fp32 on CPU (buffers on top)
    bigger = memory.generate_need(tiny_handle, 32, 32, 1, 4.0)
    batch = memory.generate_need(tiny_handle, 16, 16, 4, 4.0)
    assert bigger["activations"] > 3 * small["activations"] and batch["activations"] > 3 * small["activations"]
    offloaded = memory.generate_need(tiny_handle, 16, 16, 1, 4.0, offload="model", vae_tiling=True)
    assert offloaded["weights"] < small["weights"]


def test_a_job_that_does_not_fit_is_refused_in_one_sentence(medium, tiny_handle, tmp_path, monkeypatch):
    gens = medium.generate(tiny_handle, PROMPT, [0, 1], {"steps": 1})
    curated = to_candidates(gens, PROMPT, tmp_path / "kept")
    monkeypatch.setattr(memory, "device_memory", lambda device: 10_000)  # a pretend 10 kB card
    with pytest.raises(StudioError, match=r"Generating 1 pictures of 16x16 at once needs about 0\.0 GB .* more than "
                                          r"the 0\.0 GB this GPU has; lower batch_size or the size, or set offload=model"):
        medium.generate(tiny_handle, PROMPT, [2], {"steps": 1})
    with pytest.raises(StudioError, match=r"This tune \(rank 2, batch 4, 16x16\) needs about .* set quantize=int8 or nf4"):
        medium.tune_task(tiny_handle, curated, {**medium.tune_defaults, "rank": 2, "batch_size": 4}, None)


def test_memory_options_generate_the_same_picture_on_cpu(medium, tiny_handle):
    plain = medium.generate(tiny_handle, PROMPT, [0], {"steps": 1})[0]
    tiled = medium.generate(tiny_handle, PROMPT, [0], {"steps": 1, "offload": "model", "vae_tiling": True})[0]
    assert tiled.files["png"].startswith(b"\x89PNG")  # offload is a no-op without a GPU; tiling decodes in tiles
    assert len(plain.files["png"]) > 0
    with pytest.raises(StudioError, match="'offload' must be one of none, model, sequential, not 'all'"):
        medium.validate_params({"offload": "all"})


def test_a_tune_on_an_int8_base_trains_its_lora(medium, tiny_model, tmp_path):
    pytest.importorskip("torchao")
    handle = medium.load(str(tiny_model), "cpu")  # its own handle: quantizing changes the base in place
    gens = medium.generate(handle, PROMPT, [0, 1, 2, 3], {"steps": 1})
    curated = to_candidates(gens, PROMPT, tmp_path / "kept")
    settings = {**medium.tune_defaults, "steps": 3, "lr": 5e-2, "rank": 2, "batch_size": 4, "checkpoint_every": 10,
                "quantize": "int8"}
    task = medium.tune_task(handle, curated, settings, None)
    plain = memory.tune_need(handle, task.family, [(16, 16)], 4, 2, "none", False, True, task.family.lora_targets)
    assert task.memory_need["weights"] < plain["weights"]  # linear weights at 1 byte instead of 4
    assert type(handle.pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q).__name__ \
        == "TorchaoLoraLinear"
    before = {n: p.detach().clone() for n, p in task.params.items()}
    run_tune(task, settings, tmp_path / "job")
    assert any(not torch.equal(before[n], p) for n, p in task.params.items())
    task.save(tmp_path / "v1")
    assert (tmp_path / "v1" / "pytorch_lora_weights.safetensors").is_file()


def test_nf4_needs_a_gpu_and_unknown_modes_are_refused(medium):
    with pytest.raises(StudioError, match="quantize=nf4 needs a CUDA GPU"):
        memory.quantize_base(torch.nn.Linear(4, 4), "nf4", "cpu")
    with pytest.raises(StudioError, match="'quantize' must be one of none, int8, nf4, not 'fp8'"):
        medium.parse_tune_settings({"quantize": "fp8"})
