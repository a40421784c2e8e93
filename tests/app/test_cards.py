"""What the panels show, from the store: live re-decisions, hand decisions winning, charts, compare table."""
from __future__ import annotations

from studio.app import cards, plots
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
        cards.apply_rule(studio, "fake", shown, threshold, 0.0)
        view, stats = cards.batch_view(studio, "fake", shown, threshold, 0.0)
        for c in view:
            assert (c["decision"] == "auto_accepted") == (scores[c["id"]] >= threshold)
            assert c["p"] == (1.0 if scores[c["id"]] >= threshold else 0.0)
        assert stats["accepted"] == sum(s >= threshold for s in scores.values())
        assert stats["rate"] == stats["accepted"] / len(shown)


def test_a_hand_decision_wins_over_the_rule(workspace, fake):
    studio, shown = _scored(workspace)
    low = min(studio.store.candidates("fake", ids=shown), key=lambda c: c.scores["score"])
    high = max(studio.store.candidates("fake", ids=shown), key=lambda c: c.scores["score"])
    studio.curate("fake", accept=[low.id], reject=[high.id], apply_rule=False)
    for threshold in (0.0, 1.0):
        cards.apply_rule(studio, "fake", shown, threshold, 0.0)
        assert studio.store.candidate(low.id).decision == "hand_accepted"
        assert studio.store.candidate(high.id).decision == "hand_rejected"
    _, stats = cards.batch_view(studio, "fake", shown, 1.0, 0.0)
    assert stats["hand_accepted"] == 1 and stats["hand_rejected"] == 1
    assert "by hand: 1 accepted, 1 rejected" in cards.rate_summary(stats)
    assert "Curated set: " in cards.curated_summary(studio, "fake")


def test_a_reload_shows_the_newest_batch(workspace, fake):
    studio = Studio(workspace)
    studio.generate("fake", "a colour", n=3)
    second = studio.generate("fake", "a colour", n=2, seed=10)
    assert cards.latest_shown(studio, "fake") == [c.id for c in second]


def test_cards_pick_their_view_from_files():
    assert cards.kind({"png": "a.png"}) == "image"
    assert cards.kind({"mid": "a.mid", "wav": "a.wav"}) == "audio"
    assert cards.kind({"txt": "a.txt"}) == "text"


def test_charts_are_images(tmp_path):
    hist = plots.histogram([0.1, 0.5, 0.5, 0.9], 0.6, [False, False, True, True])
    assert hist.size == (plots.WIDTH, plots.HEIGHT)
    # the threshold line is drawn in red at 60% of the plot's width
    x = int(plots.MARGIN + 0.6 * (plots.WIDTH - 8 - plots.MARGIN))
    assert any(hist.getpixel((x + dx, 60)) == (192, 57, 43) for dx in (-1, 0, 1))
    assert plots.loss_curve([[1, 2.0], [2, 1.0]], 4).size == (plots.WIDTH, plots.HEIGHT)
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
    assert headers == ["metric", "before (base)", "after (v1)", "best-of-2 from base"]
    assert [r[0] for r in rows][:3] == ["acceptance rate", "mean score", "diversity"]
    pairs = cards.compare_pairs(studio, "fake", result)
    assert [p["seed"] for p in pairs] == result["seeds"]
    assert all(p["before"]["version"] == "base" and p["after"]["version"] == "v1" for p in pairs)
