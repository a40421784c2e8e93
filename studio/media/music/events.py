"""A piece as bars of four-voice onsets, and its three faces: tokens, MIDI bytes, notes.

``Piece`` is what the sampler decodes and the training script writes.  MIDI files the studio
makes round-trip to the same tokens (tags ride along in a text meta event, one track per
voice); any other MIDI file is quantised to sixteenths and split into four voices by pitch
(highest sounding note the melody, lowest the bass).
"""
from __future__ import annotations

import dataclasses
import io

from ...errors import StudioError
from .vocab import (BAR_LENGTH, HOLD, KEYS, PITCH_HIGH, PITCH_LOW, REST, STYLE_ENSEMBLE, TAG_ORDER,
                    TAG_VALUES, VOICES, bar_token, fold)

TICKS_PER_BEAT = 480
TICKS_PER_16TH = TICKS_PER_BEAT // 4
TAG_MARKER = "studio-tags:"
VELOCITY = (88, 64, 64, 76)  # melody over the inner voices, bass between
ACCENT = 10  # the downbeat leans

Onset = tuple[int, tuple[int, ...]]  # (position in sixteenths from the bar line, one value per voice)


@dataclasses.dataclass
class Piece:
    tags: dict[str, str]  # kind -> value for every kind in TAG_ORDER
    bars: list[list[Onset]]  # each bar: its onsets in time order
    bpm: int = 96  # quarter notes a minute when played
    programs: tuple[int, ...] = STYLE_ENSEMBLE["air"]  # GM program per voice
    ending: bool = True  # the last bar ends the piece (tokens mark the last two bars for the cadence)
    source: str = ""  # where a training piece came from

    @property
    def bar_length(self) -> int:
        return BAR_LENGTH[self.tags["meter"]]

    @property
    def length(self) -> int:
        return len(self.bars) * self.bar_length

    def voice_notes(self) -> list[list[tuple[int, int, int]]]:
        """Per voice: (start, length, pitch) in sixteenths."""
        out: list[list[tuple[int, int, int]]] = [[] for _ in range(VOICES)]
        open_: list[tuple[int, int] | None] = [None] * VOICES  # (start, pitch)
        for index, bar in enumerate(self.bars):
            for pos, values in bar:
                now = index * self.bar_length + pos
                for voice, value in enumerate(values):
                    if value == HOLD:
                        continue
                    if open_[voice] is not None:
                        start, pitch = open_[voice]
                        out[voice].append((start, now - start, pitch))
                    open_[voice] = (now, value) if value >= 0 else None
        for voice, held in enumerate(open_):
            if held is not None:
                out[voice].append((held[0], self.length - held[0], held[1]))
        return [[n for n in notes if n[1] > 0] for notes in out]

    def notes(self) -> list[tuple[int, int, int, int, int]]:
        """(start, length, pitch, velocity, voice) in sixteenths, sorted by start."""
        out = []
        for voice, notes in enumerate(self.voice_notes()):
            for start, length, pitch in notes:
                accent = ACCENT if start % self.bar_length == 0 else 0
                out.append((start, length, pitch, VELOCITY[voice] + accent, voice))
        return sorted(out)

    def tokens(self) -> list[str]:
        out = ["<bos>"] + [f"{kind}:{self.tags[kind]}" for kind in TAG_ORDER]
        for index, bar in enumerate(self.bars):
            out.append(bar_token(index, len(self.bars)) if self.ending else "bar")
            for pos, values in bar:
                changes = [value_token(voice, v) for voice, v in enumerate(values) if v != HOLD]
                if changes:
                    out += [f"pos:{pos}", *changes]
        return out + ["<eos>"]


def value_token(voice: int, value: int) -> str:
    """``vN:rest`` or ``vN:pPP`` (the pitch folded into the voice's range)."""
    return f"v{voice}:rest" if value == REST else f"v{voice}:p{fold(value, voice)}"


def token_value(token: str) -> tuple[int, int]:
    """(voice, value) of a voice token."""
    voice, _, what = token.partition(":")
    return int(voice[1:]), REST if what == "rest" else int(what[1:])


def piece_from_tokens(tokens: list[str], bpm: int = 96, programs: tuple[int, ...] | None = None) -> Piece:
    """The inverse of ``Piece.tokens`` for a well-formed sequence (what the sampler emits)."""
    tags: dict[str, str] = {}
    bars: list[list[Onset]] = []
    pos, values = None, []
    for token in tokens:
        if token in ("<bos>", "<eos>", "<pad>"):
            continue
        kind, _, value = token.partition(":")
        if kind in TAG_VALUES and value:
            tags[kind] = value
        elif kind == "bar":
            bars.append([])
        elif kind == "pos":
            pos, values = int(value), [HOLD] * VOICES
            bars[-1].append((pos, tuple(values)))
        elif kind[:1] == "v" and bars and bars[-1]:
            voice, what = token_value(token)
            values[voice] = what
            bars[-1][-1] = (pos, tuple(values))
    return Piece(tags, bars, bpm, programs or STYLE_ENSEMBLE.get(tags.get("style", ""), STYLE_ENSEMBLE["air"]))


def piece_from_notes(tags: dict[str, str], voices: list[list[tuple[int, int, int]]], n_bars: int,
                     bpm: int = 96, programs: tuple[int, ...] | None = None) -> Piece:
    """Four voices of (start, length, pitch) in sixteenths as a Piece of ``n_bars``: a note ends at
    its voice's next note or, when it stops before, at a rest; notes past the end are cut."""
    bar_length = BAR_LENGTH[tags["meter"]]
    end = n_bars * bar_length
    events: dict[int, list[int]] = {}
    for voice, notes in enumerate(voices):
        notes = sorted(n for n in notes if 0 <= n[0] < end)
        for i, (start, length, pitch) in enumerate(notes):
            if i + 1 < len(notes) and notes[i + 1][0] == start:
                continue  # two notes at one onset in one voice: the later listed one wins
            events.setdefault(start, [HOLD] * VOICES)[voice] = fold(pitch, voice)
            stop = start + max(1, length)
            following = notes[i + 1][0] if i + 1 < len(notes) else end
            if stop < following and stop < end:
                row = events.setdefault(stop, [HOLD] * VOICES)
                if row[voice] == HOLD:
                    row[voice] = REST
    bars: list[list[Onset]] = [[] for _ in range(n_bars)]
    for time in sorted(events):
        bars[time // bar_length].append((time % bar_length, tuple(events[time])))
    return Piece(dict(tags), bars, bpm, programs or STYLE_ENSEMBLE.get(tags["style"], STYLE_ENSEMBLE["air"]))


# ---- MIDI out -------------------------------------------------------------------------------

MAJOR_SIGNATURE = {k: k for k in KEYS}
MINOR_SIGNATURE = {"C": "Cm", "C#": "C#m", "D": "Dm", "Eb": "Ebm", "E": "Em", "F": "Fm", "F#": "F#m",
                   "G": "Gm", "Ab": "G#m", "A": "Am", "Bb": "Bbm", "B": "Bm"}


def to_midi_bytes(piece: Piece) -> bytes:
    """A type-1 standard MIDI file: a tempo/meta track and one track per voice (its own channel
    and General MIDI program)."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack()
    num, den = (int(x) for x in piece.tags["meter"].split("/"))
    meta.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    key = piece.tags["key"]
    signature = MINOR_SIGNATURE[key] if piece.tags["mode"] in ("minor", "dorian") else MAJOR_SIGNATURE[key]
    meta.append(mido.MetaMessage("key_signature", key=signature, time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(piece.bpm), time=0))
    tag_text = TAG_MARKER + " " + " ".join(f"{k}:{piece.tags[k]}" for k in TAG_ORDER)
    meta.append(mido.MetaMessage("text", text=tag_text, time=0))
    meta.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(meta)
    end = piece.length * TICKS_PER_16TH
    by_voice: list[list[tuple[int, int, int]]] = [[] for _ in range(VOICES)]
    for start, length, pitch, velocity, voice in piece.notes():
        by_voice[voice].append((start, length, pitch, velocity))
    for voice in range(VOICES):
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=f"voice {voice}", time=0))
        track.append(mido.Message("program_change", program=int(piece.programs[voice]), channel=voice, time=0))
        events = []  # (tick, order, message) so note-offs sort before note-ons at one tick
        for start, length, pitch, velocity in by_voice[voice]:
            on, off = start * TICKS_PER_16TH, (start + length) * TICKS_PER_16TH
            events.append((on, 1, mido.Message("note_on", note=pitch, velocity=velocity, channel=voice)))
            events.append((off, 0, mido.Message("note_off", note=pitch, velocity=0, channel=voice)))
        events.sort(key=lambda e: (e[0], e[1]))
        now = 0
        for tick, _, message in events:
            track.append(message.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
        mid.tracks.append(track)
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


# ---- MIDI in --------------------------------------------------------------------------------

def read_midi(data: bytes | str, name: str = "the MIDI file") -> Piece:
    """Any standard MIDI file as a Piece: quantised to sixteenths, four voices, tags recovered.

    The studio's own files (four voice tracks and a tag text) come back exactly; other files
    are split by pitch at every onset.  Raises StudioError when the file cannot be parsed or
    holds no notes.
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
    tracks: list[list[tuple[int, int, int]]] = []  # per track with notes: (start, end, pitch) in ticks
    programs: list[int] = []
    voice_tracks: dict[int, tuple[list, int]] = {}  # the studio's own "voice N" tracks, even silent ones
    for track in mid.tracks:
        now, open_notes, notes, program, voice_name = 0, {}, [], None, None
        for msg in track:
            now += msg.time
            if msg.type == "track_name" and msg.name.startswith("voice ") and msg.name[6:].isdigit():
                voice_name = int(msg.name[6:])
            elif msg.type == "text" and msg.text.startswith(TAG_MARKER):
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
            elif msg.type == "program_change" and program is None:
                program = msg.program
            elif msg.type == "note_on" and msg.velocity > 0 and getattr(msg, "channel", 0) != 9:
                open_notes[msg.note] = now
            elif msg.type in ("note_off", "note_on") and msg.note in open_notes:
                notes.append((open_notes.pop(msg.note), now, msg.note))
        if notes:
            tracks.append(notes)
            programs.append(program or 0)
        if voice_name is not None:
            voice_tracks[voice_name] = (notes, program or 0)
    if not tracks:
        raise StudioError(f"{name} holds no notes.")
    meter = {"2/2": "4/4", "C": "4/4"}.get(meter, meter)
    tags.setdefault("meter", meter if meter in BAR_LENGTH else "4/4")
    if mode_hint is not None:
        tags.setdefault("mode", mode_hint[0])
        key = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb", "Cb": "B"}.get(mode_hint[1], mode_hint[1])
        if key in KEYS:
            tags.setdefault("key", key)
    style_by_meter = {"3/4": "waltz", "2/4": "march", "6/8": "jig", "9/8": "jig", "4/4": "chorale"}
    tags.setdefault("style", style_by_meter[tags["meter"]])
    tags.setdefault("mode", "major")
    tags.setdefault("key", "C")
    tags = {k: tags[k] for k in TAG_ORDER}

    step = ticks / 4

    def quantised(notes):
        return [(round(s / step), max(1, round((e - s) / step)), min(PITCH_HIGH, max(PITCH_LOW, p)))
                for s, e, p in notes]

    if sorted(voice_tracks) == list(range(VOICES)) and tags_present(mid):
        voices = [quantised(voice_tracks[v][0]) for v in range(VOICES)]
        programs = [voice_tracks[v][1] for v in range(VOICES)]
    else:
        voices = _split_by_pitch(quantised([n for t in tracks for n in t]))
        programs = [programs[0]] * VOICES
    total = max((s + n for v in voices for s, n, _ in v), default=1)
    bar_length = BAR_LENGTH[tags["meter"]]
    n_bars = max(1, -(-total // bar_length))
    return piece_from_notes(tags, voices, n_bars, bpm or 96, tuple(programs[:VOICES]))


def tags_present(mid) -> bool:
    return any(m.type == "text" and m.text.startswith(TAG_MARKER) for t in mid.tracks for m in t)


def _split_by_pitch(notes: list[tuple[int, int, int]]) -> list[list[tuple[int, int, int]]]:
    """Four voices from a heap of notes: at each onset the highest new note goes to the melody,
    the lowest (when more than one starts) to the bass, the rest to the inner voices."""
    by_start: dict[int, list[tuple[int, int]]] = {}
    for start, length, pitch in notes:
        by_start.setdefault(start, []).append((pitch, length))
    voices: list[list[tuple[int, int, int]]] = [[] for _ in range(VOICES)]
    for start in sorted(by_start):
        group = sorted(set(by_start[start]), reverse=True)
        slots = [0] if len(group) == 1 else [0, 3] if len(group) == 2 else [0, 1, 3] if len(group) == 3 else [0, 1, 2, 3]
        picks = group[:len(slots) - 1] + [group[-1]] if len(group) > 1 else group
        for voice, (pitch, length) in zip(slots, picks):
            voices[voice].append((start, length, pitch))
    return voices
