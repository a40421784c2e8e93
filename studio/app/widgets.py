"""Gradio components for one candidate card: an image, a text card, or an audio player with its piano roll.

Used inside ``@gr.render`` functions by the curation and compare panels; what to show is
chosen from the candidate's files (``cards.kind``), never from the medium's name.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from . import cards, plots


def media(card: dict[str, Any], key: str) -> None:
    """The candidate itself, keyed so a re-render keeps what the browser already loaded."""
    files = card["files"]
    if card["kind"] == "image":
        path = next(files[ext] for ext in cards.IMAGE_EXTS if ext in files)
        gr.Image(value=path, show_label=False, height=200, interactive=False, key=f"{key}-image",
                 buttons=[], elem_classes=["candidate-image"])
    elif card["kind"] == "audio":
        audio = next((files[ext] for ext in cards.AUDIO_EXTS if ext in files), None)
        if "mid" in files:
            gr.Image(value=plots.piano_roll(files["mid"]), show_label=False, height=120, interactive=False,
                     key=f"{key}-roll", buttons=[], elem_classes=["piano-roll"])
        if audio is not None:
            gr.Audio(value=audio, show_label=False, interactive=False, key=f"{key}-audio",
                     elem_classes=["candidate-audio"])
    else:
        gr.Textbox(value=card["text"], show_label=False, lines=4, max_lines=12, interactive=False,
                   key=f"{key}-text", elem_classes=["candidate-text"])
