import io
import random

import mido
import pretty_midi
import pytest

from studio.errors import StudioError
from studio.media.music.compose import STYLE, compose
from studio.media.music.events import piece_from_tokens, read_midi, to_midi_bytes
from studio.media.music.vocab import BAR_LENGTH


@pytest.mark.parametrize("style", sorted(STYLE))
def test_composed_pieces_fill_bars_and_round_trip_through_midi(style):
    rng = random.Random(1)
    for _ in range(5):
        piece = compose(rng, style, 8)
        assert len(piece.bars) == 8
        assert all(sum(d for _, d in bar.events) == BAR_LENGTH[piece.tags["meter"]] for bar in piece.bars)
        data = to_midi_bytes(piece)
        mido.MidiFile(file=io.BytesIO(data))
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
        assert len(pm.instruments[0].notes) == len(piece.notes())
        back = read_midi(data)
        assert [(p, d) for b in back.bars for p, d in b.events] == [(p, d) for b in piece.bars for p, d in b.events]
        assert back.tags == piece.tags
        assert piece_from_tokens(piece.tokens()).tokens() == piece.tokens()


def test_foreign_midi_is_quantised_to_its_top_voice():
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0)
    for i, pitch in enumerate([60, 62, 64, 65]):
        inst.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=i * 0.5, end=i * 0.5 + 0.45))
        inst.notes.append(pretty_midi.Note(velocity=80, pitch=pitch - 12, start=i * 0.5, end=i * 0.5 + 0.45))
    pm.instruments.append(inst)
    buffer = io.BytesIO()
    pm.write(buffer)
    piece = read_midi(buffer.getvalue())
    assert [p for b in piece.bars for p, _ in b.events if p is not None] == [60, 62, 64, 65]


def test_unparseable_midi_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd this is not midi")
    with pytest.raises(StudioError) as err:
        read_midi(str(bad), name="The exemplar bad.mid")
    assert str(err.value).startswith("The exemplar bad.mid is not a readable MIDI file")
