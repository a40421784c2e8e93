"""The audit's page items in a real browser (Debian's chromium through Playwright), on the fake medium:
the page after a generate error, the large view's decision, the Fine-tune button during a tune."""
from __future__ import annotations

import pytest

from flow import SMALL, Flow, chromium, free_port, open_tab, serve_fake, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


SLOW_TUNE = """
prompt = "a colour"
n = 6
[tune]
steps = 12
slow = 0.5
"""


@pytest.fixture
def app(workspace, fake, tmp_path, monkeypatch):
    with serve_fake(workspace, tmp_path, monkeypatch, {"fake-slow": SLOW_TUNE}) as started:
        yield started


def error_toast(page) -> str:
    """Every toast's text: under load an earlier notice (the queue position) can stand before the error."""
    return " ".join(t.inner_text() for t in page.locator('[data-testid="toast-body"]').all())


def test_after_a_generate_error_the_old_batch_stays_and_generate_works(app):
    with chromium() as browser:
        flow = open_tab(browser, app.local_url, "fake")
        page = flow.page
        ids = flow.generate(4, prompt="a colour")
        flow.tab.locator(".scorers").get_by_text("Scorers: how candidates are scored").click()
        weights = flow.tab.locator(".scorer-weight")
        wait_until("the scorers shown", lambda: weights.first.locator("input[type=range]").is_visible(), 10)

        def every_weight_zero() -> bool:  # a fill while the accordion still mounts can be undone by its first render
            for slider in weights.all():
                if slider.locator("input[type=range]").input_value() != "0":
                    slider.locator("input[type=number]").fill("0")
                    slider.locator("input[type=number]").press("Enter")
            return all(s.locator("input[type=range]").input_value() == "0" for s in weights.all())

        wait_until("every weight 0", every_weight_zero, 10)
        flow.tab.locator(".generate-btn").click()
        wait_until("the error in one sentence", lambda: "weight above 0" in error_toast(page), 60)
        wait_until("Generate enabled again", lambda: flow.tab.locator(".generate-btn").is_enabled()
                   and flow.tab.locator(".generate-btn").inner_text() == "Generate", 30)
        wait_until("the old batch back", lambda: sorted(flow.decisions()) == sorted(ids), 30)
        assert "Making" not in flow.tab.locator(".gallery-box .gallery").first.inner_text()


def test_a_fraction_or_a_number_out_of_range_is_said_not_rounded(app):
    """Gradio's whole-number boxes rounded 1.5 candidates to 2 (and Steps 1.5 to 2) before the studio saw it, and
    its minimum/maximum check showed a bare "Error" badge for 0 candidates (and 0 in Adapter size)."""
    with chromium() as browser:
        flow = open_tab(browser, app.local_url, "fake")
        ids = flow.generate(3, prompt="a colour")
        for typed, sentence in ((1.5, "The number of candidates must be a whole number, not 1.5."),
                                (0, "The number of candidates must be between 1 and 512, not 0.")):
            flow.fill_number(".count", typed)
            flow.tab.locator(".generate-btn").click()
            wait_until(f"{typed} candidates in one sentence", lambda: sentence in error_toast(flow.page), 60)
            wait_until("Generate enabled again", lambda: flow.tab.locator(".generate-btn").is_enabled()
                       and flow.tab.locator(".generate-btn").inner_text() == "Generate", 30)
            assert sorted(flow.decisions()) == sorted(ids)  # nothing made: the old batch stays
            assert flow.tab.locator(".count input[type=number]").first.input_value() == str(typed)  # as typed
        flow.step("2 · Fine-tune")
        flow.fill_number(".tune-rank", 0)
        flow.tab.locator(".tune-btn").click()  # the fake's rank has no label of its own: "Rank"
        wait_until("the rank by its label",
                   lambda: "Rank must be a whole number from 1 to 512, not 0." in error_toast(flow.page), 60)


@pytest.fixture
def sound_app(workspace, fake):
    from studio import media
    from studio.app import launch
    from studio.engine import Studio

    media.register("fakesound", "fake_sound_medium:FakeSound")
    started = launch(Studio(workspace), port=free_port(), block=False, names=["fakesound"])
    yield started
    started.close()
    media._extra.pop("fakesound", None)
    media._instances.pop("fakesound", None)


def test_the_large_view_shows_p_and_x_and_space_plays_its_own_player(sound_app):
    with chromium() as browser:
        flow = open_tab(browser, sound_app.local_url, "fakesound")
        page = flow.page
        ids = flow.generate(3, prompt="a colour")
        flow.cards().first.locator(".card-caption").click()
        page.keyboard.press("Enter")
        box = page.locator("#studio-lightbox.open")
        box.wait_for()
        for key, decision, words in (("p", "hand_accepted", "Kept by you"), ("x", "hand_rejected", "Dropped by you")):
            page.keyboard.press(key)
            assert flow.decisions()[ids[0]] == decision
            assert box.get_attribute("data-decision") == decision
            assert words in box.locator(".lightbox-decision").inner_text()
        page.keyboard.press(" ")
        wait_until("the large view's player playing", lambda: page.evaluate(
            "() => !document.querySelector('#studio-lightbox audio').paused"), 10)
        assert page.evaluate("() => Array.from(document.querySelectorAll('.gallery-box audio')).every(a => a.paused)")
        page.keyboard.press(" ")
        wait_until("the large view's player paused", lambda: page.evaluate(
            "() => document.querySelector('#studio-lightbox audio').paused"), 10)
        page.keyboard.press("Escape")


def test_fine_tune_is_disabled_while_a_tune_runs(app):
    with chromium() as browser:
        flow = open_tab(browser, app.local_url, "fake")
        flow.pick_preset("slow")  # a tune whose steps sleep, so it is seen running
        flow.generate(6)
        flow.cull(["p", "p", "p"])
        flow.step("2 · Fine-tune")
        button = flow.tab.locator(".tune-btn")
        button.click()
        flow.wait_tune(("running",), 120)
        assert not button.is_enabled()
        flow.open()  # a reload while it runs: still disabled
        flow.step("2 · Fine-tune")
        flow.wait_tune(("running", "done"), 60)
        if flow.tune_status() == "running":
            assert not button.is_enabled()
        flow.wait_tune(("done",), 300)
        wait_until("Fine-tune enabled after the tune", lambda: button.is_enabled(), 30)


def test_at_1024x768_the_batch_starts_on_the_first_screen_and_labels_stay_small(app):
    """At 1024x768 the batch started about 1,600 px down and the charts' labels grew to about 28 px; a prompt
    longer than the model reads was only an error after Generate."""
    from fake_medium import PROMPT_WORDS

    with chromium() as browser:
        page = browser.new_page(viewport=SMALL)
        page.set_default_timeout(120_000)  # two shared cores under load
        flow = Flow(page, app.local_url, "fake")
        flow.open()
        # a prompt past what the model reads: said in one sentence once the field is left, before Generate
        flow.tab.locator(".prompt textarea").fill(" ".join(["a bright colour"] * PROMPT_WORDS))
        flow.tab.locator(".prompt textarea").blur()
        warning = flow.tab.locator(".prompt-warning").first
        wait_until("the long prompt said", lambda: "shorten it" in warning.inner_text(), 30, page)
        assert warning.inner_text().count("⚠") == 1 and not page.locator('[data-testid="toast-body"]').count()
        flow.tab.locator(".prompt textarea").fill("a colour")
        flow.tab.locator(".prompt textarea").blur()
        wait_until("the warning gone once it fits", lambda: "shorten it" not in warning.inner_text(), 30, page)

        flow.generate(8)
        page.evaluate("() => window.scrollTo(0, 0)")
        first = flow.cards().first.bounding_box()
        assert first["y"] + 80 <= SMALL["height"], f"the first card starts {first['y']:.0f} px down"
        sizes = flow.chart_label_sizes()
        assert sizes and 8 <= min(sizes) and max(sizes) <= 14, sizes
        flow.step("2 · Fine-tune")
        page.wait_for_timeout(500)
        sizes = flow.chart_label_sizes()
        assert sizes and 8 <= min(sizes) and max(sizes) <= 14, sizes  # the loss chart's too (they were 7 px)
        flow.step("1 · Curate")
        for section in ("More settings", "Scorers: how candidates are scored"):
            flow.tab.get_by_text(section, exact=True).click()
        page.wait_for_timeout(500)
        assert flow.clipped_labels() == []


def slow_model_calls(monkeypatch) -> list[tuple[str, list[int]]]:
    """The fake medium's model calls, recorded (prompt, seeds); a prompt with "slowly" holds the model 8 s."""
    import time

    import fake_medium

    plain = fake_medium.FakeMedium.generate
    calls: list[tuple[str, list[int]]] = []

    def counted(self, handle, prompt, seeds, params, adapter=None, strength=1.0):
        calls.append((prompt, list(seeds)))
        if "slowly" in prompt:
            time.sleep(8)
        return plain(self, handle, prompt, seeds, params, adapter, strength)

    monkeypatch.setattr(fake_medium.FakeMedium, "generate", counted)
    return calls


def test_a_generate_waiting_behind_another_shows_its_place_in_the_queue(app, monkeypatch):
    """Generates on one model run one at a time: the one that waits says where it stands (Gradio's queue)."""
    import re

    slow_model_calls(monkeypatch)
    with chromium() as browser:
        pages = [browser.new_page(viewport={"width": 1440, "height": 900}) for _ in range(2)]
        first, second = (Flow(page, app.local_url, "fake") for page in pages)
        for flow in (first, second):
            flow.page.set_default_timeout(120_000)
            flow.open()
        first.tab.locator(".prompt textarea").fill("a colour, slowly")
        first.tab.locator(".generate-btn").click()
        wait_until("the first generate running", lambda: not first.tab.locator(".generate-btn").is_enabled(), 20)
        second.tab.locator(".prompt textarea").fill("a colour")
        second.tab.locator(".generate-btn").click()
        gallery = second.tab.locator(".gallery-box").first
        # another prompt cannot join the running call: it waits in the engine's line of model calls
        wait_until("the second generate's place in the line (the tracker)",
                   lambda: re.search(r"Waiting for its turn \(\d+ of \d+", gallery.inner_text()), 20, second.page)
        words = second.tab.locator(".gallery-queue").first  # and in words, in the waiting gallery
        wait_until("its place in words", lambda: "Waiting for its turn" in words.inner_text(), 10, second.page)
        assert re.search(r"\((\d+) of (\d+) waiting\)", words.inner_text()), words.inner_text()
        wait_until("both batches made", lambda: all(f.tab.locator(".generate-btn").is_enabled()
                                                    and len(f.decisions()) == 8 for f in (first, second)), 60)
        assert "queue:" not in gallery.inner_text() and "Waiting" not in gallery.inner_text()


def test_two_generates_from_the_page_with_one_model_and_settings_share_one_model_call(app, monkeypatch):
    """Two tabs ask for the same prompt and settings while a third's generate holds the model: both batches come
    from one call of the model (one after the other made two), each tab with its own seeds' candidates."""
    calls = slow_model_calls(monkeypatch)
    with chromium() as browser:
        pages = [browser.new_page(viewport={"width": 1440, "height": 900}) for _ in range(3)]
        busy, *tabs = (Flow(page, app.local_url, "fake") for page in pages)
        for flow in (busy, *tabs):
            flow.page.set_default_timeout(120_000)
            flow.open()
        busy.tab.locator(".prompt textarea").fill("a colour, slowly")
        busy.tab.locator(".generate-btn").click()
        wait_until("the first generate running", lambda: any("slowly" in p for p, _ in calls), 20)
        for flow, seed in zip(tabs, (0, 100)):
            flow.tab.locator(".prompt textarea").fill("a colour")
            flow.fill_number(".seed", seed)
            flow.fill_number(".count", 4)
            flow.tab.locator(".generate-btn").click()
        words = tabs[1].tab.locator(".gallery-queue").first
        wait_until("the second tab told it joins the first", lambda: "made together with 1 other request"
                   in words.inner_text(), 20, tabs[1].page)
        wait_until("both batches made", lambda: all(f.tab.locator(".generate-btn").is_enabled()
                                                    and len(f.decisions()) == 4 for f in tabs), 60)
        shown = [list(f.decisions()) for f in tabs]
    joined = [seeds for prompt, seeds in calls if prompt == "a colour"]
    assert len(joined) == 1 and sorted(joined[0]) == [0, 1, 2, 3, 100, 101, 102, 103]
    studio = app.studio_contexts[0].studio
    for ids, seed in zip(shown, (0, 100)):
        assert sorted(studio.store.candidate(cid).seed for cid in ids) == list(range(seed, seed + 4))
