"""One builder for every medium's tab: settings on the left, the steps on the right, over the medium contract.

Left: preset, prompt, count, seed, version, Generate, the rule and the scorers.  Right: the
steps Curate (the batch, large), Fine-tune, Compare and Export.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..engine import Studio
from . import cards, compare_panel, curate_panel, export_panel, generate_panel, tune_panel
from .context import TabContext

STEPS = (("curate", "1 · Curate", curate_panel), ("tune", "2 · Fine-tune", tune_panel),
         ("compare", "3 · Compare", compare_panel), ("export", "4 · Export", export_panel))
RESTORED = ("preset", "threshold", "temperature", "spread", "tune_steps", "tune_rank", "tune_lr", "tune_extra")


def build_tab(studio: Studio, medium: str, presets_dir: Path | None = None) -> TabContext:
    """Build the tab's components (inside a ``gr.Tab``), then wire the panels' events."""
    ctx = TabContext(studio, medium, presets_dir)
    with gr.Row(equal_height=False, elem_classes=["medium-row"]):
        with gr.Column(scale=1, min_width=320, elem_classes=["settings-column"]):
            generate_panel.build(ctx)
            curate_panel.build_rule(ctx)
        with gr.Column(scale=3, min_width=640, elem_classes=["work-column"]):
            with gr.Tabs(elem_classes=["steps"]) as steps:
                for key, label, panel in STEPS:
                    with gr.Tab(label, id=key, elem_classes=[f"step-{key}"]):
                        panel.build(ctx)
            ctx["steps"] = steps
    for panel in (curate_panel, generate_panel, tune_panel, compare_panel, export_panel):
        panel.wire(ctx)  # after every component exists: panels wire to each other's components
    return ctx


def on_load(ctx: TabContext):
    """What a fresh page (or a reload) shows: the batch shown last, its rule, scorers and settings, and the tune."""
    widgets = [ctx["n"], ctx["seed"], *ctx.params_inputs(), *ctx.scoring_inputs()]

    def load(prompt: str, *rest: Any):
        """Picks up where the artist left off: the last batch, its prompt, rule, preset, scorers and settings."""
        current = dict(zip(RESTORED, rest[: len(RESTORED)]))
        shown_widgets = list(rest[len(RESTORED): len(RESTORED) + len(widgets)])
        polled = rest[len(RESTORED) + len(widgets):]
        saved = ctx.recall()
        values = {**current, **{k: v for k, v in saved.items() if k in RESTORED}}
        shown = saved.get("shown") or cards.latest_shown(ctx.studio, ctx.name)
        if not (prompt or "").strip() and shown:
            first = ctx.studio.store.candidate(shown[0])
            prompt = first.prompt if first is not None else prompt
        view = ctx.view(shown, values["threshold"], values["temperature"], values["spread"])
        return [shown, prompt, *(values[k] for k in RESTORED), *restored_widgets(ctx, saved, shown_widgets), *view,
                *ctx.poll(*polled)]

    inputs = [ctx["prompt"], *ctx.many(*RESTORED), *widgets, *ctx.poll_inputs]
    outputs = [ctx["shown"], ctx["prompt"], *ctx.many(*RESTORED), *widgets, *ctx.view_outputs(), *ctx.poll_outputs]
    return load, inputs, outputs


def restored_widgets(ctx: TabContext, saved: dict[str, Any], current: list[Any]) -> list[Any]:
    """Count, seed, the medium's settings, the scorer weights and options as last used (else as on the page)."""
    n, seed, *rest = current
    params = rest[: len(ctx.param_names)]
    weights = rest[len(ctx.param_names): len(ctx.param_names) + len(ctx.scorer_names)]
    options = rest[-1]
    saved_params, saved_weights = saved.get("params") or {}, saved.get("weights")
    return [saved.get("n", n), saved.get("seed", seed),
            *(saved_params.get(name, value) for name, value in zip(ctx.param_names, params)),
            *((saved_weights or {}).get(name, 0.0) if saved_weights is not None else value
              for name, value in zip(ctx.scorer_names, weights)),
            saved.get("scorer_options", options)]


def tab_label(medium: str) -> str:
    return medium.capitalize()


def build_tabs(studio: Studio, names: list[str], presets_dir: Path | None = None) -> list[TabContext]:
    contexts = []
    for name in names:
        with gr.Tab(tab_label(name), id=name, elem_id=f"tab-{name}"):
            contexts.append(build_tab(studio, name, presets_dir))
    return contexts
