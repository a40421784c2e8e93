"""`studio tune image` on a family the tune does not know: one sentence naming the ones it does."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import tiny_pixart_pipeline


def _studio(env, *args):
    return subprocess.run([sys.executable, "-m", "studio", *args], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_tune_on_an_unsupported_family_names_the_supported_ones(tmp_path, capsys):
    from studio.cli import main

    model = tiny_pixart_pipeline(tmp_path / "pixart")
    ws = str(tmp_path / "ws")
    # generate and keep in this process (the same CLI, without two more interpreter starts); the tune as a user runs it
    assert main(["generate", "image", "--model", str(model), "--prompt", "a red circle", "-n", "1", "--seed", "0",
                 "--json", "--workspace", ws]) == 0
    ids = [c["id"] for c in json.loads(capsys.readouterr().out)["candidates"]]
    assert main(["curate", "image", "--accept", *ids, "--json", "--workspace", ws]) == 0
    env = {**os.environ, "STUDIO_HOME": ws, "OMP_NUM_THREADS": "1"}
    tuned = _studio(env, "tune", "image", "--steps", "2", "--json")
    assert tuned.returncode != 0 and "Traceback" not in tuned.stderr
    message = tuned.stderr.strip().splitlines()[-1]
    assert "PixArtAlphaPipeline" in message, tuned.stderr[-2000:]
    for family in ("Stable Diffusion 1.x/2.x", "SDXL", "SD3/SD3.5", "Flux.1"):
        assert family in message
    assert message.count(". ") == 0 and message.endswith(".")
