"""One round of rejection-sampling fine-tuning on the shipped default lifts acceptance.

Generate 32 completions of one prompt (seeds 0..31), score them with the built-in style
scorer, keep those above the 75th percentile, tune a LoRA for 100 steps through the shared
trainer, then generate on held-out seeds 1000..1031 with the base and with the adapter:
acceptance at the same threshold must at least double.  Distinct-2 is printed beside it.
"""
from __future__ import annotations

import pytest

import numpy as np

from studio.medium import ScoringContext
from studio.training import run_tune

PROMPT = "a short poem"
STYLE = {"style": "the sea, waves and the shore"}


@pytest.mark.slow  # a 100-step tune
def test_one_round_doubles_acceptance(medium, default_handle, tmp_path, make_candidates):
    handle = default_handle
    params = medium.validate_params({})
    scorer = medium.scorers()["style"](ScoringContext(medium=medium, favourites=[], decided=[], handle=handle,
                                                      options=STYLE))

    def candidates(seeds, adapter, tag):
        gens = medium.generate(handle, PROMPT, seeds, params, adapter=adapter)
        return make_candidates(PROMPT, [g.text for g in gens], tag)

    pool = candidates(range(32), None, "pool")
    scores = np.array(scorer(pool))
    threshold = float(np.percentile(scores, 75))
    kept = [c for c, s in zip(pool, scores) if s > threshold]
    assert 4 <= len(kept) <= 8

    settings = {**medium.tune_defaults, "seed": 0, "steps": 100}
    task = medium.tune_task(handle, kept, settings, None)
    run_tune(task, settings, tmp_path / "job")
    task.save(tmp_path / "v1")

    held_out = list(range(1000, 1032))
    before = candidates(held_out, None, "base")
    after = candidates(held_out, str(tmp_path / "v1"), "v1")
    rate_before = float(np.mean(np.array(scorer(before)) > threshold))
    rate_after = float(np.mean(np.array(scorer(after)) > threshold))
    d2_before = medium.diversity_metrics(handle, before)["distinct_2"]
    d2_after = medium.diversity_metrics(handle, after)["distinct_2"]
    print(f"\nthreshold {threshold:.3f}: acceptance base {rate_before:.3f} -> v1 {rate_after:.3f}; "
          f"distinct-2 base {d2_before:.3f} -> v1 {d2_after:.3f}")
    assert rate_after >= 2 * rate_before and rate_after > rate_before
    assert d2_after > 0.2  # a lift, not a collapse onto one text
