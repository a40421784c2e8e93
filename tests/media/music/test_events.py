import io

import mido
import pretty_midi
import pytest

from studio.errors import StudioError
from studio.media.music.events import piece_from_tokens, read_midi, to_midi_bytes
from studio.media.music.vocab import VOICES

from .conftest import block_chorale, small_repertoire


@pytest.mark.parametrize("index", range(6))
def test_pieces_round_trip_through_tokens_and_midi(index):
    piece = small_repertoire()[index]
    assert all(0 <= pos < piece.bar_length for bar in piece.bars for pos, _ in bar)
    tokens = piece.tokens()
    assert "bar:last" in tokens and "bar:penultimate" in tokens
    assert piece_from_tokens(tokens).tokens() == tokens
    data = to_midi_bytes(piece)
    mid = mido.MidiFile(file=io.BytesIO(data))
    assert len(mid.tracks) == 1 + VOICES
    programs = [m.program for t in mid.tracks for m in t if m.type == "program_change"]
    assert programs == list(piece.programs)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    assert sum(len(i.notes) for i in pm.instruments) == len(piece.notes())
    back = read_midi(data)
    assert back.tokens() == tokens and back.tags == piece.tags and back.programs == tuple(piece.programs)


def test_a_chorale_sounds_four_notes_at_every_onset():
    piece = block_chorale()
    from studio.media.music.features import sonorities

    assert all(sum(p is not None for p in s) == 4 for _, s, _ in sonorities(piece))


def test_dance_tunes_get_a_bass_and_chords_under_the_melody():
    reel = small_repertoire()[0]
    melody, inner1, inner2, bass = reel.voice_notes()
    assert melody and inner1 and inner2 and bass
    assert max(p for _, _, p in bass) < min(p for _, _, p in melody)
    assert all(b[0] % 8 == 0 for b in bass)  # the reel's bass on beats one and three


def test_foreign_midi_is_split_into_voices_by_pitch():
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0)
    for i, pitch in enumerate([72, 74, 76, 77]):
        for offset in (0, -7, -12, -24):
            inst.notes.append(pretty_midi.Note(velocity=80, pitch=pitch + offset, start=i * 0.5, end=i * 0.5 + 0.45))
    pm.instruments.append(inst)
    buffer = io.BytesIO()
    pm.write(buffer)
    piece = read_midi(buffer.getvalue())
    voices = piece.voice_notes()
    assert [p for _, _, p in voices[0]] == [72, 74, 76, 77]
    assert [p for _, _, p in voices[3]] == [48, 50, 52, 53]


def test_unparseable_midi_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd this is not midi")
    with pytest.raises(StudioError) as err:
        read_midi(str(bad), name="The exemplar bad.mid")
    assert str(err.value).startswith("The exemplar bad.mid is not a readable MIDI file")
