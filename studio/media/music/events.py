"""A melody as bars of events, and its three faces: tokens, MIDI bytes, notes.

``Piece`` is what the sampler decodes and the composer writes; MIDI files the studio makes
round-trip to the same tokens (tags ride along in a text meta event), and any other MIDI
file is read by quantising its top voice to sixteenths.
"""
from __future__ import annotations

import dataclasses
import io

from ...errors import StudioError
from .vocab import (ACCENT, BAR_LENGTH, DURATIONS, KEYS, PITCH_HIGH, PITCH_LOW, TAG_ORDER,
                    TAG_VALUES, TEMPO_BPM, VELOCITIES)

TICKS_PER_BEAT = 480
TICKS_PER_16TH = TICKS_PER_BEAT // 4
TAG_MARKER = "studio-tags:"


@dataclasses.dataclass
class Bar:
    velocity: str  # a key of VELOCITIES
    events: list[tuple[int | None, int]]  # (MIDI pitch or None for a rest, sixteenths)


@dataclasses.dataclass
class Piece:
    tags: dict[str, str]  # kind -> value for every kind in TAG_ORDER
    bars: list[Bar]
    bpm: int | None = None  # overrides the tempo tag's speed when rendering

    @property
    def tempo_bpm(self) -> int:
        return self.bpm or TEMPO_BPM[self.tags["tempo"]]

    @property
    def bar_length(self) -> int:
        return BAR_LENGTH[self.tags["meter"]]

    def notes(self) -> list[tuple[int, int, int, int]]:
        """(start, length, pitch, velocity) in sixteenths, rests left out."""
        out = []
        for index, bar in enumerate(self.bars):
            bar_start = index * self.bar_length
            pos = 0
            for pitch, dur in bar.events:
                if pitch is not None:
                    accent = ACCENT if pos == 0 else 0  # the downbeat leans
                    out.append((bar_start + pos, dur, pitch, VELOCITIES[bar.velocity] + accent))
                pos += dur
        return out

    def tokens(self) -> list[str]:
        out = ["<bos>"] + [f"{kind}:{self.tags[kind]}" for kind in TAG_ORDER]
        for bar in self.bars:
            out += ["bar", f"vel:{bar.velocity}"]
            for pitch, dur in bar.events:
                out += ["rest" if pitch is None else f"p{pitch}", f"d{dur}"]
        return out + ["<eos>"]


def piece_from_tokens(tokens: list[str], bpm: int | None = None) -> Piece:
    """The inverse of ``Piece.tokens`` for a well-formed sequence (what the sampler emits)."""
    tags, bars, pending = {}, [], None
    for token in tokens:
        if token in ("<bos>", "<eos>", "<pad>"):
            continue
        kind, _, value = token.partition(":")
        if kind in TAG_VALUES and value:
            tags[kind] = value
        elif token == "bar":
            bars.append(Bar("mf", []))
        elif kind == "vel":
            bars[-1].velocity = value
        elif token == "rest":
            pending = None
        elif token[0] == "p":
            pending = int(token[1:])
        elif token[0] == "d":
            bars[-1].events.append((pending, int(token[1:])))
            pending = None
    return Piece(tags, bars, bpm)


# ---- MIDI out -------------------------------------------------------------------------------

KEY_SIGNATURE = {"C": "C", "C#": "C#", "D": "D", "Eb": "Eb", "E": "E", "F": "F", "F#": "F#", "G": "G",
                 "Ab": "Ab", "A": "A", "Bb": "Bb", "B": "B"}
MINOR_SIGNATURE = {"C": "Cm", "C#": "C#m", "D": "Dm", "Eb": "Ebm", "E": "Em", "F": "Fm", "F#": "F#m",
                   "G": "Gm", "Ab": "G#m", "A": "Am", "Bb": "Bbm", "B": "Bm"}
PROGRAM = {"piano": 0, "flute": 73, "organ": 19, "fiddle": 40, "brass": 56}


def to_midi_bytes(piece: Piece, timbre: str = "piano") -> bytes:
    """A type-1 standard MIDI file: a tempo/meta track and one melody track."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack()
    num, den = (int(x) for x in piece.tags["meter"].split("/"))
    meta.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    key = piece.tags["key"]
    signature = MINOR_SIGNATURE[key] if piece.tags["mode"] in ("minor", "dorian") else KEY_SIGNATURE[key]
    meta.append(mido.MetaMessage("key_signature", key=signature, time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(piece.tempo_bpm), time=0))
    tag_text = TAG_MARKER + " " + " ".join(f"{k}:{piece.tags[k]}" for k in TAG_ORDER)
    meta.append(mido.MetaMessage("text", text=tag_text, time=0))
    meta.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(meta)

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name="melody", time=0))
    track.append(mido.Message("program_change", program=PROGRAM.get(timbre, 0), channel=0, time=0))
    events = []  # (tick, order, message) so note-offs sort before note-ons at one tick
    for start, length, pitch, velocity in piece.notes():
        on, off = start * TICKS_PER_16TH, (start + length) * TICKS_PER_16TH
        events.append((on, 1, mido.Message("note_on", note=pitch, velocity=velocity, channel=0)))
        events.append((off, 0, mido.Message("note_off", note=pitch, velocity=0, channel=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    end = len(piece.bars) * piece.bar_length * TICKS_PER_16TH
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    mid.tracks.append(track)
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


# ---- MIDI in --------------------------------------------------------------------------------

def _nearest(value: float, choices: list[int]) -> int:
    return min(choices, key=lambda c: (abs(c - value), c))


def read_midi(data: bytes | str, name: str = "the MIDI file") -> Piece:
    """Any standard MIDI file as a Piece: top voice, quantised to sixteenths, tags recovered.

    Raises StudioError when the file cannot be parsed or holds no notes.
    """
    import mido

    try:
        if isinstance(data, (bytes, bytearray)):
            mid = mido.MidiFile(file=io.BytesIO(data))
        else:
            mid = mido.MidiFile(data)
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError... on bad files
        raise StudioError(f"{name} is not a readable MIDI file ({type(exc).__name__}).") from None
    ticks = mid.ticks_per_beat or TICKS_PER_BEAT
    tags: dict[str, str] = {}
    bpm = None
    meter = "4/4"
    mode_hint = None
    notes = []  # (start_tick, end_tick, pitch, velocity)
    for track in mid.tracks:
        now, open_notes = 0, {}
        for msg in track:
            now += msg.time
            if msg.type == "text" and msg.text.startswith(TAG_MARKER):
                for item in msg.text[len(TAG_MARKER):].split():
                    kind, _, value = item.partition(":")
                    if kind in TAG_VALUES and value in TAG_VALUES[kind]:
                        tags[kind] = value
            elif msg.type == "time_signature":
                meter = f"{msg.numerator}/{msg.denominator}"
            elif msg.type == "set_tempo" and bpm is None:
                bpm = round(mido.tempo2bpm(msg.tempo))
            elif msg.type == "key_signature":
                mode_hint = ("minor" if msg.key.endswith("m") else "major", msg.key.rstrip("m"))
            elif msg.type == "note_on" and msg.velocity > 0:
                open_notes[msg.note] = (now, msg.velocity)
            elif msg.type in ("note_off", "note_on") and msg.note in open_notes:
                start, velocity = open_notes.pop(msg.note)
                notes.append((start, now, msg.note, velocity))
    if not notes:
        raise StudioError(f"{name} holds no notes.")
    tags.setdefault("meter", meter if meter in BAR_LENGTH else "4/4")
    if bpm is not None:
        tags.setdefault("tempo", "slow" if bpm < 80 else "moderate" if bpm < 115 else "fast")
    tags.setdefault("tempo", "moderate")
    if mode_hint is not None:
        tags.setdefault("mode", mode_hint[0])
        key = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb", "Cb": "B"}.get(mode_hint[1], mode_hint[1])
        if key in KEYS:
            tags.setdefault("key", key)
    style_by_meter = {"3/4": "waltz", "2/4": "march", "6/8": "lullaby", "4/4": "chorale"}
    tags.setdefault("style", style_by_meter[tags["meter"]])
    tags.setdefault("mode", "major")
    tags.setdefault("key", "C")

    # top voice, quantised: one note per sixteenth step, the highest sounding one
    step = ticks / 4
    melody: dict[int, tuple[int, int, int]] = {}
    for start, end, pitch, velocity in notes:
        q_start = round(start / step)
        q_len = max(1, round((end - start) / step))
        if q_start not in melody or pitch > melody[q_start][1]:
            melody[q_start] = (q_len, pitch, velocity)
    bar_length = BAR_LENGTH[tags["meter"]]
    starts = sorted(melody)
    total = max(s + melody[s][0] for s in starts)
    n_bars = max(1, -(-total // bar_length))
    bars = [Bar("mf", []) for _ in range(n_bars)]
    bar_velocity: dict[int, int] = {}
    cursor = 0
    for index, start in enumerate(starts):
        length, pitch, velocity = melody[start]
        nxt = starts[index + 1] if index + 1 < len(starts) else n_bars * bar_length
        length = min(length, nxt - start)
        if start > cursor:
            _fill(bars, bar_length, cursor, start - cursor, None)
        while pitch > PITCH_HIGH:
            pitch -= 12
        while pitch < PITCH_LOW:
            pitch += 12
        bar_index = start // bar_length
        base = velocity - ACCENT if start % bar_length == 0 else velocity
        bar_velocity.setdefault(bar_index, base)
        _fill(bars, bar_length, start, length, pitch)
        cursor = start + length
    if cursor < n_bars * bar_length:
        _fill(bars, bar_length, cursor, n_bars * bar_length - cursor, None)
    names = list(VELOCITIES)
    for index, bar in enumerate(bars):
        value = bar_velocity.get(index, bar_velocity.get(index - 1, 80))
        bar.velocity = names[[VELOCITIES[n] for n in names].index(_nearest(value, list(VELOCITIES.values())))]
    return Piece({k: tags[k] for k in TAG_ORDER}, bars, bpm)


def _fill(bars: list[Bar], bar_length: int, start: int, length: int, pitch: int | None) -> None:
    """Write a note or rest as tokenisable durations, split at bar lines (a tie becomes a repeat)."""
    while length > 0:
        bar_index = start // bar_length
        room = bar_length - start % bar_length
        chunk = min(length, room)
        while chunk > 0:
            dur = max(d for d in DURATIONS if d <= chunk)
            bars[bar_index].events.append((pitch, dur))
            chunk -= dur
            start += dur
            length -= dur
