"""The studio app (``studio serve``): a Gradio Blocks app with a tab per medium plus History.

Every medium's tab comes from one builder over the medium contract (``tab.build_tab``), one
small module per panel.  Importing this package does no work: Gradio is imported when an
app is built.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

CSS_FILE = Path(__file__).with_name("studio.css")
LAUNCH_TRIES = 3
# the model libraries the media import when first used, whose lazy modules two threads must not import at once
LAZY_LIBRARIES = ("transformers", "diffusers")


def import_libraries() -> None:
    """Import ``LAZY_LIBRARIES`` (those installed) in this thread, before the page's requests arrive in many: a
    fresh page's first text generate (loading the model) raced another request's tokenizer, and the artist read
    "cannot import name 'AutoModelForCausalLM' from 'transformers'"."""
    import importlib
    import importlib.util

    for name in LAZY_LIBRARIES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def build_app(studio: Any, presets_dir: Path | str | None = None, names: list[str] | None = None):
    """The Blocks app for ``studio`` (an ``engine.Studio``); ``names`` defaults to every available medium."""
    import gradio as gr

    from .. import media
    from . import history, tab

    names = list(names) if names is not None else media.available()
    presets_dir = Path(presets_dir) if presets_dir is not None else None
    working, broken = [], {}
    for name in names:
        try:
            studio.medium(name)
            working.append(name)
        except Exception as exc:  # a medium that fails to import still leaves the others usable
            broken[name] = f"{type(exc).__name__}: {exc}"
    from .security import UPLOAD_CLEAN_EVERY, UPLOAD_MAX_AGE

    with gr.Blocks(title="Studio", delete_cache=(UPLOAD_CLEAN_EVERY, UPLOAD_MAX_AGE)) as app:
        with gr.Tabs(elem_classes=["media-tabs"]) as media_tabs:
            contexts = tab.build_tabs(studio, working, presets_dir)
            for name, reason in broken.items():
                with gr.Tab(name.capitalize(), id=name, elem_id=f"tab-{name}"):
                    gr.Markdown(f"The {name} medium could not be loaded ({reason}).")
            with gr.Tab("History", id="history", elem_id="tab-history") as history_tab:
                page, load_history = history.build(studio, working)
        for ctx in contexts:
            tab.on_load(ctx, app)
        history_tab.select(load_history, outputs=page)
        app.load(load_history, outputs=page)
        by_name = {ctx.name: ctx for ctx in contexts}
        # a History action moves one tab's version picker and steps: (medium, component name) -> component
        targets = {(ctx.name, key): ctx[key] for ctx in contexts for key in ("version", "compare_after",
                                                                              "export_version", "steps")}
        act = history.mover(studio, by_name, media_tabs, targets)
        page.click(act, outputs=[media_tabs, *targets.values()], queue=False)
    app.studio_contexts = contexts
    return app


def launch(studio: Any, host: str = "127.0.0.1", port: int | None = None, auth: Any = None,
           block: bool = True, presets_dir: Path | str | None = None, names: list[str] | None = None):
    """Build and launch the app on ``host:port``; with ``block=False`` returns the running app."""
    from . import security

    kwargs = security.launch_kwargs(studio.store.root, host, port, auth)
    security.prepare_environment(studio.store.root)
    import_libraries()
    app = build_app(studio, presets_dir, names)
    app.queue(default_concurrency_limit=1)
    for attempt in range(LAUNCH_TRIES):
        try:
            app.launch(**kwargs, prevent_thread_lock=True, css=CSS_FILE.read_text())
            break
        except ValueError as exc:
            # Gradio gives its new server a few seconds to answer; a machine busy with a tune can take longer
            if "localhost is not accessible" not in str(exc):
                raise
            app.close()
            if attempt == LAUNCH_TRIES - 1:
                from ..errors import StudioError

                raise StudioError(f"The page started but did not answer on {host} in time, {LAUNCH_TRIES} times; "
                                  "the machine may be too busy (a tune running?): try again.") from None
    if block:
        shown = f"[{host}]" if ":" in host else host
        print(f"Studio running at http://{shown}:{app.server_port}", flush=True)
        try:
            app.block_thread()
        except KeyboardInterrupt:
            pass
    return app


def serve(workspace: Path | str | None = None, host: str = "127.0.0.1", port: int = 7860,
          auth: str | None = None) -> None:
    """``studio serve``: open the workspace (``$STUDIO_HOME`` by default) and serve until interrupted."""
    from ..engine import Studio

    launch(Studio(workspace), host=host, port=port, auth=auth, block=True)
