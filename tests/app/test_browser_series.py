"""Series in a real browser (Debian's chromium through Playwright), on the fake medium: switching series keeps
the kept sets apart, and the Fine-tune step's strip shows what the next tune learns from, with Un-keep."""
from __future__ import annotations

import contextlib

import pytest

from flow import Flow, chromium, free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def served(workspace, fake):
    from studio.app import launch
    from studio.engine import Studio

    studio = Studio(workspace)
    started = launch(studio, port=free_port(), block=False, names=["fake"])
    yield studio, started
    started.close()


@contextlib.contextmanager
def opened(served):
    """(studio, page, flow) on the fake medium's tab in a fresh chromium page."""
    studio, started = served
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        flow = Flow(page, started.local_url, "fake")
        flow.open()
        yield studio, page, flow


def switch_series(flow: Flow, name: str) -> None:
    box = flow.tab.locator(".series-picker input")
    box.click()
    box.fill(name)
    box.press("Enter")
    flow.tab.locator(".prompt textarea").click()  # leaving the field settles a typed name


def test_switching_series_keeps_the_kept_sets_apart_and_the_strip_unkeeps(served):
    with opened(served) as (studio, page, flow):
        assert flow.dropdown(".series-picker") == "main"
        stars = flow.generate(4, "red stars")
        flow.cull(["p", "p", "x", "x"])
        wait_until("two kept in main", lambda: len(studio.next_kept_set("fake")) == 2, page=page)

        switch_series(flow, "lighthouse")
        wait_until("the new series is current", lambda: studio.current_series("fake") == "lighthouse", page=page)
        wait_until("an empty batch area for the new series", lambda: flow.decisions() == {}, page=page)
        sea = flow.generate(4, "a lighthouse")
        assert not set(sea) & set(stars)
        flow.cull(["p", "x", "x", "x"])
        wait_until("one kept in lighthouse", lambda: [c.id for c in studio.next_kept_set("fake")] == [sea[0]],
                   page=page)

        flow.step("2 · Fine-tune")
        strip = flow.tab.locator(".kept-strip .kept-item")
        wait_until("the strip shows the series' one kept", lambda: strip.count() == 1, page=page)
        assert strip.first.get_attribute("data-id") == sea[0]
        assert "in the series lighthouse" in flow.tab.locator(".tune-intro").first.inner_text()

        flow.step("1 · Curate")
        switch_series(flow, "main")
        wait_until("main's batch is back", lambda: set(flow.decisions()) == set(stars), page=page)
        assert flow.tab.locator(".prompt textarea").input_value() == "red stars"  # and its prompt
        flow.step("2 · Fine-tune")
        wait_until("main's two kept in the strip", lambda: {strip.nth(i).get_attribute("data-id")
                                                              for i in range(strip.count())} == set(stars[:2]),
                   page=page)
        strip.locator(f'button[data-unkeep="{stars[0]}"]').click()
        wait_until("the strip without the un-kept one", lambda: strip.count() == 1, page=page)
        assert studio.store.candidate(stars[0]).decision == "hand_rejected"
        assert [c.id for c in studio.next_kept_set("fake")] == [stars[1]]
        flow.screenshot("series-strip")


def test_a_fresh_page_keeps_the_top_quarter_until_the_threshold_moves(served):
    """Out of the box the rule is the batch's top quarter (the CLI's upper quartile), the threshold slider showing
    where it cuts; moving the threshold makes it "score above" that number."""
    with opened(served) as (studio, page, flow):
        flow.tab.locator(".spread input[type=checkbox]").uncheck()  # the fake's colours repeat: keep them all
        flow.fill_number(".softness", 0)
        ids = flow.generate(8, "a colour")
        kept = lambda: [i for i, d in flow.decisions().items() if d == "auto_accepted"]  # noqa: E731
        wait_until("the top quarter kept", lambda: len(kept()) == 2, 30, page)
        scores = flow.scores()
        cut = sorted(scores.values(), reverse=True)[1]
        assert sorted(kept()) == sorted(i for i in ids if scores[i] >= cut)
        slider = flow.tab.locator(".threshold input[type=number]").first
        wait_until("the slider at the cut", lambda: abs(float(slider.input_value()) - cut) < 0.01 + 1e-6, 10, page)
        assert flow.tab.locator(".keep-by input:checked").first.get_attribute("value") == "top share of the batch"
        flow.fill_number(".threshold", 0)
        wait_until("everything kept above 0", lambda: len(kept()) == 8, 30, page)
        assert flow.tab.locator(".keep-by input:checked").first.get_attribute("value") == "score above"
        flow.open()  # a reload keeps the rule the artist chose
        assert flow.tab.locator(".keep-by input:checked").first.get_attribute("value") == "score above"
        assert len(kept()) == 8


def test_after_a_tune_the_top_share_still_picks(served, monkeypatch):
    """A fixed threshold that keeps nearly all of a tuned version's batch is named; the relative rule picks."""
    monkeypatch.setenv("STUDIO_LAUNCHER", "python")
    with opened(served) as (studio, page, flow):
        flow.generate(8, "a colour")
        flow.cull(["p", "p", "p", "p"])
        assert flow.tune(4) == "done"
        flow.step("1 · Curate")
        wait_until("v1 selected for generating", lambda: flow.dropdown(".version-picker") == "v1", page=page)
        flow.tab.locator(".spread input[type=checkbox]").uncheck()  # the fake's colours repeat: keep them all
        flow.fill_number(".softness", 0)
        flow.fill_number(".threshold", 0)
        ids = flow.generate(8)
        assert all(studio.store.candidate(i).version == "v1" for i in ids)
        warning = flow.tab.locator(".separation-warning-box").first
        wait_until("the threshold named as no longer picking", lambda: "no longer picks" in warning.inner_text(),
                   30, page)
        flow.tab.locator(".keep-by").get_by_text("top share of the batch").click()
        kept = lambda: sum(d in ("auto_accepted", "hand_accepted") for d in flow.decisions().values())  # noqa: E731
        wait_until("the top quarter kept", lambda: kept() == 2, 30, page)
        assert "no longer picks" not in warning.inner_text()
        stored = [studio.store.candidate(i).decision for i in ids]
        assert stored.count("auto_accepted") == 2


def test_a_tune_can_start_from_the_base_on_everything_kept(served, monkeypatch):
    """Start from "the base" (ReST-EM): v2 is a tune of the base on both rounds' keeps, not of v1."""
    monkeypatch.setenv("STUDIO_LAUNCHER", "python")
    with opened(served) as (studio, page, flow):
        first = flow.generate(4, "a colour")
        flow.cull(["p", "p", "x", "x"])
        assert flow.tune(2) == "done"
        flow.step("1 · Curate")
        wait_until("v1 selected for generating", lambda: flow.dropdown(".version-picker") == "v1", page=page)
        second = flow.generate(4)  # (the fake's colours repeat: v1's keep may be left out as a copy)
        flow.cull(["p", "x", "x", "x"])
        flow.step("2 · Fine-tune")
        flow.tab.locator(".tune-start").get_by_text("the base, on everything kept").click()
        flow.tune(2)
        v2 = wait_until("v2 made", lambda: studio.store.version("fake", "v2"), page=page)
        assert v2.parent == "base" and studio.store.version("fake", "v1").parent == "base"
        assert set(first[:2]) <= set(v2.curated) <= {*first[:2], second[0]}  # round 1's keeps relearned
        page.reload()
        flow.step("2 · Fine-tune")
        checked = flow.tab.locator(".tune-start input:checked")
        wait_until("the choice restored after a reload", lambda: checked.count() == 1 and
                   checked.first.get_attribute("value") == "base", page=page)


@pytest.fixture
def new_keeps_only(workspace, fake, monkeypatch):
    """The fake medium with text's rule: a tune from a tuned version learns only the keeps it has not learned."""
    import dataclasses

    from fake_medium import FakeMedium, FakeTune

    from studio.settings import setting

    @dataclasses.dataclass
    class NewKeepsOnly(FakeTune):
        relearn: bool = setting(False, "learn again what the starting version learned")

    monkeypatch.setattr(FakeMedium, "tune_settings", NewKeepsOnly)
    monkeypatch.setenv("STUDIO_LAUNCHER", "python")


def test_a_tune_with_nothing_new_to_learn_says_so_and_the_page_goes_on(new_keeps_only, served):
    from test_browser_audit import error_toast

    with opened(served) as (studio, page, flow):
        flow.generate(4, "red stars")
        flow.cull(["p", "x", "x", "x"])
        assert flow.tune(2) == "done"
        intro = flow.tab.locator(".tune-intro").first
        wait_until("the intro says v1 learned them all", lambda: "v1 has learned all 1 kept" in intro.inner_text(),
                   page=page)
        flow.tab.locator(".tune-btn").click()  # on purpose: nothing new to learn
        wait_until("the mistake in one sentence",
                   lambda: "v1 has learned every kept fake candidate already" in error_toast(page), 30)
        assert flow.tab.locator(".tune-btn").is_enabled() and flow.tune_status() == "done"
        for close in page.locator('[data-testid="toast-close"]').all():  # read, the artist closes it
            close.click()
        wait_until("the notice closed", lambda: not page.locator('[data-testid="toast-body"]').count(), 10)
        flow.step("1 · Curate")
        from pathlib import Path

        learned = {Path(c.path).read_text() for c in studio.next_kept_set("fake")}
        made = flow.generate(8)  # with v1, the version the page works with; keep one that copies no keep
        fresh = next(i for i, cid in enumerate(made) if Path(studio.store.candidate(cid).path).read_text() not in learned)
        flow.cull(["p" if i == fresh else "x" for i in range(len(made))])
        flow.step("2 · Fine-tune")
        wait_until("the intro counts the one new keep",
                   lambda: "learns from the 1 of the 2 candidates kept" in intro.inner_text(), page=page)
        flow.tab.locator(".tune-btn").click()
        wait_until("v2 made", lambda: studio.versions("fake") == ["base", "v1", "v2"], page=page)
        assert len(studio.store.version("fake", "v2").curated) == 1  # the new keep alone
