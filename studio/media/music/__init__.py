"""The music medium: four-voice pieces from the built-in symbolic model (MIDI + WAV + piano roll),
or audio from MusicGen (WAV).  Importing this is free: the parts load when first used."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ...medium import Candidate, Medium
from .settings import MusicGenerate, MusicTune
from .vocab import prompt_help as _prompt_help

ASSETS = Path(__file__).resolve().parent / "assets"  # the built-in model (package data)
MELODY_RUN = 10  # pitches in a row, whatever their rhythm, that quote a kept melody (copies)


class MusicMedium(Medium):
    name = "music"
    main_ext = "mid"
    default_scorer = "stability"  # the one that met all four targets in a round (docs/music-model.md)
    label = "Music"
    order = 30
    placeholder = "What to play, e.g. a four-part chorale in G major, or a fast reel in D"
    prompt_help = _prompt_help()  # the words the built-in model understands (vocab.PROMPT_WORDS)
    export_formats = {
        "peft": "the LoRA adapter for peft / transformers",
        "dataset": "the kept pieces with their prompts (MIDI and audio) as a Hugging Face dataset",
    }
    generate_settings = MusicGenerate
    tune_settings = MusicTune

    def copies(self, handle: Any, candidates: Sequence[Candidate], kept: Sequence[Candidate]) -> list[bool]:
        """A quoted phrase of a kept melody (audio: feature similarity): 8 notes in a row with the same
        pitches and lengths, or 10 pitches in a row whatever their rhythm, one note of either allowed to
        differ.  8 pitches alone flagged 4-22% of the built-in model's independent chorales and 3/4
        lullabies against 8-16 kept ones (scale fragments they all share); these two, 0-3% over 5 prompts
        (docs/copies.md)."""
        from ...variety import COPY_RUN, shares_near_run
        from .features import melody

        if not all(c.files.get("mid") for c in [*candidates, *kept]):
            return super().copies(handle, candidates, kept)
        ours, theirs = [melody(c) for c in candidates], [melody(k) for k in kept]
        phrase = shares_near_run([list(zip(m[0].tolist(), m[1].tolist())) for m in ours],
                                 [list(zip(m[0].tolist(), m[1].tolist())) for m in theirs], COPY_RUN, changes=1)
        tune = shares_near_run([m[0].tolist() for m in ours], [m[0].tolist() for m in theirs], MELODY_RUN, changes=1)
        return [a or b for a, b in zip(phrase, tune)]
