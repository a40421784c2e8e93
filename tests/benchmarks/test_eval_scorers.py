"""The evaluation-only text scorers read a poem as an artist would judge it (benchmarks/eval_scorers.py)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import eval_scorers  # noqa: E402

HAIKU = "white snow on the pine\nthe crow settles on a branch\nthe field falls silent."
ESSAY = ("I was a boy when the first snow fell, a reminder of the fleeting beauty of life. This haiku captures the "
         "essence of the moment and the memory of the universe, and the imagery of the poem evokes my soul, and it")


@pytest.fixture
def files(tmp_path):
    out = {}
    for name, text in (("haiku", HAIKU), ("essay", ESSAY)):
        out[name] = tmp_path / f"{name}.txt"
        out[name].write_text(text)
    return {k: str(v) for k, v in out.items()}


@pytest.mark.parametrize("scorer", eval_scorers.names("text"))
def test_the_haiku_beats_the_essay_on_every_text_scorer(files, scorer):
    fn = eval_scorers.EVAL_SCORERS["text"][1][scorer]
    haiku, essay = fn(files["haiku"]), fn(files["essay"])
    assert 0.0 <= essay < haiku <= 1.0


def test_a_suite_has_six_scorers_per_medium():
    assert all(len(eval_scorers.names(m)) >= 6 for m in eval_scorers.EVAL_SCORERS)
