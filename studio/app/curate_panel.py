"""Curation: the rule (threshold and softness beside the score histogram), the scorers, the gallery.

Moving a slider re-decides from the stored scores (``cards.apply_rule``): nothing is
regenerated or rescored.  Hand decisions come from the gallery's keys and buttons
(``culling.js``): the flag flips in the page at once and a server function stores it, never
overwritten by the rule.  Which batch is shown, and the rule, live in the store's settings,
so a reload shows the same batch with the same decisions.

The softness slider is the rule's temperature counted in units of the shown batch's score range
(``cards.rule_temperature``): the page converts, the engine's rule is unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from ..engine import separation_warning, stale_threshold_warning, ties_warning
from . import cards, gallery, plots
from .context import VIEW, VIEW_INPUTS, TabContext, friendly

DEFAULT_THRESHOLD = 0.5
DEFAULT_TOP_SHARE = 0.25  # the relative rule: the top quarter of the batch
DEFAULT_SOFTNESS = 0.1  # a candidate a tenth of the batch's score range below the threshold: kept 1 time in 3
CULLING_JS = Path(__file__).with_name("culling.js")


def build_rule(ctx: TabContext) -> None:
    """The left column's rule: sliders beside the histogram, the warning, the scorers."""
    with gr.Group(elem_classes=["rule"]):
        gr.Markdown("**Keep rule** · the batch's scores: <span style='color:#4f8f5a'>■</span> kept by the rule, "
                    "<span style='color:#c0392b'>|</span> threshold, <span style='color:#e0a526'>—</span> "
                    "chance of keeping", elem_classes=["rule-legend"], padding=True)
        ctx["histogram"] = gr.HTML("", elem_classes=["histogram"], padding=True)
        ctx["warning"] = gr.HTML("", elem_classes=["separation-warning-box"], padding=True)
        # the top quarter first, as the CLI's default (the base's upper quartile): a fixed 0.5 kept none of a
        # first sketchbook batch scored 0.2-0.45; moving the threshold, or a preset's, switches to "score above"
        ctx["keep_by"] = gr.Radio(list(cards.KEEP_BY), value=cards.KEEP_BY[1], label="Keep by",
                                  info="The batch's top share, or a score above the threshold (moving the threshold "
                                       "picks it): after a tune lifts every score, the top share still picks.",
                                  elem_classes=["keep-by"])
        ctx["top_share"] = gr.Slider(0.05, 1.0, value=DEFAULT_TOP_SHARE, step=0.05, label="Top share of the batch",
                                     info="With 'top share of the batch': keep this share of it (0.25 = the top "
                                          "quarter); a rule softness above 0 keeps some just under it too.",
                                     elem_classes=["top-share"])
        ctx["threshold"] = gr.Slider(0.0, 1.0, value=DEFAULT_THRESHOLD, step=0.01, label="Keep threshold",
                                     info="The rule keeps candidates scoring at least this (with the top share: "
                                          "where it cuts this batch).",
                                     elem_classes=["threshold"])
        ctx["softness"] = gr.Slider(0.0, 1.0, value=DEFAULT_SOFTNESS, step=0.01, label="Rule softness",
                                    info="0 keeps strictly by the threshold. Higher also keeps some below it, "
                                         "measured against this batch's spread (its best score minus its worst): "
                                         "at 0.3, a candidate 0.3 of that spread below the threshold is kept "
                                         "about 1 time in 3.",
                                    elem_classes=["softness"])
        ctx["spread"] = gr.Checkbox(value=True, label="Skip near-copies", elem_classes=["spread"],
                                    info="Among what the rule keeps, drop a candidate that nearly copies a better one.")
    with gr.Accordion("Scorers: how candidates are scored", open=False, elem_classes=["scorers"]):
        for scorer, description in ctx.scorer_info.items():
            default = 1.0 if scorer == ctx.medium.default_scorer else 0.0
            ctx[f"weight.{scorer}"] = gr.Slider(0.0, 3.0, value=default, step=0.25, label=scorer, info=description,
                                                elem_classes=["scorer-weight", f"scorer-{scorer}"])
        ctx["scorer_options"] = gr.State({})  # a preset's options for its scorers (a colour, a style text...)
        ctx["rescore"] = gr.Button("Score this batch again with these weights", size="sm",
                                   elem_classes=["rescore-btn"])


def build(ctx: TabContext) -> None:
    """The gallery (the Curate step)."""
    ctx["shown"] = gr.State([])  # ids of the candidates on screen

    def decide(payload: str) -> dict[str, Any]:
        """Store hand decisions sent by the page: ``[[id, hand_accepted|hand_rejected|clear], ...]``."""
        try:
            changes = json.loads(payload) if isinstance(payload, str) else payload
        except json.JSONDecodeError:
            return {"decisions": {}}
        saved = ctx.recall()
        shown = saved.get("shown") or cards.latest_shown(ctx.studio, ctx.name)
        threshold = cards.rule_threshold(ctx.studio, ctx.name, shown, saved.get("keep_by", cards.KEEP_BY[1]),
                                         saved.get("threshold", DEFAULT_THRESHOLD),
                                         saved.get("top_share", DEFAULT_TOP_SHARE))
        temperature = cards.rule_temperature(saved.get("softness", DEFAULT_SOFTNESS),
                                             cards.shown_scores(ctx.studio, ctx.name, shown))
        stored = cards.store_decisions(ctx.studio, ctx.name, shown, changes if isinstance(changes, list) else [],
                                       threshold, temperature, keep_rule(saved.get("spread", True)))
        return {"decisions": stored, "curated": cards.curated_summary(ctx.studio, ctx.name)}

    ctx["gallery"] = gr.HTML(gallery.batch_html(ctx.name, [], "", "", loaded=False), elem_classes=["gallery-box"],
                             js_on_load=CULLING_JS.read_text(), server_functions=[decide], min_height=300)
    ctx.view = lambda values: view(ctx, values["shown"], threshold_of(ctx, values), temperature_of(ctx, values),
                                   values["spread"], values.get("keep_by"), values.get("top_share"),
                                   [n for n in ctx.scorer_names if values.get(f"weight.{n}")])


def threshold_of(ctx: TabContext, values: dict[str, Any]) -> float:
    """The rule's threshold: the slider's, or the shown batch's top share's lowest score."""
    return cards.rule_threshold(ctx.studio, ctx.name, values["shown"], values.get("keep_by"), values["threshold"],
                                values.get("top_share"))


def temperature_of(ctx: TabContext, values: dict[str, Any]) -> float:
    """The rule's temperature: the softness slider in units of the shown batch's score range."""
    return cards.rule_temperature(values["softness"], cards.shown_scores(ctx.studio, ctx.name, values["shown"]))


def keep_rule(spread: bool) -> str:
    return "spread" if spread else "all"


def view(ctx: TabContext, shown: list[str], threshold: float, temperature: float, spread: bool,
         keep_by: str | None = None, top_share: float | None = None,
         scorers: list[str] | None = None) -> dict[str, Any]:
    """The gallery, the histogram and the warning for the shown batch under the current rule; after a
    tune, a warning when the threshold keeps nearly all, or none, of the batch; with the top share, one when ties at
    its cut keep far more than the share."""
    shown_cards, stats = cards.batch_view(ctx.studio, ctx.name, shown, threshold, temperature, keep_rule(spread))
    kept_by_rule = [c["rule"] == "auto_accepted" for c in shown_cards if c["score"] is not None]
    histogram = plots.histogram_svg(stats["scores"], threshold, temperature, kept_by_rule)
    warning = separation_warning(stats["scores"])
    if keep_by == cards.KEEP_BY[1] and top_share is not None and not warning:
        advice = ctx.studio.medium(ctx.name).tie_advice(scorers or [])
        warning = ties_warning(stats["scores"], threshold, float(top_share), advice)
    if keep_by != cards.KEEP_BY[1] and kept_by_rule:
        pool = ctx.studio.store.candidates(ctx.name, ids=list(shown or []))
        stale = stale_threshold_warning(pool, sum(kept_by_rule) / len(kept_by_rule), threshold)
        warning = " ".join(w for w in (warning, stale) if w) or None
    html = gallery.batch_html(ctx.name, shown_cards, cards.rate_summary(stats),
                              cards.curated_summary(ctx.studio, ctx.name), warning)
    note = f'<div class="separation-warning">⚠ {warning}</div>' if warning else ""
    return {"gallery": html, "histogram": histogram, "warning": note}


def wire(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name

    @friendly
    def recut(values: dict[str, Any]) -> dict[str, Any]:
        """The rule re-decided; with the top share, the threshold slider's reading of its cut (what "score above"
        then starts from), stored and returned for the slider."""
        threshold = threshold_of(ctx, values)
        cards.apply_rule(studio, name, values["shown"], threshold, temperature_of(ctx, values),
                         keep_rule(values["spread"]))
        cut = cards.shown_cut(values["keep_by"], threshold)
        ctx.remember(threshold=cut.get("threshold", values["threshold"]), softness=values["softness"],
                     spread=values["spread"], keep_by=values["keep_by"], top_share=values["top_share"])
        return {**ctx.view(values), **cut}

    def redecide(values: dict[str, Any]) -> dict[str, Any]:
        """The rule re-decided, the slider left where it is."""
        return {k: v for k, v in recut(values).items() if k != "threshold"}

    @friendly
    def by_threshold(values: dict[str, Any]) -> dict[str, Any]:
        """The artist moved the threshold: the rule is "score above" it from now on."""
        return {**redecide({**values, "keep_by": cards.KEEP_BY[0]}), "keep_by": cards.KEEP_BY[0]}

    # the artist's moves only (``input``): a reload or a preset setting the sliders must not re-decide with
    # half-restored values, nor store them.  Moving the threshold flips the radio in the page at once too, so a
    # Generate pressed before the server answers reads "score above"
    ctx.listen(ctx["threshold"].input, None, outputs=["keep_by"], js=f"() => {json.dumps(cards.KEEP_BY[0])}",
               queue=False)
    ctx.listen(ctx["threshold"].input, by_threshold, VIEW_INPUTS, [*VIEW, "keep_by"], show_progress="hidden",
               trigger_mode="always_last", concurrency_limit=None)
    # only the top share's own controls move the slider to its cut: a softness answer arriving late must not
    # overwrite a threshold the artist typed meanwhile
    for slider in ("softness", "spread", "keep_by", "top_share"):
        moves_cut = slider in ("keep_by", "top_share")
        ctx.listen(ctx[slider].input, recut if moves_cut else redecide, VIEW_INPUTS,
                   [*VIEW, "threshold"] if moves_cut else VIEW, show_progress="hidden",
                   trigger_mode="always_last", concurrency_limit=None)

    @friendly
    def rescore(values: dict[str, Any]) -> dict[str, Any]:
        specs, options = ctx.scoring(values)
        pool = studio.store.candidates(name, ids=list(values["shown"] or []))
        if not pool:
            raise gr.Error("There are no candidates to score yet; generate a batch first.", print_exception=False)
        studio.score(name, pool, specs, options)
        return recut(values)  # new scores, a new cut

    ctx.listen(ctx["rescore"].click, rescore, [*VIEW_INPUTS, *ctx.scoring_names()], [*VIEW, "threshold"],
               concurrency_id=f"model-{name}")

