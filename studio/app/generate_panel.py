"""Model, version and preset pickers; prompt, count, seed and the medium's settings; Generate."""
from __future__ import annotations

import json
import secrets
from typing import Any

import gradio as gr

from .. import presets
from . import cards
from .context import TabContext, friendly, param_widget

MAX_SEED = 2**31 - 1024  # a random seed leaves room for seed + n


def build(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name
    preset_names = presets.names(name, ctx.presets_dir)
    with gr.Row():
        ctx["model"] = gr.Dropdown(label="Base model (folder or hub id)", allow_custom_value=True,
                                   choices=_models(ctx), value=studio.current_model(name), scale=3)
        ctx["version"] = gr.Dropdown(label="Version", choices=studio.versions(name), value="base", scale=1,
                                     elem_classes=["version-picker"])
        ctx["preset"] = gr.Dropdown(label="Preset", choices=preset_names, value=None, scale=1,
                                    elem_classes=["preset-picker"])
    ctx["preset_note"] = gr.Markdown("")
    with gr.Row():
        ctx["prompt"] = gr.Textbox(label="Prompt", lines=2, scale=4, elem_classes=["prompt"])
        with gr.Column(scale=1, min_width=200):
            ctx["n"] = gr.Number(label="Candidates", value=8, precision=0, minimum=1, maximum=512,
                                 elem_classes=["count"])
            with gr.Row():
                ctx["seed"] = gr.Number(label="Seed", value=0, precision=0, minimum=0, elem_classes=["seed"])
                ctx["random_seed"] = gr.Checkbox(label="random seed", value=False)
    defaults = ctx.medium.default_params()
    if defaults:
        with gr.Accordion(f"{name.capitalize()} settings", open=True):
            with gr.Row():
                for param, default in defaults.items():
                    ctx[f"param.{param}"] = param_widget(param, default)
    ctx["generate"] = gr.Button("Generate", variant="primary", elem_classes=["generate-btn"])


def wire(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name

    @friendly
    def change_model(model: str):
        used = studio.use_model(name, model or None)
        return gr.update(choices=_models(ctx), value=used)

    ctx["model"].input(change_model, inputs=ctx["model"], outputs=ctx["model"])

    @friendly
    def apply_preset(preset_name: str | None):
        if not preset_name:
            return [gr.skip()] * (len(preset_outputs))
        p = presets.load(name, preset_name, ctx.presets_dir)
        ctx.remember(preset=preset_name)
        params = ctx.medium.validate_params(p.params)  # an unknown setting: one sentence
        # no scorers named: the medium's default scorer, as the engine would use
        weights = {s.name: s.weight for s in p.scorers} or {ctx.medium.default_scorer: 1.0}
        custom = [s for s in p.scorers if s.name not in ctx.scorer_names]
        extra = {k: v for k, v in p.tune.items() if k not in ("steps", "rank", "lr")}
        defaults = ctx.medium.tune_defaults
        return [
            f"*{p.description}*" if p.description else "", p.render_prompt(), p.n, p.seed,
            *(params[k] for k in ctx.param_names),
            *(weights.get(s, 0.0) for s in ctx.scorer_names),
            ", ".join(f"{s.name}={s.weight:g}" for s in custom),
            json.dumps(p.scorer_options(), indent=1) if p.scorer_options() else "{}",
            p.threshold, p.temperature,
            p.tune.get("steps", defaults.get("steps")), p.tune.get("rank", defaults.get("rank")),
            p.tune.get("lr", defaults.get("lr")), json.dumps(extra),
        ]

    preset_outputs = [ctx["preset_note"], ctx["prompt"], ctx["n"], ctx["seed"], *ctx.params_inputs(),
                      *ctx.scoring_inputs(), ctx["threshold"], ctx["temperature"],
                      *ctx.many("tune_steps", "tune_rank", "tune_lr", "tune_extra")]
    ctx["preset"].input(apply_preset, inputs=ctx["preset"], outputs=preset_outputs)

    @friendly
    def generate(version: str, prompt: str, n: Any, seed: Any, random_seed: bool, threshold: float,
                 temperature: float, *rest: Any):
        params = ctx.params(list(rest[: len(ctx.param_names)]))
        specs, options = ctx.scoring(list(rest[len(ctx.param_names):]))
        n = int(n or 0)
        seed = secrets.randbelow(MAX_SEED) if random_seed else int(seed or 0)
        made = studio.generate(name, prompt, n=n, seed=seed, version=version or "base", params=params)
        studio.score(name, made, specs, options)
        shown = [c.id for c in made]
        cards.apply_rule(studio, name, shown, threshold, temperature)
        ctx.remember(threshold=threshold, temperature=temperature)
        return [shown, seed]

    ctx.generate_fn = generate
    ctx.generate_inputs = [ctx["version"], ctx["prompt"], ctx["n"], ctx["seed"], ctx["random_seed"],
                           ctx["threshold"], ctx["temperature"], *ctx.params_inputs(), *ctx.scoring_inputs()]
    ctx["generate"].click(generate, inputs=ctx.generate_inputs, outputs=[ctx["shown"], ctx["seed"]],
                          concurrency_id=f"model-{name}") \
        .success(ctx.refresh, inputs=ctx.view_inputs(), outputs=ctx.view_outputs())


def _models(ctx: TabContext) -> list[str]:
    current, default = ctx.studio.current_model(ctx.name), ctx.medium.default_model()
    return list(dict.fromkeys([current, default]))
