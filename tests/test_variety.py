"""Variety and copies: the shared measures, and compare reporting and saving them (fake medium)."""
from __future__ import annotations

import numpy as np
import pytest

from studio import variety
from studio.engine import Studio
from studio.errors import StudioError


def test_shares_run_needs_eight_in_a_row():
    kept = [variety.words("and the rage grows louder over the grey sea tonight")]
    seven = variety.words("so the rage grows louder over the grey hills")  # 7 shared words in a row
    eight = variety.words("Now: the rage grows LOUDER, over the grey sea!")  # 8, case and commas ignored
    assert variety.shares_run([seven, eight], kept) == [False, True]
    assert variety.shares_run([[60, 62, 64, 65, 67, 69, 71, 72]], [[59, 60, 62, 64, 65, 67, 69, 71, 72]]) == [True]
    assert variety.shares_run([[1, 2, 3]], [[1, 2, 3]]) == [False]  # shorter than a run


def test_near_duplicates_by_cosine_cutoff():
    kept = np.array([[1.0, 0.0], [0.0, 1.0]])
    cands = np.array([[10.0, 0.1], [1.0, 1.0]])
    assert variety.near_duplicates(cands, kept, 0.95) == [True, False]
    assert variety.mean_pairwise_distance(np.array([[1.0, 0.0], [2.0, 0.0]])) == pytest.approx(0.0)


def test_compare_reports_variety_and_copies_and_saves_them(workspace, fake):
    studio = Studio(workspace)
    result = studio.loop("fake", "a colour", scorers=["bright"], threshold=0.7, temperature=0.0, n=24, steps=30)
    kept = studio.kept_set("fake", "v1")
    assert result["kept"]["n"] == len(kept) > 0
    after = result["after"]
    assert after["variety_vs_kept"] == pytest.approx(after["diversity"] / result["kept"]["diversity"])
    # one-hot colour features: a tuned colour equal to a kept colour is a copy
    kept_colours = {open(c.path).read() for c in kept}
    tuned = studio.store.candidates("fake", ids=after["candidates"])
    assert after["copies"] == pytest.approx(np.mean([open(c.path).read() in kept_colours for c in tuned]))
    assert "copies" in result["before"]  # the base's rate is the chance level
    saved = studio.store.version("fake", "v1").metrics
    assert saved["after"]["copies"] == after["copies"] and "loss" in saved
    again = studio.compare("fake", after="v1", prompt="a colour", n=8, seed=500, scorers=["bright"],
                           threshold=0.7, temperature=0.0, strength=0.0)
    saved = studio.store.version("fake", "v1").metrics
    assert len(saved["compares"]) == 2 and saved["compares"][-1]["strength"] == 0.0
    # strength 0 is the base: the same candidates' content on both sides
    before = [open(c.path).read() for c in studio.store.candidates("fake", ids=again["before"]["candidates"])]
    after0 = [open(c.path).read() for c in studio.store.candidates("fake", ids=again["after"]["candidates"])]
    assert before == after0


def test_strength_is_checked(workspace, fake):
    studio = Studio(workspace)
    with pytest.raises(StudioError, match="adapter strength"):
        studio.generate("fake", "a colour", n=2, strength=2.0)


def test_spread_keeping_drops_near_duplicates_of_a_better_one(workspace, fake):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=24)
    every = studio.curate("fake", scorers=["bright"], threshold=0.5, temperature=0.0, keep="all")
    spread = studio.curate("fake", scorers=["bright"], threshold=0.5, temperature=0.0, keep="spread")
    colours = lambda ids: [open(studio.store.candidate(i).path).read() for i in ids]  # noqa: E731
    assert len(colours(every["accepted"])) > len(set(colours(every["accepted"])))  # the rule kept repeats
    assert sorted(colours(spread["accepted"])) == sorted(set(colours(every["accepted"])))  # one of each
    assert spread["kept_diversity"] > every["kept_diversity"]


def test_epochs_set_the_step_count_from_the_curated_set(workspace, fake):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=16)
    studio.curate("fake", best_of=12, keep="all")
    result = studio.tune("fake", settings={"epochs": 4, "batch_size": 8})
    assert result["steps"] == 10  # 4 passes over 12 kept, 8 a step: 6, raised to the minimum of 10
    studio.curate("fake", best_of=16, keep="all")
    assert studio.tune("fake", settings={"epochs": 10, "batch_size": 8})["steps"] == 20
    assert studio.tune("fake", steps=7, settings={"epochs": 10})["steps"] == 7  # explicit steps win
