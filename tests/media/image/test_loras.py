"""Community LoRAs: a kohya-format file the studio did not make changes the output, mixes with others at chosen
strengths, and starts a tune (its weights initialise the new version)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import to_candidates
from studio.errors import StudioError
from studio.training import run_tune

PROMPT = "a red circle on a blue background"
PARAMS = {"steps": 2}


def kohya_lora(pipe, path: Path, rank: int = 2, alpha: float = 1.0, seed: int = 0, text: bool = True) -> Path:
    """A LoRA in kohya sd-scripts' layout for ``pipe`` (SD 1.x): ``lora_unet_<module path with _>`` and
    ``lora_te_text_model_...`` with ``lora_down`` / ``lora_up`` / ``alpha``, random and clearly non-zero."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    state = {}
    targets = [("lora_unet_", pipe.unet, r"attn[12]\.(to_q|to_k|to_v|to_out\.0)$")]
    if text:
        targets.append(("lora_te_text_model_", pipe.text_encoder, r"self_attn\.(q_proj|k_proj|v_proj|out_proj)$"))
    for prefix, model, pattern in targets:
        for name, module in model.named_modules():
            if not re.search(pattern, name) or not isinstance(module, torch.nn.Linear):
                continue
            key = prefix + name.removeprefix("text_model.").replace(".", "_")
            state[f"{key}.lora_down.weight"] = torch.randn(rank, module.in_features, generator=generator)
            state[f"{key}.lora_up.weight"] = torch.randn(module.out_features, rank, generator=generator)
            state[f"{key}.alpha"] = torch.tensor(float(alpha))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"ss_network_module": "networks.lora", "ss_network_dim": str(rank)})
    return path


def _pixels(gen) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(gen.files["png"])), dtype=np.float32)


@pytest.fixture
def kohya_file(tiny_handle, tmp_path):
    return kohya_lora(tiny_handle.pipe, tmp_path / "loras" / "style.safetensors")


def test_a_kohya_lora_changes_the_output_at_strength_one(medium, tiny_handle, kohya_file, tmp_path):
    base = medium.generate(tiny_handle, PROMPT, [0], PARAMS)[0]
    styled = medium.generate(tiny_handle, PROMPT, [0], {**PARAMS, "loras": [f"{kohya_file}:1"]})[0]
    off = medium.generate(tiny_handle, PROMPT, [0], {**PARAMS, "loras": [f"{kohya_file}:0"]})[0]
    again = medium.generate(tiny_handle, PROMPT, [0], PARAMS)[0]
    assert np.abs(_pixels(styled) - _pixels(base)).mean() > 1.0
    assert np.array_equal(_pixels(off), _pixels(base))  # strength 0 is the base
    assert np.array_equal(_pixels(again), _pixels(base))  # switched off again afterwards


def test_several_loras_mix_at_their_strengths(medium, tiny_handle, kohya_file, tmp_path):
    other = kohya_lora(tiny_handle.pipe, tmp_path / "loras" / "other.safetensors", seed=1, text=False)
    one = medium.generate(tiny_handle, PROMPT, [0], {**PARAMS, "loras": [f"{kohya_file}:1"]})[0]
    both = medium.generate(tiny_handle, PROMPT, [0], {**PARAMS, "loras": [str(kohya_file), f"{other}:0.7"]})[0]
    assert not np.array_equal(_pixels(one), _pixels(both))
    assert len(tiny_handle.adapters) == 2  # each loaded once


@pytest.mark.parametrize("loras, message", [
    (["/no/such/lora.safetensors"], "does not exist"),
    (["{tmp}/x.ckpt:1"], "not a .safetensors file"),
    (["{tmp}/x.ckpt:9"], "strength is a number from -2 to 2"),
])
def test_bad_loras_are_one_sentence(medium, tmp_path, loras, message):
    (tmp_path / "x.ckpt").write_bytes(b"x")
    loras = [p.replace("{tmp}", str(tmp_path)) for p in loras]
    with pytest.raises(StudioError, match=message):
        medium.validate_params({"loras": loras})


def test_a_lora_for_another_model_is_one_sentence(medium, tiny_handle, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "sdxl-lora.safetensors"
    save_file({"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": torch.ones(2, 640),
               "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight": torch.ones(640, 2)},
              str(path))
    with pytest.raises(StudioError, match="does not fit this model"):
        medium.generate(tiny_handle, PROMPT, [0], {**PARAMS, "loras": [str(path)]})


def test_a_tune_starts_from_a_kohya_lora(medium, tiny_handle, kohya_file, tmp_path):
    gens = medium.generate(tiny_handle, PROMPT, [0, 1, 2, 3], PARAMS)
    curated = to_candidates(gens, PROMPT, tmp_path / "curated")
    settings = {"steps": 2, "lr": 1e-2, "rank": 8, "batch_size": 4, "checkpoint_every": 10}
    task = medium.tune_task(tiny_handle, curated, settings, str(kohya_file))
    assert task.rank == 2 and task.train_text  # the file's rank, and its text-encoder LoRA trains too
    ups = [p for n, p in task.params.items() if "lora_B" in n]
    assert ups and all(float(p.abs().sum()) > 0 for p in ups)  # a fresh LoRA starts its up weights at zero
    run_tune(task, medium.parse_tune_settings(settings), tmp_path / "job")
    task.save(tmp_path / "v1")
    task.release()
    tuned = medium.generate(tiny_handle, PROMPT, [0], PARAMS, adapter=str(tmp_path / "v1"))[0]
    assert not np.array_equal(_pixels(tuned), _pixels(gens[0]))


def test_the_command_line_takes_lora_strengths_and_a_lora_file_to_tune_from(workspace, tiny_model, kohya_file):
    from studio.cli import _params, build_parser
    from studio.engine import Studio
    from studio.media.image.settings import parse_lora

    assert parse_lora("style.safetensors") == ("style.safetensors", 1.0)
    assert parse_lora("C:/loras/style.safetensors:0.6") == ("C:/loras/style.safetensors", 0.6)
    args = build_parser().parse_args(["generate", "image", "--prompt", "x", "--lora", f"{kohya_file}:0.5",
                                      "--lora", str(kohya_file)])
    assert _params(args)["loras"] == [f"{kohya_file}:0.5", str(kohya_file)]
    studio = Studio(workspace)
    studio.use_model("image", str(tiny_model))
    plain = studio.generate("image", PROMPT, n=1, params=PARAMS)[0]
    styled = studio.generate("image", PROMPT, n=1, params={**PARAMS, "loras": [f"{kohya_file}:0.5"]})[0]
    assert styled.id != plain.id and styled.params["loras"] == [f"{kohya_file.resolve()}:0.5"]
    assert studio.resolve_version("image", str(kohya_file)) == (str(tiny_model.resolve()), str(kohya_file.resolve()))
