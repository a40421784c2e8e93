"""What the recogniser heard, marked against the line: the alignment, the escaped HTML, the stored transcript
the page reads (never the recogniser), and the card that shows it."""
from __future__ import annotations

import shutil

import pytest

from voice_helpers import espeak_take
from studio.media import get
from studio.media.voice.heard import align_words, marked_html, store_transcript, stored_transcript, transcript_path
from studio.media.voice.recognise import character_error_rate
from studio.medium import Candidate, ScoringContext

LINE = "The quick brown fox jumps over the lazy dog."


def test_a_perfect_transcript_is_one_run_of_the_same_words():
    assert align_words(LINE, "the quick brown fox jumps over the lazy dog") == [
        ("same", "the quick brown fox jumps over the lazy dog".split(), "the quick brown fox jumps over the lazy dog".split())]
    html = marked_html(LINE, "THE QUICK brown fox, jumps over the lazy dog!")
    assert "<del" not in html and "<ins" not in html and "every word" in html


def test_missing_wrong_and_extra_words_are_each_marked():
    runs = align_words(LINE, "the quick brow in fox jumps over lazy dog today")
    assert [r for r in runs if r[0] != "same"] == [
        ("wrong", ["brown"], ["brow", "in"]), ("missing", ["the"], []), ("extra", [], ["today"])]
    said = [w for _, a, _ in runs for w in a]
    heard = [w for _, _, b in runs for w in b]
    assert said == LINE.lower().rstrip(".").split() and heard == "the quick brow in fox jumps over lazy dog today".split()
    html = marked_html(LINE, "the quick brow in fox jumps over lazy dog today")
    assert '<del class="heard-wrong"' in html and ">brown</del>" in html and ">brow in</ins>" in html
    assert '<del class="heard-missing"' in html and ">the</del> lazy" in html
    assert '<ins class="heard-extra"' in html and ">today</ins>" in html
    assert "character error rate" in html


def test_a_misheard_word_reads_as_wrong_not_as_missing_and_extra():
    assert align_words("a cat sat", "a hat sat") == [("same", ["a"], ["a"]), ("wrong", ["cat"], ["hat"]),
                                                     ("same", ["sat"], ["sat"])]


def test_nothing_heard_marks_every_word_missing_and_nothing_said_marks_every_word_extra():
    assert align_words("good evening", "") == [("missing", ["good", "evening"], [])]
    assert align_words("", "hello") == [("extra", [], ["hello"])]
    assert "(nothing)" in marked_html("", "")


def test_the_marking_escapes_what_it_shows():
    html = marked_html("say <b>this</b>", "say <script>alert(1)</script>")
    assert "<script>" not in html and "<b>" not in html


def test_the_transcript_is_stored_beside_the_take_and_read_back(tmp_path):
    wav = tmp_path / "abc123.wav"
    wav.write_bytes(b"RIFF")
    assert stored_transcript(wav) is None
    store_transcript(wav, "the quick brown fox")
    assert transcript_path(wav) == tmp_path / "abc123.heard.txt"
    assert stored_transcript(wav) == "the quick brown fox"
    store_transcript(wav, "")  # heard nothing is an answer too
    assert stored_transcript(wav) == ""


def _take(tmp_path, name="take1") -> Candidate:
    wav, txt = tmp_path / f"{name}.wav", tmp_path / f"{name}.txt"
    wav.write_bytes(b"RIFF")
    txt.write_text(LINE + "\n")
    return Candidate(id=name, medium="voice", prompt=LINE, seed=0, params={}, version="base", model="tiny",
                     path=str(wav), files={"wav": str(wav), "txt": str(txt)})


def test_the_card_shows_the_stored_transcript_and_runs_no_recogniser(tmp_path, monkeypatch):
    from studio.app import cards, gallery
    from studio.media.voice import recognise

    monkeypatch.setattr(recognise, "transcribe", lambda *a: (_ for _ in ()).throw(AssertionError("listened")))
    take = _take(tmp_path)
    assert get("voice").card_detail(take) is None  # not scored yet: nothing to show
    store_transcript(take.path, "the quick brown fox jumps over a lazy dog")
    card = cards.card(take, None)
    assert "<del" in card["detail"] and ">a</ins>" in card["detail"]
    html = gallery.card_html(card, 0)
    assert '<div class="card-detail"><div class="heard"' in html


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_the_intelligibility_scorer_stores_what_it_heard(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    take = espeak_take(tmp_path, "clean", "The weather will be cloudy.")
    score = get("voice").scorers()["intelligibility"](ScoringContext(medium=get("voice"), favourites=[], decided=[]))
    (value,) = score([take])
    heard = stored_transcript(take.path)
    assert heard is not None and "weather" in heard
    assert value == pytest.approx(max(0.0, 1 - character_error_rate("The weather will be cloudy.", heard)))
    assert "heard (" in get("voice").card_detail(take)
