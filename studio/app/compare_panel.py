"""Compare: two versions on the same prompt and held-out seeds, side by side, with the metrics table.

Each row pairs the same seed before and after (a grid for images, columns for text, paired
players for music).  "Next round" moves the studio to the new version and generates a fresh
batch for the next round of curation.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from ..engine import HELD_OUT_SEED
from . import cards, widgets
from .context import TabContext, friendly


def build(ctx: TabContext) -> None:
    versions = ctx.studio.versions(ctx.name)
    gr.Markdown("### Compare")
    with gr.Row():
        ctx["compare_before"] = gr.Dropdown(label="Before", choices=versions, value="base", min_width=100)
        ctx["compare_after"] = gr.Dropdown(label="After", choices=versions, value=versions[-1], min_width=100,
                                           elem_classes=["compare-after"])
        ctx["compare_n"] = gr.Number(label="Candidates per side", value=4, precision=0, minimum=2, maximum=512,
                                        elem_classes=["compare-n"])
        ctx["compare_seed"] = gr.Number(label="First seed (seeds a tune learned from are skipped)",
                                        value=HELD_OUT_SEED, precision=0, minimum=0)
    with gr.Row():
        ctx["compare"] = gr.Button("Compare", variant="primary", elem_classes=["compare-btn"])
        ctx["next_round"] = gr.Button("Next round: curate with the after version", elem_classes=["next-round-btn"])
    ctx["metrics"] = gr.Dataframe(label="Metrics", interactive=False, elem_classes=["metrics"])
    ctx["pairs"] = gr.State([])

    @gr.render(inputs=ctx["pairs"])
    def pairs(rows: list[dict[str, Any]]):
        if not rows:
            return
        for row in rows:
            with gr.Row(equal_height=True, elem_classes=["compare-pair"]):
                for side in ("before", "after"):
                    card = row[side]
                    with gr.Column(min_width=200, elem_classes=[f"compare-{side}"]):
                        widgets.media(card, key=f"cmp-{side}-{card['id']}")
                        gr.Markdown(f"**{side}** ({card['version']}) · {cards.caption(card)}",
                                    elem_classes=["card-caption"])

    ctx.pairs_render = pairs


def wire(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name

    @friendly
    def compare(before: str, after: str, n: Any, seed: Any, prompt: str, threshold: float, temperature: float,
                *rest: Any):
        params = ctx.params(list(rest[: len(ctx.param_names)]))
        specs, options = ctx.scoring(list(rest[len(ctx.param_names):]))
        result = studio.compare(name, after=after, before=before or "base", prompt=prompt, n=int(n or 0),
                                seed=int(seed or 0), scorers=specs, threshold=threshold, temperature=temperature,
                                options=options, params=params)
        import pandas as pd

        headers, rows = cards.metrics_rows(result)
        table = pd.DataFrame([[str(v) for v in row] for row in rows], columns=headers)
        return table, cards.compare_pairs(studio, name, result)

    ctx["compare"].click(
        compare,
        inputs=[*ctx.many("compare_before", "compare_after", "compare_n", "compare_seed", "prompt", "threshold",
                          "temperature"), *ctx.params_inputs(), *ctx.scoring_inputs()],
        outputs=[ctx["metrics"], ctx["pairs"]], concurrency_id=f"model-{name}")

    def next_round(after: str, seed: Any, n: Any):
        # fresh seeds after this round's, so the next round curates new candidates
        return gr.update(value=after), int(seed or 0) + int(n or 0), False

    ctx["next_round"].click(next_round, inputs=ctx.many("compare_after", "seed", "n"),
                            outputs=ctx.many("version", "seed", "random_seed")) \
        .success(ctx.generate_fn, inputs=ctx.generate_inputs, outputs=ctx.many("shown", "seed"),
                 concurrency_id=f"model-{name}") \
        .success(ctx.refresh, inputs=ctx.view_inputs(), outputs=ctx.view_outputs())
