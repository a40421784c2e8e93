"""`studio generate image --model FILE.safetensors` offline with a checkpoint of SD 1.5's real shapes and nothing beside it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from checkpoints import sd15_shaped_checkpoint


@pytest.mark.slow
def test_an_sd15_shaped_checkpoint_generates_from_the_command_line(tmp_path):
    path = sd15_shaped_checkpoint(tmp_path / "alone" / "sd15-shaped.safetensors")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert 1.9e9 < path.stat().st_size < 2.3e9  # UNet, VAE and CLIP-L in fp16, as SD 1.5's pruned files
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "STUDIO_CACHE": str(tmp_path / "cache"),
           "HF_HUB_CACHE": str(tmp_path / "empty-hub"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "studio.cli", "generate", "image", "--model", str(path),
                           "--prompt", "a red circle", "-n", "1", "--param", "steps=1", "--param", "width=64",
                           "--param", "height=64", "--param", "guidance=1", "--json",
                           "--workspace", str(tmp_path / "ws")],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert len(result["candidates"]) == 1
    with open(result["candidates"][0]["path"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
