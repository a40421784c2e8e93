"""The symbolic sampler's grammar: what it lets a model write, checked with a stand-in model whose
likeliest next tokens are set by the test (so the grammar, not the weights, decides)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import studio.media.music as music_package
from studio.media.music.events import piece_from_tokens
from studio.media.music.generate import Grammar, _advance, _allowed, _new_state, _silence, sample_tokens
from studio.media.music.model import MusicHandle

ASSETS = Path(music_package.__file__).parent / "assets"


class EagerToRest:
    """A stand-in LM that most wants to end the bar, rest every voice and stop: left to itself it writes
    bars of silence.  Pitches are unlikely, not impossible."""

    def __init__(self, vocab: dict[str, int]):
        import torch

        self.config = SimpleNamespace(n_positions=1024)
        self.bias = torch.full((len(vocab),), -8.0)
        for token, i in vocab.items():
            if token.startswith("bar") or token == "<eos>" or token.endswith(":rest"):
                self.bias[i] = 8.0
            elif token.startswith("pos:"):
                self.bias[i] = 0.0

    def __call__(self, input_ids, attention_mask, past_key_values, use_cache):
        logits = self.bias.expand(input_ids.shape[0], 1, -1).clone()
        return SimpleNamespace(logits=logits, past_key_values=None)


def sounding_bars(tokens: list[str]) -> list[bool]:
    """Per bar, whether some note sounds in it, by the studio's own decoder (what the MIDI file will hold)."""
    piece = piece_from_tokens(tokens)
    length = piece.bar_length
    return [any(start < (b + 1) * length and start + dur > b * length for start, dur, *_ in piece.notes())
            for b in range(len(piece.bars))]


def test_a_bar_that_rests_from_its_first_onset_counts_as_silent():
    held_then_rest = ("<bos> style:chorale meter:4/4 key:G mode:major bar pos:0 v0:p72 bar pos:0 v0:rest "
                      "bar pos:4 v0:p72 <eos>").split()
    assert sounding_bars(held_then_rest) == [True, False, True]


@pytest.fixture(scope="module")
def handle():
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(ASSETS))
    return MusicHandle("symbolic", EagerToRest(tokenizer.get_vocab()), tokenizer, "cpu", "stand-in", max_bars=8)


def test_no_bar_before_the_last_closes_in_silence(handle):
    pieces = sample_tokens(handle, "a four-part chorale in G major, 4/4", list(range(12)), bars=6)
    for tokens in pieces:
        bars = sounding_bars(tokens)
        assert len(bars) == 6 and tokens[-1] == "<eos>"
        assert all(bars[:-1]), bars  # every bar but the last sounds, though the model wanted silence
    # the rule is for the bars before the last: left to itself there, this model writes no new note
    last_bars = [tokens[tokens.index("bar:last"):] for tokens in pieces]
    assert sum(not any(":p" in token for token in bar) for bar in last_bars) >= 6


def test_an_opening_rest_may_be_followed_by_notes_and_only_a_silent_close_is_drawn_again(handle):
    grammar = Grammar(handle.tokenizer)
    state = _new_state()
    for token in "<bos> style:chorale meter:4/4 key:G mode:major bar pos:0 v0:rest v1:rest v2:rest v3:rest".split()[1:]:
        _advance(state, token)
    allowed = _allowed(grammar, {}, state, 8, 11, 1024)
    avoid = _silence(grammar, state, 8, allowed)
    assert avoid == {grammar.id["bar"]}  # a later onset (pos:4 ...) is still open to the model
    for token in ["pos:15", "v0:rest"]:  # the bar's last sixteenth, still nothing sounding
        _advance(state, token)
    allowed = _allowed(grammar, {}, state, 8, 13, 1024)
    assert _silence(grammar, state, 8, allowed) == {grammar.id["bar"], grammar.id["v3:rest"]}
    _advance(state, "v3:p43")
    assert _silence(grammar, state, 8, _allowed(grammar, {}, state, 8, 14, 1024)) == set()
