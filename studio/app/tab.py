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
from .context import PICKERS, VIEW, TabContext, to_widget

STEPS = (("curate", "1 · Curate", curate_panel), ("tune", "2 · Fine-tune", tune_panel),
         ("compare", "3 · Compare", compare_panel), ("export", "4 · Export", export_panel))
RESTORED = ("preset", "threshold", "softness", "spread", "keep_by", "top_share", "tune_steps", "tune_rank",
            "tune_lr", "tune_extra", "tune_start")


def build_tab(studio: Studio, medium: str, presets_dir: Path | None = None) -> TabContext:
    """Build the tab's components (inside a ``gr.Tab``), then wire the panels' events."""
    ctx = TabContext(studio, medium, presets_dir)
    with gr.Row(equal_height=False, elem_classes=["medium-row"]):
        with gr.Column(scale=1, min_width=320, elem_classes=["settings-column"]):
            generate_panel.build(ctx)
            curate_panel.build_rule(ctx)
        # 320 + 560 keeps both columns side by side at 1024 px, so the batch starts on the first screen
        with gr.Column(scale=3, min_width=560, elem_classes=["work-column"]):
            with gr.Tabs(elem_classes=["steps"]) as steps:
                for key, label, panel in STEPS:
                    with gr.Tab(label, id=key, elem_classes=[f"step-{key}"]):
                        panel.build(ctx)
            ctx["steps"] = steps
    for panel in (curate_panel, generate_panel, tune_panel, compare_panel, export_panel):
        panel.wire(ctx)  # after every component exists: panels wire to each other's components
    return ctx


def on_load(ctx: TabContext, app: Any) -> None:
    """What a fresh page (or a reload) shows: the batch shown last, its rule, scorers and settings, and the tune."""
    widgets = ["n", "seed", *ctx.params_names(), *ctx.scoring_names()]

    def load(values: dict[str, Any]) -> dict[str, Any]:
        """Picks up where the artist left off: the last batch, its prompt, rule, preset, scorers and settings."""
        saved = ctx.recall()
        restored = {k: saved.get(k, values[k]) for k in RESTORED}
        shown = saved.get("shown") or cards.latest_shown(ctx.studio, ctx.name)
        prompt = values["prompt"]
        if not (prompt or "").strip() and shown:
            first = ctx.studio.store.candidate(shown[0])
            prompt = first.prompt if first is not None else prompt
        view = ctx.view({**restored, "shown": shown})
        series = gr.update(choices=ctx.studio.series(ctx.name), value=ctx.studio.current_series(ctx.name))
        return {"shown": shown, "prompt": prompt, "series": series, **restored, **restored_widgets(ctx, saved, values),
                **view, **ctx.poll(values)}

    inputs = ["prompt", *RESTORED, *widgets, "seen", *PICKERS]
    outputs = ["shown", "prompt", "series", *RESTORED, *widgets, *VIEW, *ctx.poll_names]
    ctx.listen(app.load, load, inputs, outputs)


def restored_widgets(ctx: TabContext, saved: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Count, seed, the medium's settings, the scorer weights and options as last used (else as on the page)."""
    fields = {f.name: f for f in ctx.medium.generate_settings.fields()}
    saved_params, saved_weights = saved.get("params") or {}, saved.get("weights")
    out = {"n": saved.get("n", current["n"]), "seed": saved.get("seed", current["seed"]),
           "scorer_options": saved.get("scorer_options", current["scorer_options"])}
    for name in ctx.param_names:
        key = f"param.{name}"
        out[key] = to_widget(saved_params[name], fields[name]) if name in saved_params else current[key]
    for name in ctx.scorer_names:
        key = f"weight.{name}"
        out[key] = current[key] if saved_weights is None else saved_weights.get(name, 0.0)
    return out


def tab_label(studio: Studio, medium: str) -> str:
    return studio.medium(medium).title()


def build_tabs(studio: Studio, names: list[str], presets_dir: Path | None = None) -> list[TabContext]:
    contexts = []
    for name in names:
        with gr.Tab(tab_label(studio, name), id=name, elem_id=f"tab-{name}"):
            contexts.append(build_tab(studio, name, presets_dir))
    return contexts
