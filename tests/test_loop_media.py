"""`studio loop MEDIUM` on each shipped medium's embedded default, through the real CLI.

One round: generate 32 on training seeds, keep the upper quartile by the medium's default
scorer (hard threshold), tune, then compare base and v1 on held-out seeds.  The tune must
at least double the acceptance rate there.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio import media

# A specific image prompt gives near-identical pictures (nothing for the scorer to choose
# between), so the image round uses an open prompt and a fixed threshold.
PROMPTS = {
    "image": ["--prompt", "a circle", "--threshold", "0.4"],
    "text": ["--prompt", "a short sea poem, melancholy"],
    "music": ["--prompt", "a gentle lullaby in C major, 3/4"],
}


@pytest.mark.slow
@pytest.mark.parametrize("medium", [m for m in PROMPTS if m in media.available()])
def test_loop_doubles_acceptance_on_held_out_seeds(medium, tmp_path):
    assets = Path(media.get(medium).default_model())
    if not assets.exists():
        pytest.fail(f"the embedded default for {medium} is missing at {assets}")
    env = dict(os.environ, STUDIO_HOME=str(tmp_path / "ws"))
    proc = subprocess.run([sys.executable, "-m", "studio", "loop", medium, *PROMPTS[medium],
                           "--temperature", "0", "-n", "32", "--json"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    before, after = result["before"], result["after"]
    print(f"\n{medium}: acceptance {before['acceptance_rate']:.3f} -> {after['acceptance_rate']:.3f}, "
          f"mean score {before['mean_score']:.3f} -> {after['mean_score']:.3f}, "
          f"diversity {before['diversity']:.3f} -> {after['diversity']:.3f}, "
          f"best-of-2 base {result['best_of_n_base']}")
    (tmp_path.parent / f"loop-{medium}.json").write_text(json.dumps(result, indent=2))
    assert result["rounds"][0]["accepted"] >= 4
    assert after["acceptance_rate"] >= 2 * before["acceptance_rate"] > 0
