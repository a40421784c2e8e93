"""`studio loop MEDIUM` on each shipped medium's embedded default, through the real CLI.

One round: generate 32 on training seeds, keep the upper quartile by a built-in scorer (hard
threshold, variety-aware keeping), tune with the medium's defaults, then compare base and v1
on held-out seeds.  What a faithful round must show (issue 10's targets; the ablation
tables in docs/results.md have the figures):

- ``lift``: held-out acceptance rises by at least 0.15 and doubles, or the misses halve;
- ``best_of_2``: the tuned side beats sampling twice as much from the base;
- ``variety``: the tuned side is at least 0.8x as varied as the kept set it learned from;
- ``copies``: at most 10% of the tuned candidates near-duplicate a kept example.

Each case asserts the targets it meets on this machine; the ones it does not meet yet are
listed beside it (and in docs/results.md), so a regression in any measured target fails here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio import media

HAIKU = "a haiku about the sea, melancholy"
CIRCLE, CHORALE = "a circle", "a four-part chorale in G major"
ALL = ("lift", "best_of_2", "variety", "copies")
# (medium, scorer, prompt): the targets this case meets on the shipped defaults, seed 0 (2-core CPU dev
# machine; docs/results.md and docs/objectives.md have the spread over three seeds).  Text copies are counted at
# the template level (a kept poem's lines with a word or two swapped, docs/copies.md); with the kto objective
# (the default since issue 20, docs/objectives.md) the haiku round keeps them at 0.06 (sft brought kept
# templates back).  One case per medium (voice's loop runs on a tiny voice in tests/media/voice/test_cli.py; its
# measured rounds are in docs/voice.md): the suite's time goes to one round each; the spread over scorers and
# seeds is benchmarks/ablate_round.py's job.
CASES = {
    ("text", "style", HAIKU): ALL,
    # the four-voice music model (docs/music-model.md, "One loop round", where consonance and voice leading are
    # measured too): on seed 0 stability met all four until the tune learned each piece a whole tone up and down
    # (transpose 2, 2026-12-06: the chorale protocol 99 of 108 against 94, its round 1 39 against 41); since, seed 0
    # rises 0.22 -> 0.38, which is best of two from the base (0.38), not a doubling: lift and best-of-2 not met here
    ("music", "stability", CHORALE): ("rises", "variety", "copies"),
    ("image", "colourfulness", CIRCLE): ALL,
}


def check(result: dict, targets) -> dict[str, bool]:
    before, after = result["before"], result["after"]
    a, b = after["acceptance_rate"], before["acceptance_rate"]
    met = {"lift": a - b >= 0.15 and (a >= 2 * b or (1 - a) <= (1 - b) / 2),
           "rises": a - b >= 0.10,  # for a case that lifts short of the target: held-out acceptance still up
           "best_of_2": a > result["best_of_n_base"]["acceptance_rate"],
           "variety": after["variety_vs_kept"] is not None and after["variety_vs_kept"] >= 0.8,
           "copies": after["copies"] <= 0.10}
    return {t: met[t] for t in targets}


@pytest.mark.slow
@pytest.mark.parametrize("medium, scorer, prompt", [k for k in CASES if k[0] in media.available()],
                         ids=lambda v: {HAIKU: "haiku", CIRCLE: "circle",
                                        CHORALE: "chorale"}.get(v, v))
def test_one_round_carries_the_kept_qualities_to_held_out_seeds(medium, scorer, prompt, tmp_path):
    assets = media.get(medium).default_model()  # a folder, or a built-in id (text: built-in:grammar in the tests)
    if not assets.startswith("built-in:") and not Path(assets).exists():
        pytest.fail(f"the embedded default for {medium} is missing at {assets}")
    env = dict(os.environ, STUDIO_HOME=str(tmp_path / "ws"))
    if (os.cpu_count() or 1) <= 2:
        env["OMP_NUM_THREADS"] = "1"  # two threads fight over a shared 2-core machine
    proc = subprocess.run([sys.executable, "-m", "studio", "loop", medium, "--prompt", prompt,
                           "--scorer", scorer, "--temperature", "0", "-n", "32", "--json"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    before, after = result["before"], result["after"]
    print(f"\n{medium}/{scorer}: acceptance {before['acceptance_rate']:.3f} -> {after['acceptance_rate']:.3f} "
          f"(best of 2 from base {result['best_of_n_base']['acceptance_rate']:.3f}), variety vs kept "
          f"{after['variety_vs_kept']:.2f}, copies {after['copies']:.2f} (base {before['copies']:.2f})")
    (tmp_path.parent / f"loop-{medium}-{scorer}-{len(prompt)}.json").write_text(json.dumps(result, indent=2))
    assert result["rounds"][0]["accepted"] >= 4
    train_seeds = set(range(32))
    assert not set(result["seeds"]) & train_seeds  # measured on held-out seeds only
    met = check(result, CASES[(medium, scorer, prompt)])
    assert all(met.values()), f"targets missed: {[t for t, ok in met.items() if not ok]}"
