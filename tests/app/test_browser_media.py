"""Every real medium through the page, on its embedded default (one app for the module, few candidates and
tune steps to stay lean): generate, the live rule, keyboard culling of the whole batch (stored, and kept
after a reload), pictures at least 256 px wide, music and voice takes that play, what the recogniser heard
under each take, a tune whose version is selected after a reload, compare and one zip per export.
Screenshots at 1440x900 and 1024x768 (NAME-1024.png) go to flow.SCREENSHOTS (docs/screenshots/ when
STUDIO_SCREENSHOTS names it).
"""
from __future__ import annotations

import pytest

from flow import ARTIST, KEPT, NARROW, Flow, chromium, free_port, screenshot, wait_until

# one worker runs the whole module (scripts/test: --dist loadfile): History must see every medium's tune
pytestmark = [pytest.mark.browser, pytest.mark.slow]

PRESETS = {"image": "bold-colour", "text": "haiku", "music": "lullaby", "voice": "audiobook"}
EXPORTS = {"voice": "ljspeech"}  # the format exported, when not the medium's first
N = 4  # candidates per batch
TUNE_STEPS = 2
KEYS = ["p", "x", "p", "p"]  # keep three, drop one


def importable(medium: str) -> bool:
    from studio import media

    try:
        media.get(medium)
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from studio.app import launch
    from studio.engine import Studio

    with pytest.MonkeyPatch.context() as patch:
        workspace = tmp_path_factory.mktemp("media") / "workspace"
        patch.setenv("STUDIO_HOME", str(workspace))
        patch.setenv("STUDIO_LAUNCHER", "python")  # the tune process without accelerate's start-up
        names = [m for m in PRESETS if importable(m)]
        app = launch(Studio(workspace), port=free_port(), block=False, names=names)
        try:
            with chromium() as browser:
                yield app, Studio(workspace), names, browser
        finally:
            app.close()


@pytest.mark.parametrize("medium", list(PRESETS))
def test_real_medium_through_the_page(served, medium):
    app, studio, names, browser = served
    if medium not in names:
        pytest.skip(f"the {medium} medium is not importable")
    context = browser.new_context(viewport=ARTIST)
    page = context.new_page()
    flow = Flow(page, app.local_url, medium)
    flow.open()
    flow.pick_preset(PRESETS[medium])
    flow.fill_number(".softness", 0)
    ids = flow.generate(N)

    # the live rule: the threshold re-decides from stored scores, the histogram follows
    middle = round(sorted(flow.scores().values())[N // 2], 2)
    flow.fill_number(".threshold", middle)
    wait_until("the rule following the threshold", lambda: flow.rule_follows(middle), 20, page)
    wait_until("the histogram following the threshold", lambda: f"threshold {middle:.2f}" in
               flow.tab.locator(".histogram svg").first.get_attribute("aria-label"), 20, page)

    # what an artist sees and hears
    if medium == "image":
        widths = [c.bounding_box()["width"] for c in flow.tab.locator(".gallery-box .candidate-image").all()]
        assert len(widths) == N and min(widths) >= 256, widths
    if medium in ("music", "voice"):
        players = flow.tab.locator(".gallery-box audio.candidate-audio")
        picture = ".piano-roll" if medium == "music" else ".sound-picture"  # voice: the waveform and pitch line
        assert players.count() == N and flow.tab.locator(f".gallery-box {picture}").count() == N
        durations = players.evaluate_all("""els => Promise.all(els.map(a => new Promise(done => {
            if (a.readyState >= 1) return done(a.duration);
            a.addEventListener('loadedmetadata', () => done(a.duration)); a.load(); })))""")
        assert all(d > 0 for d in durations), durations
    if medium == "voice":  # what the recogniser heard, against the line (the intelligibility scorer's transcript)
        heard = flow.tab.locator(".gallery-box .card-detail .heard")
        assert heard.count() == N and all(h.startswith("heard (") for h in heard.all_inner_texts())
    flow.screenshot(f"{medium}-curate")

    # at 1280 px, with the medium's settings and the scorers open, no label is cut off
    page.set_viewport_size(NARROW)
    for section in ("More settings", "Scorers: how candidates are scored"):
        flow.tab.get_by_text(section, exact=True).click()
    page.wait_for_timeout(500)
    assert flow.clipped_labels() == []
    for section in ("More settings", "Scorers: how candidates are scored"):
        flow.tab.get_by_text(section, exact=True).click()
    page.set_viewport_size(ARTIST)

    # keyboard culling of the whole batch, stored without waiting, kept after a reload
    expected = flow.cull(KEYS)
    wait_until("the store holding every decision", lambda: flow.stored(studio, ids) == expected, 20)
    if medium in ("music", "voice"):  # Space plays the focused piece, and again pauses it
        page.keyboard.press("ArrowLeft")
        page.keyboard.press(" ")
        wait_until("the piece playing", lambda: page.evaluate(
            "() => Array.from(document.querySelectorAll('.gallery-box audio')).some(a => !a.paused)"), 10)
        page.keyboard.press(" ")
        wait_until("the piece paused", lambda: page.evaluate(
            "() => Array.from(document.querySelectorAll('.gallery-box audio')).every(a => a.paused)"), 10)
    page.keyboard.press("Enter")
    page.locator("#studio-lightbox.open").wait_for()
    assert "Seed" in page.locator("#studio-lightbox").inner_text()
    if medium == "voice":
        assert page.locator("#studio-lightbox .lightbox-detail .heard").count() == 1
    flow.screenshot(f"{medium}-large-view")
    page.keyboard.press("Escape")
    flow.open()
    assert flow.decisions() == expected
    if medium == "text":  # the preset's scorers survive the reload too (haiku: syllables weighs 2)
        flow.tab.get_by_text("Scorers: how candidates are scored", exact=True).click()
        assert flow.tab.locator(".scorer-syllables input[type=number]").first.input_value() == "2"
        flow.tab.get_by_text("Scorers: how candidates are scored", exact=True).click()
        # the preset's stop at a blank line reached the model through the page's lines box (it came back empty)
        assert all(c.params.get("stop") == ["\n\n"] for c in studio.store.candidates("text", ids=ids))

    # the steps follow the kept set unless the artist types a number: the field starts empty and says so
    flow.step("2 · Fine-tune")
    epochs = studio.medium(medium).tune_defaults["epochs"]
    assert flow.tab.locator(".tune-steps input").first.input_value() == ""
    assert f"Empty: {epochs:g} passes over the kept set" in flow.tab.locator(".tune-steps").first.inner_text()
    wait_until("the dose in the intro", lambda: f"{epochs:g} passes over them" in
               flow.tab.locator(".tune-intro").first.inner_text(), 20, page)
    # a preference objective (text: dpo on SmolLM2, kto on the tests' grammar model; music, images: kto) learns
    # away from the drops too, and the intro says how many
    learns_away = studio.medium(medium).tune_defaults.get("objective", "sft") != "sft"
    assert ("dropped in their batches" in flow.tab.locator(".tune-intro").first.inner_text()) == learns_away

    # a short tune; its version is selected for generating, compare and export, also after a reload
    assert flow.tune(TUNE_STEPS) == "done", flow.tab.locator(".tune-state").first.inner_text()
    wait_until("v1 selected", lambda: flow.versions_selected() == ("v1", "v1", "v1"), 30, page)
    flow.step("2 · Fine-tune")
    if medium == "image":  # the strip shows each kept picture whole: a square picture in a square box
        box = flow.tab.locator(".kept-strip .kept-item img").first.bounding_box()
        assert box and abs(box["width"] - box["height"]) <= 1, box
    flow.screenshot(f"{medium}-tune")
    flow.open()
    wait_until("v1 selected after a reload", lambda: flow.versions_selected() == ("v1", "v1", "v1"), 30, page)

    # compare on held-out seeds, then export one zip
    pairs = flow.compare(6 if medium == "image" else 2)
    assert "Before (base)" in pairs.first.inner_text() and "After (v1)" in pairs.first.inner_text()
    if medium == "image":  # a dense grid: three pairs a row at 1440 px; flicker shows each pair in one place
        tops = [round(pairs.nth(i).bounding_box()["y"]) for i in range(6)]
        assert tops[0] == tops[1] == tops[2] and tops[3] > tops[0], tops
        box = flow.tab.locator(".pairs-box .compare-pairs").first.bounding_box()
        assert box["height"] < 900, box  # six pairs on one screen (they took about 2,700 px before)
        flow.tab.locator(".compare-view").get_by_text("Flicker").click()
        before, after = (pairs.first.locator(f".compare-{side}") for side in ("before", "after"))
        wait_until("before and after in one place", lambda: before.bounding_box()["x"] == after.bounding_box()["x"],
                   10, page)
        assert after.evaluate("e => getComputedStyle(e).animationName") == "studio-flicker"
        flow.tab.locator(".compare-view").get_by_text("Side by side").click()
    if medium in ("music", "voice"):
        assert flow.tab.locator(".compare-pair audio").count() == 4
    flow.screenshot(f"{medium}-compare")
    names_in_zip = flow.export_zip(EXPORTS.get(medium)).namelist()
    assert names_in_zip
    if medium == "voice":  # the kept takes as LJSpeech: wavs/ and metadata.csv
        assert any(n.endswith("metadata.csv") for n in names_in_zip) and any("/wavs/" in n for n in names_in_zip)
    if medium == "image":
        flow.screenshot("image-export")
    context.close()
    assert sum(studio.store.candidate(i).decision in KEPT for i in ids) == KEYS.count("p")


def test_history_shows_every_version(served):
    app, studio, names, browser = served
    context = browser.new_context(viewport=ARTIST)
    page = context.new_page()
    page.goto(app.local_url)
    page.get_by_role("tab", name="History").click()
    tuned = [m for m in names if studio.store.version(m, "v1") is not None]
    assert tuned == names, f"History runs after every medium's tune in this module, not only {tuned}"
    for medium in names:
        if medium in tuned:
            entry = page.locator(f'#tab-history .history-version[data-medium="{medium}"][data-version="v1"]')
            entry.wait_for()
            assert entry.locator(".history-thumb").count() >= 1 and "learned from" in entry.inner_text()
    screenshot(page, "history")
    context.close()
