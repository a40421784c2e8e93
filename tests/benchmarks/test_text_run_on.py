"""benchmarks/text_run_on.py reads a text's repeated share with the studio's own measure (the one `topic` uses)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import text_run_on  # noqa: E402


def test_the_benchmark_measures_repetition_as_the_topic_scorer_does():
    from studio.media.text import metrics

    assert text_run_on.repeated_share is metrics.repeated_share
