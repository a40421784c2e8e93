"""The text tune with a preference objective (studio/preference.py): the dropped poems become less likely
than under the starting model and the kept ones more; the reference is the starting model, reproducibly."""
from __future__ import annotations

import pytest

from studio.training import run_tune

KEPT = ["salt wave salt wave\nthe harbor sleeps", "gull over salt\nthe harbor sleeps"]
DROPPED = ["red moon on the hill\na fox runs", "the hill the fox\nred red moon"]


def _log_probs(task):
    import torch

    with torch.no_grad():
        return task.sequence_log_probs(torch.arange(len(task.inputs)))


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2"])
def test_a_kto_tune_raises_the_kept_and_lowers_the_dropped_against_the_reference(
        medium, fixture, request, tmp_path, make_candidates):
    handle = medium.load(str(request.getfixturevalue(fixture)), "cpu")
    kept = make_candidates("a sea poem", KEPT, "k")
    dropped = make_candidates("a sea poem", DROPPED, "d")
    settings = {**medium.tune_defaults, "objective": "kto", "beta": 0.5, "steps": 15, "lr": 2e-2, "batch_size": 4}
    task = medium.tune_task(handle, kept, settings, None, dropped=dropped)
    assert task.kept_rows == 2 and len(task.inputs) == 4 and task.packing == "padded"
    reference = task.preference.reference
    assert _log_probs(task).tolist() == pytest.approx(reference.tolist(), abs=1e-4)  # the start is the reference
    run_tune(task, settings, tmp_path / "job")
    moved = _log_probs(task) - reference
    assert float(moved[:2].min()) > 0 > float(moved[2:].max())


def test_the_reference_is_the_starting_model_when_a_resumed_tune_rebuilds_the_task(medium, tiny_llama, tmp_path,
                                                                                     make_candidates):
    handle = medium.load(str(tiny_llama), "cpu")
    kept, dropped = make_candidates("a sea poem", KEPT, "k"), make_candidates("a sea poem", DROPPED, "d")
    settings = {**medium.tune_defaults, "objective": "kto", "steps": 4, "lr": 2e-2, "batch_size": 4}
    first = medium.tune_task(handle, kept, settings, None, dropped=dropped)
    run_tune(first, settings, tmp_path / "job")
    again = medium.tune_task(handle, kept, settings, None, dropped=dropped)  # as the worker does after a kill
    assert again.preference.reference.tolist() == pytest.approx(first.preference.reference.tolist(), abs=1e-5)


def test_summed_log_probs_equal_the_plain_logits_sum(medium, tiny_llama, make_candidates):
    import torch

    from studio.media.text.loss import summed_log_probs
    from studio.preference import sequence_log_probs

    handle = medium.load(str(tiny_llama), "cpu")
    settings = {**medium.tune_defaults, "objective": "kto"}
    task = medium.tune_task(handle, make_candidates("a sea poem", KEPT, "k"), settings, None,
                            dropped=make_candidates("a sea poem", DROPPED, "d"))
    rows = torch.arange(len(task.inputs))
    with torch.no_grad():
        chunked = summed_log_probs(task.hidden(rows), task.split[1], task.labels[rows], chunk=5)
        plain = sequence_log_probs(task.logits(rows), task.labels[rows])
    assert chunked.tolist() == pytest.approx(plain.tolist(), abs=1e-3)
    assert (chunked < 0).all()
    alone = medium.tune_task(handle, make_candidates("a sea poem", KEPT, "k"), settings, None)
    assert alone.preference is None and alone.packing == "packed"  # no drops given: the plain tune on the kept set
