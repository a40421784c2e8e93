"""benchmarks/text_run_on.py: the repeated share that tells a run-on text from a finished one."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from text_run_on import repeated_share  # noqa: E402


def test_the_repeated_share_counts_three_word_runs_said_again():
    assert repeated_share("white on the pine / a crow shakes it loose") == 0.0
    assert repeated_share("too short") == 0.0
    # 12 words, 10 runs of three, 5 of them different: half say one said before
    text = "the first snow is the first snow is the first snow again"
    assert repeated_share(text) == pytest.approx(5 / 10)
    assert repeated_share(text.upper()) == repeated_share(text)  # case and punctuation aside
