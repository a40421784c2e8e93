"""An artist's hands on one medium's tab, for the browser tests: each step waits for what the page must show."""
from __future__ import annotations

import io
import json
import os
import socket
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
# Screenshots go to a scratch folder, so a test run leaves the checkout as it found it; to refresh the docs' ones:
# STUDIO_SCREENSHOTS=docs/screenshots scripts/test tests/app
SCREENSHOTS = Path(os.environ.get("STUDIO_SCREENSHOTS") or Path(tempfile.gettempdir()) / "studio-screenshots")
TIMEOUT_S = 300  # a real medium generating on two shared CPU cores is slow
ARTIST = {"width": 1440, "height": 900}  # screenshots
NARROW = {"width": 1280, "height": 900}  # the narrowest layout that must not clip a label
SMALL = {"width": 1024, "height": 768}  # a small laptop: the batch still starts on the first screen
KEPT = ("hand_accepted", "auto_accepted")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def chromium():
    """Debian's chromium, headless; skips without it, except under CI where it fails."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing; install it with: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message + " (browser tests must run under CI)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serve_fake(workspace, tmp_path, monkeypatch, presets: dict[str, str], names=("fake",)):
    """The studio on a free port for ``names`` with these presets (file stem -> TOML); tunes start as plain
    python (no accelerate start-up)."""
    from studio.app import launch
    from studio.engine import Studio

    monkeypatch.setenv("STUDIO_LAUNCHER", "python")
    presets_dir = tmp_path / "presets"
    presets_dir.mkdir()
    for stem, text in presets.items():
        (presets_dir / f"{stem}.toml").write_text(text)
    started = launch(Studio(workspace), port=free_port(), block=False, names=list(names), presets_dir=presets_dir)
    try:
        yield started
    finally:
        started.close()


def open_tab(browser, url: str, medium: str, viewport=ARTIST) -> "Flow":
    """A new page on ``medium``'s tab, patient with two shared cores under load."""
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(120_000)
    flow = Flow(page, url, medium)
    flow.open()
    return flow


def wait_until(what: str, check, timeout_s: float = TIMEOUT_S, page=None):
    """Poll ``check`` until it returns something truthy; a page error toast fails at once."""
    deadline = time.time() + timeout_s
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        if page is not None:
            toasts = page.locator('[data-testid="toast-body"]')
            if toasts.count() and "error" in (toasts.first.get_attribute("class") or "") + toasts.first.inner_text():
                raise AssertionError(f"the page shows an error while waiting for {what}: {toasts.first.inner_text()}")
        time.sleep(0.2)
    raise AssertionError(f"{what} never happened (last: {last!r})")


class Flow:
    """One medium's tab in one browser page."""

    def __init__(self, page, url: str, medium: str):
        self.page, self.url, self.medium = page, url, medium
        self.tab = page.locator(f"#tab-{medium}")

    # -- moving around ---------------------------------------------------------------------
    def open(self) -> None:
        self.page.goto(self.url)
        self.page.get_by_role("tab", name=self.medium.capitalize(), exact=True).click()
        self.tab.locator(".generate-btn").wait_for()
        self.tab.locator(".histogram svg").wait_for()  # the page's load has restored the last state
        self.tab.locator(".gallery-box .gallery[data-loaded]").wait_for()

    def step(self, label: str) -> None:
        self.tab.get_by_role("tab", name=label).click()

    def pick_preset(self, name: str) -> None:
        self.tab.locator(".preset-picker input").click()
        self.page.get_by_role("option", name=name, exact=True).click()
        wait_until("the preset's prompt", lambda: self.tab.locator(".prompt textarea").input_value(), page=self.page)

    def fill_number(self, css: str, value) -> None:
        box = self.tab.locator(f"{css} input[type=number]").first
        box.fill(str(value))
        box.press("Enter")

    def dropdown(self, css: str) -> str:
        return self.tab.locator(f"{css} input").first.input_value()

    # -- the gallery -----------------------------------------------------------------------
    def cards(self):
        return self.tab.locator(".gallery-box .card[data-candidate-id]")

    def decisions(self) -> dict[str, str]:
        return self.page.evaluate(
            """el => Object.fromEntries(Array.from(el.querySelectorAll('.gallery-box .card[data-candidate-id]'))
                 .map(c => [c.dataset.candidateId, c.dataset.decision]))""", self.tab.element_handle())

    def scores(self) -> dict[str, float]:
        return {c.get_attribute("data-candidate-id"): json.loads(c.get_attribute("data-details"))["score"]
                for c in self.cards().all()}

    def generate(self, n: int, prompt: str | None = None) -> list[str]:
        if prompt is not None:
            self.tab.locator(".prompt textarea").fill(prompt)
        self.fill_number(".count", n)
        before = set(self.decisions())
        self.tab.locator(".generate-btn").click()
        wait_until("Generate disabled while it runs",
                   lambda: not self.tab.locator(".generate-btn").is_enabled() or set(self.decisions()) - before,
                   timeout_s=10)
        wait_until(f"{n} new cards", lambda: len(self.decisions()) == n and set(self.decisions()) != before
                   and self.tab.locator(".generate-btn").is_enabled(), page=self.page)
        return list(self.decisions())

    def cull(self, keys: list[str]) -> dict[str, str]:
        """Press ``keys[i]`` on card i then move right; checks each flag flips at once; returns the decisions."""
        ids = list(self.decisions())
        self.cards().first.locator(".card-caption").click()
        expected = {}
        for i, key in enumerate(keys):
            decision = {"p": "hand_accepted", "x": "hand_rejected"}[key]
            self.page.keyboard.press(key)
            # the flag is already there: no waiting for the server
            assert self.decisions()[ids[i]] == decision
            expected[ids[i]] = decision
            self.page.keyboard.press("ArrowRight")
        return expected

    def stored(self, studio, ids) -> dict[str, str]:
        return {c.id: c.decision for c in studio.store.candidates(self.medium, ids=list(ids))}

    def rule_follows(self, threshold: float) -> bool:
        """The hard threshold: nothing below it kept, and something at or above it kept when there is any
        (the rule may drop a near-copy of a better candidate, so not every one above it)."""
        scores, decisions = self.scores(), self.decisions()
        above = [i for i, s in scores.items() if s >= threshold + 1e-6]
        below_dropped = all(decisions[i] == "auto_rejected" for i, s in scores.items() if s < threshold - 1e-6)
        some_kept = not above or any(decisions[i] == "auto_accepted" for i in above)
        return below_dropped and some_kept

    # -- the steps ---------------------------------------------------------------------------
    def tune(self, steps: int | None) -> str:
        self.step("2 · Fine-tune")
        if steps is not None:
            self.fill_number(".tune-steps", steps)
        self.tab.locator(".tune-btn").click()
        return self.wait_tune(("done", "failed", "cancelled", "interrupted"))

    def tune_status(self) -> str:
        state = self.tab.locator(".tune-state")
        return (state.first.get_attribute("data-status") or "") if state.count() else ""

    def wait_tune(self, states: tuple[str, ...], timeout_s: float = TIMEOUT_S) -> str:
        return wait_until(f"the tune reaching {states}",
                          lambda: self.tune_status() if self.tune_status() in states else None,
                          timeout_s, page=self.page)

    def versions_selected(self) -> tuple[str, str, str]:
        """The version for generating, Compare's after and Export's (each step is drawn when opened)."""
        generating = self.dropdown(".version-picker")
        self.step("3 · Compare")
        after = self.dropdown(".compare-after")
        self.step("4 · Export")
        exporting = self.dropdown(".export-version")
        self.step("1 · Curate")
        return generating, after, exporting

    def compare(self, n: int):
        self.step("3 · Compare")
        self.fill_number(".compare-n", n)
        self.tab.locator(".compare-btn").click()
        pairs = self.tab.locator(".compare-pair")
        wait_until(f"{n} compare pairs", lambda: pairs.count() == n, page=self.page)
        return pairs

    def export_zip(self, fmt: str | None = None) -> zipfile.ZipFile:
        """Export ``fmt`` (the first format when None) and fetch its zip."""
        self.step("4 · Export")
        buttons = self.tab.locator(".export-btn")
        (buttons.first if fmt is None else buttons.filter(has_text=f"Export {fmt}")).click()
        link = self.tab.locator(".export-files a")
        wait_until("a download link", lambda: link.count() >= 1, page=self.page)
        href = link.first.get_attribute("href")
        assert href and ".zip" in href, href
        response = self.page.request.get(href if href.startswith("http") else self.url.rstrip("/") + "/" +
                                         href.lstrip("/"))
        assert response.ok, response.status
        archive = zipfile.ZipFile(io.BytesIO(response.body()))
        assert archive.namelist(), "the zip is empty"
        return archive

    # -- how it looks --------------------------------------------------------------------------
    def clipped_labels(self) -> list[str]:
        """Visible labels, buttons and headers whose text does not fit their box."""
        return self.page.evaluate("""() => {
            const out = [];
            const sel = 'label, [data-testid="block-info"], button, th, .card-flag, .card-caption, [role="tab"]';
            for (const el of document.querySelectorAll(sel)) {
              const r = el.getBoundingClientRect();
              if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
              if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
                out.push(el.innerText.slice(0, 60));
            }
            return out;
        }""")

    def chart_label_sizes(self) -> list[float]:
        """The rendered size in px of every visible chart label in the tab (an SVG's text grows with its box)."""
        return self.page.evaluate("""el => Array.from(el.querySelectorAll('svg text')).flatMap(t => {
            const svg = t.ownerSVGElement, box = svg.getBoundingClientRect(), view = svg.viewBox.baseVal;
            if (!box.width || !view || !view.width) return [];
            return [parseFloat(getComputedStyle(t).fontSize) * box.width / view.width];
        })""", self.tab.element_handle())

    def screenshot(self, name: str) -> None:
        """The page from its top, as an artist first sees it (no focused box, nothing scrolled): ``NAME.png`` at
        the page's size (1440x900) and ``NAME-1024.png`` at 1024x768."""
        screenshot(self.page, name)


def screenshot(page, name: str) -> None:
    """``NAME.png`` at the page's size and ``NAME-1024.png`` at SMALL, then the page's size back."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => { if (!document.querySelector('#studio-lightbox.open')) "
                  "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    size = page.viewport_size
    for path, viewport in ((SCREENSHOTS / f"{name}.png", size), (SCREENSHOTS / f"{name}-1024.png", SMALL)):
        page.set_viewport_size(viewport)
        page.wait_for_timeout(500)
        page.evaluate("() => window.scrollTo(0, 0)")
        # a picture of the page, not a check: under two busy test workers one took over the 30 s default once
        page.screenshot(path=str(path), timeout=90_000)
    page.set_viewport_size(size)
