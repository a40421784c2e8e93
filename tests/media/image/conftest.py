"""Image tests: fixtures for the shipped default and a tiny Stable Diffusion pipeline built from configs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session", autouse=True)
def _one_thread_on_small_machines():
    # On a 2-core machine shared by other jobs, two intra-op threads fight over the cores and
    # small convolutions run ~10x slower; one thread keeps the timings stable.
    import torch

    if (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def medium():
    from studio.media.image import ImageMedium

    return ImageMedium()


@pytest.fixture(scope="session")
def default_handle(medium):
    return medium.load(medium.default_model(), "cpu")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from helpers import tiny_sd_pipeline

    return tiny_sd_pipeline(tmp_path_factory.mktemp("tiny") / "tiny-sd")


@pytest.fixture
def tiny_handle(medium, tiny_model):
    return medium.load(str(tiny_model), "cpu")
