"""One builder for every medium's tab: the same panels over the medium contract."""
from __future__ import annotations

from pathlib import Path
from typing import Any

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
    restored = ("preset", "threshold", "temperature", "tune_steps", "tune_rank", "tune_lr", "tune_extra")

    def load(prompt: str, seen: dict, *rest: Any):
        """Picks up where the artist left off: the last batch, its prompt, rule, preset and tune settings."""
        current = dict(zip(restored, rest[: len(restored)]))
        picked = rest[len(restored):]
        saved = {k: v for k, v in ctx.recall().items() if k in restored}
        values = {**current, **saved}
        shown = cards.latest_shown(ctx.studio, ctx.name)
        if not (prompt or "").strip() and shown:
            prompt = ctx.studio.store.candidate(shown[0]).prompt
        view = ctx.refresh(shown, values["threshold"], values["temperature"])
        return [shown, prompt, *(values[k] for k in restored), *view, *ctx.poll(None, *picked)]

    inputs = [ctx["prompt"], ctx["seen"], *ctx.many(*restored), *ctx.poll_inputs[1:]]
    outputs = [ctx["shown"], ctx["prompt"], *ctx.many(*restored), *ctx.view_outputs(), *ctx.poll_outputs]
    return load, inputs, outputs


def tab_label(medium: str) -> str:
    return medium.capitalize()


def build_tabs(studio: Studio, names: list[str], presets_dir: Path | None = None) -> list[TabContext]:
    contexts = []
    for name in names:
        with gr.Tab(tab_label(name), id=name, elem_id=f"tab-{name}"):
            contexts.append(build_tab(studio, name, presets_dir))
    return contexts
