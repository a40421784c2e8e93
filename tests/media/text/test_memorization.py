"""The tune options against reciting kept texts: the goldfish mask, the anchored loss and the adapter's dropout."""
from __future__ import annotations

import pytest

from studio.errors import StudioError
from studio.media.text.prompting import goldfish_mask

TEXTS = ["salt wave salt wave\nthe harbor sleeps", "gull over salt\nthe harbor sleeps", "salt salt salt"]


def sea_poems(medium, tiny_llama, make_candidates):
    """The tiny model, its params (24 tokens), two kept sea poems and one dropped, and dpo settings with no guard."""
    handle = medium.load(str(tiny_llama), "cpu")
    params = medium.validate_params({"max_new_tokens": 24})
    kept = make_candidates("a sea poem", TEXTS[:2], "k")
    dropped = make_candidates("a sea poem", TEXTS[2:], "d")
    for c in [*kept, *dropped]:
        c.params = params
    return handle, params, kept, dropped, {**medium.tune_defaults, "objective": "dpo", "copy_guard": 0}


def test_goldfish_leaves_out_about_one_token_in_every_and_the_same_ones_each_time():
    ids = list(range(3, 2003))
    counted = [False] * 10 + [True] * (len(ids) - 10)
    masked = goldfish_mask(ids, counted, every=4)
    left_out = sum(c and not m for c, m in zip(counted, masked))
    assert 0.2 < left_out / sum(counted) < 0.3  # about a quarter
    assert not any(m and not c for c, m in zip(counted, masked))  # never counts a prompt token
    assert goldfish_mask(ids, counted, every=4) == masked  # a hash of the context, not a random draw
    assert goldfish_mask(ids, counted, every=0) == counted
    # the same passage inside another text loses the same tokens (the hash sees only the context)
    again = goldfish_mask([1, 2] + ids[10:60], [False, False] + counted[10:60], every=4)
    assert again[6:] == masked[14:60]


def test_goldfish_takes_the_left_out_tokens_out_of_the_tune(medium, tiny_llama, make_candidates):
    handle = medium.load(str(tiny_llama), "cpu")
    plain = medium.tune_task(handle, make_candidates("a sea poem", TEXTS), {**medium.tune_defaults}, None)
    counted = int((plain.labels != -100).sum())
    fish = medium.tune_task(handle, make_candidates("a sea poem", TEXTS), {**medium.tune_defaults, "goldfish": 2},
                            None)
    assert 0 < int((fish.labels != -100).sum()) < counted
    for bad in (1, -1, 2.5, "4", True):
        with pytest.raises(StudioError, match="goldfish"):
            medium.tune_task(handle, make_candidates("a sea poem", TEXTS), {**medium.tune_defaults, "goldfish": bad},
                             None)


def test_the_anchored_loss_is_the_plain_loss_scaled_at_the_start_and_pulls_back_later(
        medium, tiny_llama, make_candidates):
    import torch

    from studio.media.text.loss import chunked_cross_entropy

    handle = medium.load(str(tiny_llama), "cpu")
    settings = {**medium.tune_defaults, "objective": "sft", "anchor": 0.4, "batch_size": 3}
    task = medium.tune_task(handle, make_candidates("a sea poem", TEXTS), settings, None)
    assert task.anchor is not None and len(task.anchor) == len(task.inputs)
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(0, len(task.inputs), (3,), generator=torch.Generator().manual_seed(0))
    plain = chunked_cross_entropy(task.hidden(rows), task.split[1], task.labels[rows])
    # the adapter starts as the identity, so the model is its own anchor: KL 0, the loss 0.6 x plain
    assert task.loss(0, generator).item() == pytest.approx(0.6 * plain.item(), rel=1e-4)
    with torch.no_grad():  # a moved adapter: now the KL term counts
        for p in task.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.2)
    moved = chunked_cross_entropy(task.hidden(rows), task.split[1], task.labels[rows])
    assert task.loss(0, torch.Generator().manual_seed(0)).item() > 0.6 * moved.item()
    for bad in (1.0, -0.1, "0.5", True):
        with pytest.raises(StudioError, match="anchor"):
            medium.tune_task(handle, make_candidates("a sea poem", TEXTS), {**medium.tune_defaults, "anchor": bad},
                             None)


def test_the_adapters_dropout_acts_in_the_steps_alone_and_repeats_with_the_seed(medium, tiny_llama, make_candidates):
    import torch

    handle = medium.load(str(tiny_llama), "cpu")
    settings = {**medium.tune_defaults, "objective": "sft", "batch_size": 3, "dropout": 0.5}
    task = medium.tune_task(handle, make_candidates("a sea poem", TEXTS), settings, None)
    assert task.dropouts and all(not module.training for module in task.dropouts)
    with torch.no_grad():  # a moved adapter, so that dropping its input changes what it adds
        for p in task.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.2)

    def loss(seed: int) -> float:
        torch.manual_seed(seed)  # as training.py seeds every step
        return task.loss(0, torch.Generator().manual_seed(0)).item()

    assert loss(1) == loss(1) != loss(2)  # a draw per step, the same draw on a resume
    assert all(not module.training for module in task.dropouts)  # off again: generating sees none
    rows = torch.randint(0, len(task.inputs), (3,), generator=torch.Generator().manual_seed(0))
    outside = [task.sequence_log_probs(rows).sum().item() for _ in range(2)]
    assert outside[0] == outside[1]
    plain = medium.tune_task(handle, make_candidates("a sea poem", TEXTS), {**settings, "dropout": 0.0}, None)
    assert plain.dropouts == []
    for bad in (1.0, -0.1, "0.5"):
        with pytest.raises(StudioError, match="dropout"):
            medium.tune_task(handle, make_candidates("a sea poem", TEXTS), {**settings, "dropout": bad}, None)


def test_a_tune_that_stops_when_it_copies_looks_at_trial_texts_against_the_kept_ones(
        medium, tiny_llama, make_candidates):
    from studio.media.text.generate import sample
    from studio.media.text.tune import TRIAL_TEXTS
    from studio.training import TRIAL_SEED
    from studio.variety import text_copies

    handle = medium.load(str(tiny_llama), "cpu")
    params = medium.validate_params({"max_new_tokens": 24})
    # the kept set is what the untouched adapter writes on the trial seeds: every trial text is a copy
    own = sample(handle, "a sea poem", range(TRIAL_SEED, TRIAL_SEED + TRIAL_TEXTS), params)[0]
    kept = make_candidates("a sea poem", own)
    for c in kept:
        c.params = params
    off = medium.tune_task(handle, kept, {**medium.tune_defaults, "objective": "sft"}, None)
    assert off.look is None  # 1 (the default): never looks
    task = medium.tune_task(handle, kept, {**medium.tune_defaults, "objective": "sft", "stop_copying": 0.5,
                                           "copy_guard": 0}, None)
    copied = sum(text_copies(own, own))  # the copy test's own count (a two-word text copies nothing)
    assert copied > TRIAL_TEXTS / 2
    assert task.look() == f"{copied} of its {TRIAL_TEXTS} trial texts brought a kept text back"
    # a guarded version's look writes as the saved version will: with the guard, no learned run comes back
    guarded = medium.tune_task(handle, kept, {**medium.tune_defaults, "objective": "sft", "stop_copying": 0.5,
                                              "copy_guard": 3}, None)
    assert guarded.look() is None
    others = make_candidates("a sea poem", TEXTS, tag="o")
    for c in others:
        c.params = params
    apart = medium.tune_task(handle, others, {**medium.tune_defaults, "objective": "sft", "stop_copying": 0.5}, None)
    assert apart.look() is None
    with pytest.raises(StudioError, match="stop_copying"):
        medium.tune_task(handle, kept, {**medium.tune_defaults, "stop_copying": 1.5}, None)


def test_a_tune_that_stops_when_it_narrows_looks_at_the_trial_texts_variety_against_the_kept_sets(
        medium, tiny_llama, make_candidates):
    """`stop_narrowing` S: a look draws the trial texts and says how varied they are against the kept set (the
    studio's variety: mean pairwise distance of the embeddings) once that falls below S; 0 never looks."""
    import re

    from studio.media.text.embedding import embed_texts
    from studio.media.text.generate import sample
    from studio.media.text.tune import TRIAL_TEXTS
    from studio.training import TRIAL_SEED
    from studio.variety import mean_pairwise_distance

    handle = medium.load(str(tiny_llama), "cpu")
    params = medium.validate_params({"max_new_tokens": 24})
    kept = make_candidates("a sea poem", TEXTS)
    for c in kept:
        c.params = params
    settings = {**medium.tune_defaults, "objective": "sft", "copy_guard": 0}
    assert medium.tune_task(handle, kept, settings, None).look is None  # 0 (the default): never looks
    trial = sample(handle, "a sea poem", range(TRIAL_SEED, TRIAL_SEED + TRIAL_TEXTS), params)[0]
    ratio = mean_pairwise_distance(embed_texts(trial)) / mean_pairwise_distance(embed_texts(TEXTS))
    above = medium.tune_task(handle, kept, {**settings, "stop_narrowing": ratio * 1.01}, None)
    said = above.look()
    assert said == f"its {TRIAL_TEXTS} trial texts were {ratio:.2f}x as varied as the kept set"
    assert float(re.search(r"([\d.]+)x", said).group(1)) == pytest.approx(ratio, abs=0.005)
    assert medium.tune_task(handle, kept, {**settings, "stop_narrowing": ratio * 0.99}, None).look() is None
    with pytest.raises(StudioError, match="stop_narrowing"):
        medium.tune_task(handle, kept, {**settings, "stop_narrowing": -1}, None)


def test_a_tune_that_stops_when_it_strays_measures_the_trial_texts_from_the_kept_against_their_batch(
        medium, tiny_llama, make_candidates):
    """`stop_straying` S: a look draws the trial texts and says how far they are from the kept texts (each one's
    cosine distance to its nearest kept text, the mean) against the batch they were kept from (each kept or dropped
    text to its nearest other kept one) once that rises above S; 0 never looks."""
    from studio.media.text.embedding import embed_texts
    from studio.media.text.generate import sample
    from studio.media.text.tune import TRIAL_TEXTS
    from studio.training import TRIAL_SEED
    from studio.variety import nearest_distances

    handle, params, kept, dropped, settings = sea_poems(medium, tiny_llama, make_candidates)
    task = medium.tune_task(handle, kept, settings, None, dropped=dropped)
    assert task.look is None and task.objective == "dpo"  # 0 (the default): never looks
    trial = sample(handle, "a sea poem", range(TRIAL_SEED, TRIAL_SEED + TRIAL_TEXTS), params)[0]
    kept_features = embed_texts(TEXTS[:2])
    batch = nearest_distances(embed_texts(TEXTS), kept_features, own=True).mean()
    assert batch > 0
    far = nearest_distances(embed_texts(trial), kept_features).mean() / batch
    above = medium.tune_task(handle, kept, {**settings, "stop_straying": far * 0.99}, None, dropped=dropped)
    assert above.look() == f"its {TRIAL_TEXTS} trial texts were {far:.2f}x as far from the kept texts as the batch " \
                           "they were kept from"
    assert medium.tune_task(handle, kept, {**settings, "stop_straying": far * 1.01}, None, dropped=dropped).look() is None
    with pytest.raises(StudioError, match="stop_straying"):
        medium.tune_task(handle, kept, {**settings, "stop_straying": -1}, None, dropped=dropped)


def test_nearest_distances_leave_a_kept_row_out_of_its_own_nearest():
    import numpy as np

    from studio.variety import nearest_distances

    kept = np.array([[1.0, 0.0], [0.0, 1.0]])
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert nearest_distances(rows, kept).tolist() == pytest.approx([0.0, 0.0, 1 - 2 ** -0.5])
    assert nearest_distances(rows, kept, own=True).tolist() == pytest.approx([1.0, 1.0, 1 - 2 ** -0.5])


def test_a_tune_that_runs_on_stops_at_its_last_good_look(tiny_llama, medium, make_candidates):
    """`stop_running_on` M: a look draws the trial texts and counts those generation cut off at the length limit;
    more than M above the kept texts' share, or their batch's (the higher), and it says so; 0 never looks."""
    from studio.media.text.generate import sample
    from studio.media.text.prompting import cut_at_limit
    from studio.media.text.tune import TRIAL_TEXTS
    from studio.training import TRIAL_SEED

    handle = medium.load(str(tiny_llama), "cpu")
    params = medium.validate_params({"max_new_tokens": 6, "stop": []})
    kept = make_candidates("a sea poem", ["sea", "sky"], "k")  # both end within 6 tokens
    dropped = make_candidates("a sea poem", ["the hill the fox red red moon over the hill", "sea"], "d")
    for c in [*kept, *dropped]:
        c.params = params
    settings = {**medium.tune_defaults, "objective": "dpo", "copy_guard": 0}
    assert medium.tune_task(handle, kept, settings, None, dropped=dropped).look is None  # 0 (the default)
    trial = sample(handle, "a sea poem", range(TRIAL_SEED, TRIAL_SEED + TRIAL_TEXTS), params)[0]
    ran_on = sum(cut_at_limit(handle.tokenizer, t, params) for t in trial)
    assert ran_on > TRIAL_TEXTS // 2  # an untrained model rarely ends within 6 tokens
    written = [open(c.path).read() for c in [*kept, *dropped]]
    assert [cut_at_limit(handle.tokenizer, text, params) for text in written] == [False, False, True, False]
    usual = 0.25  # one of the batch's four texts was cut off; none of the kept ones
    over = ran_on / TRIAL_TEXTS - usual
    task = medium.tune_task(handle, kept, {**settings, "stop_running_on": over - 0.01}, None, dropped=dropped)
    assert task.usual_cut == usual
    assert task.look() == (f"{ran_on} of its {TRIAL_TEXTS} trial texts ran on to the length limit, where 25% of the "
                           "kept texts or their batch did")
    assert medium.tune_task(handle, kept, {**settings, "stop_running_on": over + 0.01}, None,
                            dropped=dropped).look() is None
    with pytest.raises(StudioError, match="stop_running_on"):
        medium.tune_task(handle, kept, {**settings, "stop_running_on": 1.5}, None, dropped=dropped)


def test_a_tune_learns_away_from_a_word_its_trial_texts_spread(medium, tiny_llama, make_candidates):
    """`unspread` M (dpo / ipo): a look finds the word the trial texts hold M more than the kept texts and their batch
    (compare's spread test), and the trial texts that hold it become dropped rows, each paired with the kept texts
    of its prompt, their reference the starting model's however far the tune has gone; a resumed task adds them
    again; 0 never looks."""
    import json

    import torch

    handle, params, kept, dropped, settings = sea_poems(medium, tiny_llama, make_candidates)
    assert medium.tune_task(handle, kept, settings, None, dropped=dropped).look is None  # 0 (the default)
    with pytest.raises(StudioError, match="unspread"):
        medium.tune_task(handle, kept, {**settings, "objective": "kto", "unspread": 0.35}, None, dropped=dropped)
    spreading = ["the lantern glows", "a lantern on the pier", "lantern light"]
    trial = [("a sea poem", text, True) for text in [*spreading, "gull over salt", "salt wave", "the harbor"]]
    assert medium.tune_task(handle, kept, {**settings, "unspread": 0.35, "stop_running_on": 0.5}, None,
                            dropped=dropped).look_at_end
    task = medium.tune_task(handle, kept, {**settings, "unspread": 0.35}, None, dropped=dropped)  # the newest tunes
    assert task.look is not None and not task.look_at_end  # the last look would add rows no step learns from
    rows, pairs = len(task.inputs), list(task.preference.pairs)
    task._learn_away_spread([*trial[3:], ("a sea poem", "the harbor sleeps", True)])  # the kept texts' own words
    assert len(task.inputs) == rows and task.note is None
    optimizer = torch.optim.SGD(task.parameters(), lr=1.0)
    for step in range(3):  # the tune moves away from its start before the look
        task.loss(step, torch.Generator().manual_seed(step)).backward()
        optimizer.step()
        optimizer.zero_grad()
    task._learn_away_spread(trial)  # 'lantern' in 3 of 6 trial texts, no kept one, none of their batch
    assert len(task.inputs) == rows + 3
    assert task.preference.pairs == pairs + [(i, rows + j) for i in range(2) for j in range(3)]
    assert task.note == "It learned away from 'lantern' as it spread (3 of its trial texts held it, learned as " \
                        "dropped ones)."
    start = medium.tune_task(handle, kept, settings, None,
                             dropped=[*dropped, *make_candidates("a sea poem", spreading, "s")])
    assert task.preference.reference[rows:].tolist() == pytest.approx(start.preference.reference[rows:].tolist(),
                                                                      abs=1e-4)
    with torch.no_grad():
        moved = task.sequence_log_probs(torch.arange(rows, rows + 3))
    assert (moved - task.preference.reference[rows:]).abs().max() > 1e-3  # the tune's own log-probs moved on
    again = medium.tune_task(handle, kept, {**settings, "unspread": 0.35}, None, dropped=dropped)
    again.load_look_state(json.loads(json.dumps(task.look_state())))  # as a checkpoint carries it
    assert torch.equal(again.inputs, task.inputs) and again.preference.pairs == task.preference.pairs
    assert again.preference.reference.tolist() == pytest.approx(task.preference.reference.tolist(), abs=1e-4)
    assert again.note == task.note
