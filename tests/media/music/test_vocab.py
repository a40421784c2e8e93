import pytest

from studio.errors import StudioError
from studio.media.music.vocab import (ENSEMBLES, INSTRUMENTS, PROMPT_WORDS, STYLE_ENSEMBLE, ensemble, parse_prompt,
                                      prompt_help, vocabulary)


def test_style_words_map_to_tags():
    tags = parse_prompt("a gentle air in F# minor, 6/8")
    assert dict(tags) == {"style": "air", "meter": "6/8", "key": "F#", "mode": "minor"} and tags.tempo == "slow"
    tags = parse_prompt("lively reel in D dorian at 140 bpm")
    assert dict(tags) == {"style": "reel", "key": "D", "mode": "dorian"} and tags.bpm == 140
    assert tags.playing_bpm("reel") == 140
    assert dict(parse_prompt("a sad hymn")) == {"style": "chorale", "mode": "minor"}
    assert dict(parse_prompt("a four-part chorale in G major")) == {"style": "chorale", "key": "G", "mode": "major"}
    assert dict(parse_prompt("in a slow tempo")) == {} and parse_prompt("in a slow tempo").tempo == "slow"
    assert dict(parse_prompt("Bb major march")) == {"style": "march", "key": "Bb", "mode": "major"}


def test_tempo_words_set_the_playing_speed():
    fast, plain, slow = (parse_prompt(p).playing_bpm("reel") for p in ("a fast reel", "a reel", "a slow reel"))
    assert slow < plain < fast and fast > 100
    assert parse_prompt("a chorale").playing_bpm("chorale") < plain


def test_instrument_words_pick_one_program_per_voice():
    assert ensemble([], "reel") == STYLE_ENSEMBLE["reel"]
    assert ensemble(parse_prompt("a jig on the flute").instruments, "jig")[0] == INSTRUMENTS["flute"]
    two = ensemble(parse_prompt("an air for violin and cello").instruments, "air")
    assert (two[0], two[3]) == (INSTRUMENTS["violin"], INSTRUMENTS["cello"])
    assert ensemble(parse_prompt("a chorale for brass").instruments, "chorale") == ENSEMBLES["brass"]
    assert parse_prompt("a hornpipe").instruments == []  # 'horn' inside a word is not a horn


def test_named_tags_win_over_moods():
    assert parse_prompt("a sad waltz in C major")["mode"] == "major"


@pytest.mark.parametrize("prompt", ["major minor", "a waltz march", "slow and fast", "in 3/4 or 4/4",
                                    "in C or in D"])
def test_contradictory_tags_are_one_sentence(prompt):
    with pytest.raises(StudioError) as err:
        parse_prompt(prompt)
    message = str(err.value)
    assert "contradictory" in message and message.count(".") == 1 and message.endswith(".")


def test_vocabulary_is_unique_and_the_prompt_words_are_listed():
    tokens = vocabulary()
    assert len(tokens) == len(set(tokens)) and tokens[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    text = prompt_help()
    for kind, words in PROMPT_WORDS.items():
        assert f"**{kind}:**" in text and all(w in text for w in words)
    for word in PROMPT_WORDS["style"]:
        assert "style" in parse_prompt(word)


def test_a_transposed_piece_moves_every_pitch_and_its_key_and_refuses_to_leave_a_voices_range():
    from studio.media.music.vocab import VOICE_RANGE, transposed

    tokens = ["<bos>", "style:chorale", "meter:4/4", "key:G", "mode:major", "bar", "pos:0", "v0:p67", "v3:p43",
              "pos:4", "v0:rest", "bar:last", "pos:0", "v0:p71", "<eos>"]
    assert transposed(tokens, 2) == ["<bos>", "style:chorale", "meter:4/4", "key:A", "mode:major", "bar", "pos:0",
                                     "v0:p69", "v3:p45", "pos:4", "v0:rest", "bar:last", "pos:0", "v0:p73", "<eos>"]
    assert transposed(tokens, -8)[3] == "key:B" and transposed(tokens, 5)[3] == "key:C"  # the key wraps round
    assert transposed(tokens, 0) == tokens
    top = VOICE_RANGE[0][1]
    assert transposed(["key:C", f"v0:p{top}"], 1) is None and transposed(["key:C", f"v0:p{top}"], -1) is not None
