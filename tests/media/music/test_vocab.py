import pytest

from studio.errors import StudioError
from studio.media.music.vocab import parse_prompt, vocabulary


def test_style_words_map_to_tags():
    tags = parse_prompt("a gentle lullaby in F# minor, 6/8")
    assert dict(tags) == {"style": "lullaby", "meter": "6/8", "key": "F#", "mode": "minor", "tempo": "slow"}
    tags = parse_prompt("lively reel in D dorian at 140 bpm")
    assert dict(tags) == {"style": "reel", "key": "D", "mode": "dorian", "tempo": "fast"} and tags.bpm == 140
    assert dict(parse_prompt("a sad hymn")) == {"style": "chorale", "mode": "minor"}
    assert dict(parse_prompt("in a slow tempo")) == {"tempo": "slow"}  # 'a' is not the key of A
    assert dict(parse_prompt("Bb major march")) == {"style": "march", "key": "Bb", "mode": "major"}


def test_named_tags_win_over_moods():
    assert parse_prompt("a sad waltz in C major")["mode"] == "major"


@pytest.mark.parametrize("prompt", ["major minor", "a waltz march", "slow and fast", "in 3/4 or 4/4",
                                    "in C or in D"])
def test_contradictory_tags_are_one_sentence(prompt):
    with pytest.raises(StudioError) as err:
        parse_prompt(prompt)
    message = str(err.value)
    assert "contradictory" in message and message.count(".") == 1 and message.endswith(".")


def test_vocabulary_is_unique():
    tokens = vocabulary()
    assert len(tokens) == len(set(tokens)) and tokens[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
