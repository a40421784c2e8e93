"""The whole flow through the contract, on the fake medium."""
from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine import Studio, candidate_id
from studio.errors import NothingToLearn, StudioError


def test_generate_is_reproducible_and_cached(workspace, fake):
    studio = Studio(workspace)
    first = studio.generate("fake", "a colour", n=6, seed=3)
    again = studio.generate("fake", "a colour", n=6, seed=3)
    assert [c.id for c in first] == [c.id for c in again]
    assert [c.seed for c in first] == list(range(3, 9))
    assert all(open(c.path).read() for c in first)
    assert first[0].id == candidate_id("fake", str(fake), "base", "a colour", 3, {"temperature": 1.0})


@pytest.mark.parametrize("kwargs, message", [
    ({"prompt": "  "}, "prompt is empty"),
    ({"prompt": "x", "n": 0}, "between 1 and"),
    ({"prompt": "x", "n": 100_000}, "between 1 and"),
    ({"prompt": "x", "version": "v9"}, "Unknown fake version 'v9'"),
    ({"prompt": "x", "params": {"colour": 1}}, "Unknown fake setting"),
])
def test_generate_rejects_bad_input(workspace, fake, kwargs, message):
    with pytest.raises(StudioError, match=message):
        Studio(workspace).generate("fake", **kwargs)


def test_curate_hand_decision_wins_over_rule(workspace, fake):
    studio = Studio(workspace)
    cands = studio.generate("fake", "a colour", n=16)
    darkest = min(cands, key=lambda c: open(c.path).read() != "black")
    result = studio.curate("fake", threshold=0.99, temperature=0.0, accept=[darkest.id])
    assert darkest.id in result["accepted"]
    # the rule runs again: the hand decision is never overwritten
    again = studio.curate("fake", threshold=0.99, temperature=0.0)
    assert darkest.id in again["accepted"]
    assert studio.store.candidate(darkest.id).decision == "hand_accepted"


def test_curate_rule_and_best_of(workspace, fake):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=20)
    hard = studio.curate("fake", threshold=0.5, temperature=0.0, keep="all")  # spread would drop repeats
    cands = studio.store.candidates("fake", batch=hard["batch"])
    assert all((c.scores["score"] >= 0.5) == (c.id in hard["accepted"]) for c in cands)
    best = studio.curate("fake", best_of=3)
    assert len(best["accepted"]) == 3


def test_loop_lifts_acceptance_on_held_out_seeds(workspace, fake):
    studio = Studio(workspace)
    result = studio.loop("fake", "a colour", scorers=["bright"], threshold=0.7, temperature=0.0,
                         rounds=2, n=24, steps=30)
    assert [r["version"] for r in result["rounds"]] == ["v1", "v2"]
    assert [r["note"] for r in result["rounds"]] == [None, None]  # a tune's sentence, when it has one (cli.md)
    assert result["after"]["acceptance_rate"] >= 2 * result["before"]["acceptance_rate"]
    assert result["after"]["mean_score"] > result["best_of_n_base"]["mean_score"] - 0.5
    # measured on held-out seeds only
    train_seeds = {c.seed for c in studio.store.candidates("fake", purpose="curate")}
    assert not set(result["seeds"]) & train_seeds
    assert studio.store.version("fake", "v2").parent == "v1"
    assert len(studio.store.rounds("fake")) == 2


def test_a_later_round_that_keeps_nothing_ends_the_rounds_and_the_loop_still_compares(workspace, fake, monkeypatch):
    # the README's text loop at stop 71: v1 scored below the base's threshold on all 32 of its round-2 candidates, and
    # the loop ended in an error that threw away round 1's tune and the comparison
    studio = Studio(workspace)
    scored = Studio.score
    monkeypatch.setattr(Studio, "score", lambda self, medium, cands, *a, **k: [
        s if c.version == "base" else 0.0 for c, s in zip(cands, scored(self, medium, cands, *a, **k))])
    result = studio.loop("fake", "a colour", scorers=["bright"], threshold=0.7, temperature=0.0,
                         rounds=3, n=16, steps=10)
    assert [(r["version"], r["accepted"]) for r in result["rounds"]][1:] == [("v1", 0)]  # no third round
    assert result["rounds"][1]["note"] == ("The rule kept none of the 16 candidates v1 made, so the rounds stop at v1: "
                                           "keep some by hand, or lower the threshold.")
    assert result["version"] == result["after_version"] == "v1" and studio.store.version("fake", "v2") is None
    assert result["verdict"].startswith("Not yet: the tuned version makes no more of what you kept")
    monkeypatch.setattr(Studio, "score", lambda self, medium, cands, *a, **k: [0.0] * len(cands))
    with pytest.raises(StudioError, match="No candidate was kept"):  # the base's own batch: the rule is wrong
        studio.loop("fake", "a colour", scorers=["bright"], threshold=0.7, temperature=0.0, n=8, steps=10)


def test_a_loop_can_tune_each_round_from_the_base_on_everything_kept(workspace, fake):
    studio = Studio(workspace)
    result = studio.loop("fake", "a colour", scorers=["bright"], threshold=0.7, temperature=0.0,
                         rounds=2, n=16, steps=10, tune_from="base")
    assert [r["from"] for r in result["rounds"]] == ["base", "base"]
    first, second = studio.store.version("fake", "v1"), studio.store.version("fake", "v2")
    assert second.parent == "base" and set(first.curated) <= set(second.curated)  # round 1's keeps learned again
    # and round 2's own, but for those that copy a round-1 keep
    one, two = result["rounds"]
    assert len(second.curated) + two["copies_left_out"] == one["accepted"] + two["accepted"]
    with pytest.raises(StudioError, match="starts from last or base, not 'v1'"):
        studio.loop("fake", "a colour", tune_from="v1")


def test_a_later_round_steps_at_the_learning_rate_times_its_scale(workspace, fake):
    """tuned_lr_scale: a tune from a tuned version takes a gentler step (the text medium's second round)."""
    from studio.training import read_progress, tune_lr

    studio = Studio(workspace)
    studio.loop("fake", "a colour", scorers=["bright"], threshold=0.7, temperature=0.0, rounds=2, n=16, steps=4,
                lr=0.01, settings={"tuned_lr_scale": 0.25})
    started = {}
    for job in studio.store.jobs("fake"):
        row = next(r for r in read_progress(studio.store.job_dir(job["id"])) if r["event"] == "started")
        started[job["version"]] = row["lr"]
    assert started == {"v1": 0.01, "v2": 0.0025}  # from the base: the rate itself; from v1: a quarter of it
    assert tune_lr({"lr": 0.01}, "/versions/v1/adapter") == 0.01  # a job stored before the scale: as it was made


def test_tune_needs_a_curated_set(workspace, fake):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=4)
    with pytest.raises(StudioError, match="kept fake set is empty"):
        studio.start_tune("fake")


def test_compare_skips_training_seeds(workspace, fake):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=8, seed=0)
    studio.curate("fake", best_of=4)
    studio.tune("fake", steps=5)
    result = studio.compare("fake", after="v1", prompt="a colour", n=4, seed=0)
    assert result["seeds"] == [8, 9, 10, 11]
    assert set(result["before"]) >= {"acceptance_rate", "mean_score", "diversity"}
    assert result["verdict"].endswith(".")
    assert studio.store.version("fake", "v1").metrics["verdict"] == result["verdict"]  # History shows it
    # the page's "top share of the batch": each side judged by the before side's top share's cut
    half = studio.compare("fake", after="v1", prompt="a colour", n=4, seed=0, top=0.5)
    before = sorted((c.scores["score"] for c in studio.store.candidates("fake", ids=half["before"]["candidates"])),
                    reverse=True)
    assert half["threshold"] == before[1]  # the second best of four


def test_export_checks_format_and_version(workspace, fake, tmp_path):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=8)
    studio.curate("fake", best_of=4)
    studio.tune("fake", steps=5)
    out = studio.export("fake", "v1", "jsonl", tmp_path / "out")
    assert len(open(out["files"][0]).readlines()) == 4
    with pytest.raises(StudioError, match="Unknown fake export format"):
        studio.export("fake", "v1", "zip", tmp_path / "out")
    with pytest.raises(StudioError, match="Unknown fake version"):
        studio.export("fake", "v7", "adapter", tmp_path / "out")


@pytest.mark.slow  # two tune processes
def test_a_round_never_learns_its_own_copies_of_earlier_keeps(workspace, fake):
    from pathlib import Path

    studio = Studio(workspace)
    first = studio.generate("fake", "a colour", n=12)
    kept = first[:4]
    studio.curate("fake", accept=[c.id for c in kept], reject=[c.id for c in first[4:]])
    studio.tune("fake", steps=5)
    second = studio.generate("fake", "a colour", n=12, seed=100, version="v1")
    again = studio.generate("fake", "a colour", n=12, seed=200)  # the base's: never left out
    studio.curate("fake", accept=[c.id for c in [*second, *again]])
    colours = {Path(c.path).read_text() for c in kept}
    copies = [c.id for c in second if Path(c.path).read_text() in colours]  # the fake's copy: the same colour
    assert copies and len(copies) < len(second)
    result = studio.tune("fake", from_version="v1", steps=5)
    assert result["copies_left_out"] == len(copies)
    learned = set(studio.store.version("fake", result["version"]).curated)
    assert not learned & set(copies)
    assert learned >= {c.id for c in [*kept, *again]}
    # relearn off: from v1, only the keeps v1 did not learn (and still none of its copies)
    fresh = studio.tune("fake", from_version="v1", steps=5, settings={"relearn": False})
    assert set(studio.store.version("fake", fresh["version"]).curated) == learned - {c.id for c in kept}
    with pytest.raises(StudioError, match=f"{fresh['version']} has learned every kept fake candidate but "
                                          f"{len(copies)} that copy earlier keeps"):
        studio.tune("fake", from_version=fresh["version"], settings={"relearn": False})
    # keeps that all copy what v1 learned: nothing new, said as such, and no job starts
    studio.curate("fake", reject=[c.id for c in [*second, *again] if c.id not in copies])
    studio.store.set_decisions({c: "hand_accepted" for c in copies})
    jobs = len(studio.store.jobs("fake"))
    with pytest.raises(NothingToLearn, match=f"v1 has learned every kept fake candidate but {len(copies)} that") as e:
        studio.tune("fake", from_version="v1", settings={"relearn": False})
    assert e.value.left_out == len(copies) and len(studio.store.jobs("fake")) == jobs


def test_a_loop_round_with_nothing_new_to_learn_keeps_its_version_and_says_why(workspace, fake, monkeypatch):
    studio = Studio(workspace)
    tune = studio.tune

    def second_has_nothing(medium, from_version="base", **kwargs):
        if from_version != "base":
            raise NothingToLearn("v1 has learned every kept fake candidate but 3 that copy earlier keeps ...", 3)
        return tune(medium, from_version=from_version, **kwargs)

    monkeypatch.setattr(studio, "tune", second_has_nothing)
    result = studio.loop("fake", "a colour", scorers=["bright"], threshold=0.7, temperature=0.0, rounds=2, n=16,
                         steps=5)
    one, two = result["rounds"]
    assert (one["version"], two["version"], result["version"]) == ("v1", "v1", "v1")
    assert two["note"].startswith("v1 has learned every kept fake candidate") and two["copies_left_out"] == 3
    assert two["loss"] is None and studio.versions("fake") == ["base", "v1"]


def test_top_share_keeps_the_best_of_the_batch(workspace, fake):
    from studio.engine import top_threshold

    assert top_threshold([0.1, 0.9, 0.5, 0.7], 0.25) == 0.9
    assert top_threshold([0.1, 0.9, 0.5, 0.7], 0.5) == 0.7
    assert top_threshold([0.1, 0.9, 0.5, 0.7], 0.01) == 0.9  # at least one
    studio = Studio(workspace)
    batch = studio.generate("fake", "a colour", n=16)
    result = studio.curate("fake", scorers=["bright"], top=0.25, temperature=0.0, keep="all")
    scores = sorted((c.scores["bright"] for c in studio.store.candidates("fake", ids=[c.id for c in batch])),
                    reverse=True)
    assert result["threshold"] == scores[3] and result["top"] == 0.25
    assert len(result["accepted"]) == sum(s >= scores[3] for s in scores) >= 4


def test_ties_at_a_cut_drawn_from_the_batch_are_named(workspace, fake):
    """A saturated scorer (every clear take at 1.0): the top quarter keeps 7 of 8, and says why in one sentence."""
    from studio.engine import ties_warning

    saturated = [1.0] * 7 + [0.9]
    assert ties_warning(saturated, 1.0, 0.25).startswith("7 of 8 candidates tie at the score 1.000 where the top 25%")
    assert "keeps 7, not 2" in ties_warning(saturated, 1.0, 0.25)
    assert ties_warning([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], 0.7, 0.25) is None  # no ties
    assert ties_warning([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.8], 0.8, 0.25) is None  # a tie that keeps the share
    studio = Studio(workspace)
    batch = studio.generate("fake", "a colour", n=16)
    colours = [Path(c.path).read_text() for c in batch]
    common = max(set(colours), key=colours.count)
    assert colours.count(common) >= 3  # the fake's colours by seed repeat
    result = studio.curate("fake", scorers=["colour"], top=1 / 16, temperature=0.0, keep="all",
                           options={"colour": {"colour": common}})
    assert f"{colours.count(common)} of 16 candidates tie at the score 1.000" in result["warning"]
    assert result["warning"].endswith("add another scorer or keep by hand.")  # the fake has no tie breaker
    from studio import media

    voice = media.get("voice")  # the voice names the scorer that ranks intelligibility's ties, unless it is in use
    assert voice.tie_advice([]) == voice.tie_advice(["intelligibility"]) == \
        "add the clarity scorer (it ranks what intelligibility ties)"
    assert voice.tie_advice(["intelligibility", "clarity"]) == voice.tie_advice(["pace"]) == "add another scorer"
    assert len(result["accepted"]) == colours.count(common)
    with pytest.raises(StudioError, match="--top replaces --threshold"):
        studio.curate("fake", threshold=0.5, top=0.25)
    with pytest.raises(StudioError, match="--top must be a share"):
        studio.curate("fake", top=1.5)


@pytest.mark.slow  # one tune process
def test_after_a_tune_a_threshold_that_keeps_nearly_all_or_none_is_named(workspace, fake):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=12)
    assert "no longer picks" not in studio.curate("fake", threshold=0.0, temperature=0.0).get("warning", "")
    studio.tune("fake", steps=5)
    studio.generate("fake", "a colour", n=12, seed=50, version="v1")
    warned = studio.curate("fake", threshold=0.0, temperature=0.0)
    assert "keeps 100% of this batch from v1" in warned["warning"] and "--top" in warned["warning"]
    with pytest.MonkeyPatch.context() as patch:  # a tune that moved every score below the threshold
        patch.setattr(Studio, "score", lambda self, medium, cands, *a, **k: [0.5] * len(cands))
        none = studio.curate("fake", threshold=0.9, temperature=0.0)
    assert not none["accepted"] and "The threshold 0.90 keeps none of this batch from v1" in none["warning"]
    relative = studio.curate("fake", top=0.25, temperature=0.0)
    assert "no longer picks" not in relative.get("warning", "") and relative["acceptance_rate"] < 0.9


def test_distinct_keeps_learns_one_of_a_tuned_versions_copies_within_a_batch(workspace, fake):
    import dataclasses
    from pathlib import Path

    studio = Studio(workspace)
    batch = [dataclasses.replace(c, version="v1") for c in studio.generate("fake", "a colour", n=12)]
    colour = {c.id: Path(c.path).read_text() for c in batch}
    twins = [c for c in batch if list(colour.values()).count(colour[c.id]) > 1]
    assert twins  # a 12-draw batch over a handful of colours repeats one
    kept, left_out = studio.own_copies_left_out("fake", batch)
    assert len(kept) == 12 and not left_out  # one batch's keeps never copy an earlier round's
    kept, left_out = studio.own_copies_left_out("fake", list(reversed(batch)), distinct=True)
    assert sorted(colour[c.id] for c in kept) == sorted(set(colour.values()))  # one keep per colour ...
    assert {c.id for c in kept} == {min((c for c in batch if colour[c.id] == x), key=lambda c: (c.created_at, c.id)).id
                                    for x in set(colour.values())}  # ... the batch's first of it
    assert len(left_out) == 12 - len(kept)
    base = studio.store.candidates("fake", ids=[c.id for c in batch])  # the base's keeps are never left out
    assert studio.own_copies_left_out("fake", base, distinct=True)[1] == []
