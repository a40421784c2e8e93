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


def test_a_stop_at_a_blank_line_survives_the_page_box():
    """The haiku preset's stop ["\\n\\n"] (and the slogan's ["\\n"]) came back from the lines box as [] : the page
    generated past the poem while the CLI stopped at it."""
    from studio.app.context import from_widget, to_widget
    from studio.media.text.settings import TextGenerate, TextTune

    stop = {f.name: f for f in TextGenerate.fields()}["stop"]
    for value in (["\n\n"], ["\n"], ["THE END", "\n\n"], ["a\\b", "tab\there"]):
        shown = to_widget(value, stop)
        assert from_widget(shown, stop) == value, shown
    assert to_widget(["\n\n", "THE END"], stop) == "\\n\\n\nTHE END"  # one a line, the break written out
    assert from_widget("C:\\loras\\x", stop) == ["C:\\loras\\x"]  # a backslash before anything else stays
    targets = {f.name: f for f in TextTune.fields()}["targets"]
    assert from_widget("q_proj\\n\nv_proj", targets) == ["q_proj\\n", "v_proj"]  # a list without line breaks: as typed
