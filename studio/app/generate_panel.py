"""The settings column: preset, prompt, count, seed and version; the medium's settings under "More settings".

Generate shows a progress bar over the gallery (candidates done, seconds left), is disabled
while it runs, and the new batch replaces the old one in view.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import time
from typing import Any, Iterator

import gradio as gr

from .. import presets
from . import cards
from .context import VIEW, VIEW_INPUTS, TabContext, friendly, param_widget, to_widget

MAX_SEED = 2**31 - 1024  # a random seed leaves room for seed + n
TRUNCATION_LOGGERS = ("diffusers", "transformers")  # where a model's tokenizer reports a cut prompt


def build(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name
    preset_names = presets.names(name, ctx.presets_dir)
    ctx["preset"] = gr.Dropdown(label="Preset", choices=preset_names, value=None, elem_classes=["preset-picker"],
                                info="A starting point: prompt, scorers, rule and tune settings.")
    ctx["preset_note"] = gr.Markdown("", elem_classes=["preset-note"])
    ctx["prompt"] = gr.Textbox(label="Prompt", lines=3, elem_classes=["prompt"],
                               placeholder=ctx.medium.placeholder)
    if ctx.medium.prompt_help:
        gr.Markdown(ctx.medium.prompt_help, elem_classes=["prompt-help"])
    ctx["prompt_warning"] = gr.Markdown("", elem_classes=["prompt-warning"])
    with gr.Row():
        ctx["n"] = gr.Number(label="Candidates", value=8, precision=0, minimum=1, maximum=512,
                             elem_classes=["count"], min_width=100)
        ctx["seed"] = gr.Number(label="First seed", value=0, precision=0, minimum=0, elem_classes=["seed"],
                                min_width=100)
    with gr.Row():
        ctx["version"] = gr.Dropdown(label="Generate with version", choices=studio.versions(name), value="base",
                                     elem_classes=["version-picker"], min_width=140)
        ctx["random_seed"] = gr.Checkbox(label="New random seed each time", value=False, min_width=140)
    ctx["generate"] = gr.Button("Generate", variant="primary", elem_classes=["generate-btn"])
    with gr.Accordion("More settings", open=False, elem_classes=["more-settings"]):
        for field in ctx.medium.generate_settings.fields():
            ctx[f"param.{field.name}"] = param_widget(field)
        ctx["model"] = gr.Dropdown(label="Base model (a folder or hub id)", allow_custom_value=True,
                                   choices=_models(ctx), value=studio.current_model(name))


def wire(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name

    @friendly
    def change_model(model: str):
        used = studio.use_model(name, model or None)
        return gr.update(choices=_models(ctx), value=used)

    ctx["model"].input(change_model, inputs=ctx["model"], outputs=ctx["model"])
    ctx["version"].input(lambda v: ctx.remember(version=v or "base"), inputs=ctx["version"], queue=False)

    @friendly
    def apply_preset(values: dict[str, Any]) -> dict[str, Any]:
        preset_name = values["preset"]
        if not preset_name:
            return {}
        p = presets.load(name, preset_name, ctx.presets_dir)
        params = ctx.medium.validate_params(p.params)  # an unknown setting: one sentence
        # no scorers named: the medium's default scorer, as the engine would use
        weights = {s.name: s.weight for s in p.scorers} or {ctx.medium.default_scorer: 1.0}
        defaults = ctx.medium.tune_defaults
        extra = {k: v for k, v in p.tune.items() if k not in ("steps", "rank", "lr")}
        tune = {"tune_steps": p.tune.get("steps"), "tune_rank": p.tune.get("rank", defaults["rank"]),
                "tune_lr": p.tune.get("lr", defaults["lr"]), "tune_extra": extra}
        ctx.remember(preset=preset_name, params=params, scorer_options=p.scorer_options(), threshold=p.threshold,
                     temperature=p.temperature, weights={s: weights.get(s, 0.0) for s in ctx.scorer_names},
                     **tune)
        fields = {f.name: f for f in ctx.medium.generate_settings.fields()}
        return {"preset_note": f"*{p.description}*" if p.description else "", "prompt": p.render_prompt(),
                "n": p.n, "seed": p.seed, **{f"param.{k}": to_widget(params[k], fields[k]) for k in ctx.param_names},
                **{f"weight.{s}": weights.get(s, 0.0) for s in ctx.scorer_names},
                "scorer_options": p.scorer_options(), "threshold": p.threshold, "temperature": p.temperature, **tune}

    preset_outputs = ["preset_note", "prompt", "n", "seed", *ctx.params_names(), *ctx.scoring_names(), "threshold",
                      "temperature", "tune_steps", "tune_rank", "tune_lr", "tune_extra"]
    ctx.listen(ctx["preset"].input, apply_preset, ["preset"], preset_outputs)

    def begin(values: dict[str, Any]) -> dict[str, Any]:
        count = int(values["n"] or 0)
        waiting = (f'<div class="gallery empty" data-medium="{name}"><p class="gallery-empty">'
                   f'Making {count} candidate{"s" if count != 1 else ""}…</p></div>')
        return {"generate": gr.update(interactive=False, value="Generating…"), "gallery": waiting,
                "prompt_warning": ""}

    @friendly
    def generate(values: dict[str, Any], progress=gr.Progress()) -> dict[str, Any]:
        params = ctx.params(values)
        specs, options = ctx.scoring(values)
        n = int(values["n"] or 0)
        seed = secrets.randbelow(MAX_SEED) if values["random_seed"] else int(values["seed"] or 0)
        version = values["version"] or "base"
        started = time.monotonic()
        progress((0, n), desc=f"Making {n} candidates", unit="candidates")

        def report(done: int, total: int) -> None:
            left = (time.monotonic() - started) / done * (total - done)
            progress((done, total), desc=f"{done} of {total} made · about {left:.0f} s left", unit="candidates")

        with truncation_notes() as notes:
            made = studio.generate(name, values["prompt"], n=n, seed=seed, version=version, params=params,
                                   on_progress=report)
        progress((n, n), desc="Scoring", unit="candidates")
        studio.score(name, made, specs, options)
        shown = [c.id for c in made]
        threshold, temperature, spread = values["threshold"], values["temperature"], values["spread"]
        cards.apply_rule(studio, name, shown, cards.rule_threshold(studio, name, shown, values["keep_by"], threshold,
                                                                   values["top_share"]),
                         temperature, "spread" if spread else "all")
        ctx.remember(threshold=threshold, temperature=temperature, spread=spread, keep_by=values["keep_by"],
                     top_share=values["top_share"], shown=shown, version=version,
                     n=n, seed=seed, params=params, scorer_options=options,
                     weights={s: float(w) for s, w in ctx.weights(values).items() if isinstance(w, (int, float))})
        warning = ""
        if notes:
            warning = ("⚠ The model cut this prompt at its token limit; the end of it was ignored: "
                       f"*{notes[0]}*")
            gr.Warning("The prompt is longer than the model reads; its end was ignored.")
        return {"shown": shown, "seed": seed, "prompt_warning": warning, **ctx.view({**values, "shown": shown})}

    generate_inputs = ["version", "prompt", "n", "seed", "random_seed", *VIEW_INPUTS[1:], *ctx.params_names(),
                       *ctx.scoring_names()]
    generate_outputs = ["shown", "seed", "prompt_warning", *VIEW]
    refresh = friendly(ctx.view)

    def run_generation(event: Any) -> Any:
        """Chain a generation after ``event``: Generate off, the old batch cleared, progress, the new batch."""
        event = ctx.listen(event.then, begin, ["n"], ["generate", "gallery", "prompt_warning"], queue=False)
        event = ctx.listen(event.then, generate, generate_inputs, generate_outputs,
                           concurrency_id=f"model-{name}", show_progress_on=[ctx["gallery"]])
        event = ctx.listen(event.then, refresh, VIEW_INPUTS, VIEW, show_progress="hidden")
        return event.then(lambda: gr.update(interactive=True, value="Generate"), outputs=ctx["generate"], queue=False)

    ctx.run_generation = run_generation
    run_generation(ctx["generate"].click(None, js="() => {}"))


@contextlib.contextmanager
def truncation_notes() -> Iterator[list[str]]:
    """Collect what a model's tokenizer says it cut from the prompt (it only logs it)."""
    notes: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if "truncated" in message:
                cut = message.split(":", 1)[-1].strip().strip("[]'\" ")
                notes.append(cut[:200] or message[:200])

    handler = Catch(level=logging.WARNING)
    loggers = [logging.getLogger(n) for n in TRUNCATION_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield notes
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _models(ctx: TabContext) -> list[str]:
    current, default = ctx.studio.current_model(ctx.name), ctx.medium.default_model()
    return list(dict.fromkeys([current, default]))
