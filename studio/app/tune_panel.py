"""Fine-tune: one button starts the core's background tune; a timer shows its progress.

The timer reads the job from the store (``runner.active`` / ``runner.status``), not from this
page's memory, so a reload or a second browser tab shows the same running tune.  When a tune
finishes, its version appears in the pickers.
"""
from __future__ import annotations

import html
from typing import Any, Sequence

import gradio as gr

from .. import runner
from ..engine import steps_for_passes
from ..medium import Candidate
from ..store import DEFAULT_SERIES
from . import cards, plots
from .context import PICKERS, TabContext, event_value, friendly, in_range

POLL_SECONDS = 1.0
START_CHOICES = [("the version you work with", "version"), ("the base, on everything kept", "base")]
STRIP_MAX = 48  # candidates the strip shows (the newest); the count above it is the whole kept set's
STRIP_JS = """
element.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-unkeep]");
  if (button) { button.disabled = true; trigger("click", { unkeep: button.dataset.unkeep }); }
});
"""


def build(ctx: TabContext) -> None:
    fields = {f.name: f for f in ctx.medium.tune_settings.fields()}
    steps, rank, lr = fields["steps"], fields["rank"], fields["lr"]
    passes = ctx.medium.tune_defaults["epochs"]  # the model's dose (the text grammar model's differs)
    ctx["tune_intro"] = gr.Markdown(elem_classes=["tune-intro"])
    # what the next fine-tune learns from, with an Un-keep per candidate (a click event of this component)
    ctx["kept_strip"] = gr.HTML("", js_on_load=STRIP_JS, elem_classes=["kept-strip"])
    with gr.Row():
        ctx["tune_steps"] = gr.Number(label=steps.label, value=steps.default, elem_classes=["tune-steps"],
                                      min_width=160,
                                      info=(f"Empty: {passes:g} passes over the kept set, so the "
                                            "steps follow its size. More steps learn more (and copy more)."))
        ctx["tune_rank"] = gr.Number(label=rank.label, value=rank.default, elem_classes=["tune-rank"],
                                     info="Bigger can learn more detail (and copy more).",
                                     min_width=160)
        ctx["tune_lr"] = gr.Number(label=lr.label, value=lr.default, min_width=160,
                                   info="How big each learning step is.")
    ctx["tune_extra"] = gr.State({})  # a preset's other tune settings
    # ReST-EM's practice (studio loop --tune-from base): each round's tune starts from the base on everything kept
    ctx["tune_start"] = gr.Radio(START_CHOICES, value="version", label="Start from", elem_classes=["tune-start"],
                                 info="From the base, one tune learns everything kept so far; from the version "
                                      "you work with, it adds to what that version learned (the line above says "
                                      "which keeps it learns).")
    with gr.Row():
        ctx["tune"] = gr.Button("Fine-tune on the kept set", variant="primary", elem_classes=["tune-btn"])
        ctx["cancel"] = gr.Button("Cancel", variant="stop", interactive=False, elem_classes=["cancel-btn"])
    with gr.Row():
        ctx["tune_status"] = gr.HTML(_status_html(None), elem_classes=["tune-status"])
        with gr.Column():
            gr.Markdown("Loss by step (lower: the version fits the kept set better)", elem_classes=["loss-title"])
            ctx["loss"] = gr.HTML(plots.loss_svg([], 0), elem_classes=["loss"])
    ctx["timer"] = gr.Timer(POLL_SECONDS)
    ctx["seen"] = gr.State({"versions": None, "progress": None})


def wire(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name
    fields = {f.name: f for f in ctx.medium.tune_settings.fields()}

    @friendly
    def start(values: dict[str, Any]) -> dict[str, Any]:
        extra = values["tune_extra"]
        settings = dict(extra) if isinstance(extra, dict) else {}
        steps, rank, lr = (in_range(values[f"tune_{key}"], fields[key]) for key in ("steps", "rank", "lr"))
        start_from = _start(values["tune_start"], values["version"])
        studio.start_tune(name, start_from, steps=steps, rank=rank,
                          lr=float(lr) if lr is not None else None, settings=settings)
        ctx.remember(tune_steps=steps, tune_rank=rank, tune_lr=lr, tune_extra=settings, tune_start=values["tune_start"])
        return {"cancel": gr.update(interactive=True), "tune": gr.update(interactive=False)}  # one tune at a time

    ctx.listen(ctx["tune"].click, start, ["version", "tune_start", "tune_steps", "tune_rank", "tune_lr", "tune_extra"],
               ["cancel", "tune"])

    def cancel():
        for job in runner.active(studio.store, name):
            runner.cancel(studio.store, job["job"])
        return gr.update(interactive=False)

    ctx["cancel"].click(cancel, outputs=ctx["cancel"])

    def unkeep(event: gr.EventData) -> tuple[str, str]:
        """Un-keep one candidate of the kept set (a hand drop: no rule keeps it again), from the strip."""
        candidate = event_value(event, "unkeep")
        if candidate in {c.id for c in studio.next_kept_set(name)}:
            studio.store.set_decisions({candidate: "hand_rejected"})
        kept, saved = studio.next_kept_set(name), ctx.recall()
        start = _start(saved.get("tune_start"), saved.get("version"))
        learned = learned_ids(ctx, kept, start)
        return strip_html(kept, learned, start), _intro(ctx, kept, start, learned)

    ctx["kept_strip"].click(unkeep, outputs=[ctx["kept_strip"], ctx["tune_intro"]], queue=False)

    def poll(values: dict[str, Any]) -> dict[str, Any]:
        """The tune's progress; when the versions change (a tune finished), the newest is selected everywhere."""
        info = current_job(ctx)
        versions = studio.versions(name)
        seen = dict(values["seen"] or {})
        out: dict[str, Any] = {}
        key = None if info is None else [info["job"], info["status"], info["step"]]
        if key != seen.get("progress"):
            running = info is not None and info["status"] == "running"
            out.update(tune_status=_status_html(info), cancel=gr.update(interactive=running),
                       tune=gr.update(interactive=not running),
                       loss=plots.loss_svg(info["losses"], info["steps"]) if info else plots.loss_svg([], 0))
            seen["progress"] = key
        kept_set = studio.next_kept_set(name)  # once a poll: the intro's count and the strip
        start = _start(values["tune_start"], values["version"])
        learned = learned_ids(ctx, kept_set, start)  # once: the intro's count and the strip's dimming
        intro = _intro(ctx, kept_set, start, learned)
        if intro != seen.get("intro"):
            out["tune_intro"] = intro
        seen["intro"] = intro
        kept = [[c.id for c in kept_set], sorted(learned), start if learned else ""]
        if kept != seen.get("kept"):  # kept or dropped in the Curate step, another series, another start
            out["kept_strip"] = strip_html(kept_set, learned, start)
        seen["kept"] = kept
        if versions != seen.get("versions"):
            if seen.get("versions") is not None:  # a tune finished while the page was open: follow it
                ctx.remember(version=versions[-1])
            chosen = selected_version(ctx, versions)
            later = chosen if chosen != "base" else versions[-1]
            out.update({"version": gr.update(choices=versions, value=chosen),
                        "compare_after": gr.update(choices=versions, value=later),
                        "export_version": gr.update(choices=versions, value=later)})
            seen["versions"] = versions
        return {**out, "seen": seen}

    ctx.poll = poll
    ctx.poll_names = ("tune_status", "loss", "cancel", "tune", "tune_intro", "kept_strip", *PICKERS, "seen")
    ctx.listen(ctx["timer"].tick, poll, ["seen", "tune_start", *PICKERS], ctx.poll_names, queue=False, show_progress="hidden")


def selected_version(ctx: TabContext, versions: list[str]) -> str:
    """The version the artist works with, from the store (so a reload keeps it); base if it is gone."""
    saved = ctx.recall().get("version")
    return saved if saved in versions else "base"


def strip_html(kept: list[Any], learned: set[str] = frozenset(), start: str = "") -> str:
    """The kept set the next fine-tune learns from, newest first, each with an Un-keep button; those the
    starting version ``start`` learned already (``learned``, which the tune leaves out) dimmed and said."""
    from . import cards, gallery

    if not kept:
        return '<div class="kept-strip-empty">Nothing kept yet in this series.</div>'

    def item(c: Any) -> str:
        done = c.id in learned
        note = f'<div class="kept-learned">{html.escape(start)} learned it</div>' if done else ""
        return (f'<div class="kept-item{" learned" if done else ""}" data-id="{html.escape(c.id)}">'
                f'{gallery.media_html(cards.card(c, None))}{note}'
                f'<button data-unkeep="{html.escape(c.id)}" title="Drop it: the next fine-tune will not learn from '
                f'it">Un-keep</button></div>')

    items = "".join(item(c) for c in reversed(kept[-STRIP_MAX:]))
    more = (f'<div class="kept-more">and {len(kept) - STRIP_MAX} earlier ones</div>'
            if len(kept) > STRIP_MAX else "")
    return f'<div class="kept-items">{items}</div>{more}'


def _start(choice: str | None, version: str | None) -> str:
    """The version a tune starts from: the base, or the version the artist works with."""
    return "base" if choice == "base" else version or "base"


def learned_ids(ctx: TabContext, kept: Sequence[Candidate], start: str) -> set[str]:
    """The kept candidates a tune from ``start`` leaves out because ``start`` learned them (the medium's
    ``relearn`` off); none when it relearns them or starts from the base."""
    if ctx.medium.tune_defaults.get("relearn", True):
        return set()
    return {c.id for c in kept} - {c.id for c in ctx.studio.not_yet_learned(ctx.name, start, kept)}


def _intro(ctx: TabContext, kept: Sequence[Candidate], start: str = "base", learned: set[str] | None = None) -> str:
    series, total = ctx.studio.current_series(ctx.name), len(kept)
    if not total:
        return "Keep some candidates first (Curate step): the fine-tune learns from what you keep."
    defaults = ctx.medium.tune_defaults
    learned = learned_ids(ctx, kept, start) if learned is None else learned
    learns = [c for c in kept if c.id not in learned]
    if not learns:
        return (f"**{start}** has learned all **{total}** kept candidates already: keep some from a batch it made, "
                f"or start from the base.")
    steps = steps_for_passes(defaults["epochs"], len(learns), defaults["batch_size"])
    dose = f" With Steps left empty it makes {defaults['epochs']:g} passes over them ({steps} steps)."
    scale = defaults.get("tuned_lr_scale", 1.0)
    if start != "base" and scale != 1:  # training.tune_lr: a later round's own step
        dose += f" From {start}, a tuned version, each step is {scale:g}x the learning rate."
    if defaults.get("guided", False) is not False:  # image/tune.py: empty is on for SD 1.x/2.x, the built-in
        dose += (" On a Stable Diffusion 1.x/2.x model (the built-in) it learns each picture as guidance draws it, so "
                 "each step is the learning rate over the pictures' prompt strength.")
    further = defaults.get("extrapolate", 1.0)
    if further != 1:  # image/tune.py: the version is stored further along what the tune learned (ExPO)
        dose += f" The new version goes {further:g}x as far as the tune took it (Go further than learned)."
    low = defaults.get("min_timestep", 0.0)
    if low:  # image/tune.py: training noise drawn from the noisier part of the schedule only
        dose += (f" It learns at the noisier {1 - low:.0%} of the noise schedule, where a picture's layout and "
                 f"colour are settled, and leaves the finest detail as the model drew it (Lowest timestep learned).")
    moves = int(defaults.get("transpose", 0))
    if moves:  # music/tune.py: each piece also learned in the keys around its own
        dose += (f" On a model that writes notes (the built-in) it also learns each piece moved up to {moves} "
                 f"semitone{'s' if moves != 1 else ''} up and down, its key with it (Learn transposed too).")
    if defaults.get("momentum", 0.9) == 0:  # voice/settings.py: the built-in voice's preference tune
        dose += (" On the built-in model each step follows its own gradient alone (Momentum 0), so the tune stops "
                 "moving once it tells what you kept from what you dropped.")
    where = "" if series == DEFAULT_SERIES else f" in the series *{series}*"
    away = ""
    if defaults.get("objective", "sft") != "sft":  # a preference objective also learns from what was dropped
        share = defaults.get("drop_share", 1.0)
        dropped = len(ctx.studio.dropped_set(ctx.name, learns, share))
        by = "by you or the rule" if share >= 1 else f"by you, or by the rule in their batch's lowest {share:.0%}"
        away = (f", and away from the **{dropped}** dropped in their batches ({by})" if dropped else
                "; nothing in their batches is dropped yet, so it learns from the kept ones alone")
    if len(learns) < total:  # what the starting version learned stays in it (the medium's relearn setting)
        what = (f"From **{start}** the fine-tune learns from the **{len(learns)}** of the {total} candidates kept "
                f"across all rounds{where} that {start} has not learned (below, newest first, those it learned "
                f"dimmed; **Un-keep** drops one)")
    else:
        what = (f"The fine-tune learns from the **{total}** candidate{'s' if total != 1 else ''} kept across all "
                f"rounds{where} (below, newest first; **Un-keep** drops one)")
    return (f"{what}{away}. It makes a new version in the background, so you can keep working or reload the "
            f"page.{dose}")


def current_job(ctx: TabContext) -> dict[str, Any] | None:
    """The running (or interrupted) tune of this medium, else its most recent one."""
    store = ctx.studio.store
    active = runner.active(store, ctx.name)
    if active:
        return active[-1]
    jobs = store.jobs(ctx.name)
    return runner.status(store, jobs[-1]["id"]) if jobs else None


def _status_html(info: dict[str, Any] | None) -> str:
    if info is None:
        return '<div class="tune-state" data-status="none">No tune yet.</div>'
    status, step, steps = info["status"], info["step"], info["steps"]
    parts = [f"<b>{html.escape(str(info['version']))}</b> {html.escape(status)}", f"step {step}/{steps}"]
    if info["loss"] is not None:
        parts.append(f"loss {info['loss']:.4f}")
    if status == "running" and info["seconds_left"] is not None:
        parts.append(f"about {info['seconds_left']:.0f}s left")
    if status == "done" and info.get("result"):
        parts.append(f"took {info['result'].get('seconds', 0):.0f}s")
    said = [info["message"]] if info.get("message") else []
    if status == "done" and info.get("rewards"):
        said.append(cards.rewards_words(info["rewards"]))
    message = "".join(f"<div>{html.escape(line)}</div>" for line in said if line)
    return (f'<div class="tune-state" data-status="{html.escape(status)}">{" · ".join(parts)}'
            f'<br><progress value="{step}" max="{max(steps, 1)}" style="width:100%"></progress>{message}</div>')

