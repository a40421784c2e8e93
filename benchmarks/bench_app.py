"""The page's speed, measured in Debian's chromium (headless) on the embedded defaults; prints one JSON object.

- ``launch_s``: building and starting the app (``studio serve`` adds Python's and Gradio's imports; its
  ready time is what ``Studio running at ...`` is printed after);
- ``generate8_s``: per medium, from the Generate click to 8 new cards on screen and Generate enabled again,
  first with the model still to load, then warm (new seeds);
- ``keypress_to_flag_ms``: from a key's ``keydown`` to the frame after the card's flag changed;
- ``cull32_s``: 32 candidates culled by keyboard (P or X, then an arrow, 64 key presses), and
  ``cull32_stored_s`` until the store holds all 32 decisions.

    python benchmarks/bench_app.py [--media image,text,music]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "app"))  # the browser tests' helpers: an artist's steps

PROMPTS = {"image": "three red stars on a white background", "text": "a haiku about the first snow",
           "music": "a slow gentle lullaby about the moon"}
LATENCY_JS = """() => {
  window.__latency = []; let pressed = 0;
  document.addEventListener('keydown', (e) => { if ('pxu'.includes(e.key.toLowerCase())) pressed = performance.now(); }, true);
  new MutationObserver(() => { if (!pressed) return; const start = pressed; pressed = 0;
      requestAnimationFrame(() => window.__latency.push(performance.now() - start)); })
    .observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-decision']});
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", default="image,text,music", help="comma-separated media (the first is culled)")
    args = parser.parse_args()
    media = args.media.split(",")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from flow import Flow, chromium, free_port, wait_until

    from studio.app import launch
    from studio.engine import Studio

    workspace = Path(tempfile.mkdtemp()) / "workspace"
    started = time.monotonic()
    app = launch(Studio(workspace), port=free_port(), block=False, names=media)
    out = {"machine": f"{os.cpu_count()} CPU cores", "launch_s": round(time.monotonic() - started, 2),
           "generate8_s": {}}
    studio = Studio(workspace)
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for medium in media:
                flow = Flow(page, app.local_url, medium)
                flow.open()
                times = {}
                for label, seed in (("cold", 0), ("warm", 100)):
                    flow.fill_number(".seed", seed)
                    clock = time.monotonic()
                    flow.generate(8, PROMPTS[medium])
                    times[label] = round(time.monotonic() - clock, 1)
                out["generate8_s"][medium] = times
            flow = Flow(page, app.local_url, media[0])
            flow.open()
            flow.fill_number(".seed", 1000)
            ids = flow.generate(32)
            page.evaluate(LATENCY_JS)
            flow.cards().first.locator(".card-caption").click()
            clock = time.monotonic()
            for i in range(32):
                page.keyboard.press("x" if i % 4 == 0 else "p")
                page.keyboard.press("ArrowRight")
            out["cull32_s"] = round(time.monotonic() - clock, 2)
            wait_until("every decision stored", lambda: all(
                d.startswith("hand_") for d in flow.stored(studio, ids).values()), 60)
            out["cull32_stored_s"] = round(time.monotonic() - clock, 2)
            latency = page.evaluate("() => window.__latency")
            out["keypress_to_flag_ms"] = {"median": round(statistics.median(latency), 1),
                                          "max": round(max(latency), 1), "n": len(latency)}
    finally:
        app.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
