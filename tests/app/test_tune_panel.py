"""The Fine-tune step's intro says what the next tune learns from, as the engine will count it."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from studio.app.cards import rewards_words
from studio.app.tune_panel import _intro, _status_html, learned_ids, strip_html
from studio.engine import Studio
from studio.errors import NothingToLearn


def test_the_intro_counts_only_the_keeps_a_tuned_version_has_not_learned(workspace, fake):
    studio = Studio(workspace)
    first = studio.generate("fake", "a colour", n=8)
    studio.curate("fake", accept=[c.id for c in first[:2]], reject=[c.id for c in first[2:]])
    studio.tune("fake", steps=2)
    second = studio.generate("fake", "a colour", n=8, seed=100, version="v1")
    studio.curate("fake", accept=[c.id for c in second[:3]], reject=[c.id for c in second[3:]])
    kept = studio.next_kept_set("fake")
    defaults = studio.medium("fake").tune_defaults
    relearning = SimpleNamespace(studio=studio, name="fake", medium=SimpleNamespace(tune_defaults=defaults))
    assert "learns from the **5** candidates kept across all rounds" in _intro(relearning, kept, "v1")
    new_only = SimpleNamespace(studio=studio, name="fake",
                               medium=SimpleNamespace(tune_defaults={**defaults, "relearn": False}))
    assert ("From **v1** the fine-tune learns from the **3** of the 5 candidates kept across all rounds that v1 "
            "has not learned") in _intro(new_only, kept, "v1")
    assert "learns from the **5** candidates" in _intro(new_only, kept, "base")  # the base learned none of them
    learned = learned_ids(new_only, kept, "v1")
    assert learned == {c.id for c in first[:2]} and learned_ids(relearning, kept, "v1") == set()
    strip = strip_html(kept, learned, "v1")  # all five, the two v1 learned dimmed and said
    assert strip.count('class="kept-item"') == 3 and strip.count('class="kept-item learned"') == 2
    assert strip.count("v1 learned it") == 2 and strip.count("Un-keep</button>") == 5
    studio.tune("fake", from_version="v1", steps=2, settings={"relearn": False})
    assert _intro(new_only, kept, "v2").startswith("**v2** has learned all **5** kept candidates already")
    with pytest.raises(NothingToLearn, match="v2 has learned every kept fake candidate already"):
        studio.tune("fake", from_version="v2", settings={"relearn": False})


def test_the_intro_says_a_later_rounds_gentler_step(workspace, fake):
    studio = Studio(workspace)
    batch = studio.generate("fake", "a colour", n=4)
    studio.curate("fake", accept=[c.id for c in batch[:2]], reject=[c.id for c in batch[2:]])
    kept = studio.next_kept_set("fake")
    defaults = studio.medium("fake").tune_defaults
    gentle = SimpleNamespace(studio=studio, name="fake", medium=SimpleNamespace(
        tune_defaults={**defaults, "tuned_lr_scale": 0.3}))
    assert "From v1, a tuned version, each step is 0.3x the learning rate." in _intro(gentle, kept, "v1")
    assert "learning rate" not in _intro(gentle, kept, "base")  # the first round steps at the rate itself
    same = SimpleNamespace(studio=studio, name="fake", medium=SimpleNamespace(tune_defaults=defaults))
    assert "learning rate" not in _intro(same, kept, "v1")
    # the image tune's guided (empty: on for SD 1.x/2.x) steps at the rate over the prompt strength: said, unless off
    for guided, said in ((None, True), (True, True), (False, False)):
        pictures = SimpleNamespace(studio=studio, name="fake", medium=SimpleNamespace(
            tune_defaults={**defaults, "guided": guided}))
        assert ("each step is the learning rate over the pictures' prompt strength" in _intro(pictures, kept)) == said
    # the image tune's extrapolate (1.5): the new version goes further than the tune took it, said unless 1
    for further, said in ((1.5, "goes 1.5x as far as the tune took it"), (1.0, None)):
        pictures = SimpleNamespace(studio=studio, name="fake", medium=SimpleNamespace(
            tune_defaults={**defaults, "extrapolate": further}))
        assert (said in _intro(pictures, kept)) if said else "as far as" not in _intro(pictures, kept)
    # the image tune's min_timestep (0.25): it learns at the noisier three quarters of the schedule, said unless 0
    for low, said in ((0.25, "learns at the noisier 75% of the noise schedule"), (0.5, "the noisier 50%"), (0, None)):
        pictures = SimpleNamespace(studio=studio, name="fake", medium=SimpleNamespace(
            tune_defaults={**defaults, "min_timestep": low}))
        assert (said in _intro(pictures, kept)) if said else "noise schedule" not in _intro(pictures, kept)
    # the music tune's transpose (2): each piece also learned in the keys around its own, said unless 0
    for moves, said in ((2, "moved up to 2 semitones up and down, its key with it"), (1, "up to 1 semitone up"),
                        (0, None)):
        pieces = SimpleNamespace(studio=studio, name="fake", medium=SimpleNamespace(
            tune_defaults={**defaults, "transpose": moves}))
        assert (said in _intro(pieces, kept)) if said else "semitone" not in _intro(pieces, kept)
    # the built-in voice's momentum (0): each step follows its own gradient, said unless momentum is on
    for momentum, said in ((0.0, True), (0.9, False)):
        takes = SimpleNamespace(studio=studio, name="fake", medium=SimpleNamespace(
            tune_defaults={**defaults, "momentum": momentum}))
        assert ("each step follows its own gradient alone (Momentum 0)" in _intro(takes, kept)) == said


def test_a_done_preference_tune_says_in_words_what_became_more_and_less_likely():
    words = rewards_words({"kept_reward": 22.0, "dropped_reward": -35.5})
    assert words == ("Compared with the version it started from, what you kept is now more likely and what you "
                     "dropped less likely.")
    displaced = rewards_words({"kept_reward": -16.1, "dropped_reward": -67.7})  # music dpo at beta 0.1
    assert "what you kept is now less likely" in displaced
    assert displaced.endswith("It learned what to avoid more than what you want.")
    assert "kept is now about as likely and" in rewards_words({"kept_reward": -0.001, "dropped_reward": -0.044})
    assert rewards_words({"kept_reward": 1.0}) == ""  # a side missing: nothing said
    assert "hardly moved" in rewards_words({"kept_reward": 0.0, "dropped_reward": -0.0})  # a 2-step tune
    info = {"version": "v1", "status": "done", "step": 8, "steps": 8, "loss": 0.1, "seconds_left": None,
            "result": {"seconds": 3}, "message": None, "rewards": {"kept_reward": 2.0, "dropped_reward": -3.0}}
    assert "what you kept is now more likely" in _status_html(info)
    assert "likely" not in _status_html({**info, "rewards": None})  # sft: no rewards, no line
    assert "likely" not in _status_html({**info, "status": "running"})  # said once the tune is done
