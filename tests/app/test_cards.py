"""What the panels show, from the store: live re-decisions, hand decisions winning, charts, compare table."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from studio.app import cards, gallery, plots
from studio.engine import Studio


def _scored(workspace, n=8):
    studio = Studio(workspace)
    made = studio.generate("fake", "a colour", n=n)
    studio.score("fake", made, ["bright"])
    return studio, [c.id for c in made]


def test_moving_the_threshold_redecides_from_stored_scores_without_rescoring(workspace, fake, monkeypatch):
    studio, shown = _scored(workspace)
    scores = {c.id: c.scores["score"] for c in studio.store.candidates("fake", ids=shown)}
    monkeypatch.setattr(studio, "score", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rescored")))
    monkeypatch.setattr(studio, "generate", lambda *a, **k: (_ for _ in ()).throw(AssertionError("regenerated")))
    for threshold in (0.2, 0.6, 0.9):
        cards.apply_rule(studio, "fake", shown, threshold, 0.0, keep="all")
        view, stats = cards.batch_view(studio, "fake", shown, threshold, 0.0, keep="all")
        for c in view:
            assert (c["decision"] == "auto_accepted") == (scores[c["id"]] >= threshold)
            assert c["p"] == (1.0 if scores[c["id"]] >= threshold else 0.0)
        assert stats["accepted"] == sum(s >= threshold for s in scores.values())
        assert stats["rate"] == stats["accepted"] / len(shown)


def test_a_near_copy_the_rule_skipped_says_so_on_its_card(workspace, fake):
    """"Skip near-copies" drops what the rule's chance let through: its card says why, not just "rule keeps 100%"."""
    studio, shown = _scored(workspace, n=16)
    cards.apply_rule(studio, "fake", shown, 0.0, 0.0, keep="spread")
    view, _ = cards.batch_view(studio, "fake", shown, 0.0, 0.0, keep="spread")
    near = [c for c in view if c["near_copy"]]
    assert near and all(c["decision"] == "auto_rejected" and c["p"] == 1.0 for c in near)  # the fake's colours repeat
    assert all(not c["near_copy"] for c in view if c["decision"] == "auto_accepted")
    assert "a near-copy of a better kept one" in gallery.card_html(near[0], 0)
    kept = next(c for c in view if c["decision"] == "auto_accepted")
    assert "near-copy" not in gallery.card_html(kept, 0)
    plain, _ = cards.batch_view(studio, "fake", shown, 0.0, 0.0, keep="all")
    assert not any(c["near_copy"] for c in plain)


def test_the_top_share_names_ties_at_its_cut(workspace, fake):
    """A scorer that gives many candidates the same top score: the page says why the top share keeps more."""
    from types import SimpleNamespace

    from studio.app import curate_panel

    studio = Studio(workspace)
    made = studio.generate("fake", "a colour", n=16)
    colours = [Path(c.path).read_text() for c in made]
    common = max(set(colours), key=colours.count)
    studio.score("fake", made, ["colour"], {"colour": {"colour": common}})
    shown, ctx = [c.id for c in made], SimpleNamespace(studio=studio, name="fake")
    cut = cards.rule_threshold(studio, "fake", shown, cards.KEEP_BY[1], 0.5, 1 / 16)
    assert cut == 1.0
    warning = curate_panel.view(ctx, shown, cut, 0.0, False, cards.KEEP_BY[1], 1 / 16)["warning"]
    assert f"{colours.count(common)} of 16 candidates tie at the score 1.000" in warning
    assert "tie" not in (curate_panel.view(ctx, shown, cut, 0.0, False, cards.KEEP_BY[0], 1 / 16)["warning"] or "")


def test_a_hand_decision_wins_over_the_rule(workspace, fake):
    studio, shown = _scored(workspace)
    low = min(studio.store.candidates("fake", ids=shown), key=lambda c: c.scores["score"])
    high = max(studio.store.candidates("fake", ids=shown), key=lambda c: c.scores["score"])
    studio.curate("fake", accept=[low.id], reject=[high.id], apply_rule=False)
    for threshold in (0.0, 1.0):
        cards.apply_rule(studio, "fake", shown, threshold, 0.0)
        assert studio.store.candidate(low.id).decision == "hand_accepted"
        assert studio.store.candidate(high.id).decision == "hand_rejected"
    view, stats = cards.batch_view(studio, "fake", shown, 1.0, 0.0)
    assert stats["hand_accepted"] == 1 and stats["hand_rejected"] == 1
    assert "by you: 1 kept, 1 dropped" in cards.rate_summary(stats)
    assert "Kept set: " in cards.curated_summary(studio, "fake")  # the one word the page uses (not "curated")
    # each card also says what the rule alone would decide (what clearing the hand decision gives back)
    rules = {c["id"]: c["rule"] for c in view}
    assert rules[low.id] == "auto_rejected" and rules[high.id] == ("auto_accepted" if high.scores["score"] >= 1
                                                                   else "auto_rejected")


def test_the_pages_decisions_are_stored_and_clearing_gives_the_card_back_to_the_rule(workspace, fake):
    studio, shown = _scored(workspace)
    cards.apply_rule(studio, "fake", shown, 0.5, 0.0)
    first, second = shown[:2]
    stored = cards.store_decisions(studio, "fake", shown, [[first, "hand_accepted"], [second, "hand_rejected"],
                                                           ["not-shown", "hand_accepted"], [first, "delete"]], 0.5, 0.0)
    assert stored == {first: "hand_accepted", second: "hand_rejected"}
    assert studio.store.candidate(first).decision == "hand_accepted"
    stored = cards.store_decisions(studio, "fake", shown, [[first, "clear"]], 0.5, 0.0)
    by_rule = "auto_accepted" if studio.store.candidate(first).scores["score"] >= 0.5 else "auto_rejected"
    assert stored == {first: by_rule} and studio.store.candidate(second).decision == "hand_rejected"


def test_scores_that_cannot_separate_the_batch_are_named(workspace, fake):
    from studio.engine import separation_warning

    assert separation_warning([0.7] * 8).startswith("The scores cannot separate this batch (8 candidates, all equal)")
    assert "spread only 0.005" in separation_warning([0.5, 0.505])
    assert separation_warning([0.5, 0.52]) is None and separation_warning([0.3]) is None
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=4)
    flat = studio.curate("fake", scorers=["favourites"], threshold=0.5, temperature=0.0)  # no favourites: all 0
    assert "cannot separate" in flat["warning"] and "another scorer or pick by hand" in flat["warning"]
    varied = studio.curate("fake", scorers=["bright"], threshold=0.5, temperature=0.0)
    spread = max(studio.store.candidates("fake", ids=varied["accepted"] + varied["rejected"]),
                 key=lambda c: c.scores["score"]).scores["score"]
    assert ("warning" in varied) == (spread < 0.01)


def test_a_reload_shows_the_newest_batch(workspace, fake):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=3)
    second = studio.generate("fake", "a colour", n=2, seed=10)
    assert cards.latest_shown(studio, "fake") == [c.id for c in second]


def test_cards_pick_their_view_from_files():
    assert cards.kind({"png": "a.png"}) == "picture"
    assert cards.kind({"mid": "a.mid", "wav": "a.wav"}) == "sound"
    assert cards.kind({"png": "roll.png", "mid": "a.mid", "wav": "a.wav"}) == "sound"  # music with a picture
    assert cards.kind({"txt": "a.txt"}) == "words"


def test_charts(tmp_path):
    svg = plots.histogram_svg([0.1, 0.5, 0.5, 0.9], 0.6, 0.0, [False, False, False, True])
    assert svg.startswith("<svg") and svg.count("<rect") == 3 + 1  # three bins with scores, one of them with a kept one
    assert 'aria-label="score histogram, threshold 0.60"' in svg
    loss = plots.loss_svg([[1, 2.0], [2, 1.0]], 4)
    assert loss.startswith("<svg") and "<polyline" in loss and "step 4" in loss
    assert "No steps yet" in plots.loss_svg([], 4)
    import mido

    midi = mido.MidiFile()
    track = mido.MidiTrack()
    track += [mido.Message("note_on", note=60, velocity=80, time=0), mido.Message("note_off", note=60, time=480)]
    midi.tracks.append(track)
    midi.save(tmp_path / "a.mid")
    roll = plots.piano_roll(tmp_path / "a.mid")
    assert roll.getpixel((roll.width // 2, roll.height // 2)) != roll.getpixel((1, 1))


def test_compare_table_and_pairs(workspace, fake):
    studio, _ = _scored(workspace)
    studio.curate("fake", threshold=0.5, temperature=0.0)
    studio.tune("fake", steps=3)
    result = studio.compare("fake", after="v1", prompt="a colour", n=4, seed=100, scorers=["bright"],
                            threshold=0.5, temperature=0.0)
    headers, rows = cards.metrics_rows(result)
    assert headers == ["", "before (base)", "after (v1)", "best of 2 from base"]
    assert [r[0] for r in rows][:3] == ["kept share", "average score", "variety"]
    html = cards.metrics_html(result)
    assert 'title="The share of candidates the rule keeps' in html and "kept share" in html
    pairs = cards.compare_pairs(studio, "fake", result)
    assert [p["seed"] for p in pairs] == result["seeds"]
    assert all(p["before"]["version"] == "base" and p["after"]["version"] == "v1" for p in pairs)
    page = gallery.pairs_html("fake", pairs)
    assert page.count('class="compare-pair"') == 4 and page.count("data-candidate-id") == 8


def test_cards_carry_the_page_contract_and_music_gets_a_player(workspace, fake, tmp_path):
    studio, shown = _scored(workspace, n=2)
    view, stats = cards.batch_view(studio, "fake", shown, 0.5, 0.0)
    page = gallery.batch_html("fake", view, cards.rate_summary(stats), "", None)
    for c in view:
        assert f'data-candidate-id="{c["id"]}" data-decision="{c["decision"]}"' in page
        assert c["detail"] is None  # the contract's default: a medium shows no line of its own
    assert "card-detail" not in page
    import mido

    midi = mido.MidiFile()
    track = mido.MidiTrack()
    track += [mido.Message("note_on", note=60, velocity=80, time=0), mido.Message("note_off", note=60, time=480)]
    midi.tracks.append(track)
    midi.save(tmp_path / "a.mid")
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    music = {**view[0], "kind": "sound", "files": {"mid": str(tmp_path / "a.mid"), "wav": str(tmp_path / "a.wav")}}
    html = gallery.media_html(music)
    assert '<audio class="candidate-audio" controls' in html and "a.wav" in html
    assert 'class="piano-roll" src="data:image/png;base64,' in html
    assert gallery.media_html({**view[0], "kind": "picture", "files": {"png": "/x/a.png"}}).count("<img") == 1


def test_every_built_in_scorer_is_described_in_a_line_without_code_words():
    from studio import media
    from studio.app.context import scorer_descriptions
    from studio.errors import StudioError

    for name in media.available():
        try:
            medium = media.get(name)
        except StudioError:
            continue
        for scorer, line in scorer_descriptions(medium).items():
            assert line.startswith("Rewards") and "options[" not in line, (name, scorer, line)


def test_the_top_share_rule_keeps_a_quarter_of_the_shown_batch(workspace, fake):
    studio, shown = _scored(workspace)
    scores = sorted((c.scores["score"] for c in studio.store.candidates("fake", ids=shown)), reverse=True)
    assert cards.rule_threshold(studio, "fake", shown, "top share of the batch", 0.9, 0.25) == scores[1]
    assert cards.rule_threshold(studio, "fake", shown, "score above", 0.9, 0.25) == 0.9
    assert cards.rule_threshold(studio, "fake", [], "top share of the batch", 0.9, 0.25) == 0.9  # nothing shown


@pytest.mark.slow  # one tune process
def test_after_a_tune_the_page_names_a_threshold_that_keeps_nearly_all(workspace, fake):
    from types import SimpleNamespace

    from studio.app import curate_panel

    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=8)
    studio.curate("fake", best_of=4)
    studio.tune("fake", steps=5)
    made = studio.generate("fake", "a colour", n=8, seed=50, version="v1")
    studio.score("fake", made, ["bright"])
    shown = [c.id for c in made]
    ctx = SimpleNamespace(studio=studio, name="fake")
    cards.apply_rule(studio, "fake", shown, 0.0, 0.0, keep="all")
    assert "no longer picks" in curate_panel.view(ctx, shown, 0.0, 0.0, False, "score above")["warning"]
    share = cards.rule_threshold(studio, "fake", shown, "top share of the batch", 0.0, 0.25)
    relative = curate_panel.view(ctx, shown, share, 0.0, False, "top share of the batch")
    assert "no longer picks" not in relative["warning"]


def _narrow_batch(workspace, n=24, low=0.65, high=0.77):
    """A batch whose combined scores spread evenly over ``low``-``high`` (the issue's narrow batch)."""
    studio = Studio(workspace)
    made = studio.generate("fake", "a colour", n=n)
    studio.store.set_scores({c.id: {"score": low + (high - low) * i / (n - 1)} for i, c in enumerate(made)})
    return studio, [c.id for c in made]


def test_softness_is_counted_in_the_batchs_score_range():
    narrow = [0.65, 0.71, 0.77]
    assert cards.score_range(narrow) == pytest.approx(0.12)
    assert cards.rule_temperature(0.5, narrow) == pytest.approx(0.06)
    assert cards.rule_temperature(0.0, narrow) == 0.0  # still the hard threshold
    assert cards.rule_temperature(0.3, [0.5] * 4) == pytest.approx(0.3 * 0.01)  # no spread: the floor, not 0
    assert cards.rule_temperature(0.3, []) == pytest.approx(0.3)  # no batch: the whole 0-1 scale
    assert cards.softness_for(cards.rule_temperature(0.4, narrow), narrow) == pytest.approx(0.4)
    assert cards.softness_for(5.0, narrow) == 1.0  # a preset's large temperature: the slider's end
    # the help text's promise: a candidate `softness` of the range below the threshold is kept 1 time in e
    from studio import sampling

    p = sampling.acceptance_probability([0.75 - 0.3 * 0.12], 0.75, cards.rule_temperature(0.3, narrow))
    assert p[0] == pytest.approx(math.exp(-1))


def test_the_softness_slider_has_a_useful_range_on_a_narrow_batch(workspace, fake):
    """Scores over 0.65-0.77: a 0-1 temperature of 0.29 kept 88-100% of the batch; softness moves by the range."""
    import gradio as gr

    from studio.app.curate_panel import temperature_of
    from studio.app.tab import build_tab

    studio, shown = _narrow_batch(workspace)
    with gr.Blocks():
        ctx = build_tab(studio, "fake")
    values = {"shown": shown, "threshold": 0.75, "spread": False, "keep_by": cards.KEEP_BY[0], "top_share": 0.25}
    kept = {}
    for softness in (0.0, 0.1, 0.29, 0.6, 1.0):
        moved = {**values, "softness": softness}
        cards.apply_rule(studio, "fake", shown, 0.75, temperature_of(ctx, moved), keep="all")  # what moving it does
        html = ctx.view(moved)["gallery"]
        kept[softness] = int(re.search(r"Kept (\d+) of 24", html).group(1))
    assert kept[0.0] == 4  # 0.754, 0.760, 0.765, 0.77: strictly by the threshold
    assert kept[0.0] <= kept[0.1] <= kept[0.29] <= kept[0.6] <= kept[1.0], kept
    assert kept[0.29] <= 15, kept  # about 11 of 24 expected, where a 0-1 temperature of 0.29 keeps about 21
    assert kept[1.0] >= 12, kept  # the slider's far end keeps much of the batch below the threshold (about 18)


def test_the_large_view_says_settings_in_words():
    """The large view showed "LoRAs []", an empty "Avoid" and "Decode in tiles false"."""
    assert [gallery.setting_words(v) for v in ([], "", None, False, True, ["a.safetensors:0.8", "b"], 12, 0.5, 8.0)] == [
        "none", "none", "none", "no", "yes", "a.safetensors:0.8, b", "12", "0.5", "8"]


def test_compare_figures_read_as_shares_and_a_drop_to_none_in_points():
    """The text compare screenshot showed "0.000" for a share and "50% before, 0% after (0.0× as many)"."""
    assert cards.change_words(0.5, 0.0) == " (-50 points)"
    assert cards.change_words(0.25, 0.5) == " (2.0× as many)"
    assert cards.fmt(0.0, "copies_over_rule" in cards.SHARES) == "0%"
