"""The page's boxes keep what was typed: a whole-number box says a fraction in one sentence, never rounds it."""
from __future__ import annotations

import gradio as gr
import pytest

from studio.app.context import whole
from studio.engine import Studio
from studio.errors import StudioError


def test_a_whole_number_box_takes_whole_numbers_and_says_a_fraction():
    assert whole(12.0, "tune steps") == 12 and whole(0, "first seed") == 0
    assert whole(None, "tune steps") is None and whole("", "tune steps") is None  # empty: the default
    with pytest.raises(StudioError, match=r"^The tune steps must be a whole number, not 1.5\.$"):
        whole(1.5, "tune steps")
    with pytest.raises(StudioError, match="must be a whole number, not inf"):
        whole(float("inf"), "number of candidates")


def test_no_box_on_a_tab_rounds_what_was_typed(workspace, fake):
    """Gradio's precision=0 rounded Steps 1.5 to 2 before the studio saw it: the tune ran 2 steps with no word."""
    from studio.app.tab import build_tab

    with gr.Blocks() as page:
        build_tab(Studio(workspace), "fake")
    boxes = [block for block in page.blocks.values() if isinstance(block, gr.Number)]
    assert len(boxes) >= 6  # candidates, seed, steps, rank, learning rate, compare's two, the settings' own
    assert [box.label for box in boxes if box.precision is not None] == []
    assert boxes[0].preprocess(1.5) == 1.5  # reaches the handler as typed, which says it in one sentence
