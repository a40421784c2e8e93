"""Where a text ends: a blank line between paragraphs of writing, never after an introduction or inside a list."""
from __future__ import annotations

import pytest

from studio.media.text.stops import StopWatch, asked_parts, cut, find_end

BLANK = ["\n\n"]


@pytest.mark.parametrize("text, ended", [
    ("A lone winter's tale,\nthe first snow falls.\n\nThis haiku captures the essence", "A lone winter's tale,\nthe first snow falls."),
    ("Here are five ideas:\n\n1. A snowy city.\n\n2. The aurora.\n\nI hope these help!", "Here are five ideas:\n\n1. A snowy city.\n\n2. The aurora."),
    ("Ingredients:\n\n- 2 cups of flour\n\n- 1 cup of water\n\nMix them.", "Ingredients:\n\n- 2 cups of flour\n\n- 1 cup of water"),
    ("\n\nSnow on the hills.\n\nA comment.", "\n\nSnow on the hills."),
    ("A haiku：\n\nsnow\n\nnote", "A haiku：\n\nsnow"),
    ("One line and no break", "One line and no break"),
    ("The poem ends here.\n\n", "The poem ends here."),
    ("Here is a haiku:\n\n", "Here is a haiku:\n\n"),  # the introduction alone: nothing to cut it from
])
def test_a_blank_line_ends_the_writing_not_an_introduction_or_a_list(text, ended):
    assert cut(text, BLANK) == ended


def test_a_line_break_ends_at_a_line_after_any_introduction_and_a_list_at_its_first_item():
    """The slogan preset's "one line": the introduction is not the line, a list's lines are each one."""
    assert cut("Here's a slogan:\n\"Fresh bread, warm hands.\"\nAnother", ["\n"]) == \
        "Here's a slogan:\n\"Fresh bread, warm hands.\""
    assert cut("- Fresh bread\n- Warm hands", ["\n"]) == "- Fresh bread"
    assert find_end("Fresh bread.\n", ["\n"]) == len("Fresh bread.")  # nothing to wait for


def test_other_stop_strings_end_the_text_where_they_appear():
    assert cut("Ingredients: flour END water", ["END"]) == "Ingredients: flour "
    assert cut("a b\n\nc THE END d", ["\n\n", "THE END"]) == "a b"
    assert cut("Intro:\n\nc THE END d", ["\n\n", "THE END"]) == "Intro:\n\nc "
    assert cut("Intro: a b", [" "]) == "Intro:"  # a space is not a line break


def test_a_break_waits_for_its_next_paragraph_before_it_ends_the_text():
    assert find_end("The snow falls.\n\n", BLANK) is None  # a list item may follow
    assert find_end("The snow falls.\n\n\n", BLANK) is None
    assert find_end("The snow falls.\n\nT", BLANK) == len("The snow falls.")
    assert find_end("The snow falls.\n\n2", BLANK) is None  # "2." or "2 birds": not known yet
    assert find_end("1. The snow falls.\n\n2. ", BLANK) is None
    assert find_end("The snow falls.\n\n", BLANK, final=True) == len("The snow falls.")


class Letters:
    """A tokenizer whose tokens are characters."""

    def decode(self, tokens):
        return "".join(chr(t) for t in tokens)


@pytest.mark.parametrize("look_every", [1, 3, 7])
def test_the_watch_ends_a_row_at_the_fewest_tokens_that_show_its_end(look_every):
    texts = ["Here are ideas:\n\n1. Snow.\n\n2. Fog.\n\nEnjoy painting!",
             "A haiku.\n\nThis haiku captures it.",
             "No break at all in this one."]
    watch = StopWatch(Letters(), BLANK)
    ended = {}
    for row, text in enumerate(texts):
        tokens = [ord(c) for c in text]
        for written in list(range(look_every, len(tokens), look_every)) + [len(tokens)]:
            end = watch.first_stop(row, tokens[:written])
            if end is not None:
                ended[row] = end
                break
    # each row ends one token into the paragraph that shows the break was the end
    assert ended == {0: texts[0].index("Enjoy") + 1, 1: texts[1].index("This") + 1}
    assert cut(texts[0][:ended[0]], BLANK) == "Here are ideas:\n\n1. Snow.\n\n2. Fog."


@pytest.mark.parametrize("prompt, parts", [
    ("a haiku about the first snow", 1), ("a verse about rain", 1), ("one stanza please", 1),
    ("the universe in a poem", 1), ("a poem in three stanzas about the sea", 3), ("a song with two verses", 2),
    ("write 2 short paragraphs", 2), ("a three-stanza poem", 3), ("A Couple of Paragraphs on snow", 2),
    ("a poem in four rhyming stanzas", 4), ("a poem in stanzas", 10_000),
])
def test_a_prompt_says_how_many_parts_it_asks_for(prompt, parts):
    assert asked_parts(prompt) == parts


def test_a_text_in_parts_ends_at_the_blank_line_after_its_last_part():
    text = "Here is a poem:\n\nSalt wind\nthe gulls\n\n\nLow tide\nthe rocks\n\nNight falls\n\nThis poem captures the sea."
    assert cut(text, BLANK) == "Here is a poem:\n\nSalt wind\nthe gulls"
    assert cut(text, BLANK, parts=3) == text[:text.index("\n\nThis")]  # the three-line break is one break
    assert cut(text, BLANK, parts=10_000) == text  # stanzas, no count: no blank line ends it
    assert cut("One.\n\n- a\n\n- b\n\nTwo.\n\nNote", BLANK, parts=2) == "One.\n\n- a\n\n- b\n\nTwo."
    assert find_end("Salt wind.\n\nLow tide.\n\n", BLANK, parts=2) is None  # the second break waits as the first did
    watch = StopWatch(Letters(), BLANK, parts=2)
    tokens = [ord(c) for c in "A.\n\nB.\n\nC."]
    assert watch.first_stop(0, tokens[:4]) is None and watch.first_stop(0, tokens) == len("A.\n\nB.\n\nC")
