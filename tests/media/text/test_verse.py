"""Syllables, stress and rhyme from the CMU Pronouncing Dictionary, and the scorers built on them."""
from __future__ import annotations

import pytest

from studio.errors import StudioError
from studio.media.text import verse
from studio.medium import ScoringContext


def ctx(medium, options=None):
    return ScoringContext(medium=medium, favourites=[], decided=[], options=dict(options or {}))


@pytest.mark.parametrize("line, count", [
    ("An old silent pond", 5),  # Basho, as Englished by Hass: 5-7-5
    ("A frog jumps into the pond", 7),
    ("splash! Silence again.", 5),
    ("Shall I compare thee to a summer's day?", 10),  # Shakespeare: pentameter
    ("The first snowfall of December", 8),
    ("glimmering snowflakes", 5),
    ("Whose woods these are I think I know", 8),  # Frost: tetrameter
])
def test_syllables_of_known_lines(line, count):
    assert verse.line_syllables(line) == count


def test_words_outside_the_dictionary_fall_back_to_spelling():
    assert not verse.known("snowglimmer")
    assert verse.syllables("snowglimmer") == 3 and verse.stresses("snowglimmer") == "???"
    assert [verse.syllables(w) for w in ["flurbed", "blorpe"]] == [1, 1]


def test_rhymes():
    assert verse.rhymes("snow", "glow") and verse.rhymes("night", "light") and verse.rhymes("day", "away")
    assert verse.rhymes("compare", "air")  # the rhyme starts at the last stressed vowel
    assert not verse.rhymes("snow", "snow")  # a word does not rhyme with itself
    assert not verse.rhymes("snow", "cow") and not verse.rhymes("orange", "door") and not verse.rhymes("love", "move")
    assert verse.rhymes("glorptight", "bright")  # unknown words: by spelling


def test_verse_lines_drop_list_marks_and_quotes():
    assert verse.verse_lines('"Snow falls,"\n\n- on the pond\n2. *quiet*\n') == ["Snow falls,", "on the pond", "quiet"]


def test_syllables_scorer_prefers_the_pattern(medium, make_candidates):
    cands = make_candidates("a haiku about a pond", [
        "An old silent pond\nA frog jumps into the pond\nsplash! Silence again.",
        "An old pond\nA frog jumps in\nsplash",
        "An old silent pond, a frog jumps into the pond, splash! Silence again.",
    ])
    exact, short, one_line = medium.scorers()["syllables"](ctx(medium))(cands)
    assert exact == 1.0 and 0 < short < exact and one_line < short
    assert medium.scorers()["syllables"](ctx(medium, {"pattern": [17]}))(cands)[2] == pytest.approx(1.0)
    with pytest.raises(StudioError, match="5-7-5"):
        medium.scorers()["syllables"](ctx(medium, {"pattern": "five"}))
    with pytest.raises(StudioError, match="Unknown syllables option"):
        medium.scorers()["syllables"](ctx(medium, {"syllable": "5-7-5"}))


def test_rhyme_scorer_checks_the_scheme(medium, make_candidates):
    couplets = "The snow comes down so slow\nand all the fields aglow\nI walk into the night\nbeneath the silver light"
    crossed = "The snow comes down so slow\nI walk into the night\nand all the fields aglow\nbeneath the silver light"
    cands = make_candidates("a poem", [couplets, crossed, "one line"])
    aabb = medium.scorers()["rhyme"](ctx(medium, {"scheme": "AABB"}))(cands)
    abab = medium.scorers()["rhyme"](ctx(medium, {"scheme": "ABAB"}))(cands)
    assert aabb == [1.0, 0.0, 0.0] and abab == [0.0, 1.0, 0.0]
    assert medium.scorers()["rhyme"](ctx(medium, {"scheme": "XAXA"}))(cands)[0] == 0.0
    assert medium.scorers()["rhyme"](ctx(medium, {"scheme": "AXAX"}))(cands)[1] == 1.0
    with pytest.raises(StudioError, match="rhyme scheme"):
        medium.scorers()["rhyme"](ctx(medium, {"scheme": "ABCD"}))


def test_metre_scorer(medium, make_candidates):
    cands = make_candidates("a sonnet", ["Shall I compare thee to a summer's day?",
                                         "Happy frogs are jumping over meadows"])
    iambic = medium.scorers()["metre"](ctx(medium, {"metre": "iambic", "feet": 5}))(cands)
    trochaic = medium.scorers()["metre"](ctx(medium, {"metre": "trochaic", "feet": 5}))(cands)
    assert iambic[0] == 1.0 and iambic[0] > trochaic[0] and trochaic[1] > iambic[1]
    with pytest.raises(StudioError, match="Unknown metre"):
        medium.scorers()["metre"](ctx(medium, {"metre": "free"}))


def test_lines_scorer(medium, make_candidates):
    cands = make_candidates("a slogan", ["Fresh bread before the sun", "Bread\nat dawn", "We bake the bread that "
                                         "wakes the town before the sun comes up over the hill"])
    one, two, long = medium.scorers()["lines"](ctx(medium, {"count": 1, "min_words": 3, "max_words": 10}))(cands)
    assert one == 1.0 and two < one and long == pytest.approx(0.5)
    with pytest.raises(StudioError, match="at least one option"):
        medium.scorers()["lines"](ctx(medium))
    with pytest.raises(StudioError, match="above max_words"):
        medium.scorers()["lines"](ctx(medium, {"min_words": 5, "max_words": 2}))
    title, poem = medium.scorers()["lines"](ctx(medium, {"min_lines": 3, "max_words": 10}))(
        make_candidates("a sea poem", ['"The Sea\'s Elysium"', "Grey waves fold\nover the pier\nat dusk"], "m"))
    assert poem == 1.0 and title == pytest.approx(0.5 * (1 / 3) + 0.5)  # one line of the three asked for
    with pytest.raises(StudioError, match="above max_lines"):
        medium.scorers()["lines"](ctx(medium, {"min_lines": 5, "max_lines": 2}))


def test_lines_scales_a_loop_of_short_lines(medium, make_candidates):
    loop = "I am lost, I am lost,\n" * 12
    cands = make_candidates("a sea poem", ["Grey waves fold\nover the drowned pier\nat dusk", loop])
    poem, looped = medium.scorers()["lines"](ctx(medium, {"max_words": 10}))(cands)
    plain = medium.scorers()["lines"](ctx(medium, {"max_words": 10, "repetition": 0}))(cands)
    assert poem == plain[0] == 1.0 and plain[1] == 1.0  # every line short: the shape alone pays the loop in full
    assert looped < 0.2  # nearly every three-word run said before
    listed, = medium.scorers()["lines"](ctx(medium, {"max_words": 10}))(make_candidates("a poem", ["1.\n2.\n3.\n4"]))
    assert listed == 0.0  # list marks and a bare number are no lines of a poem (a tuned model's "1. 2. ... 42. 4")
    with pytest.raises(StudioError, match="repetition"):
        medium.scorers()["lines"](ctx(medium, {"max_words": 10, "repetition": -1}))


def test_english_scorer(medium, make_candidates):
    cands = make_candidates("a poem", ["the snow falls on the quiet town", "Ich können sein sollte zeigstest mit",
                                       "glorp snibble wuzzat the snow"])
    english, german, salad = medium.scorers()["english"](ctx(medium))(cands)
    assert english == 1.0 and german < 0.75 and salad == pytest.approx(0.4)
