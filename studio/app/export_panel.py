"""Export: one button per format of the medium, written to ``WORKSPACE/exports/MEDIUM/`` and offered as downloads."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import gradio as gr

from . import security
from .context import TabContext, friendly


def build(ctx: TabContext) -> None:
    versions = ctx.studio.versions(ctx.name)
    gr.Markdown("### Export")
    with gr.Row():
        ctx["export_version"] = gr.Dropdown(label="Version", choices=versions, value=versions[-1], min_width=100,
                                            scale=1)
        with gr.Column(scale=3):
            with gr.Row():
                for fmt in ctx.medium.export_formats:
                    ctx[f"export.{fmt}"] = gr.Button(f"Export {fmt}", size="sm", elem_classes=["export-btn"])
    ctx["export_files"] = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                  elem_classes=["export-files"])


def wire(ctx: TabContext) -> None:
    for fmt in ctx.medium.export_formats:
        ctx[f"export.{fmt}"].click(_exporter(ctx, fmt), inputs=ctx["export_version"], outputs=ctx["export_files"],
                                   concurrency_id=f"model-{ctx.name}")


def _exporter(ctx: TabContext, fmt: str):
    @friendly
    def export(version: str) -> list[str]:
        return export_files(ctx, version or "base", fmt)
    return export


def export_files(ctx: TabContext, version: str, fmt: str) -> list[str]:
    """Export into a fresh folder under the workspace's exports; a folder written by the medium is zipped."""
    root = security.exports_dir(ctx.studio.store.root) / ctx.name
    out = root / f"{version}-{fmt}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = ctx.studio.export(ctx.name, version, fmt, out)
    files = []
    for written in map(Path, result["files"]):
        if written.is_dir():
            files.append(shutil.make_archive(str(written), "zip", root_dir=written))
        elif written.is_file():
            files.append(str(written))
    if not files:  # a medium that writes a tree and reports only its folder: offer the whole export
        files.append(shutil.make_archive(str(out), "zip", root_dir=out))
    return files
