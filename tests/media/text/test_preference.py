"""The text tune with a preference objective (studio/preference.py): the dropped poems become less likely
than under the starting model and the kept ones more; the reference is the starting model, reproducibly."""
from __future__ import annotations

import pytest

from studio.runner import late_rewards
from studio.training import read_progress, run_tune

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
    rewards = late_rewards(read_progress(tmp_path / "job"))  # each step logged its batch's rewards
    assert rewards["kept_reward"] > 0 > rewards["dropped_reward"]


@pytest.mark.slow
def test_an_ipo_tune_stops_its_margins_near_the_target_where_dpo_pushes_on(medium, tiny_llama, tmp_path,
                                                                            make_candidates):
    handle = medium.load(str(tiny_llama), "cpu")
    kept = make_candidates("a sea poem", KEPT, "k")
    dropped = make_candidates("a sea poem", DROPPED, "d")
    margins = {}
    for objective in ("ipo", "dpo"):  # beta 0.25: ipo's target margin is 1 / (2 beta) = 2 nats
        settings = {**medium.tune_defaults, "objective": objective, "beta": 0.25, "steps": 40, "lr": 2e-2,
                    "batch_size": 4, "copy_guard": 0, "stop_copying": 1.0}
        task = medium.tune_task(handle, kept, settings, None, dropped=dropped)
        assert len(task.preference.pairs) == 4
        run_tune(task, settings, tmp_path / objective)
        moved = _log_probs(task) - task.preference.reference
        margins[objective] = float(moved[:2].mean() - moved[2:].mean())  # every kept against every dropped
    assert margins["ipo"] == pytest.approx(2.0, abs=1.0)
    assert margins["dpo"] > 3 * margins["ipo"]


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


def _ends_counted(task, tokenizer) -> list[bool]:
    """Per row, whether the row's last counted label is the end token."""
    out = []
    for labels in task.labels.tolist():
        counted = [t for t in labels if t != -100]
        out.append(bool(counted) and counted[-1] == tokenizer.eos_token_id)
    return out


def test_a_text_cut_off_at_its_length_limit_teaches_no_end_token(medium, tiny_llama, make_candidates):
    """A text generation stopped at max_new_tokens did not end there: neither the kept nor the dropped side may
    learn an end token after it (a drop would teach the model against ending mid-phrase, so never to end)."""
    import dataclasses

    from studio.media.text.prompting import completion_ids, cut_at_limit

    handle = medium.load(str(tiny_llama), "cpu")
    tokenizer = handle.tokenizer
    long = "the hill the fox red red moon over the hill the fox runs"
    limit = len(completion_ids(tokenizer, long, ended=False))
    assert completion_ids(tokenizer, long)[-1] == tokenizer.eos_token_id
    assert completion_ids(tokenizer, long, ended=False)[-1] != tokenizer.eos_token_id
    assert cut_at_limit(tokenizer, long, {"max_new_tokens": limit})
    assert not cut_at_limit(tokenizer, long, {"max_new_tokens": limit + 1})
    assert not cut_at_limit(tokenizer, long, {})  # no recorded limit (imported): ended

    def with_limit(candidates, n):
        return [dataclasses.replace(c, params={"max_new_tokens": n}) for c in candidates]

    kept = with_limit(make_candidates("a sea poem", [KEPT[0], long], "k"), limit)
    dropped = with_limit(make_candidates("a sea poem", [long, DROPPED[0]], "d"), limit)
    settings = {**medium.tune_defaults, "objective": "kto"}
    task = medium.tune_task(handle, kept, settings, None, dropped=dropped)
    # rows: kept (ended, cut), dropped (cut, ended)
    assert _ends_counted(task, tokenizer) == [True, False, False, True]
    sft = medium.tune_task(handle, kept, {**settings, "objective": "sft", "packing": "padded"}, None)
    assert _ends_counted(sft, tokenizer) == [True, False]


def test_the_kept_floor_reaches_the_tunes_loss_and_needs_kto_or_dpo(medium, tiny_llama, make_candidates):
    from studio.errors import StudioError

    handle = medium.load(str(tiny_llama), "cpu")
    kept = make_candidates("a sea poem", KEPT, "k")
    dropped = make_candidates("a sea poem", DROPPED, "d")
    settings = {**medium.tune_defaults, "objective": "kto", "kept_floor": 1.5}
    assert medium.tune_task(handle, kept, settings, None, dropped=dropped).preference.kept_floor == 1.5
    assert medium.tune_task(handle, kept, dict(medium.tune_defaults), None,
                            dropped=dropped).preference.kept_floor == 0.0  # off by default
    for objective in ("sft", "ipo"):  # ipo's square turns round at its target: no floor to add
        with pytest.raises(StudioError, match="kept_floor"):
            medium.tune_task(handle, kept, {**settings, "objective": objective}, None, dropped=dropped)


def test_pair_share_keeps_dpos_least_alike_pairs_and_needs_dpo_or_ipo(medium, tiny_llama, make_candidates):
    import torch

    from studio.errors import StudioError

    handle = medium.load(str(tiny_llama), "cpu")
    kept = make_candidates("a sea poem", KEPT, "k")
    dropped = make_candidates("a sea poem", DROPPED, "d")
    settings = {**medium.tune_defaults, "objective": "dpo"}
    every = medium.tune_task(handle, kept, settings, None, dropped=dropped).preference.pairs
    half = medium.tune_task(handle, kept, {**settings, "pair_share": 0.5}, None, dropped=dropped).preference.pairs
    assert len(every) == 4 and len(half) == 2 and set(half) < set(every)
    task = medium.tune_task(handle, kept, {**settings, "pair_share": 0.5}, None, dropped=dropped)
    split, task.split = task.split, None  # a model whose logits are capped after the head: no body to call alone
    unsplit = task._mean_states()
    task.split = split
    assert torch.allclose(unsplit, task._mean_states(), atol=1e-4)
    with pytest.raises(StudioError, match="pair_share"):
        medium.tune_task(handle, kept, {**settings, "objective": "kto", "pair_share": 0.5}, None, dropped=dropped)


def test_per_token_rewards_are_the_summed_log_probs_over_each_texts_counted_tokens(medium, tiny_llama,
                                                                                  make_candidates):
    from studio.errors import StudioError

    handle = medium.load(str(tiny_llama), "cpu")
    kept = make_candidates("a sea poem", KEPT, "k")
    dropped = make_candidates("a sea poem", DROPPED, "d")
    summed = medium.tune_task(handle, kept, {**medium.tune_defaults, "objective": "dpo"}, None, dropped=dropped)
    mean = medium.tune_task(handle, kept, {**medium.tune_defaults, "objective": "dpo", "rewards": "per_token"}, None,
                            dropped=dropped)
    counts = (summed.labels[:, 1:] != -100).sum(dim=1)
    assert len(set(counts.tolist())) > 1  # texts of different lengths: the two rewards differ in more than scale
    assert _log_probs(mean).tolist() == pytest.approx((_log_probs(summed) / counts).tolist(), abs=1e-4)
    assert mean.preference.reference.tolist() == pytest.approx(_log_probs(mean).tolist(), abs=1e-4)
    assert medium.tune_defaults["rewards"] == "summed"
    with pytest.raises(StudioError, match="rewards"):
        medium.tune_task(handle, kept, {**medium.tune_defaults, "objective": "sft", "rewards": "per_token"}, None)


def test_the_kept_texts_own_loss_reaches_the_tune_per_counted_token(medium, tiny_llama, make_candidates):
    handle = medium.load(str(tiny_llama), "cpu")
    kept = make_candidates("a sea poem", KEPT, "k")
    dropped = make_candidates("a sea poem", DROPPED, "d")
    settings = {**medium.tune_defaults, "objective": "dpo", "sft_weight": 0.5}
    task = medium.tune_task(handle, kept, settings, None, dropped=dropped)
    assert task.preference.sft_weight == 0.5
    counted = (task.labels[:, 1:] != -100).sum(dim=1).float()
    assert task.preference.tokens.tolist() == counted.tolist()  # summed rewards: each row's counted tokens
    per_token = medium.tune_task(handle, kept, {**settings, "rewards": "per_token"}, None, dropped=dropped)
    assert per_token.preference.tokens.tolist() == [1.0] * len(counted)  # its log-probs are means already
    assert medium.tune_task(handle, kept, dict(medium.tune_defaults), None,
                            dropped=dropped).preference.sft_weight == 0.0  # off by default


def test_the_undecided_texts_follow_the_drops_with_their_own_reference_and_need_kto_or_dpo(medium, tiny_llama,
                                                                                            make_candidates):
    from studio.errors import StudioError

    handle = medium.load(str(tiny_llama), "cpu")
    kept = make_candidates("a sea poem", KEPT, "k")
    dropped = make_candidates("a sea poem", DROPPED, "d")
    undecided = make_candidates("a sea poem", ["the harbor the moon\nsalt fox", "a gull sleeps"], "u")
    settings = {**medium.tune_defaults, "objective": "dpo", "hold": 1.0}
    task = medium.tune_task(handle, kept, settings, None, dropped=dropped, undecided=undecided)
    assert len(task.inputs) == 6 and task.preference.total == 4 and task.preference.undecided == 2
    assert all(j < 4 for _, j in task.preference.pairs)  # dpo pairs kept with dropped alone
    assert task.preference.reference.tolist() == pytest.approx(_log_probs(task).tolist(), abs=1e-4)
    off = medium.tune_task(handle, kept, dict(medium.tune_defaults), None, dropped=dropped, undecided=undecided)
    assert len(off.inputs) == 4 and off.preference.undecided == 0  # off by default: the rows are not even built
    with pytest.raises(StudioError, match="hold"):
        medium.parse_tune_settings({"objective": "sft", "hold": 1.0})


def _end_log_probs(task):
    import torch

    with torch.no_grad():
        task.sequence_log_probs(torch.arange(len(task.inputs)))
    return task._seen_ends()[1]


def test_the_end_floor_pulls_back_each_ended_texts_end_token_the_tune_lowered(medium, tiny_llama, make_candidates):
    import dataclasses

    import torch

    from studio.media.text.prompting import completion_ids

    handle = medium.load(str(tiny_llama), "cpu")
    eos = handle.tokenizer.eos_token_id
    long = "the hill the fox red red moon over the hill the fox runs"
    limit = len(completion_ids(handle.tokenizer, long, ended=False))
    kept = [dataclasses.replace(c, params={"max_new_tokens": limit}) for c in make_candidates("a sea poem", KEPT, "k")]
    dropped = [dataclasses.replace(c, params={"max_new_tokens": limit})
               for c in make_candidates("a sea poem", [long, DROPPED[0]], "d")]
    settings = {**medium.tune_defaults, "objective": "dpo", "beta": 0.5}
    assert medium.tune_task(handle, kept, settings, None, dropped=dropped).end_labels is None  # off by default
    task = medium.tune_task(handle, kept, {**settings, "end_floor": 2.0}, None, dropped=dropped)
    counted = task.end_labels != -100  # the end token alone, of the texts that ended (the cut drop has none)
    assert counted.sum(dim=1).tolist() == [1, 1, 0, 1]
    assert set(task.end_labels[counted].tolist()) == {eos}
    start = task.reference_ends
    assert _end_log_probs(task).tolist() == pytest.approx(start.tolist(), abs=1e-4)  # the start is the reference
    task.sequence_log_probs(torch.arange(len(task.inputs)))
    assert float(task._end_floor_loss()) == 0.0  # nothing fallen, nothing to pull back
    task.reference_ends = start + 1.0  # as if the tune had made every end a nat rarer
    task.sequence_log_probs(torch.arange(len(task.inputs)))
    loss = task._end_floor_loss()
    assert float(loss) == pytest.approx(2.0 * 0.5 / 2 * 1.0, abs=1e-4)  # end_floor x beta / 2 per nat, mean fall 1
    loss.backward()
    with torch.no_grad():
        for param in task.parameters():
            param -= 0.5 * param.grad
    risen = _end_log_probs(task) - start
    assert float(risen[[0, 1, 3]].min()) > 0  # one step against it raises every ended text's end
    from studio.errors import StudioError

    with pytest.raises(StudioError, match="end_floor"):
        medium.tune_task(handle, kept, {**settings, "objective": "sft", "end_floor": 1.0}, None)
