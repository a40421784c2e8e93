"""The settings column: preset, prompt, count, seed and version; the medium's settings under "More settings".

Generate shows a progress bar over the gallery (candidates done, seconds left), is disabled
while it runs, and the new batch replaces the old one in view.
"""
from __future__ import annotations

import contextlib
import html
import logging
import re
import secrets
import threading
import time
from typing import Any, Iterator

import gradio as gr

from .. import presets
from ..engine import MAX_CANDIDATES
from ..errors import StudioError
from . import cards
from .context import VIEW, VIEW_INPUTS, TabContext, friendly, param_widget, to_widget, whole

MAX_SEED = 2**31 - 1024  # a random seed leaves room for seed + n
# generates of one tab run side by side into the engine, which joins those sharing a model call (studio.coalesce)
# and runs the rest one after another; beyond this many, Gradio's queue holds them and shows their place
GENERATE_AT_ONCE = 16
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
        ctx["n"] = gr.Number(label="Candidates", value=8, elem_classes=["count"], min_width=100)
        ctx["seed"] = gr.Number(label="First seed", value=0, elem_classes=["seed"], min_width=100)
    with gr.Row():
        ctx["version"] = gr.Dropdown(label="Generate with version", choices=studio.versions(name), value="base",
                                     elem_classes=["version-picker"], min_width=140)
        ctx["random_seed"] = gr.Checkbox(label="New random seed each time", value=False, min_width=140)
    ctx["series"] = gr.Dropdown(label="Series", choices=studio.series(name), value=studio.current_series(name),
                                allow_custom_value=True, filterable=True, elem_classes=["series-picker"],
                                info="A project: new batches join it and a fine-tune learns from its kept set "
                                     "only. Type a new name to start one.")
    # the model library's models (studio models list): type to search, or paste a folder, file or hub id
    ctx["model"] = gr.Dropdown(label="Model", allow_custom_value=True, filterable=True, choices=_models(ctx),
                               value=studio.current_model(name), elem_classes=["model-picker"],
                               info="Picking another model frees the one loaded before. A starter marked "
                                    "Download is fetched from the Hugging Face hub first (safetensors only).")
    ctx["model_status"] = gr.Markdown("", elem_classes=["model-status"])
    ctx["generate"] = gr.Button("Generate", variant="primary", elem_classes=["generate-btn"])
    with gr.Accordion("More settings", open=False, elem_classes=["more-settings"]):
        for field in ctx.medium.generate_settings.fields():
            ctx[f"param.{field.name}"] = param_widget(field)


def wire(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name

    def change_model(model: str) -> Iterator[tuple[Any, str]]:
        try:
            if (model or "").startswith(DOWNLOAD):
                repo = yield from _download(ctx, model[len(DOWNLOAD):])
                model = repo
            used = studio.use_model(name, model or None)
        except StudioError as exc:
            yield gr.update(choices=_models(ctx), value=studio.current_model(name)), ""
            raise gr.Error(str(exc), print_exception=False) from None
        yield gr.update(choices=_models(ctx), value=used), ""

    # no progress overlay: a refused model's one sentence is the toast, and the field stays usable; a
    # download reports its progress in the line under the picker
    ctx["model"].input(change_model, inputs=ctx["model"], outputs=[ctx["model"], ctx["model_status"]],
                       show_progress="hidden")
    ctx["version"].input(lambda v: ctx.remember(version=v or "base"), inputs=ctx["version"], queue=False)

    @friendly
    def switch_series(values: dict[str, Any]) -> dict[str, Any]:
        """Work in another series (a new name starts one): its newest batch is shown, its kept set is the tune's."""
        chosen = studio.use_series(name, values["series"] or "")
        shown = cards.latest_shown(studio, name)
        ctx.remember(shown=shown)
        first = studio.store.candidate(shown[0]) if shown else None
        prompt = {"prompt": first.prompt} if first is not None else {}  # the series' own prompt, when it has one
        return {"series": gr.update(choices=studio.series(name), value=chosen), "shown": shown, **prompt,
                **ctx.view({**values, "shown": shown})}

    ctx.listen(ctx["series"].input, switch_series, ["series", *VIEW_INPUTS], ["series", "shown", "prompt", *VIEW],
               show_progress="hidden")

    @friendly
    def apply_preset(values: dict[str, Any]) -> dict[str, Any]:
        preset_name = values["preset"]
        if not preset_name:
            return {}
        p = presets.load(name, preset_name, ctx.presets_dir)
        # a preset's rule temperature is the engine's: the slider shows it in units of the shown batch's spread
        softness = cards.softness_for(p.temperature, cards.shown_scores(studio, name, values["shown"]))
        params = ctx.medium.validate_params(p.params)  # an unknown setting: one sentence
        # no scorers named: the medium's default scorer, as the engine would use
        weights = {s.name: s.weight for s in p.scorers} or {ctx.medium.default_scorer: 1.0}
        defaults = ctx.medium.tune_defaults
        extra = {k: v for k, v in p.tune.items() if k not in ("steps", "rank", "lr")}
        tune = {"tune_steps": p.tune.get("steps"), "tune_rank": p.tune.get("rank", defaults["rank"]),
                "tune_lr": p.tune.get("lr", defaults["lr"]), "tune_extra": extra}
        # a preset's threshold is absolute (measured on the model it fits): the rule is "score above" it
        ctx.remember(preset=preset_name, params=params, scorer_options=p.scorer_options(), threshold=p.threshold,
                     keep_by=cards.KEEP_BY[0], softness=softness,
                     weights={s: weights.get(s, 0.0) for s in ctx.scorer_names}, **tune)
        fields = {f.name: f for f in ctx.medium.generate_settings.fields()}
        version = values["version"] or "base"
        if not learned_from(studio, name, version, p.render_prompt()):  # another prompt's version: start at base
            version = "base"
            ctx.remember(version=version)
        return {"preset_note": f"*{p.description}*" if p.description else "", "prompt": p.render_prompt(),
                "version": version,
                "n": p.n, "seed": p.seed, **{f"param.{k}": to_widget(params[k], fields[k]) for k in ctx.param_names},
                **{f"weight.{s}": weights.get(s, 0.0) for s in ctx.scorer_names},
                "scorer_options": p.scorer_options(), "threshold": p.threshold, "keep_by": cards.KEEP_BY[0],
                "softness": softness, **tune}

    preset_outputs = ["preset_note", "prompt", "version", "n", "seed", *ctx.params_names(), *ctx.scoring_names(),
                      "threshold", "keep_by", "softness", "tune_steps", "tune_rank", "tune_lr", "tune_extra"]
    ctx.listen(ctx["preset"].input, apply_preset, ["preset", "version", "shown"], preset_outputs)

    def check_prompt(values: dict[str, Any]) -> dict[str, Any]:
        """Before Generate, as the artist types or leaves the prompt: one sentence when the model will not read
        all of it (or will not follow its language), else nothing."""
        prompt, version = values["prompt"] or "", values["version"] or "base"
        found = studio.prompt_length(name, prompt, version=version) if prompt.strip() else None
        language = studio.prompt_warning(name, prompt, version=version) if prompt.strip() else None
        return {"prompt_warning": "\n\n".join(filter(None, [length_warning(found),
                                                             f"⚠ {language}" if language else ""]))}

    for event in (ctx["prompt"].input, ctx["prompt"].blur, ctx["version"].input):
        ctx.listen(event, check_prompt, ["prompt", "version"], ["prompt_warning"], queue=False,
                   show_progress="hidden", trigger_mode="always_last")

    def begin(values: dict[str, Any]) -> dict[str, Any]:
        count = int(values["n"] or 0)
        # data-waiting: while it waits behind another generate, culling.js says its place in the queue here
        waiting = (f'<div class="gallery empty" data-medium="{name}" data-waiting><p class="gallery-empty">'
                   f'Making {count} candidate{"s" if count != 1 else ""}…</p><p class="gallery-queue"></p></div>')
        return {"generate": gr.update(interactive=False, value="Generating…"), "gallery": waiting,
                "prompt_warning": ""}

    @friendly
    def generate(values: dict[str, Any], progress=gr.Progress()) -> dict[str, Any]:
        params = ctx.params(values)
        specs, options = ctx.scoring(values)
        n = whole(values["n"], "number of candidates", 1, MAX_CANDIDATES) or 0
        seed = secrets.randbelow(MAX_SEED) if values["random_seed"] else whole(values["seed"], "first seed") or 0
        version = values["version"] or "base"
        started = [time.monotonic()]  # when its own model call started (after any wait)
        progress((0, n), desc=f"Making {n} candidates", unit="candidates")

        def report(done: int, total: int) -> None:
            if done == 0:  # its turn came
                started[0] = time.monotonic()
                progress((0, total), desc=f"Making {total} candidates", unit="candidates")
                return
            left = (time.monotonic() - started[0]) / done * (total - done)
            progress((done, total), desc=f"{done} of {total} made · about {left:.0f} s left", unit="candidates")

        def waiting(place: int, of: int, joined: int) -> None:  # culling.js says it in words in the gallery
            progress((0, n), desc=waiting_line(place, of, joined), unit="candidates")

        with truncation_notes() as notes:
            made = studio.generate(name, values["prompt"], n=n, seed=seed, version=version, params=params,
                                   on_progress=report, on_wait=waiting)
        progress((n, n), desc="Scoring", unit="candidates")
        studio.score(name, made, specs, options)
        shown = [c.id for c in made]
        softness, spread = values["softness"], values["spread"]
        threshold = cards.rule_threshold(studio, name, shown, values["keep_by"], values["threshold"],
                                         values["top_share"])
        cards.apply_rule(studio, name, shown, threshold,
                         cards.rule_temperature(softness, cards.shown_scores(studio, name, shown)),
                         "spread" if spread else "all")
        cut = cards.shown_cut(values["keep_by"], threshold)  # with the top share, the slider at its cut
        ctx.remember(threshold=cut.get("threshold", values["threshold"]),
                     softness=softness, spread=spread, keep_by=values["keep_by"],
                     top_share=values["top_share"], shown=shown, version=version,
                     n=n, seed=seed, params=params, scorer_options=options,
                     weights={s: float(w) for s, w in ctx.weights(values).items() if isinstance(w, (int, float))})
        warning = cut_warning(values["prompt"], notes)
        language = studio.prompt_warning(name, values["prompt"], version=version)
        if language:  # e.g. a Chinese prompt to an English-only model: said above the batch, and as a toast
            gr.Warning(language)
            warning = "\n\n".join(filter(None, [f"⚠ {language}", warning]))
        return {"shown": shown, "seed": seed, "prompt_warning": warning, **ctx.view({**values, "shown": shown}),
                **cut}

    generate_inputs = ["version", "prompt", "n", "seed", "random_seed", *VIEW_INPUTS[1:], *ctx.params_names(),
                       *ctx.scoring_names()]
    generate_outputs = ["shown", "seed", "prompt_warning", *VIEW, "threshold"]
    refresh = friendly(ctx.view)

    def enable() -> Any:
        return gr.update(interactive=True, value="Generate")

    def run_generation(event: Any) -> Any:
        """Chain a generation after ``event``: Generate off, the old batch cleared, progress, the new batch.

        A failed generation (its one sentence is the error toast) runs neither ``then`` nor later steps,
        so its ``failure`` branch redraws the batch shown before and turns Generate back on."""
        event = ctx.listen(event.then, begin, ["n"], ["generate", "gallery", "prompt_warning"], queue=False)
        made = ctx.listen(event.then, generate, generate_inputs, generate_outputs, concurrency_id=f"generate-{name}",
                          concurrency_limit=GENERATE_AT_ONCE, show_progress_on=[ctx["gallery"]])
        failed = ctx.listen(made.failure, refresh, VIEW_INPUTS, VIEW, show_progress="hidden", queue=False)
        failed.then(enable, outputs=ctx["generate"], queue=False)
        event = ctx.listen(made.then, refresh, VIEW_INPUTS, VIEW, show_progress="hidden")
        return event.then(enable, outputs=ctx["generate"], queue=False)

    ctx.run_generation = run_generation
    run_generation(ctx["generate"].click(None, js="() => {}"))


def waiting_line(place: int, of: int, joined: int) -> str:
    """The progress line while a generate waits for the model (the engine's line of joined requests)."""
    together = (f"; made together with {joined - 1} other request{'s' if joined > 2 else ''} like it"
                if joined > 1 else "")
    return f"Waiting for its turn ({place} of {of} waiting{together})"


class _Muted(logging.Filter):
    """On a library's own handlers while notes are collected: its warnings reach the notes, not stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


_MUTED = _Muted()
_collecting = {"count": 0, "lowered": {}}  # how many generations collect notes; the levels they lowered
_collecting_lock = threading.Lock()


@contextlib.contextmanager
def truncation_notes() -> Iterator[list[str]]:
    """Collect what a model's tokenizer says it cut from the prompt (it only logs it, at WARNING).

    ``studio serve`` silences library warnings (``studio.quiet``), so while a generation collects,
    the library loggers take warnings again but their own handlers print only errors."""
    notes: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if "truncated" in message:
                cut = message.split(":", 1)[-1].strip().strip("[]'\" ")
                notes.append(cut[:200] or message[:200])

    handler = Catch(level=logging.WARNING)
    loggers = [logging.getLogger(n) for n in TRUNCATION_LOGGERS]
    with _collecting_lock:
        if _collecting["count"] == 0:
            for logger in loggers:
                if logger.getEffectiveLevel() > logging.WARNING:
                    _collecting["lowered"][logger.name] = logger.level
                    logger.setLevel(logging.WARNING)
                    for own in logger.handlers:
                        own.addFilter(_MUTED)
        _collecting["count"] += 1
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield notes
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        with _collecting_lock:
            _collecting["count"] -= 1
            if _collecting["count"] == 0:
                for logger_name, level in _collecting["lowered"].items():
                    logger = logging.getLogger(logger_name)
                    logger.setLevel(level)
                    for own in logger.handlers:
                        own.removeFilter(_MUTED)
                _collecting["lowered"].clear()


def cut_words(prompt: str, note: str) -> str:
    """The end of ``prompt`` a tokenizer cut, in the prompt's own words (the tokenizer's note is its
    lower-cased word pieces, e.g. "iff , bold saturated"): as many of the prompt's last words as the note has."""
    count = len(re.findall(r"\w+", note))
    starts = [m.start() for m in re.finditer(r"\w+", prompt)]
    if not count or not starts:
        return note
    return prompt[starts[max(0, len(starts) - count)]:].strip()


def cut_warning(prompt: str, notes: list[str]) -> str:
    """One readable line for a cut prompt (the model logs it once per chunk of the batch: shown once)."""
    if not notes:
        return ""
    return ("⚠ The model reads only the start of this prompt, so it ignored the end: "
            f"“…{html.escape(cut_words(prompt, notes[0]))}”. Shorten the prompt to use every word.")


def length_warning(found: Any) -> str:
    """One sentence when a prompt is longer than the model reads (a ``PromptLength``), else ""."""
    if found is None or not found.over:
        return ""
    return (f"⚠ This prompt is {found.used} {found.unit} and the model reads at most {found.limit}: shorten it by "
            f"at least {found.used - found.limit} {found.unit} so it reads every word.")


def learned_from(studio: Any, medium: str, version: str, prompt: str) -> bool:
    """Whether ``version`` learned from candidates of ``prompt`` (base: always; a version's kept set pools
    every round before it)."""
    if version == "base":
        return True
    found = studio.store.version(medium, version)
    if found is None or not found.curated:
        return False
    return any(c.prompt == prompt.strip() for c in studio.store.candidates(medium, ids=found.curated))


def _models(ctx: TabContext) -> list[tuple[str, str]]:
    """(label, id) for the picker: the built-in model, the library's (cache, added folders), the current one,
    then the recommended starters not downloaded yet (their id is ``DOWNLOAD`` + the hub id)."""
    from pathlib import Path

    from ..library import Library

    current, default = ctx.studio.current_model(ctx.name), ctx.medium.default_model()
    library = Library(ctx.studio.store)
    ids = list(dict.fromkeys([current, default, *library.choices(ctx.name)]))

    def label(model: str) -> str:
        if model == default:
            return "built-in"
        return Path(model).name if model.startswith("/") else model  # a file or folder by name, a hub id as is

    starters = [(starter_label(e.starter), DOWNLOAD + e.id) for e in library.entries(ctx.name)
                if e.kind == "starter" and not e.installed and e.id not in ids]
    return [(label(m), m) for m in ids] + starters


DOWNLOAD = "download:"  # a picker value that fetches a recommended starter first
POLL_SECONDS = 0.5  # how often the line under the picker follows a download


def starter_label(starter: dict[str, Any]) -> str:
    """A starter in the picker: what it is, how big, what memory it needs, its license."""
    gated = ", gated: accept its terms on the hub and log in first" if starter["gated"] else ""
    return (f"Download {starter['id']} ({starter['size_gb']:g} GB, about {starter['memory_gb']:g} GB of GPU memory, "
            f"{starter['license']}{gated})")


def _download(ctx: TabContext, repo: str) -> Iterator[tuple[Any, str]]:
    """Pull a starter of this medium into the Hugging Face cache, reporting progress under the picker;
    returns the hub id.  Only the library's starters: a page never names an arbitrary download."""
    from .. import library

    if repo not in {s.id for s in library.STARTERS if s.medium == ctx.name}:
        raise StudioError(f"'{repo}' is not one of the recommended {ctx.name} models; "
                          "use studio models pull for any other.")
    state: dict[str, Any] = {"line": f"Starting the download of {repo}...", "error": None, "done": False}
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        state["line"] = f"Downloading {repo}: " + library.progress_line(done, total, started)

    def run() -> None:
        try:
            library.pull(repo, on_progress=report)
        except StudioError as exc:
            state["error"] = exc
        finally:
            state["done"] = True

    worker = threading.Thread(target=run, name=f"pull-{repo}", daemon=True)
    worker.start()
    while not state["done"]:
        yield gr.update(), state["line"]
        worker.join(POLL_SECONDS)
    if state["error"] is not None:
        raise state["error"]
    yield gr.update(), f"Downloaded {repo}; loading it..."
    return repo
