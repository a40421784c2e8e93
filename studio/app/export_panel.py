"""Export: one button per format of the medium; each export is written to ``WORKSPACE/exports/MEDIUM/``
and offered as one ``.zip`` download."""
from __future__ import annotations

import shutil
import time

import gradio as gr

from . import security
from .context import TabContext, friendly

def build(ctx: TabContext) -> None:
    versions = ctx.studio.versions(ctx.name)
    ctx["export_version"] = gr.Dropdown(label="Version", choices=versions, value=versions[-1],
                                        elem_classes=["export-version"],
                                        info="base exports only the kept set; a tuned version adds its adapter.")
    for fmt in ctx.medium.export_formats:
        with gr.Row(equal_height=True):
            ctx[f"export.{fmt}"] = gr.Button(f"Export {fmt}", size="sm", elem_classes=["export-btn"], scale=0,
                                             min_width=180)
            gr.Markdown(ctx.medium.export_formats[fmt], elem_classes=["export-about"])
    ctx["export_files"] = gr.File(label="Download (.zip)", file_count="single", interactive=False,
                                  elem_classes=["export-files"])


def wire(ctx: TabContext) -> None:
    for fmt in ctx.medium.export_formats:
        ctx[f"export.{fmt}"].click(_exporter(ctx, fmt), inputs=ctx["export_version"], outputs=ctx["export_files"],
                                   concurrency_id=f"model-{ctx.name}")


def _exporter(ctx: TabContext, fmt: str):
    @friendly
    def export(version: str) -> str:
        return export_zip(ctx, version or "base", fmt)
    return export


def export_zip(ctx: TabContext, version: str, fmt: str) -> str:
    """Export into a fresh folder under the workspace's exports, then zip that folder into one download."""
    root = security.exports_dir(ctx.studio.store.root) / ctx.name
    out = root / f"{ctx.name}-{version}-{fmt}-{time.strftime('%Y%m%d-%H%M%S')}"
    ctx.studio.export(ctx.name, version, fmt, out)
    return shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name)

