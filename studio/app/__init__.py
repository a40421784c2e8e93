"""The studio app (``studio serve``): a Gradio Blocks app with a tab per medium plus History.

Every medium's tab comes from one builder over the medium contract (``tab.build_tab``), one
small module per panel.  Importing this package does no work: Gradio is imported when an
app is built.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

CSS = """
.card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px; }
.decision-auto_accepted, .decision-hand_accepted { border: 2px solid #4f8f5a; }
.decision-hand_accepted { box-shadow: 0 0 0 2px #4f8f5a inset; }
.decision-auto_rejected, .decision-hand_rejected { opacity: 0.65; }
"""


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
    with gr.Blocks(title="Studio") as app:
        gr.Markdown("## Studio: generate, curate, fine-tune, compare")
        with gr.Tabs():
            contexts = tab.build_tabs(studio, working, presets_dir)
            for name, reason in broken.items():
                with gr.Tab(tab.tab_label(name), id=name, elem_id=f"tab-{name}"):
                    gr.Markdown(f"The {name} medium could not be loaded ({reason}).")
            with gr.Tab("History", id="history", elem_id="tab-history") as history_tab:
                _, load_history, tables = history.build(studio, working)
        for ctx in contexts:
            load, inputs, outputs = tab.on_load(ctx)
            app.load(load, inputs=inputs, outputs=outputs)
        history_tab.select(load_history, outputs=tables)
        app.load(load_history, outputs=tables)
    app.studio_contexts = contexts
    return app


def launch(studio: Any, host: str = "127.0.0.1", port: int | None = None, auth: Any = None,
           block: bool = True, presets_dir: Path | str | None = None, names: list[str] | None = None):
    """Build and launch the app on ``host:port``; with ``block=False`` returns the running app."""
    from . import security

    kwargs = security.launch_kwargs(studio.store.root, host, port, auth)
    security.prepare_environment(studio.store.root)
    app = build_app(studio, presets_dir, names)
    app.queue(default_concurrency_limit=1)
    app.launch(**kwargs, prevent_thread_lock=not block, css=CSS)
    return app


def serve(workspace: Path | str | None = None, host: str = "127.0.0.1", port: int = 7860,
          auth: str | None = None) -> None:
    """``studio serve``: open the workspace (``$STUDIO_HOME`` by default) and serve until interrupted."""
    from ..engine import Studio

    launch(Studio(workspace), host=host, port=port, auth=auth, block=True)
