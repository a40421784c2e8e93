"""Compare: two versions on the same prompt and held-out seeds, side by side, with the figures in plain words.

Each pair is the same seed before and after (a grid of pairs for pictures, two columns for
text, paired players for music); Space plays the focused one, Enter opens it large.  "Next
round" moves the studio to the after version and generates a fresh batch to curate.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from ..engine import HELD_OUT_SEED, MAX_CANDIDATES
from . import cards, gallery
from .context import TabContext, friendly, whole
from .curate_panel import CULLING_JS, temperature_of


def build(ctx: TabContext) -> None:
    versions = ctx.studio.versions(ctx.name)
    gr.Markdown("Both versions make candidates from the prompt on the left, on the same new seeds "
                "(never the seeds a fine-tune learned from), scored and kept by the same rule.",
                elem_classes=["compare-intro"])
    with gr.Row():
        ctx["compare_before"] = gr.Dropdown(label="Before", choices=versions, value="base", min_width=120)
        ctx["compare_after"] = gr.Dropdown(label="After", choices=versions, value=versions[-1], min_width=120,
                                           elem_classes=["compare-after"])
        ctx["compare_n"] = gr.Number(label="Candidates per side", value=4, elem_classes=["compare-n"], min_width=140)
        ctx["compare_seed"] = gr.Number(label="First seed", value=HELD_OUT_SEED, min_width=140,
                                        info="Seeds a tune learned from are skipped.")
        ctx["compare_strength"] = gr.Slider(label="Tuned style strength", minimum=0.0, maximum=1.5, step=0.05,
                                            value=1.0, min_width=160, elem_classes=["compare-strength"],
                                            info="How strongly the after version's fine-tune is applied (1 = as tuned).")
    with gr.Row():
        ctx["compare"] = gr.Button("Compare", variant="primary", elem_classes=["compare-btn"])
        ctx["next_round"] = gr.Button("Next round: curate a new batch with the after version",
                                      elem_classes=["next-round-btn"])
    ctx["metrics"] = gr.HTML("", elem_classes=["metrics"])
    ctx["pairs"] = gr.HTML(gallery.pairs_html(ctx.name, []), js_on_load=CULLING_JS.read_text(),
                           elem_classes=["pairs-box"])


def wire(ctx: TabContext) -> None:
    studio, name = ctx.studio, ctx.name

    @friendly
    def compare(values: dict[str, Any], progress=gr.Progress()) -> dict[str, Any]:
        params = ctx.params(values)
        specs, options = ctx.scoring(values)
        n = whole(values["compare_n"], "number of candidates per side", 2, MAX_CANDIDATES) or 0
        strength = values["compare_strength"]
        # the top share: each side is judged by the before side's own cut (the threshold slider shows the curated
        # batch's, which a tuned version may have drawn)
        relative = values["keep_by"] == cards.KEEP_BY[1]
        top = float(values["top_share"]) if relative else None
        progress(None, desc=f"Making {n} candidates with each version")
        result = studio.compare(name, after=values["compare_after"], before=values["compare_before"] or "base",
                                prompt=values["prompt"], n=n, seed=whole(values["compare_seed"], "first seed") or 0,
                                scorers=specs,
                                threshold=None if relative else values["threshold"], top=top,
                                temperature=temperature_of(ctx, values), options=options,
                                params=params, strength=float(1.0 if strength is None else strength))
        return {"metrics": cards.metrics_html(result),
                "pairs": gallery.pairs_html(name, cards.compare_pairs(studio, name, result))}

    ctx.listen(ctx["compare"].click, compare,
               ["compare_before", "compare_after", "compare_n", "compare_seed", "compare_strength", "prompt",
                "threshold", "keep_by", "top_share", "softness", "shown", *ctx.params_names(),
                *ctx.scoring_names()],
               ["metrics", "pairs"], concurrency_id=f"model-{name}")

    def next_round(after: str, seed: Any, n: Any):
        # fresh seeds after this round's, so the next round curates new candidates
        ctx.remember(version=after or "base")
        return gr.update(value=after), int(seed or 0) + int(n or 0), False, gr.update(selected="curate")

    ctx.run_generation(ctx["next_round"].click(
        next_round, inputs=ctx.many("compare_after", "seed", "n"),
        outputs=[*ctx.many("version", "seed", "random_seed"), ctx["steps"]], queue=False))
