"""The text medium: poems, lyrics, slogans and micro-stories from any causal language model.

The embedded default (``assets/text``) is a small Llama-architecture model trained from
scratch by ``defaults.py``; any ``AutoModelForCausalLM`` folder or hub id works too.
Heavy libraries load inside the methods, so importing this module costs nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ...errors import StudioError
from ...medium import Candidate, Generated, Medium, Version

ASSETS = Path(__file__).resolve().parent / "assets"  # the built-in model (package data)


class TextMedium(Medium):
    name = "text"
    main_ext = "txt"
    default_scorer = "style"
    export_formats = ("peft", "merged", "jsonl")
    # steps follow the curated set: 30 passes (30 steps for 8 kept).  100 fixed steps made 62% of
    # held-out poems copy 8+ words of a kept one; 30 passes keep copies under 10% (README ablation)
    tune_defaults = {"steps": 100, "epochs": 30, "rank": 8, "lr": 1e-3, "batch_size": 8, "checkpoint_every": 25}
    tune_options = Medium.tune_options + ("prior_weight", "anchor", "goldfish", "targets", "seq_len", "packing", "compile")

    def default_params(self) -> dict[str, Any]:
        return {
            "temperature": 1.0,  # 0 = greedy (every seed gives the same text)
            "top_p": 0.95,  # nucleus: keep the smallest set of tokens with this much probability
            "top_k": 50,  # keep the k likeliest tokens; 0 = off
            "repetition_penalty": 1.1,  # > 1 discourages tokens already in the prompt or text
            "max_new_tokens": 60,
            "min_new_tokens": 0,  # the end token is held back until this many tokens are written
            "stop": [],  # strings that end a completion (not included in it)
        }

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        merged = super().validate_params(params)
        if isinstance(merged["stop"], str):
            merged["stop"] = [merged["stop"]]
        checks = [
            ("temperature", lambda v: isinstance(v, (int, float)) and 0 <= v <= 10, "a number from 0 to 10"),
            ("top_p", lambda v: isinstance(v, (int, float)) and 0 < v <= 1, "a number above 0 and at most 1"),
            ("top_k", lambda v: isinstance(v, int) and v >= 0, "a whole number of at least 0"),
            ("repetition_penalty", lambda v: isinstance(v, (int, float)) and 0 < v <= 10,
             "a number above 0 and at most 10"),
            ("max_new_tokens", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
             "a whole number of at least 1"),
            ("min_new_tokens", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
             "a whole number of at least 0"),
            ("stop", lambda v: isinstance(v, (list, tuple)) and all(isinstance(s, str) and s for s in v),
             "a list of non-empty strings"),
        ]
        for key, ok, expected in checks:
            if not ok(merged[key]):
                raise StudioError(f"The text setting '{key}' must be {expected}, not {merged[key]!r}.")
        if merged["min_new_tokens"] > merged["max_new_tokens"]:
            raise StudioError(f"min_new_tokens ({merged['min_new_tokens']}) is above max_new_tokens "
                              f"({merged['max_new_tokens']}); raise max_new_tokens or lower min_new_tokens.")
        merged["stop"] = list(merged["stop"])
        return merged

    def load(self, model: str, device: str | None = None) -> Any:
        from .model import load

        return load(model, device)

    def generate(self, handle: Any, prompt: str, seeds: Sequence[int], params: dict[str, Any],
                 adapter: str | None = None, strength: float = 1.0) -> list[Generated]:
        from .generate import sample

        texts, _ = sample(handle, prompt, seeds, self.validate_params(params), adapter, strength)
        return [Generated(seed=int(seed), files={"txt": text.encode("utf-8")}, text=text)
                for seed, text in zip(seeds, texts)]

    def scorers(self) -> dict[str, Any]:
        from .scorers import SCORERS

        return dict(SCORERS)

    def embed(self, handle: Any, candidates: Sequence[Candidate]) -> Any:
        from .embedding import candidate_text, embed_texts

        return embed_texts([candidate_text(c) for c in candidates])

    def copies(self, handle: Any, candidates: Sequence[Candidate], kept: Sequence[Candidate]) -> list[bool]:
        """A copy shares a run of 8 or more words with a kept text (case and punctuation ignored)."""
        from ...variety import shares_run, words
        from .embedding import candidate_text

        return shares_run([words(candidate_text(c)) for c in candidates], [words(candidate_text(k)) for k in kept])

    def diversity_metrics(self, handle: Any, candidates: Sequence[Candidate]) -> dict[str, float]:
        from .embedding import candidate_text
        from .metrics import distinct_n

        return {"distinct_2": distinct_n([candidate_text(c) for c in candidates], 2)}

    def check_tune_settings(self, settings: dict[str, Any]) -> None:
        from .tune import check_memorization_settings

        check_memorization_settings(settings)

    def tune_task(self, handle: Any, examples: Sequence[Candidate], settings: dict[str, Any],
                  parent_adapter: str | None, prior: Sequence[Candidate] = ()) -> Any:
        from .embedding import candidate_text
        from .tune import TextTuneTask

        pairs = [(c.prompt, candidate_text(c)) for c in examples]
        prior_pairs = [(c.prompt, candidate_text(c)) for c in prior]
        return TextTuneTask(handle, pairs, settings, parent_adapter, prior_pairs)

    def export(self, handle: Any, version: Version | None, fmt: str, out_dir: Path,
               curated: Sequence[Candidate]) -> list[Path]:
        from .export import export

        return export(handle, version, fmt, Path(out_dir), curated)
