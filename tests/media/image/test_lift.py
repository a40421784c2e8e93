"""One round of rejection-sampling fine-tuning on the shipped default lifts acceptance on held-out seeds.

32 candidates (seeds 0..31) for one prompt, scored by the default scorer; those above the
75th percentile are kept, a 100-step LoRA tune learns from them, and 32 candidates on
held-out seeds (1000..1031) are drawn with base and with the adapter: at the same threshold
the adapter's acceptance rate must be at least double the base's.
"""
from __future__ import annotations

import pytest

import numpy as np

from helpers import to_candidates
from studio.medium import ScoringContext
from studio.training import run_tune

PROMPT = "a circle"  # open enough that the base draws varied colours, so the scorer has something to pick


@pytest.mark.slow  # a 100-step tune
def test_one_round_doubles_acceptance_on_held_out_seeds(medium, default_handle, tmp_path):
    score = medium.scorers()[medium.default_scorer](ScoringContext(medium=medium, favourites=[], decided=[]))
    seen = to_candidates(medium.generate(default_handle, PROMPT, list(range(32)), {}), PROMPT, tmp_path / "seen")
    seen_scores = np.array(score(seen))
    threshold = float(np.percentile(seen_scores, 75))
    kept = [c for c, s in zip(seen, seen_scores) if s > threshold]
    assert 6 <= len(kept) <= 9

    settings = {**medium.tune_defaults, "steps": 100}
    task = medium.tune_task(default_handle, kept, settings, None)
    result = run_tune(task, settings, tmp_path / "job")
    task.save(tmp_path / "v1")
    task.release()

    held = list(range(1000, 1032))
    base = to_candidates(medium.generate(default_handle, PROMPT, held, {}), PROMPT, tmp_path / "base")
    # the adapter on every denoising step: what the tune learned, in full (the studio's default
    # lets it join after 15% of them, for variety: tests/test_loop_media.py)
    after = to_candidates(medium.generate(default_handle, PROMPT, held, {"adapter_from": 0.0},
                                          adapter=str(tmp_path / "v1")),
                          PROMPT, tmp_path / "after", version="v1")
    base_scores, after_scores = np.array(score(base)), np.array(score(after))
    base_rate, after_rate = float((base_scores > threshold).mean()), float((after_scores > threshold).mean())
    print(f"\nlift on '{PROMPT}': threshold {threshold:.3f}, kept {len(kept)}/32, tune {result['seconds']:.1f} s; "
          f"held-out acceptance base {base_rate:.3f} -> v1 {after_rate:.3f}; "
          f"mean score {base_scores.mean():.3f} -> {after_scores.mean():.3f}")
    assert after_rate >= 2 * base_rate and after_rate > base_rate
    # switching back to base gives base's pixels again: the adapter did not leak into the base
    again = medium.generate(default_handle, PROMPT, held[:8], {})  # the same batch as before, byte for byte
    assert [g.files["png"] for g in again] == [open(c.path, "rb").read() for c in base[:8]]
