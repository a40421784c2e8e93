"""The text benchmark's argument parsing (the GPU mode itself runs only on a GPU machine)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_text.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_text", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_arguments():
    bench = _bench()
    args = bench.parse_args(["--device", "cuda", "--qwen-sized"])
    assert args.qwen_sized and args.device == "cuda" and args.steps == 20
    assert bench.parse_args([]).steps == 10
    with pytest.raises(SystemExit):
        bench.parse_args(["--qwen-sized"])  # needs --device cuda


def test_qwen_sized_config_is_half_a_billion():
    import torch

    config = _bench().qwen_sized_config()
    with torch.device("meta"):
        from transformers import Qwen2ForCausalLM

        model = Qwen2ForCausalLM(config)
    assert 0.45e9 < sum(p.numel() for p in model.parameters()) < 0.55e9
