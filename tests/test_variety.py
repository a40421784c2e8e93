"""Variety and copies: the shared measures, and compare reporting and saving them (fake medium)."""
from __future__ import annotations

import json
from pathlib import Path

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
    # one-hot features: a copy is at distance 0 from its keep, any other colour at 1
    assert after["distance_to_kept"] == pytest.approx(1 - after["copies"])
    base = studio.store.candidates("fake", ids=result["before"]["candidates"])
    assert result["before"]["distance_to_kept"] == pytest.approx(
        np.mean([open(c.path).read() not in kept_colours for c in base]))
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


def test_compare_counts_what_generation_cut_off_on_each_side_and_in_the_kept_set(workspace, fake, monkeypatch):
    from fake_medium import FakeMedium

    studio = Studio(workspace)
    plain = studio.loop("fake", "a colour", scorers=["bright"], threshold=0.7, temperature=0.0, n=24, steps=30)
    assert "unfinished" not in plain["after"] and "unfinished" not in plain["kept"]  # a medium whose outputs end
    # a tuned version that runs every candidate on to the limit, where the base and the keeps end theirs
    monkeypatch.setattr(FakeMedium, "unfinished", lambda self, handle, cands: [c.version != "base" for c in cands])
    result = studio.compare("fake", after="v1", prompt="a colour", n=8, seed=500, scorers=["bright"],
                            threshold=0.7, temperature=0.0)
    assert (result["before"]["unfinished"], result["after"]["unfinished"], result["kept"]["unfinished"]) == (0, 1, 0)
    assert "stops ending what it makes (100% cut off at the length limit, the base 0%, your keeps 0%)" in \
        result["verdict"]
    assert studio.store.version("fake", "v1").metrics["after"]["unfinished"] == 1.0
    # and one whose every candidate loops, where the base's and the keeps' do not
    assert "looping" not in plain["after"] and "looping" not in plain["kept"]
    monkeypatch.setattr(FakeMedium, "looping", lambda self, cands: [c.version != "base" for c in cands])
    result = studio.compare("fake", after="v1", prompt="a colour", n=8, seed=500, scorers=["bright"],
                            threshold=0.7, temperature=0.0)
    assert (result["before"]["looping"], result["after"]["looping"], result["kept"]["looping"]) == (0, 1, 0)
    assert "and repeats itself (100% of what it makes loop, the base 0%, your keeps 0%)." in result["verdict"]
    # and one that puts the same feature in every candidate, where the base and the keeps hold it in none
    assert "spread" not in plain
    monkeypatch.setattr(FakeMedium, "spreading", lambda self, after, kept, before: {
        "word": "abe", "after": 1.0, "kept": 0.0, "before": 0.0} if kept and after[0].version == "v1" else None)
    result = studio.compare("fake", after="v1", prompt="a colour", n=8, seed=500, scorers=["bright"],
                            threshold=0.7, temperature=0.0)
    assert result["spread"]["word"] == "abe"
    assert "and puts one word in much of what it makes ('abe' in 100%; your keeps 0%, the base 0%)." in \
        result["verdict"]


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


def test_image_strength_and_adapter_from(tmp_path):
    """On the embedded image default: strength 0 is the base, and an adapter that joins halfway
    through denoising gives a picture between the base's and the full adapter's."""
    import io

    import torch
    from PIL import Image

    from studio.media.image import ImageMedium
    from studio.medium import Candidate

    torch.set_num_threads(1)
    medium = ImageMedium()
    handle = medium.load(medium.default_model(), "cpu")
    params = medium.validate_params({"steps": 6})
    gens = medium.generate(handle, "a circle", [0, 1], params)
    kept = []
    for g in gens:
        path = tmp_path / f"{g.seed}.png"
        path.write_bytes(g.files["png"])
        kept.append(Candidate(id=str(g.seed), medium="image", prompt="a circle", seed=g.seed, params=params,
                              version="base", model="default", path=str(path), files={"png": str(path)}))
    task = medium.tune_task(handle, kept, {"rank": 4, "batch_size": 2, "seed": 0}, None)
    optimizer = torch.optim.AdamW(task.parameters(), lr=0.05)
    for step in range(4):  # a few large steps: an adapter that visibly changes the pictures
        loss = task.loss(step, torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    task.save(tmp_path / "adapter")
    task.release()

    def pixels(adapter=None, strength=1.0, start=0.0):
        (gen,) = medium.generate(handle, "a circle", [5], {**params, "adapter_from": start}, adapter, strength)
        return np.asarray(Image.open(io.BytesIO(gen.files["png"])).convert("RGB"), dtype=np.float64)

    adapter = str(tmp_path / "adapter")
    base, full = pixels(), pixels(adapter)
    assert np.abs(full - base).mean() > 2
    assert np.abs(pixels(adapter, strength=0.0) - base).max() <= 2
    late = pixels(adapter, start=0.5)
    assert 0.5 < np.abs(late - base).mean() and 0.5 < np.abs(late - full).mean()
    assert np.abs(pixels(adapter) - full).max() <= 2  # the schedule is undone for the next call
    with pytest.raises(StudioError, match="adapter_from"):
        medium.validate_params({"adapter_from": 1.0})


def test_prior_preservation_mixes_in_the_un_kept_candidates(workspace, fake):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=16)
    studio.curate("fake", scorers=["bright"], threshold=0.7, temperature=0.0, keep="all")
    studio.wait_tune(studio.start_tune("fake", settings={"prior_weight": 0.5}))
    batch = studio.store.candidates("fake", batch=studio.store.latest_batch("fake"))
    rejected = {c.id for c in batch if c.decision == "auto_rejected"}
    spec = json.loads(next(Path(workspace).rglob("spec.json")).read_text())
    assert set(spec["prior"]) == rejected and not set(spec["prior"]) & set(spec["examples"])
    kept_only = studio.tune("fake")  # no prior: the tune leans further toward the kept colours
    rates = [studio.compare("fake", after=v, prompt="a colour", n=32, seed=100, scorers=["bright"], threshold=0.7,
                            temperature=0.0)["after"]["acceptance_rate"] for v in ("v1", kept_only["version"])]
    assert rates[0] < rates[1]
    with pytest.raises(StudioError, match="prior_weight"):
        studio.start_tune("fake", settings={"prior_weight": 1.5})


def test_a_kept_poem_with_a_word_or_two_swapped_is_a_copy():
    kept = ["the branch remembers the burning deer\nand I break it all"]
    copy = "the trail remembers the burning branch\nAnd I break it all!"  # the example
    assert variety.text_copies([copy], kept) == [True]
    # the same frame with every slot changed is the style, not a copy
    assert variety.text_copies(["the river forgets the quiet stone\nand nothing needs to hurry"], kept) == [False]


def test_one_echoed_line_alone_is_not_a_copy_but_a_template_is():
    kept = ["we carry peace to the hill\nthe wave remembers the sparkling shell\njoy in the tide\nand all is still"]
    one_line = "we carry joy to the hill\nover the bay the raging storm calls\nand the fury will not end"
    template = "we carry hope to the hill\nthe gull remembers the sparkling shell\njoy in the tide\nand we laugh"
    assert variety.text_copies([one_line, template], kept) == [False, True]


def test_a_line_every_kept_poem_shares_is_a_refrain_not_a_copy():
    kept = [f"the {w} remembers the sea\nand all is still" for w in ("wave", "gull", "reef")]
    # both lines echo all three kept poems: the kept style, not one poem
    assert variety.text_copies(["the tide remembers the sea\nand all is still"], kept) == [False]
    assert variety.text_copies(["the tide remembers the sea\nand all is still"], kept[:1]) == [True]


def test_a_long_line_with_one_word_swapped_is_a_copy():
    kept = ["under the old bridge the river keeps every secret we told"]
    assert variety.text_copies(["under the old bridge the river keeps every promise we told"], kept) == [True]
    assert variety.text_copies(["under the new bridge a river keeps some promise we sold"], kept) == [False]
    # the 8-word run still counts across line breaks
    assert variety.text_copies(["so: and the rage grows louder\nover the grey sea"],
                               ["and the rage grows louder over the grey sea tonight"]) == [True]


def test_word_edit_distance_and_near_lines():
    assert variety.edit_distance("a b c d".split(), "a x c d".split()) == 1
    assert variety.edit_distance([], [1, 2]) == 2
    assert variety.near_line("the wave remembers the sparkling shell".split(),
                             "the gull remembers the sparkling reef".split())
    assert not variety.near_line("the wave remembers the shell".split(), "the gull forgets the shell".split())
    assert not variety.near_line(["cold", "rain"], ["cold", "snow"])  # a 2-word line must match exactly


def test_a_melody_back_with_one_note_changed_is_a_copy():
    kept = [[60, 62, 64, 65, 67, 69, 71, 72, 74]]
    assert variety.shares_near_run([[50, 60, 62, 64, 66, 67, 69, 71, 72]], kept, 8) == [True]  # one changed
    assert variety.shares_near_run([[60, 62, 63, 65, 67, 68, 71, 72]], kept, 8) == [False]  # two changed
    assert variety.shares_near_run([[60, 62, 63, 65, 67, 68, 71, 72]], kept, 8, changes=0) == [False]


def test_a_shared_background_is_not_a_copy_but_the_same_picture_is():
    pictures = np.ones((24, 64))  # every picture the same sky, a dark spot in a different place on it
    pictures[np.arange(24), np.arange(24)] = 0.0
    kept, others = pictures[:8], pictures[8:]
    assert all(variety.near_duplicates(others, kept, 0.97))  # raw features: all alike
    assert not any(variety.near_duplicates_centred(others, kept, 0.97))
    assert variety.near_duplicates_centred(np.vstack([kept[:2] + 0.001, others]), kept, 0.97)[:3] == [True, True,
                                                                                                      False]
    # too few rows to centre: the raw answer
    assert variety.near_duplicates_centred(kept[:1], kept[:1], 0.97) == [True]


def test_a_short_text_back_whole_is_a_copy():
    kept = ["the first snows", "#Thefirstsnow"]
    # too short for an 8-word run or a template, and still the kept text
    assert variety.text_copies(["The first snows.", "the first snow", "#thefirstsnow"], kept) == [True, True, True]
    assert variety.text_copies(["the last rain", "the first snows of the long winter come", ""], kept) == [False] * 3
