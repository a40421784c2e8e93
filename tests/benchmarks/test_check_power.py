"""benchmarks/check_power.py: the exact chance that one run's lift and best-of-2 checks pass agrees with drawing
the runs, and the sure cases are sure."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from check_power import needed, pass_rates  # noqa: E402
from eval_suite import targets  # noqa: E402


def test_the_exact_chance_agrees_with_drawn_runs():
    rng = np.random.default_rng(0)
    n, base, tuned, runs = 16, 0.25, 0.6, 20000
    b = rng.random((runs, n)) < base
    a = rng.random((runs, n)) < tuned
    best2 = b.reshape(runs, n // 2, 2).any(axis=2).mean(axis=1)
    met = [targets(x, y, z, 1.0, 0.0) for x, y, z in zip(a.mean(axis=1), b.mean(axis=1), best2)]
    exact = pass_rates(base, tuned, n)
    for name in ("lift", "best_of_2"):
        assert exact[name] == pytest.approx(np.mean([m[name] for m in met]), abs=0.015)
    assert exact["both"] == pytest.approx(np.mean([m["lift"] and m["best_of_2"] for m in met]), abs=0.015)


def test_sure_cases_and_the_share_a_tune_needs():
    assert pass_rates(0.0, 1.0, 16) == pytest.approx({"lift": 1.0, "best_of_2": 1.0, "both": 1.0})
    assert 0.05 < pass_rates(0.25, 0.25, 16)["both"] < 0.15  # no true lift: a pass is luck, about one run in nine
    at = needed(0.25, 16)
    assert pass_rates(0.25, at, 16)["both"] >= 0.8 > pass_rates(0.25, at - 0.01, 16)["both"]
    assert needed(0.25, 32) < at  # more candidates a side, a smaller true lift suffices
