"""One builder for every medium's tab: the same panels over the medium contract."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..engine import Studio
from . import cards, compare_panel, curate_panel, export_panel, generate_panel, tune_panel
from .context import TabContext

PANELS = (generate_panel, curate_panel, tune_panel, compare_panel, export_panel)


def build_tab(studio: Studio, medium: str, presets_dir: Path | None = None) -> TabContext:
    """Build the tab's components (inside a ``gr.Tab``), then wire the panels' events."""
    ctx = TabContext(studio, medium, presets_dir)
    for panel in PANELS:  # components first: panels wire to each other's components
        panel.build(ctx)
    for panel in PANELS:
        panel.wire(ctx)
    return ctx


def on_load(ctx: TabContext):
    """What a fresh page (or a reload) shows: the newest batch under the current sliders, and the tune."""
    def load(threshold: float, temperature: float, seen: dict, *picked: str):
        shown = cards.latest_shown(ctx.studio, ctx.name)
        return [shown, *ctx.refresh(shown, threshold, temperature), *ctx.poll(None, *picked)]

    inputs = [ctx["threshold"], ctx["temperature"], *ctx.poll_inputs]
    outputs = [ctx["shown"], *ctx.view_outputs(), *ctx.poll_outputs]
    return load, inputs, outputs


def tab_label(medium: str) -> str:
    return medium.capitalize()


def build_tabs(studio: Studio, names: list[str], presets_dir: Path | None = None) -> list[TabContext]:
    contexts = []
    for name in names:
        with gr.Tab(tab_label(name), id=name, elem_id=f"tab-{name}"):
            contexts.append(build_tab(studio, name, presets_dir))
    return contexts
