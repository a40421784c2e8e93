"""The preference objectives (studio/preference.py): the losses' direction, the batches, and the engine
handing a kto tune the dropped candidates of the kept ones' batches."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio import runner
from studio.engine import Studio
from studio.errors import StudioError
from studio.preference import (PreferenceBatches, RewardLog, dpo_loss, ipo_loss, kto_loss, same_prompt_pairs,
                               tune_beta, tune_kept_floor)


def _t(*values):
    import torch

    return torch.tensor(values, dtype=torch.float32)


def test_kto_rewards_a_kept_candidate_above_the_reference_and_a_dropped_one_below():
    import torch

    ref = _t(-10.0, -10.0, -10.0, -10.0)
    kept = torch.tensor([True, True, False, False])
    # the kept ones gained log-prob and the dropped lost it: lower loss than the other way round
    good = kto_loss(_t(-8.0, -8.0, -12.0, -12.0), ref, kept, beta=0.5)
    bad = kto_loss(_t(-12.0, -12.0, -8.0, -8.0), ref, kept, beta=0.5)
    assert float(good) < 0.5 < float(bad)
    # at the reference every term is 1 - sigmoid(0) = 0.5
    assert float(kto_loss(ref.clone(), ref, kept, beta=0.5)) == pytest.approx(0.5)


def test_kto_gradient_raises_kept_and_lowers_dropped_log_probs():
    import torch

    policy = _t(-10.0, -10.0).requires_grad_()
    kto_loss(policy, _t(-10.0, -10.0), torch.tensor([True, False]), beta=0.1).backward()
    assert policy.grad[0] < 0 < policy.grad[1]  # descent moves the kept up, the dropped down


def test_kto_reference_point_is_the_detached_batch_mean_clamped_at_zero():
    import torch

    kept = torch.tensor([True, False])
    # the batch moved up on average by 2: a kept candidate up by only 1 sits below the reference point
    above = kto_loss(_t(-9.0, -7.0), _t(-10.0, -10.0), kept, beta=1.0)
    expected = 0.5 * ((1 - torch.sigmoid(torch.tensor(1.0 - 2.0))) + (1 - torch.sigmoid(torch.tensor(2.0 - 3.0))))
    assert float(above) == pytest.approx(float(expected))
    # a batch that moved down on average: z0 is 0, not negative
    below = kto_loss(_t(-11.0, -13.0), _t(-10.0, -10.0), kept, beta=1.0)
    expected = 0.5 * ((1 - torch.sigmoid(torch.tensor(-1.0))) + (1 - torch.sigmoid(torch.tensor(3.0))))
    assert float(below) == pytest.approx(float(expected))


def test_kto_weights_scale_each_side():
    import torch

    kept = torch.tensor([True, False])
    policy, ref = _t(-9.0, -9.0), _t(-10.0, -10.0)
    one = kto_loss(policy, ref, kept, 0.1)
    assert float(kto_loss(policy, ref, kept, 0.1, kept_weight=2.0, dropped_weight=2.0)) == pytest.approx(2 * float(one))


def test_dpo_prefers_the_kept_of_each_pair():
    good = dpo_loss(_t(-8.0), _t(-10.0), _t(-12.0), _t(-10.0), beta=0.1)
    bad = dpo_loss(_t(-12.0), _t(-10.0), _t(-8.0), _t(-10.0), beta=0.1)
    assert float(good) < float(bad)
    assert same_prompt_pairs(["a", "b"], ["b", "c", "a"]) == [(0, 2), (1, 0)]


def test_dpo_keeps_the_share_of_pairs_least_alike_by_length_normalised_ches():
    """CHES of a pair: the kept row's mean hidden state dotted with the dropped one's, minus its own squared norm;
    the lowest are kept, in their pair order, and a share of 1 keeps every pair."""
    import torch

    states = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.5]])  # kept 0, 1; dropped 2, 3
    batches = PreferenceBatches("dpo", 2, 4, 4, 1.0, ["a"] * 4)
    assert batches.pairs == [(0, 2), (0, 3), (1, 2), (1, 3)]  # CHES 0, -2, -1, -0.5
    batches.keep_least_alike(states, 1.0)
    assert len(batches.pairs) == 4
    batches.keep_least_alike(states, 0.5)
    assert batches.pairs == [(0, 3), (1, 2)]
    batches.keep_least_alike(states, 0.01)
    assert batches.pairs == [(0, 3)]  # at least one pair stays


def test_ipo_draws_each_pairs_margin_to_its_target_and_pulls_back_a_margin_past_it():
    import torch

    zero = _t(0.0)
    for margin, way in ((2.0, -1), (8.0, 1)):  # beta 0.1: the target is 1 / (2 beta) = 5 nats
        kept = _t(margin / 2).requires_grad_()
        dropped = _t(-margin / 2).requires_grad_()
        loss = ipo_loss(kept, zero, dropped, zero, beta=0.1)
        assert loss.item() == pytest.approx((margin - 5.0) ** 2)
        loss.backward()
        assert float(kept.grad) * way > 0 and float(dropped.grad) * way < 0  # short: raise the kept; past: lower it
    at = ipo_loss(_t(2.5), zero, _t(-2.5), zero, beta=0.1)
    assert at.item() == 0.0  # dpo's loss at the same margin is still above 0 and still pushing
    assert dpo_loss(_t(2.5), zero, _t(-2.5), zero, beta=0.1).item() > 0
    batches = PreferenceBatches("ipo", kept=2, total=4, batch_size=4, beta=0.1, prompts=["a", "b", "a", "b"])
    assert batches.pairs == [(0, 2), (1, 3)]
    batches.reference = torch.zeros(4)
    values = torch.tensor([2.5, 2.5, -2.5, -2.5])
    assert batches.loss(0, torch.Generator().manual_seed(0), lambda rows: values[rows]).item() == 0.0
    with pytest.raises(StudioError, match="ipo objective needs a prompt with both"):
        PreferenceBatches("ipo", kept=1, total=2, batch_size=8, beta=0.1, prompts=["a", "b"])


def test_kto_batches_draw_half_kept_half_dropped():
    import torch

    batches = PreferenceBatches("kto", kept=2, total=12, batch_size=8, beta=0.1)
    batches.reference = torch.zeros(12)
    seen = []
    batches.loss(0, torch.Generator().manual_seed(0), lambda rows: seen.append(rows) or torch.zeros(len(rows)))
    rows = seen[0]
    assert len(rows) == 8 and int((rows < 2).sum()) == 4 and int((rows >= 2).sum()) == 4
    with pytest.raises(StudioError, match="dropped"):
        PreferenceBatches("kto", kept=3, total=3, batch_size=8, beta=0.1)
    with pytest.raises(StudioError, match="prompt with both"):
        PreferenceBatches("dpo", kept=1, total=2, batch_size=8, beta=0.1, prompts=["a", "b"])


def test_a_preference_step_logs_the_mean_reward_of_its_kept_and_of_its_dropped_rows():
    import torch

    log = RewardLog()
    assert log.means() == {}  # before any batch
    reward = _t(1.0, 3.0, -2.0).requires_grad_()
    log.hold(reward * 1, torch.tensor([True, True, False]))
    assert log.means() == {"kept_reward": 2.0, "dropped_reward": -2.0}
    assert not log.held[0].requires_grad  # held detached: the log keeps no graph alive
    log.hold(_t(1.0), torch.tensor([True]))
    assert log.means() == {"kept_reward": 1.0}  # no dropped row: none said
    steps = [{"step": s, "loss": 0.1, "kept_reward": float(s), "dropped_reward": -float(s)} for s in range(1, 9)]
    assert runner.late_rewards(steps) == {"kept_reward": 7.5, "dropped_reward": -7.5}  # the last quarter: 7, 8
    assert runner.late_rewards([{"step": 1, "loss": 0.1}]) is None  # a plain tune logs none
    # a look stopped the tune at step 8 and went back to step 4's weights: steps 5-8 are not the version's
    assert runner.late_rewards(steps, upto=4) == {"kept_reward": 4.0, "dropped_reward": -4.0}
    assert runner.late_rewards(steps, upto=0) is None  # back to the starting model: nothing moved


def test_a_later_round_is_anchored_at_beta_times_its_scale_in_every_medium():
    from studio import media

    settings = {"beta": 2.0, "tuned_beta_scale": 3.0}
    assert tune_beta(settings, None) == 2.0  # from the base: beta itself
    assert tune_beta(settings, "/versions/v1/adapter") == 6.0
    assert tune_beta({"beta": 2.0}, "/versions/v1/adapter") == 2.0  # a job stored before the scale: as it was made
    for name in ("image", "music", "text", "voice"):  # every medium with a preference tune has the setting
        assert media.get(name).parse_tune_settings({"tuned_beta_scale": 3.0})["tuned_beta_scale"] == 3.0


def test_a_later_rounds_kept_floor_is_the_floor_times_its_scale():
    settings = {"kept_floor": 1.5, "tuned_floor_scale": 0.0}
    assert tune_kept_floor(settings, None) == 1.5  # from the base: the floor itself
    assert tune_kept_floor(settings, "/versions/v1/adapter") == 0.0  # the first round alone
    assert tune_kept_floor({"kept_floor": 1.5}, "/versions/v1/adapter") == 1.5  # a job stored before the scale
    assert tune_kept_floor({}, None) == 0.0  # a medium without a floor


def test_objective_and_beta_settings_are_checked():
    from studio import media

    for name in ("text", "music"):
        settings = media.get(name).parse_tune_settings({"objective": "kto", "beta": 0.3})
        assert settings["objective"] == "kto" and settings["beta"] == 0.3
        with pytest.raises(StudioError, match="objective"):
            media.get(name).parse_tune_settings({"objective": "orpo"})
        with pytest.raises(StudioError, match="beta"):
            media.get(name).parse_tune_settings({"beta": 0})
        with pytest.raises(StudioError, match="prior_weight"):
            media.get(name).parse_tune_settings({"objective": "kto", "prior_weight": 0.5})
    with pytest.raises(StudioError, match="anchor"):
        media.get("text").parse_tune_settings({"objective": "kto", "anchor": 0.5})


def _spec(workspace: Path, job: str) -> dict:
    return json.loads(next(p for p in Path(workspace).rglob("spec.json") if json.loads(p.read_text())["job"] == job)
                      .read_text())


@pytest.mark.slow
def test_kto_tune_gets_the_dropped_of_the_kept_batches_by_hand_and_by_rule(workspace, fake):
    studio = Studio(workspace)
    other = studio.generate("fake", "a colour", n=8, seed=500)  # a batch with no keeps: none of it is learned
    studio.curate("fake", reject=[other[0].id], apply_rule=False)
    batch = studio.generate("fake", "a colour", n=16)
    studio.curate("fake", scorers=["bright"], threshold=0.7, temperature=0.0, keep="all")
    kept = [c for c in studio.store.candidates("fake", batch=batch[0].batch) if c.accepted]
    rule_dropped = [c for c in studio.store.candidates("fake", batch=batch[0].batch)
                    if c.decision == "auto_rejected"]
    studio.curate("fake", batch=batch[0].batch, reject=[kept[-1].id], apply_rule=False)  # one keep dropped by hand
    result = studio.tune("fake", settings={"objective": "kto", "beta": 1.0})
    spec = _spec(workspace, result["job"])
    assert set(spec["dropped"]) == {c.id for c in rule_dropped} | {kept[-1].id}
    assert other[0].id not in spec["dropped"] and not set(spec["dropped"]) & set(spec["examples"])
    assert result["dropped"] == len(spec["dropped"]) and "note" not in result
    # the tune raised the kept colours and lowered the dropped against the starting model, and its log says so
    assert result["rewards"]["kept_reward"] > 0 > result["rewards"]["dropped_reward"]
    version = studio.store.version("fake", result["version"])
    assert version.metrics["rewards"] == result["rewards"]  # kept with the version: History says it in words
    from studio.app import history
    assert "what you kept is now more likely" in history.version_html(studio, "fake", version)
    compared = studio.compare("fake", after=result["version"], prompt="a colour", n=32, seed=100, scorers=["bright"],
                              threshold=0.7, temperature=0.0)
    assert compared["after"]["acceptance_rate"] > compared["before"]["acceptance_rate"]  # more of the kept colours
    plain = studio.tune("fake")
    assert plain["dropped"] == 0 and plain["rewards"] is None  # sft: the drops are not handed over


@pytest.mark.slow
def test_a_drop_share_counts_the_rules_drops_at_the_bottom_of_the_batch_and_every_drop_by_hand(workspace, fake):
    studio = Studio(workspace)
    batch = studio.generate("fake", "a colour", n=16)
    studio.curate("fake", scorers=["bright"], threshold=0.7, temperature=0.0, keep="all")
    mates = studio.store.candidates("fake", batch=batch[0].batch)
    ranked = sorted(mates, key=lambda c: c.scores["score"])
    middling = next(c for c in reversed(ranked) if c.decision == "auto_rejected")  # the rule's best drop
    kept = [c for c in mates if c.accepted]
    studio.curate("fake", batch=batch[0].batch, reject=[kept[-1].id], apply_rule=False)  # a keep dropped by hand
    result = studio.tune("fake", settings={"objective": "kto", "beta": 1.0, "drop_share": 0.25})
    dropped = set(_spec(workspace, result["job"])["dropped"])
    assert dropped == {c.id for c in ranked[:4] if c.decision == "auto_rejected"} | {kept[-1].id}
    assert middling.id not in dropped and result["dropped"] == len(dropped)
    assert len(studio.dropped_set("fake", kept[:-1])) > len(studio.dropped_set("fake", kept[:-1], 0.25))
    with pytest.raises(StudioError, match="drop_share"):
        studio.tune("fake", settings={"objective": "kto", "drop_share": 1.5})


@pytest.mark.slow
def test_kto_with_nothing_dropped_falls_back_to_sft_and_says_so(workspace, fake):
    studio = Studio(workspace)
    batch = studio.generate("fake", "a colour", n=4)
    studio.curate("fake", accept=[batch[0].id, batch[1].id], apply_rule=False)  # the rest stay pending
    result = studio.tune("fake", settings={"objective": "kto"})
    assert "no dropped candidates" in result["note"] and result["dropped"] == 0
    assert _spec(workspace, result["job"])["settings"]["objective"] == "sft"
    assert result["note"] == runner.status(studio.store, result["job"])["message"]  # the page's tune status shows it


@pytest.mark.slow
def test_dpo_with_no_prompt_holding_a_keep_and_a_drop_tunes_with_kto_and_says_so(workspace, fake, monkeypatch):
    from fake_medium import FakeMedium

    studio = Studio(workspace)
    batch = studio.generate("fake", "a colour", n=4)
    studio.curate("fake", accept=[batch[0].id, batch[1].id], reject=[batch[2].id], apply_rule=False)
    with studio.store._db:  # a drop whose prompt no keep shares (a batch is one prompt today: the engine's guard)
        studio.store._db.execute("UPDATE candidates SET prompt = ? WHERE id = ?", ("another colour", batch[2].id))
    with pytest.raises(StudioError, match="dpo objective needs a prompt with both"):  # asked for by name: said
        studio.tune("fake", settings={"objective": "dpo"})
    with pytest.raises(StudioError, match="ipo objective needs a prompt with both"):  # ipo pairs as dpo does
        studio.tune("fake", settings={"objective": "ipo"})
    plain = FakeMedium.parse_tune_settings  # a medium whose default objective is dpo (the text medium's)
    monkeypatch.setattr(FakeMedium, "parse_tune_settings", lambda self, given: plain(self, {"objective": "dpo",
                                                                                            **given}))
    result = studio.tune("fake")
    assert "with kto" in result["note"] and result["dropped"] == 1
    assert _spec(workspace, result["job"])["settings"]["objective"] == "kto"
    assert studio.wait_tune(result["job"])["status"] == "done"


def test_the_kept_floor_pulls_back_only_a_kept_candidate_made_rarer_than_the_start():
    import torch

    from studio.preference import kto_loss

    reference = torch.zeros(4)
    kept = torch.tensor([True, True, False, False])
    policy = torch.tensor([-8.0, 3.0, -8.0, 3.0], requires_grad=True)
    plain = kto_loss(policy, reference, kept, beta=1.0)
    floored = kto_loss(policy, reference, kept, beta=1.0, kept_floor=2.0)
    # one kept candidate 8 nats below the start: 2 x (1 / 4) x 8, averaged over the batch of four
    assert floored.item() == pytest.approx(plain.item() + 2 * 0.25 * 8 / 4)
    floored.backward()
    grad = policy.grad.clone()
    policy.grad = None
    plain.backward()
    assert grad[0] < policy.grad[0] - 0.1  # pulled up harder (the loss falls as its log-prob rises)
    assert torch.allclose(grad[1:], policy.grad[1:])  # above the start, or dropped: kto alone


def test_dpos_kept_floor_pulls_back_a_kept_candidate_the_margin_took_down():
    import torch

    # a pair won by lowering both: the kept 8 nats below the start, the dropped 20
    kept, dropped, zero = torch.tensor([-8.0], requires_grad=True), torch.tensor([-20.0]), torch.zeros(1)
    plain = dpo_loss(kept, zero, dropped, zero, beta=1.0)
    floored = dpo_loss(kept, zero, dropped, zero, beta=1.0, kept_floor=2.0)
    assert floored.item() == pytest.approx(plain.item() + 2 * 0.5 * 8)  # kept_floor x beta / 2 x the fall
    floored.backward()
    assert kept.grad.item() == pytest.approx(-1.0, abs=1e-4)  # the saturated margin no longer lets it lie
    above = torch.tensor([3.0])
    assert dpo_loss(above, zero, dropped, zero, 1.0, 2.0).item() == dpo_loss(above, zero, dropped, zero, 1.0).item()



def _both_losses(plain, other, values, seed: int):
    """Both batches' loss on the same draw, a zero reference, log-probs read from ``values``; the rows each drew."""
    import torch

    drawn = []
    for batches in (plain, other):
        batches.reference = torch.zeros(len(values))

    def log_probs(rows):
        drawn.append(rows)
        return values[rows]

    return (plain.loss(0, torch.Generator().manual_seed(seed), log_probs),
            other.loss(0, torch.Generator().manual_seed(seed), log_probs), drawn)


def test_the_kept_candidates_own_loss_adds_their_mean_log_prob_per_token():
    import torch

    tokens = torch.tensor([4.0, 10.0, 5.0, 2.0])  # rows 0-1 kept, 2-3 dropped
    values = torch.tensor([-8.0, -30.0, -40.0, -6.0], requires_grad=True)
    for objective, prompts in (("kto", ()), ("dpo", ["a", "a", "a", "a"])):
        plain = PreferenceBatches(objective, kept=2, total=4, batch_size=4, beta=1.0, prompts=prompts)
        weighed = PreferenceBatches(objective, kept=2, total=4, batch_size=4, beta=1.0, prompts=prompts,
                                    sft_weight=0.5, tokens=tokens)
        a, b, drawn = _both_losses(plain, weighed, values, seed=1)
        rows = drawn[1]
        kept = rows[rows < 2]
        expected = 0.5 * float((-values.detach()[kept] / tokens[kept]).mean())  # nats per token, kept rows only
        assert b.item() == pytest.approx(a.item() + expected)
        values.grad = None
        (b - a).backward()
        assert bool((values.grad[:2] <= 0).all()) and bool((values.grad[2:] == 0).all())  # raises the kept alone
    with pytest.raises(StudioError, match="token count"):
        PreferenceBatches("kto", kept=2, total=4, batch_size=4, beta=1.0, sft_weight=1.0)


def test_the_undecided_rows_are_held_where_the_tune_made_them_rarer_and_only_there():
    import torch

    # rows 0 kept, 1 dropped, 2-4 undecided: row 2 fell 6 nats, row 3 fell 2, row 4 rose
    values = torch.tensor([-1.0, -9.0, -6.0, -2.0, 3.0], requires_grad=True)
    for objective, prompts in (("kto", ()), ("dpo", ["a", "a"])):
        plain = PreferenceBatches(objective, kept=1, total=2, batch_size=4, beta=2.0, prompts=prompts)
        held = PreferenceBatches(objective, kept=1, total=2, batch_size=4, beta=2.0, prompts=prompts,
                                 undecided=3, hold=0.5)
        a, b, drawn = _both_losses(plain, held, values, seed=3)
        assert all(bool((r < 2).all()) for r in drawn[:2])  # the objective's rows: never an undecided one
        undecided = drawn[-1]
        assert bool((undecided >= 2).all())
        fall = torch.relu(-values.detach()[undecided])
        assert b.item() == pytest.approx(a.item() + 0.5 * 2.0 / 2 * float(fall.mean()))
        values.grad = None
        (b - a).backward()
        assert bool((values.grad[:2] == 0).all()) and float(values.grad[4]) == 0  # the risen row is left alone
        assert bool((values.grad[2:4] <= 0).all())  # the fallen ones raised
    off = PreferenceBatches("kto", kept=1, total=2, batch_size=4, beta=2.0, undecided=3, hold=0.0)
    off.reference = torch.zeros(5)
    rows_seen = []
    off.loss(0, torch.Generator().manual_seed(3), lambda rows: rows_seen.append(rows) or values[rows])
    assert len(rows_seen) == 1 and bool((rows_seen[0] < 2).all())  # at 0 no undecided row is drawn


@pytest.mark.slow
def test_the_undecided_set_is_the_kept_batches_pending_and_uncounted_rule_drops(workspace, fake):
    studio = Studio(workspace)
    other = studio.generate("fake", "a colour", n=4, seed=500)  # a batch with no keeps: none of it is held
    batch = studio.generate("fake", "a colour", n=12)
    studio.curate("fake", accept=[batch[0].id, batch[1].id], reject=[batch[2].id], apply_rule=False)
    kept = [batch[0], batch[1]]
    dropped = studio.dropped_set("fake", kept)
    assert [c.id for c in dropped] == [batch[2].id]
    undecided = studio.undecided_set("fake", kept, dropped)
    assert {c.id for c in undecided} == {c.id for c in batch[3:]}  # pending: neither kept nor learned away from
    assert not {c.id for c in other} & {c.id for c in undecided}
    studio.curate("fake", batch=batch[0].batch, scorers=["bright"], threshold=0.7, temperature=0.0)
    mates = studio.store.candidates("fake", batch=batch[0].batch)
    kept = [c for c in mates if c.accepted]
    counted = studio.dropped_set("fake", kept, 0.25)
    held = studio.undecided_set("fake", kept, counted)
    rule_drops = {c.id for c in mates if c.decision == "auto_rejected"}
    assert {c.id for c in held} == rule_drops - {c.id for c in counted}  # the rule's drops outside the share
    assert batch[2].id not in {c.id for c in held}  # a drop by hand is always learned away from, never held


@pytest.mark.slow
def test_a_tune_with_hold_hands_its_undecided_candidates_over_and_one_without_does_not(workspace, fake):
    studio = Studio(workspace)
    batch = studio.generate("fake", "a colour", n=12)
    studio.curate("fake", accept=[batch[0].id, batch[1].id], reject=[batch[2].id, batch[3].id], apply_rule=False)
    held = studio.tune("fake", settings={"objective": "dpo", "beta": 1.0, "hold": 2.0})
    spec = _spec(workspace, held["job"])
    assert set(spec["undecided"]) == {c.id for c in batch[4:]} and held["version"] == "v1"  # and the tune ran
    plain = studio.tune("fake", settings={"objective": "dpo", "beta": 1.0})  # off: nothing held
    assert "undecided" not in _spec(workspace, plain["job"])
    with pytest.raises(StudioError, match="hold"):  # sft learns no drops to hold beside
        studio.tune("fake", settings={"hold": 2.0})
