"""The music medium: four-voice pieces from the built-in symbolic model (MIDI + WAV + piano roll),
or audio from MusicGen (WAV).  Importing this is free: the parts load when first used."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ...medium import Candidate, Medium
from .settings import MusicGenerate, MusicTune
from .vocab import prompt_help as _prompt_help

ASSETS = Path(__file__).resolve().parent / "assets"  # the built-in model (package data)


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
        """A copy shares a run of 8 consecutive pitches with a kept melody, one of them may be changed
        (audio: feature similarity).  Independent base melodies of the built-in model do so 0.35% of
        the time against 16 kept ones and 0.52% against 32 (3 prompts x 64 seeds, 4 splits; exact
        runs 0%; docs/copies.md)."""
        from ...variety import COPY_RUN, shares_near_run
        from .features import melody

        if not all(c.files.get("mid") for c in [*candidates, *kept]):
            return super().copies(handle, candidates, kept)
        return shares_near_run([melody(c)[0].tolist() for c in candidates], [melody(k)[0].tolist() for k in kept],
                               COPY_RUN, changes=1)
