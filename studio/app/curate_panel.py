"""Curation: scorers and weights, the threshold/temperature rule, the score histogram, the cards.

Moving the threshold or temperature re-decides from the stored scores (``cards.apply_rule``):
nothing is regenerated or rescored.  A hand decision on a card wins over the rule and is
never overwritten by it.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from ..engine import DEFAULT_TEMPERATURE
from . import cards, plots, widgets
from .context import TabContext, friendly

DEFAULT_THRESHOLD = 0.5


def build(ctx: TabContext) -> None:
    ctx["shown"] = gr.State([])  # ids of the candidates on screen
    ctx["cards"] = gr.State([])
    gr.Markdown("### Curate")
    with gr.Row():
        with gr.Column(scale=2):
            with gr.Row():
                for scorer in ctx.scorer_names:
                    default = 1.0 if scorer == ctx.medium.default_scorer else 0.0
                    ctx[f"weight.{scorer}"] = gr.Number(value=default, label=f"{scorer} weight", minimum=0,
                                                        min_width=110, elem_classes=["scorer-weight"])
            with gr.Row():
                ctx["custom_scorer"] = gr.Textbox(label="Registered scorers (name=weight, ...)", scale=2)
                ctx["scorer_options"] = gr.Textbox(label="Scorer options (JSON)", value="{}", scale=2)
            ctx["rescore"] = gr.Button("Rescore with these scorers", size="sm")
            ctx["threshold"] = gr.Slider(0.0, 1.0, value=DEFAULT_THRESHOLD, step=0.01, label="Threshold",
                                         elem_classes=["threshold"])
            ctx["temperature"] = gr.Slider(0.0, 1.0, value=DEFAULT_TEMPERATURE, step=0.01,
                                           label="Temperature (0 = hard threshold)", elem_classes=["temperature"])
            ctx["rate"] = gr.Markdown(elem_classes=["acceptance"])
            ctx["curated"] = gr.Markdown(elem_classes=["curated-size"])
        ctx["histogram"] = gr.Image(label="Scores (green: accepted; red: threshold)", type="pil",
                                    interactive=False, buttons=[], scale=1, elem_classes=["histogram"])

    @gr.render(inputs=ctx["cards"])
    def gallery(shown_cards: list[dict[str, Any]]):
        if not shown_cards:
            return
        with gr.Row(elem_classes=["gallery"]):
            for i, card in enumerate(shown_cards):
                with gr.Column(min_width=230, key=f"card-{card['id']}",
                               elem_classes=["card", f"decision-{card['decision']}"]):
                    widgets.media(card, key=card["id"])
                    gr.Markdown(f"**#{i + 1}** · {cards.caption(card)}", elem_classes=["card-caption"],
                                key=f"{card['id']}-caption")
                    with gr.Row():
                        accept = gr.Button("Accept", size="sm", variant="primary", elem_classes=["accept-btn"],
                                           key=f"{card['id']}-accept")
                        reject = gr.Button("Reject", size="sm", variant="stop", elem_classes=["reject-btn"],
                                           key=f"{card['id']}-reject")
                    accept.click(_hand(ctx, card["id"], "hand_accepted"), inputs=ctx.view_inputs(),
                                 outputs=ctx.view_outputs())
                    reject.click(_hand(ctx, card["id"], "hand_rejected"), inputs=ctx.view_inputs(),
                                 outputs=ctx.view_outputs())

    ctx.gallery = gallery
    ctx.view_inputs = lambda: ctx.many("shown", "threshold", "temperature")
    ctx.view_outputs = lambda: ctx.many("cards", "rate", "histogram", "curated")
    ctx.refresh = friendly(lambda shown, threshold, temperature: view(ctx, shown, threshold, temperature))


def view(ctx: TabContext, shown: list[str], threshold: float, temperature: float) -> list[Any]:
    shown_cards, stats = cards.batch_view(ctx.studio, ctx.name, shown, threshold, temperature)
    image = plots.histogram(stats["scores"], threshold, stats["accepted_mask"]) if stats["scores"] else None
    return [shown_cards, cards.rate_summary(stats), image, cards.curated_summary(ctx.studio, ctx.name)]


def _hand(ctx: TabContext, candidate_id: str, decision: str):
    @friendly
    def decide(shown: list[str], threshold: float, temperature: float):
        ctx.studio.curate(ctx.name, accept=[candidate_id] if decision == "hand_accepted" else [],
                          reject=[candidate_id] if decision == "hand_rejected" else [], apply_rule=False)
        return view(ctx, shown, threshold, temperature)
    return decide


def wire(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name

    @friendly
    def redecide(shown: list[str], threshold: float, temperature: float):
        cards.apply_rule(studio, name, shown, threshold, temperature)
        ctx.remember(threshold=threshold, temperature=temperature)
        return view(ctx, shown, threshold, temperature)

    for slider in (ctx["threshold"], ctx["temperature"]):
        slider.change(redecide, inputs=ctx.view_inputs(), outputs=ctx.view_outputs(), show_progress="hidden")

    @friendly
    def rescore(shown: list[str], threshold: float, temperature: float, *scoring: Any):
        specs, options = ctx.scoring(list(scoring))
        pool = studio.store.candidates(name, ids=list(shown or []))
        if not pool:
            raise gr.Error("There are no candidates to score yet; generate a batch first.", print_exception=False)
        studio.score(name, pool, specs, options)
        cards.apply_rule(studio, name, shown, threshold, temperature)
        return view(ctx, shown, threshold, temperature)

    ctx["rescore"].click(rescore, inputs=[*ctx.view_inputs(), *ctx.scoring_inputs()], outputs=ctx.view_outputs(),
                         concurrency_id=f"model-{name}")
