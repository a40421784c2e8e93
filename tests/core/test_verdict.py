"""Compare's verdict: one plain sentence for each kind of round."""
from __future__ import annotations

import pytest

from studio.app import cards
from studio.engine import verdict


def result(before=0.25, after=0.6, best=0.45, copies=0.0, variety=1.0, n=2, base_diversity=None, diversity=None):
    return {"before": {"acceptance_rate": before, "diversity": base_diversity},
            "after": {"acceptance_rate": after, "copies": copies, "variety_vs_kept": variety, "diversity": diversity},
            "best_of_n_base": {"n": n, "acceptance_rate": best}, "seeds": list(range(16))}


def test_a_good_round():
    assert verdict(result()) == ("More of what you kept (25% -> 60% kept, best of two from the base 45%), "
                                 "as varied, no copies.")
    assert verdict(result(copies=0.0625)).endswith("as varied, few copies (6%).")


def test_a_good_round_narrower_than_the_base_says_so():
    # the kept set was narrow (all on one ground): as varied as it, and far narrower than what the base draws
    said = verdict(result(variety=1.26, base_diversity=0.62, diversity=0.18))
    assert said == ("More of what you kept (25% -> 60% kept, best of two from the base 45%), as varied as what you "
                    "kept but narrower than the base (0.29x its variety), no copies.")
    assert verdict(result(base_diversity=0.62, diversity=0.32)).endswith("), as varied, no copies.")
    assert verdict(result(base_diversity=0.0, diversity=0.0)).endswith("), as varied, no copies.")


@pytest.mark.parametrize("kwargs, words", [
    ({"after": 0.4}, "Not yet: the tuned version is no better than picking the best of two from the base "
                     "(40% kept, best of two 45%)."),
    ({"after": 0.604, "best": 0.597}, "Not yet: the tuned version is no better than picking the best of two from "
                                      "the base (60% kept, best of two 60%)."),  # never "more" beside an equal figure
    ({"after": 0.5, "best": 0.75, "before": 0.5}, "Not yet: the tuned version makes no more of what you kept "
                                                  "than the base (50% kept, the base 50%)."),
    ({"copies": 0.41}, "Not yet: the tuned version copies your keeps (41% of its candidates bring one back)."),
    ({"variety": 0.5}, "Not yet: the tuned version is less varied than what you kept (0.50x the kept set's "
                       "variety)."),
    ({"after": 0.2, "copies": 0.59, "variety": 0.6, "n": 4},
     "Not yet: the tuned version makes no more of what you kept than the base (20% kept, the base 25%), copies "
     "your keeps (59% of its candidates bring one back) and is less varied than what you kept (0.60x the kept "
     "set's variety)."),
])
def test_each_problem_is_named(kwargs, words):
    assert verdict(result(**kwargs)) == words


def unfinished(after, before=0.05, kept=0.0):
    out = result()
    out["after"]["unfinished"], out["before"]["unfinished"] = after, before
    out["kept"] = {"n": 8, "unfinished": kept}
    return out


def test_a_tune_that_stops_ending_what_it_makes_is_named():
    # the check loop's text tune at stop 70: 14 of 32 cut off at the length limit, the base 5%, the keeps none
    assert verdict(unfinished(0.44)) == ("Not yet: the tuned version stops ending what it makes (44% cut off at the "
                                         "length limit, the base 5%, your keeps 0%).")
    # within the margin over the higher of the base and the keeps: the round reads as it did
    assert verdict(unfinished(0.19)).startswith("More of what you kept")
    assert verdict(unfinished(0.44, kept=0.375)).startswith("More of what you kept")  # the artist kept long ones
    assert verdict(unfinished(0.44, before=0.31, kept=None)).startswith("More of what you kept")


def test_a_tune_that_loops_is_named():
    # the README's text loop with `lines` beside `style`, round 2: 19 of 32 loop, the base none, the keeps 3 of 29
    out = result()
    out["after"]["looping"], out["before"]["looping"], out["kept"] = 0.59, 0.0, {"n": 29, "looping": 0.10}
    assert verdict(out) == ("Not yet: the tuned version repeats itself (59% of what it makes loop, the base 0%, your "
                            "keeps 10%).")
    out["after"]["looping"] = 0.25  # within the margin over the keeps
    assert verdict(out).startswith("More of what you kept")


def test_a_tune_that_puts_one_word_everywhere_is_named():
    # the page's Short poem tune: one keep's "Abe" in 18 of 32 tuned poems, 2 of 32 base ones, 1 of the 8 keeps
    out = result()
    out["spread"] = {"word": "abe", "after": 0.5625, "kept": 0.125, "before": 0.0625}
    assert verdict(out) == ("Not yet: the tuned version puts one word in much of what it makes ('abe' in 56%; your "
                            "keeps 12%, the base 6%).")
    out["spread"] = {"word": "first", "after": 0.3125, "kept": 0.0, "before": 0.0}  # 5 of 16: within the margin
    assert verdict(out).startswith("More of what you kept")


def test_the_spread_word_is_the_one_held_most_beyond_the_keeps_and_the_base():
    from studio.media.text.metrics import spread_word

    tuned = ["Abe the sea", "In twilight, Abe the moon", "the moon and the sea", "Abe, sail"]
    kept = ["The sun sets, / Abe I, a world", "the moon over the sea", "grey sea", "a moon"]
    base = ["the sea is wide", "the moon is pale", "grey waves", "a ship"]
    assert spread_word(tuned, kept, base, skip={"the", "a", "and", "in", "i"}) == {
        "word": "abe", "after": 0.75, "kept": 0.25, "before": 0.0}
    assert spread_word(["the sea"], ["the sea"], ["the sea"]) is None  # nothing held more than before
    assert spread_word(["abe", "abe the sea"], ["grey"], ["sea"]) is None  # two texts: chance, not a habit


def test_without_a_kept_set_only_the_lift_is_judged():
    plain = result(copies=None, variety=None)
    assert verdict(plain) == "More of what you kept (25% -> 60% kept, best of two from the base 45%)."


def test_the_page_shows_the_verdict_first_and_no_change_in_words():
    same = {**result(before=0.5, after=0.5, best=0.75), "before_version": "base", "after_version": "v1"}
    same["verdict"] = verdict(same)
    page = cards.metrics_html(same)
    assert page.index('class="verdict"') < page.index("<table>")
    assert "no more of what you kept" in page
    assert "(no change)" in page and "1.0×" not in page
    assert cards.change_words(0.5, 0.52) == " (+2 points)"
    assert cards.change_words(0.25, 0.5) == " (2.0× as many)"
    assert cards.change_words(0.0, 0.25) == " (+25 points)"


def test_history_shows_the_verdict_and_no_change_in_words():
    from studio.app import history

    saved = {**result(before=0.5, after=0.5, best=0.75), "lift": 1.0}
    saved["verdict"] = verdict(saved)
    page = history.metrics_html(saved)
    assert page.index('class="verdict"') < page.index("Last compare")
    assert "kept share (no change)" in page and "1.0×" not in page


def test_the_page_shows_the_most_spread_word_on_both_sides():
    out = {**result(), "before_version": "base", "after_version": "v1",
           "spread": {"word": "abe", "after": 0.5625, "kept": 0.125, "before": 0.0625}}
    out["verdict"] = verdict(out)
    page = cards.metrics_html(out)
    assert "puts one word in much of what it makes" in page
    row = ("its most spread word</abbr></th><td class=\"num\">&#x27;abe&#x27; 6%</td>"
           "<td class=\"num\">&#x27;abe&#x27; 56%")
    assert row in page
