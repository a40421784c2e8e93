"""benchmarks/image_mixture.py: the kept set's looks split as the variety measure sees them."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from image_mixture import parts_of  # noqa: E402


def test_two_looks_make_two_parts():
    rng = np.random.default_rng(0)
    pink, blue = np.array([1.0, -0.5, 0.5] * 64), np.array([-0.5, -0.5, 1.0] * 64)
    rows = np.stack([pink + 0.05 * rng.normal(size=192) for _ in range(5)]
                    + [blue + 0.05 * rng.normal(size=192) for _ in range(3)])
    labels = parts_of(rows, 2)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:])) == 1 and labels[0] != labels[5]
