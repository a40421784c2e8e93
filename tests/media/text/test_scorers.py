"""Built-in text scorers: values in [0, 1] that rank the way their names promise."""
from __future__ import annotations

import pytest

from studio.errors import StudioError
from studio.media.text.metrics import repeated_share
from studio.medium import ScoringContext


def ctx(medium, options=None, favourites=(), decided=(), handle=None):
    return ScoringContext(medium=medium, favourites=list(favourites), decided=list(decided), handle=handle,
                          options=dict(options or {}))


def test_style_prefers_the_described_style(medium, make_candidates):
    cands = make_candidates("a poem", ["waves break on the salty shore, gulls over the harbor",
                                       "taxis honk in the neon street below the tower"])
    sea, city = medium.scorers()["style"](ctx(medium, {"style": "the ocean and the sea"}))(cands)
    assert 0 <= city < sea <= 1
    sea2, city2 = medium.scorers()["style"](ctx(medium, {"exemplars": ["a ship on the sea", "rain"]}))(cands)
    assert city2 < sea2


def test_style_without_options_uses_the_prompt(medium, make_candidates):
    cands = make_candidates("a poem about the sea", ["waves break on the salty shore", "taxis honk in the street"])
    sea, city = medium.scorers()["style"](ctx(medium))(cands)
    assert city < sea


def test_style_scales_a_text_that_says_its_words_again(medium, make_candidates):
    loop = "she wept for her son, and she wept for his love. " * 4
    cands = make_candidates("a sea poem, melancholy", ["grey waves fold over the drowned pier at dusk", loop])
    fresh, looped = medium.scorers()["style"](ctx(medium))(cands)
    plain = medium.scorers()["style"](ctx(medium, {"repetition": 0}))(cands)
    assert plain[0] == pytest.approx(fresh)  # nothing repeated: the same score either way
    assert looped < 0.5 * plain[1]  # three quarters of its three-word runs said before
    with pytest.raises(StudioError, match="repetition"):
        medium.scorers()["style"](ctx(medium, {"repetition": 2}))
    with pytest.raises(StudioError, match="Unknown style option 'colour'"):
        medium.scorers()["style"](ctx(medium, {"colour": "blue"}))


NEEDED = {"syllables": {}, "metre": {}, "rhyme": {"scheme": "AAAA"}, "lines": {"max_words": 10},
          "constraints": {"max_words": 200}, "style": {}, "topic": {}, "english": {}}


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_every_scorer_charges_a_loop(medium, make_candidates, name):
    loop = "the sea is grey at the end of day,\nthe gulls fly far and far away,\n" * 4
    cands = make_candidates("a sea poem", [loop])
    plain, = medium.scorers()[name](ctx(medium, {**NEEDED[name], "repetition": 0}))(cands)
    charged, = medium.scorers()[name](ctx(medium, NEEDED[name]))(cands)
    assert charged == pytest.approx(plain * (1 - repeated_share(loop)))
    assert plain > 0 and charged < 0.3 * plain
    with pytest.raises(StudioError, match=f"The {name} option 'repetition' must be a number from 0 to 1"):
        medium.scorers()[name](ctx(medium, {**NEEDED[name], "repetition": 2}))


def test_a_text_that_says_its_words_again_and_again_loops(medium, make_candidates):
    looped = "The waves of the sea\nA far from the shore\n" + "A far from the shore\n" * 6
    cands = make_candidates("a sea poem", ["grey waves fold over the drowned pier at dusk", looped,
                                           "the tide goes out, the tide comes in, and the pier waits"])
    assert medium.looping(cands) == [False, True, False]


def test_syllables():
    from studio.media.text.scorers import count_syllables

    assert [count_syllables(w) for w in ["sea", "water", "silent", "make", "butterfly", "the"]] == [1, 2, 2, 1, 3, 1]


def test_constraints(medium, make_candidates):
    haiku = "an old silent pond\na frog jumps into the pond\nsplash silence again"
    cands = make_candidates("haiku", [haiku, "one long line with far too many words for any haiku at all, sea"])
    score = medium.scorers()["constraints"](ctx(medium, {"syllables": "5-7-5", "max_lines": 3}))
    good, bad = score(cands)
    assert good == pytest.approx(1.0) and bad < 0.6
    words = medium.scorers()["constraints"](ctx(medium, {"must": ["pond"], "must_not": "sea", "regex": r"^an "}))
    assert words(cands) == [1.0, 0.0]
    assert medium.scorers()["constraints"](ctx(medium, {"min_words": 4, "max_words": 8}))(cands)[1] < 1.0


@pytest.mark.parametrize("options, message", [({}, "at least one option"), ({"colour": 1}, "Unknown"),
                                               ({"regex": "("}, "regex"), ({"syllables": "five"}, "5-7-5"),
                                               ({"max_words": -2}, "max_words")])
def test_constraints_bad_options(medium, options, message):
    with pytest.raises(StudioError, match=message):
        medium.scorers()["constraints"](ctx(medium, options))


def test_favourites_and_preference(medium, make_candidates):
    liked = make_candidates("p", ["the moon over the quiet sea", "stars shine on the ocean at night"], "f",
                            ["hand_accepted"] * 2)
    disliked = make_candidates("p", ["angry traffic in the city", "loud taxis in the neon street"], "d",
                               ["hand_rejected"] * 2)
    new = make_candidates("p", ["the night sea under the moon", "the city street is loud with taxis"], "n")
    fav = medium.scorers()["favourites"](ctx(medium, favourites=liked))(new)
    assert fav[1] < fav[0] <= 1
    pref = medium.scorers()["preference"](ctx(medium, decided=liked + disliked))(new)
    assert pref[1] < 0.5 < pref[0]
    with pytest.raises(StudioError, match="one candidate kept and one dropped by hand"):
        medium.scorers()["preference"](ctx(medium, decided=liked))
    with pytest.raises(StudioError, match="favourites"):
        medium.scorers()["favourites"](ctx(medium))


def test_fluency_prefers_what_the_model_writes(medium, default_handle, make_candidates):
    handle = default_handle
    own = medium.generate(handle, "a poem", [0], medium.validate_params({"temperature": 0, "max_new_tokens": 12}))
    cands = make_candidates("a poem", [own[0].text, "pond frog the taxi of of of salt 17"])
    mine, noise = medium.scorers()["fluency"](ctx(medium, handle=handle))(cands)
    assert 0 <= noise < mine <= 1
    with pytest.raises(StudioError, match="loaded model"):
        medium.scorers()["fluency"](ctx(medium))


def test_embed_and_diversity(medium, make_candidates):
    same = make_candidates("p", ["the sea the sea the sea"] * 3, "s")
    varied = make_candidates("p", ["the sea is wide", "a taxi in the rain", "snow falls on pines"], "v")
    assert medium.embed(None, varied).shape == (3, 384)
    assert medium.diversity(None, same) < medium.diversity(None, varied)
    assert medium.diversity_metrics(None, same)["distinct_2"] < medium.diversity_metrics(None, varied)["distinct_2"]


def test_distinct_n():
    from studio.media.text.metrics import distinct_n

    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a"], 2) == 0.0


def test_every_scorer_keeps_its_own_help_and_names_repetition(medium):
    from studio.scoring import describe

    described = {d["name"]: d for d in describe(medium)}
    assert set(described) == set(medium.scorers())
    for name, entry in described.items():
        assert entry["help"].startswith("Rewards") and "repetition" in entry["options"], (name, entry)
    assert described["lines"]["options"] == ["count", "min_lines", "max_lines", "min_words", "max_words", "repetition"]


def test_spreading_leaves_out_small_words_and_the_prompts_own(medium, make_candidates):
    tuned = make_candidates("a sea poem", ["Abe the sea, and I", "Abe the sea, I", "the sea and I", "Abe, I"], "t")
    kept = make_candidates("a sea poem", ["Abe I, a world", "the sea is grey", "grey", "a poem"], "k")
    base = make_candidates("a sea poem", ["the sea", "a sea", "I", "grey"], "b")
    assert medium.spreading(tuned, kept, base) == {"word": "abe", "after": 0.75, "kept": 0.25, "before": 0.0}
    haiku = make_candidates("a haiku about the first snow", ["snowfall on the hill", "first snowfall, quiet",
                                                             "snowfall and crows", "the snowfall"], "h")
    assert medium.spreading(haiku, kept, base) is None  # "snowfall" is the subject's own word, not a habit
