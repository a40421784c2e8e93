"""`studio loop image` on the shipped default: one round lifts held-out acceptance (the issue's done-when)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_studio_loop_image_lifts_acceptance(tmp_path):
    env = {**os.environ, "STUDIO_HOME": str(tmp_path / "ws")}
    if (os.cpu_count() or 1) <= 2:
        env["OMP_NUM_THREADS"] = "1"  # see conftest: two threads fight on a shared 2-core machine
    cmd = [sys.executable, "-m", "studio", "loop", "image", "--prompt", "a circle", "--scorer", "colourfulness",
           "--threshold", "0.4", "--temperature", "0", "-n", "32", "--steps", "100", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    before, after = report["before"]["acceptance_rate"], report["after"]["acceptance_rate"]
    print(f"\nstudio loop image: held-out acceptance {before:.3f} -> {after:.3f}, "
          f"best of n from base {report['best_of_n_base']['acceptance_rate']:.3f}")
    assert after >= 2 * before and after > before
