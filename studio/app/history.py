"""The History tab: every medium's versions and rounds, from the store."""
from __future__ import annotations

import time
from typing import Any

import gradio as gr

from ..engine import Studio

VERSION_COLUMNS = ["version", "parent", "curated", "steps", "rank", "lr", "final loss", "lift", "made"]
ROUND_COLUMNS = ["round", "version", "from", "curated", "loss", "seconds", "made"]


def version_rows(studio: Studio, medium: str) -> list[list[Any]]:
    rows = [["base", "", "", "", "", "", "", "", studio.current_model(medium)]]
    for v in studio.store.versions(medium):
        loss, lift = v.metrics.get("loss"), v.metrics.get("lift")
        rows.append([v.name, v.parent or "", len(v.curated), v.settings.get("steps", ""), v.settings.get("rank", ""),
                     v.settings.get("lr", ""), "" if loss is None else f"{loss:.4f}",
                     "" if lift is None else f"{lift:.2f}x", _when(v.created_at)])
    return rows


def round_rows(studio: Studio, medium: str) -> list[list[Any]]:
    rows = []
    for i, r in enumerate(studio.store.rounds(medium), start=1):
        loss, seconds = r["metrics"].get("loss"), r["metrics"].get("seconds")
        rows.append([i, r["version"], r["parent"] or "", r["curated"], "" if loss is None else f"{loss:.4f}",
                     "" if seconds is None else f"{seconds:.0f}", _when(r["created_at"])])
    return rows


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def build(studio: Studio, names: list[str]) -> tuple[gr.Button, Any, list[Any]]:
    """The History tab's components; returns (refresh button, refresh function, outputs)."""
    tables = []
    refresh = gr.Button("Refresh", size="sm", elem_classes=["history-refresh"])
    for name in names:
        gr.Markdown(f"### {name.capitalize()}")
        tables.append(gr.Dataframe(headers=VERSION_COLUMNS, label=f"{name} versions", interactive=False,
                                   elem_classes=["history-versions", f"history-{name}"]))
        tables.append(gr.Dataframe(headers=ROUND_COLUMNS, label=f"{name} rounds", interactive=False,
                                   elem_classes=["history-rounds"]))

    def load():
        import pandas as pd

        out = []
        for name in names:
            out.append(pd.DataFrame([[str(x) for x in r] for r in version_rows(studio, name)], columns=VERSION_COLUMNS))
            out.append(pd.DataFrame([[str(x) for x in r] for r in round_rows(studio, name)], columns=ROUND_COLUMNS))
        return out

    refresh.click(load, outputs=tables)
    return refresh, load, tables
