"""The topic scorer reads the prompt's subject; a prompt in a language the model does not write gets a warning."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from studio.errors import StudioError
from studio.media.text.language import language_warning, prompt_language
from studio.media.text.scorers import prompt_subject
from studio.medium import ScoringContext


@pytest.mark.parametrize("prompt, subject", [
    ("a haiku about the first snow", "the first snow"),
    ("a slogan for a bakery that opens at dawn", "a bakery that opens at dawn"),
    ("the first line of a story about a lighthouse keeper.", "a lighthouse keeper"),
    ("rain", "rain"),
])
def test_prompt_subject(prompt, subject):
    assert prompt_subject(prompt) == subject


def test_topic_scorer_prefers_text_about_the_subject(medium, make_candidates):
    cands = make_candidates("a haiku about the first snow", ["white flakes settle on the quiet winter field",
                                                              "the stock market closed higher on Tuesday"])
    score = medium.scorers()["topic"](ScoringContext(medium=medium, favourites=[], decided=[]))
    snow, market = score(cands)
    assert snow > 0.3 and market == 0.0
    fixed = medium.scorers()["topic"](ScoringContext(medium=medium, favourites=[], decided=[],
                                                     options={"topic": "the stock market"}))(cands)
    assert fixed[1] > fixed[0]
    with pytest.raises(StudioError, match="low < high"):
        medium.scorers()["topic"](ScoringContext(medium=medium, favourites=[], decided=[],
                                                 options={"low": 0.5, "high": 0.2}))


def test_topic_gives_no_credit_for_the_subject_said_back(medium, make_candidates):
    from studio.media.text.scorers import own_words

    assert own_words("The first snow is the first snow.", "the first snow") == 0
    assert own_words("The first snow melted.", "the first snow") == 1
    assert own_words("white flakes settle on the quiet winter field", "the first snow") == 6
    cands = make_candidates("a haiku about the first snow", ["The first snow.", "The first snow is the first snow.",
                                                              "The first snow melted.",
                                                              "the first snow settles on the quiet field"])
    back, again, melted, field = medium.scorers()["topic"](ScoringContext(medium=medium, favourites=[], decided=[]))(
        cands)
    assert back == 0.0 and again == 0.0 and 0 < melted < field
    plain = medium.scorers()["topic"](ScoringContext(medium=medium, favourites=[], decided=[],
                                                     options={"own_words": 0}))(cands)
    assert plain[0] == 1.0  # off: the similarity alone, where the subject said back is as close as a text can be
    assert plain[3] == pytest.approx(field)  # three words of its own or more: the similarity in full
    with pytest.raises(StudioError, match="own_words"):
        medium.scorers()["topic"](ScoringContext(medium=medium, favourites=[], decided=[], options={"own_words": 1.5}))


def test_repeated_share_counts_the_runs_said_again():
    from studio.media.text.metrics import repeated_share

    assert repeated_share("the first snow is the first snow") == pytest.approx(1 / 5)
    assert repeated_share("white flakes settle on the quiet winter field") == 0.0
    assert repeated_share("snow falls") == 0.0  # no three-word run at all
    assert repeated_share("snow snow snow snow snow") == pytest.approx(2 / 3)
    assert repeated_share("white on the pine / a crow shakes it loose") == 0.0
    assert repeated_share("too short") == 0.0
    # 12 words, 10 runs of three, 5 of them different: half say one said before
    text = "the first snow is the first snow is the first snow again"
    assert repeated_share(text) == pytest.approx(5 / 10)
    assert repeated_share(text.upper()) == repeated_share(text)  # case and punctuation aside


def test_topic_scores_a_text_that_says_the_subject_again_and_again_less(medium, make_candidates):
    once = "the first snow settles on the quiet field and the town goes still"
    run_on = once + " " + " ".join(["the first snow is the first snow of the year"] * 4)
    cands = make_candidates("a haiku about the first snow", [once, run_on])
    context = ScoringContext(medium=medium, favourites=[], decided=[])
    fresh, repeated = medium.scorers()["topic"](context)(cands)
    assert repeated < 0.6 * fresh
    plain = medium.scorers()["topic"](ScoringContext(medium=medium, favourites=[], decided=[],
                                                     options={"repetition": 0}))(cands)
    assert plain[0] == pytest.approx(fresh)  # nothing repeated: the same score either way
    assert plain[1] > 2 * repeated  # what the embedding alone gave the run-on text
    for bad in (1.5, -0.1, "yes", True):
        with pytest.raises(StudioError, match="repetition"):
            medium.scorers()["topic"](ScoringContext(medium=medium, favourites=[], decided=[],
                                                     options={"repetition": bad}))


@pytest.mark.parametrize("prompt, language", [
    ("关于初雪的俳句", "Chinese"), ("初雪の俳句", "Japanese"), ("첫눈에 대한 하이쿠", "Korean"),
    ("хайку о первом снеге", "Russian or another Cyrillic-script language"),
    ("un haïku sur la première neige", "French"), ("un haiku sobre la primera nieve", "Spanish"),
    ("ein Haiku über den ersten Schnee", "German"),
    ("a haiku about the first snow", None), ("a slogan for La Boulangerie de Paris", None),
    ("a haiku about 雪", None), ("12345", None),
])
def test_prompt_language(prompt, language):
    assert prompt_language(prompt) == language


def test_warning_only_for_models_that_write_english_only(medium):
    assert "Chinese" in language_warning("关于初雪的俳句", ("en",))
    assert language_warning("关于初雪的俳句", ("en", "zh")) is None and "Thai" in language_warning("กลอน", ("en", "zh"))
    assert language_warning("a haiku about snow", ("en",)) is None
    assert "SmolLM2" in medium.prompt_warning("built-in:smollm2", "关于初雪的俳句")
    assert medium.prompt_warning("/some/other/model", "关于初雪的俳句") is None  # its languages are unknown


def test_engine_and_cli_warn(workspace):
    from studio.engine import Studio

    assert "Chinese" in Studio(workspace).prompt_warning("text", "关于初雪的俳句")
    env = dict(os.environ, STUDIO_HOME=str(workspace), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "studio", "generate", "text", "--prompt", "关于初雪的俳句", "-n", "2",
                           "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert "Chinese" in result["warning"] and result["warning"] in proc.stderr
    assert result["model"] == "built-in:grammar" and result["candidates"][0]["model"] == "built-in:grammar"
