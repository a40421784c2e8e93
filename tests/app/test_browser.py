"""The whole flow in a real browser (Debian's chromium, headless, through Playwright), on the fake medium.

Fast enough to check every promise of the page: generate, live sliders, keyboard culling of the
whole batch (flags flip at once, the store has them, a reload keeps them), clearing a decision,
a tune that a reload does not lose and whose version is selected after a reload, compare, one
zip per export, next round, History's actions, and no clipped label at 1280 px.
The real media go through the same steps in ``test_browser_media.py``.
"""
from __future__ import annotations

import json
import re
import time

import pytest

from flow import KEPT, NARROW, Flow, chromium, serve_fake, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FAKE_PRESET = """
description = "Bright colours, a slow tune so a reload can catch it"
prompt = "a {subject} colour"
subject = "bright"
n = 8
seed = 0
[params]
temperature = 1.0
[[scorers]]
name = "bright"
weight = 1.0
[rule]
threshold = 0.3
temperature = 0.0
[tune]
steps = 12
rank = 1
lr = 0.1
slow = 0.5
"""


@pytest.fixture
def app(workspace, fake, tmp_path, monkeypatch):
    with serve_fake(workspace, tmp_path, monkeypatch, {"fake-bright": FAKE_PRESET}) as started:
        yield started


def test_fake_medium_whole_flow(app, workspace):
    from studio.engine import Studio

    studio = Studio(workspace)
    with chromium() as browser:
        context = browser.new_context(viewport=NARROW)
        page = context.new_page()
        flow = Flow(page, app.local_url, "fake")
        flow.open()
        flow.pick_preset("bright")
        ids = flow.generate(8)
        assert len(ids) == 8
        seeds = sorted(json.loads(c.get_attribute("data-details"))["seed"] for c in flow.cards().all())
        assert seeds == list(range(8))

        # the live rule: the hard threshold follows the slider, from the stored scores
        for threshold in (0.5, 0.2, 0.8):
            flow.fill_number(".threshold", threshold)
            wait_until(f"the rule at {threshold}", lambda: flow.rule_follows(threshold), 10, page)
        assert "⚠" not in flow.tab.locator(".separation-warning-box").first.inner_text()

        # keyboard culling of the whole batch: flags flip at once, the store follows, a reload keeps them
        expected = flow.cull(["p", "x", "p", "p", "x", "p", "x", "p"])
        wait_until("the store holding every decision", lambda: flow.stored(studio, ids) == expected, 10)
        flow.open()
        assert flow.decisions() == expected
        for _ in range(2):  # a reload restores the rule as last set, and does not change it (twice)
            assert flow.tab.locator(".softness input[type=number]").first.input_value() == "0"  # the preset's
            assert flow.tab.locator(".threshold input[type=number]").first.input_value() == "0.8"  # as last moved
            flow.open()
        assert flow.decisions() == expected
        assert "Kept 5 of 8" in flow.tab.locator(".acceptance").inner_text()
        # a hand decision wins over the rule, and U gives the card back to the rule
        flow.fill_number(".threshold", 1)
        time.sleep(1)
        assert flow.decisions() == expected
        flow.cards().nth(1).locator(".card-caption").click()
        page.keyboard.press("u")
        by_rule = "auto_accepted" if flow.scores()[ids[1]] >= 1 else "auto_rejected"
        assert flow.decisions()[ids[1]] == by_rule
        wait_until("the cleared decision stored", lambda: flow.stored(studio, [ids[1]])[ids[1]] == by_rule, 10)
        # Enter opens the large view with the prompt, seed, settings and scores; Escape closes it
        page.keyboard.press("Enter")
        box = page.locator("#studio-lightbox.open")
        box.wait_for()
        assert "a bright colour" in box.inner_text() and "Score: bright" in box.inner_text()
        page.keyboard.press("x")
        assert flow.decisions()[ids[1]] == "hand_rejected"
        page.keyboard.press("Escape")
        assert not page.locator("#studio-lightbox.open").count()
        assert flow.clipped_labels() == []

        # fine-tune: a reload while it runs still shows it, and the new version is selected everywhere
        flow.step("2 · Fine-tune")
        flow.tab.locator(".tune-btn").click()
        flow.wait_tune(("running",), 60)
        flow.open()
        flow.step("2 · Fine-tune")
        assert flow.wait_tune(("running", "done"), 30) == "running", "the reload lost the tune"
        assert flow.wait_tune(("done", "failed", "cancelled", "interrupted")) == "done"
        wait_until("v1 selected", lambda: flow.versions_selected() == ("v1", "v1", "v1"), 20, page)
        flow.open()
        wait_until("v1 still selected after a reload", lambda: flow.versions_selected() == ("v1", "v1", "v1"), 20,
                   page)
        assert studio.store.get_setting("app.fake")["version"] == "v1"

        # compare base and v1 on the same held-out seeds, figures in plain words with tooltips
        pairs = flow.compare(4)
        for i in range(4):
            seeds_in_pair = re.findall(r"seed (\d+)", pairs.nth(i).inner_text())
            assert len(seeds_in_pair) == 2 and seeds_in_pair[0] == seeds_in_pair[1]
            assert "Before (base)" in pairs.nth(i).inner_text() and "After (v1)" in pairs.nth(i).inner_text()
        metrics = flow.tab.locator(".metrics").first
        for words in ("kept share", "average score", "variety", "best of 2 from base", "after (v1)"):
            assert words in metrics.inner_text()
        assert metrics.locator("abbr[title]").count() >= 3
        # the verdict: one plain sentence on top of the figures, the engine's own (docs/cli-verdict.md)
        verdict = metrics.locator(".verdict").inner_text()
        assert verdict == studio.store.version("fake", "v1").metrics["verdict"]
        assert re.fullmatch(r"(More of what you kept \(.*\)"
                            r"(, as varied( as what you kept but narrower than the base \(\d\.\d\dx its variety\))?)?"
                            r"(, no copies|, few copies \(\d+%\))?\.|"
                            r"Not yet: the tuned version .*\.)", verdict), verdict
        assert studio.store.version("fake", "v1").metrics["strength"] == 1.0
        # the strength slider reaches the engine: at 0 the after side is the base itself
        flow.fill_number(".compare-strength", 0)
        flow.compare(4)
        wait_until("a compare at strength 0",
                   lambda: studio.store.version("fake", "v1").metrics.get("strength") == 0.0, 30, page)
        saved = studio.store.version("fake", "v1").metrics
        assert saved["after"]["mean_score"] == pytest.approx(saved["before"]["mean_score"])
        flow.fill_number(".compare-strength", 1)

        # export: one zip
        assert flow.export_zip().namelist()

        # next round: a fresh batch from v1 on new seeds, in the Curate step
        flow.step("3 · Compare")
        flow.tab.locator(".next-round-btn").click()
        wait_until("the next round's batch", lambda: len(flow.decisions()) == 8 and set(flow.decisions()) != set(ids),
                   page=page)

        def card_seeds():  # the gallery redraws after the decisions arrive: read it once it is whole
            try:
                return sorted(json.loads(c.get_attribute("data-details") or "{}").get("seed", -1)
                              for c in flow.cards().all())
            except Exception:  # a card replaced while being read
                return []

        new_seeds = wait_until("the next round's cards", lambda: (lambda seen: seen if len(seen) == 8 and
                                                                  seen != list(range(8)) else None)(card_seeds()),
                               page=page)
        assert new_seeds == list(range(8, 16)) and flow.dropdown(".version-picker") == "v1"

        # History: the version with what it learned from, and actions that move the page
        page.get_by_role("tab", name="History").click()
        entry = page.locator('#tab-history .history-version[data-version="v1"]')
        entry.wait_for()
        assert "learned from" in entry.inner_text() and entry.locator(".history-thumb").count() >= 1
        entry.get_by_role("button", name="Compare").click()
        wait_until("History's compare action", lambda: flow.tab.locator(".compare-btn").is_visible(), 10, page)
        assert flow.dropdown(".compare-after") == "v1"
        assert flow.clipped_labels() == []
        context.close()
    assert sum(studio.store.candidate(i).decision in KEPT for i in ids) == 5
