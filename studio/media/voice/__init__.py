"""The voice medium: takes of a line of speech (WAV + waveform/pitch PNG + the line as TXT).

The built-in voice is a small FastSpeech-style network trained on a Piper voice's readings
(``defaults.py``, model card in ``assets/README.md``); SpeechT5 and CSM folders load too.  Importing
this is free: the parts load when first used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ...medium import Candidate, Medium
from .settings import VoiceGenerate, VoiceTune

ASSETS = Path(__file__).resolve().parent / "assets"  # the built-in voice (package data)


class VoiceMedium(Medium):
    name = "voice"
    main_ext = "wav"
    default_scorer = "intelligibility"  # the source's loss: the recogniser's character error rate
    tie_breakers = {"intelligibility": "clarity"}  # most clear takes of a plain line are heard word for word
    label = "Voice"
    order = 40
    placeholder = "The line to speak, e.g. slow, warm: The quick brown fox jumps over the lazy dog."
    prompt_help = ("A style before a colon moves every take: slow, fast, warm, deep, high, bright, lively, "
                   "expressive, calm, flat, soft.")
    export_formats = {
        "peft": "the LoRA adapter for peft (the built-in voice's network, SpeechT5 or CSM)",
        "ljspeech": "the kept takes as wavs/ + metadata.csv (id|text|text), the layout Piper and Coqui train on",
        "hf-datasets": "the kept takes as a Hugging Face audio folder (metadata.csv with file_name, transcription)",
    }
    generate_settings = VoiceGenerate
    tune_settings = VoiceTune

    def copies(self, handle: Any, candidates: Sequence[Candidate], kept: Sequence[Candidate]) -> list[bool]:
        """A copy reads the same line as a kept take at the same pace and pitch (``features.is_copy``)."""
        from .features import is_copy

        return [any(is_copy(c, k) for k in kept) for c in candidates]

    def tune_objectives(self, model: str) -> tuple[str, ...] | None:
        """kto is the built-in voice's (its readings are Gaussian draws, ``tune.py``); SpeechT5 and CSM tune sft."""
        import json

        try:
            kind = json.loads((Path(model).expanduser() / "config.json").read_text()).get("model_type")
        except (OSError, ValueError, AttributeError):
            return None  # loading the model says what is wrong with the folder
        return None if kind == "studio_voice" else ("sft",)

    def model_tune_defaults(self, model: str) -> dict[str, Any]:
        """SpeechT5 and CSM tune with sft, which has no won pairs to stop at: AdamW's usual momentum, not the
        built-in voice's 0 (settings.py)."""
        return {} if self.tune_objectives(model) is None else {"momentum": 0.9}

    def kept_variety(self, handle: Any, kept: Sequence[Candidate]) -> float:
        """Within a line: the mean variety of the kept takes of each line with two or more of them (a compare's
        side is one line's takes; the whole set's would also count how its lines differ: length, pauses).  A kept
        set with no line kept twice falls back to the whole set's."""
        from .features import line_of

        by_line: dict[str, list[Candidate]] = {}
        for c in kept:
            by_line.setdefault(line_of(c).lower(), []).append(c)
        groups = [group for group in by_line.values() if len(group) >= 2]
        if not groups:
            return self.diversity(handle, kept)
        return sum(self.diversity(handle, group) for group in groups) / len(groups)

    def card_detail(self, candidate: Candidate) -> str | None:
        """What the recogniser heard (stored by the intelligibility scorer) against the line, mistakes marked."""
        from .features import line_of
        from .heard import marked_html, stored_transcript

        wav = candidate.files.get("wav") or candidate.path
        heard = stored_transcript(wav) if wav else None
        return None if heard is None else marked_html(line_of(candidate), heard)
