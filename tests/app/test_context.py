"""The page's boxes keep what was typed: a whole-number box says a fraction in one sentence, never rounds it."""
from __future__ import annotations

import gradio as gr
import pytest

from studio.app.context import in_range, whole
from studio.engine import Studio
from studio.errors import StudioError


def test_a_whole_number_box_takes_whole_numbers_and_says_a_fraction():
    assert whole(12.0, "tune steps") == 12 and whole(0, "first seed") == 0
    assert whole(None, "tune steps") is None and whole("", "tune steps") is None  # empty: the default
    with pytest.raises(StudioError, match=r"^The tune steps must be a whole number, not 1.5\.$"):
        whole(1.5, "tune steps")
    with pytest.raises(StudioError, match="must be a whole number, not inf"):
        whole(float("inf"), "number of candidates")
    assert whole(512, "number of candidates", 1, 512) == 512
    with pytest.raises(StudioError, match=r"^The number of candidates must be between 1 and 512, not 0\.$"):
        whole(0, "number of candidates", 1, 512)


def test_a_setting_box_out_of_range_is_said_with_its_label():
    """Gradio's minimum/maximum said only "Error" for 0 in Adapter size: the studio says it by the box's label."""
    from studio.settings import TuneSettings

    fields = {f.name: f for f in TuneSettings.fields()}
    assert in_range(8.0, fields["rank"]) == 8 and in_range(None, fields["steps"]) is None
    with pytest.raises(StudioError, match=r"^Adapter size must be a whole number from 1 to 512, not 0\.$"):
        in_range(0, fields["rank"])
    with pytest.raises(StudioError, match=r"^Learning rate must be a number above 0 and below 1, not 2\.$"):
        in_range(2, fields["lr"])


def test_no_box_on_a_tab_rounds_what_was_typed(workspace, fake):
    """Gradio's precision=0 rounded Steps 1.5 to 2 before the studio saw it: the tune ran 2 steps with no word."""
    from studio.app.tab import build_tab

    with gr.Blocks() as page:
        build_tab(Studio(workspace), "fake")
    boxes = [block for block in page.blocks.values() if isinstance(block, gr.Number)]
    assert len(boxes) >= 6  # candidates, seed, steps, rank, learning rate, compare's two, the settings' own
    assert [box.label for box in boxes if box.precision is not None] == []
    # nor stops it with a bare "Error": Gradio's bounds check runs before the studio's sentence
    assert [box.label for box in boxes if box.minimum is not None or box.maximum is not None] == []
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


def test_a_choice_shows_its_name_and_gives_its_value():
    """The sampler box shows AUTOMATIC1111's names ("Euler a") and gives the command line's (euler_ancestral)."""
    from studio.app.context import param_widget
    from studio.media.image.settings import ImageGenerate

    field = {f.name: f for f in ImageGenerate.fields()}["sampler"]
    box = param_widget(field)
    assert ("Euler a", "euler_ancestral") in box.choices and ("the model's own", "model") in box.choices
    assert box.value == "model"
    from studio.settings import setting

    with pytest.raises(ValueError):
        setting("a", "a choice", choices=("a", "b"), shown=("A",))
