"""The medium contract: what the core knows of image, text and music.

A medium is one folder under ``studio/media/`` with the same parts:

    __init__.py   the Medium subclass (name, defaults, settings, the hooks it does its own way)
    model.py      ``load(model, device)``: the built-in model in ``assets/`` or any local folder / hub id
    assets/       the built-in model's files (package data)
    generate.py   ``generate(handle, prompt, seeds, params, adapter, strength)``: one candidate per seed
    scorers.py    ``SCORERS``: built-in scorers by name
    features.py   ``embed(candidates)``: features for variety, copies and preference
    tune.py       ``build_task(handle, examples, settings, parent_adapter, prior)``: the LoRA TuneTask
    export.py     ``export(version, fmt, out_dir, curated)``: the export formats
    defaults.py   the script that trains the embedded default (``studio train-defaults NAME``)

``Medium``'s hooks call those functions by these names (``Medium.part``), imported on first use;
a medium overrides a hook only where it does it another way.  The core (store, engine, CLI, app)
only calls the methods of ``Medium`` and never imports a medium's insides.  Everything here is
cheap to import: no torch at import.
"""
from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, Sequence

from .settings import NoSettings, Settings, TuneSettings

DECISIONS = ("pending", "auto_accepted", "auto_rejected", "hand_accepted", "hand_rejected")
ACCEPTED = ("auto_accepted", "hand_accepted")
DROPPED = ("auto_rejected", "hand_rejected")  # by the rule or by hand (X)

# Two candidates whose features have cosine similarity at or above this, both as they are and centred
# on the mean of the candidates and the kept set, are near-duplicates (Medium.copies' shared default;
# studio.variety.near_duplicates_centred).  First calibrated on the image default's 8x8 colour
# features ("a circle", 64 base pictures: 1 pair of 200 reaches it; a 100-step tune's pictures 38%).
# Re-checked base against base (64 pictures per prompt, 4 random splits into 16 or 32 kept and the
# rest as candidates, benchmarks in docs/copies.md): raw features alone flagged 3.1% / 10.2% of
# "a circle" and 100% / 100% of "a red star on a blue sky" (every picture the same blue sky: 76% of
# pairs reach 0.97); with the centred test as well, 0% / 0% for both.
COPY_SIMILARITY = 0.97
MAX_STRENGTH = 1.5  # adapter strength at generation: 0 is the base, 1 the tune as trained


@dataclasses.dataclass
class Candidate:
    """One generated item and everything needed to make it again."""

    id: str
    medium: str
    prompt: str
    seed: int
    params: dict[str, Any]
    version: str  # "base" or "vN"
    model: str  # the base model's id or path
    path: str  # the main media file: .png, .txt or .mid
    files: dict[str, str] = dataclasses.field(default_factory=dict)  # ext -> path, main file included
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    decision: str = "pending"
    created_at: float = dataclasses.field(default_factory=time.time)
    batch: int | None = None

    @property
    def accepted(self) -> bool:
        return self.decision in ACCEPTED

    @property
    def hand_decided(self) -> bool:
        return self.decision.startswith("hand_")

    def summary(self) -> dict[str, Any]:
        """The CLI's JSON shape for a candidate."""
        return {"id": self.id, "seed": self.seed, "path": self.path, "scores": self.scores,
                "decision": self.decision, "prompt": self.prompt, "version": self.version, "model": self.model}


@dataclasses.dataclass
class Version:
    """``base`` is the loaded model; ``v1``, ``v2``... are LoRA adapters on it."""

    medium: str
    name: str
    parent: str | None
    model: str
    settings: dict[str, Any]
    curated: list[str]  # candidate ids it learned from
    path: str | None  # adapter folder; None for base
    created_at: float = dataclasses.field(default_factory=time.time)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PromptLength:
    """How much of what a model reads a prompt takes: ``used`` of ``limit`` (in ``unit``, e.g. tokens)."""

    used: int
    limit: int
    unit: str = "tokens"

    @property
    def over(self) -> bool:
        """The model will not read all of the prompt (it cuts the end, or refuses it)."""
        return self.used > self.limit


@dataclasses.dataclass
class Generated:
    """What ``Medium.generate`` returns per seed: file contents by extension, main file first."""

    seed: int
    files: dict[str, bytes]
    text: str | None = None  # for media whose output is text (shown without reading the file)


class Scorer(Protocol):
    def __call__(self, candidates: Sequence[Candidate]) -> list[float]: ...


@dataclasses.dataclass
class ScoringContext:
    """What a built-in scorer may need besides the candidates.

    ``favourites`` are the accepted candidates, ``decided`` the hand-decided ones (for the
    learned preference scorer), ``handle`` the loaded base model (for likelihood scorers),
    ``options`` the scorer's settings from a preset (target colours, a style text, a key...).
    """

    medium: "Medium"
    favourites: list[Candidate]
    decided: list[Candidate]
    handle: Any = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    embed: Callable[[Sequence[Candidate]], Any] | None = None
    # the library's models for scorers (``studio models list scorer``), for a scorer whose model option is unset
    scorer_models: Callable[[], list[str]] | None = None


ScorerFactory = Callable[[ScoringContext], Scorer]


class TuneTask(Protocol):
    """One LoRA fine-tune, driven step by step by the shared trainer (``studio.training``).

    The medium builds it from the curated candidates: it caches what does not change during
    the tune (latents, text embeddings, token ids) when it is built, so ``loss`` is cheap.
    """

    def parameters(self) -> list[Any]:
        """The trainable tensors (the LoRA weights); everything else is frozen."""

    def loss(self, step: int, generator: Any) -> Any:
        """The loss of one batch as a scalar tensor with a graph; ``generator`` seeds its sampling."""

    def adapter_state(self) -> dict[str, Any]:
        """The trainable weights by name, for checkpoints (saved as safetensors)."""

    def load_adapter_state(self, state: dict[str, Any]) -> None:
        """Restore ``adapter_state`` from a checkpoint."""

    def save(self, out_dir: Path) -> None:
        """Write the finished adapter in the medium's standard format (peft / diffusers)."""


class Medium:
    """A medium: how to load, generate, score, tune and export.  One instance per process."""

    name: ClassVar[str]
    label: ClassVar[str] = ""  # the tab's and the CLI's word for it ("Image"); the name capitalised when empty
    order: ClassVar[int] = 100  # tabs and lists sort by this, then by name
    placeholder: ClassVar[str] = "What to make"  # the prompt box's example
    prompt_help: ClassVar[str] = ""  # a line under the prompt: the words the built-in model knows, ...
    main_ext: ClassVar[str]  # "png", "txt", "mid"
    default_scorer: ClassVar[str]
    # a scorer that ranks what another one ties, named in the warning when the top share's cut falls on a tie
    tie_breakers: ClassVar[dict[str, str]] = {}
    export_formats: ClassVar[dict[str, str]]  # format -> what it writes, one line
    # typed settings (studio.settings): the one place their defaults, ranges and help live
    generate_settings: ClassVar[type[Settings]] = NoSettings
    # whether generate requests from several artists that share a model call may be joined into one batch
    # (studio.coalesce): True when a seed's output does not depend on its batch-mates (one random generator
    # per seed).  The built-in media are: their outputs do not change with the other seeds of a batch; the
    # image pipeline's floats change with the batch's size only, by 1 of 255 on a few pixels (docs/page.md).
    joins_requests: ClassVar[bool] = True
    tune_settings: ClassVar[type[TuneSettings]] = TuneSettings

    @classmethod
    def title(cls) -> str:
        return cls.label or cls.name.capitalize()

    @property
    def tune_defaults(self) -> dict[str, Any]:
        """Every tune setting with its default (from ``tune_settings``)."""
        return self.tune_settings.defaults()

    def folder(self) -> Path:
        """The medium's own folder (its package): ``assets/`` and ``presets/`` live there."""
        import sys

        return Path(sys.modules[type(self).__module__].__file__).resolve().parent

    def default_model(self) -> str:
        """The built-in model: the ``assets`` folder inside the medium's own package."""
        return str(self.folder() / "assets")

    def prompt_warning(self, model: str, prompt: str) -> str | None:
        """One sentence when ``model`` will not follow ``prompt`` (e.g. a language it does not write), else None."""
        return None

    def prompt_length(self, model: str, prompt: str) -> PromptLength | None:
        """How much of what ``model`` reads ``prompt`` takes, or None when it reads any length (or its limit is
        unknown without loading the model).  Called as the artist types: at most a tokenizer loads, never weights."""
        return None

    def default_params(self) -> dict[str, Any]:
        """Generation settings and their defaults (from ``generate_settings``)."""
        return self.generate_settings.defaults()

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in; an unknown or out-of-range setting raises StudioError (one sentence)."""
        return self.generate_settings.parse(params, self.name).to_dict()

    def model_tune_defaults(self, model: str) -> dict[str, Any]:
        """The tune settings whose default differs for ``model`` (a family measured apart from the medium's
        default model); what the artist gives still wins.  {}: the medium's defaults."""
        return {}

    def parse_tune_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Every tune setting, checked, defaults filled in; one sentence for a value a tune cannot use."""
        return self.tune_settings.parse(settings, f"{self.name} tune").to_dict()

    def part(self, module: str, name: str) -> Any:
        """``name`` from one of the medium's own modules (``model``, ``generate``, ``scorers``, ``features``,
        ``tune``, ``export``: the parts listed above), imported on first use."""
        import sys

        # the medium's package: the first class up the line defined in a package's __init__ (a subclass kept in
        # a plain module, e.g. a test's probe, uses the parts of the medium it extends)
        package = next((cls.__module__ for cls in type(self).__mro__
                        if hasattr(sys.modules.get(cls.__module__), "__path__")), type(self).__module__)
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def load(self, model: str, device: str | None = None) -> Any:
        """Load a model by local folder or hub id (safetensors only, never remote code).

        Returns a handle the other hooks take.  Raise StudioError with one sentence for a
        missing folder, a pickle-only checkpoint or an unsupported architecture.
        """
        return self.part("model", "load")(model, device)

    def generate(self, handle: Any, prompt: str, seeds: Sequence[int], params: dict[str, Any],
                 adapter: str | None = None, strength: float = 1.0) -> list[Generated]:
        """Generate one candidate per seed in batches; ``adapter`` is a version's adapter
        folder (None for base).  Switching adapters must not reload the base model.
        ``strength`` scales the adapter's effect (0 = the base, 1 = as tuned, up to
        ``MAX_STRENGTH``); the engine passes it only when it is not 1."""
        return self.part("generate", "generate")(handle, prompt, seeds, self.validate_params(params), adapter,
                                                 strength)

    def scorers(self) -> dict[str, ScorerFactory]:
        """Built-in scorers by name."""
        return dict(self.part("scorers", "SCORERS"))

    def embed(self, handle: Any, candidates: Sequence[Candidate]) -> Any:
        """A float array (n, d) of features, for diversity and similarity to favourites."""
        return self.part("features", "embed")(candidates)

    def diversity(self, handle: Any, candidates: Sequence[Candidate], features: Any = None) -> float:
        """Mean pairwise cosine distance of the candidates' features (0 = all alike); ``features``: their
        ``embed`` rows when the caller has them already."""
        from .variety import mean_pairwise_distance

        if len(candidates) < 2:
            return 0.0
        return mean_pairwise_distance(self.embed(handle, candidates) if features is None else features)

    def tune_objectives(self, model: str) -> tuple[str, ...] | None:
        """The tune objectives ``model`` has, when it has fewer than the settings offer (None: all of them).
        A default objective the model lacks falls back to sft with a note in the tune's result; one the
        artist names is refused in one sentence."""
        return None

    def tie_advice(self, scorers: Sequence[str]) -> str:
        """What the ties warning tells the artist to add, for the scorers in use (none: the default one)."""
        used = list(scorers) or [self.default_scorer]
        for name in used:
            breaker = self.tie_breakers.get(name)
            if breaker and breaker not in used:
                return f"add the {breaker} scorer (it ranks what {name} ties)"
        return "add another scorer"

    def kept_variety(self, handle: Any, kept: Sequence[Candidate]) -> float:
        """The kept set's variety as the bar a compare's side (the candidates of one prompt) is held to:
        ``variety_vs_kept`` is the side's ``diversity`` over this.  Here the kept set's own diversity; voice
        measures it within each line (a side is one line's takes, and takes of different lines differ by
        their line)."""
        return self.diversity(handle, kept)

    def copies(self, handle: Any, candidates: Sequence[Candidate], kept: Sequence[Candidate]) -> list[bool]:
        """Which candidates near-duplicate a kept example (the curated set a version learned from).

        The shared test: cosine similarity of ``embed`` features at or above
        ``COPY_SIMILARITY`` with some kept example, raw and centred on the mean of both sets.  Text
        and music override it with a test on the content (``studio.variety.text_copies``,
        ``shares_near_run``; docs/copies.md).
        """
        from .variety import near_duplicates_centred

        if not candidates or not kept:
            return [False] * len(candidates)
        return near_duplicates_centred(self.embed(handle, candidates), self.embed(handle, kept), COPY_SIMILARITY)

    def card_detail(self, candidate: Candidate) -> str | None:
        """A line of HTML the page shows under a candidate's card and in its large view, or None for nothing.

        The medium escapes what it shows.  The page calls this on every redraw, so it reads what scoring
        stored and never runs a model (voice: what the recogniser heard, its mistakes against the line marked).
        """
        return None

    def unfinished(self, handle: Any, candidates: Sequence[Candidate]) -> list[bool] | None:
        """Which candidates generation cut off at its length limit before they ended by themselves, or None where
        a medium's candidates always end (a picture; a piece of a set length)."""
        return None

    def looping(self, candidates: Sequence[Candidate]) -> list[bool] | None:
        """Which candidates loop, saying their own material again and again, or None where a medium does not tell."""
        return None

    def spreading(self, after: Sequence[Candidate], kept: Sequence[Candidate],
                  before: Sequence[Candidate]) -> dict[str, Any] | None:
        """The feature (text: a word) the tuned side ``after`` holds most beyond the ``kept`` set and the ``before``
        side, as ``{"word", "after", "kept", "before"}`` shares of each; None where a medium does not tell."""
        return None

    def diversity_metrics(self, handle: Any, candidates: Sequence[Candidate]) -> dict[str, float]:
        """Extra diversity figures a medium reports (text adds distinct-2)."""
        return {}

    def tune_task(self, handle: Any, examples: Sequence[Candidate], settings: dict[str, Any],
                  parent_adapter: str | None, prior: Sequence[Candidate] = (),
                  dropped: Sequence[Candidate] = ()) -> TuneTask:
        """Build the LoRA task on the curated examples; ``parent_adapter`` is the version the
        tune starts from (its weights initialise the new adapter), None for base.

        ``prior`` (given only when ``settings['prior_weight']`` > 0) are un-kept base candidates:
        each batch draws that share of its rows from them (prior preservation).  ``dropped`` (given
        only when ``settings['objective']`` is a preference objective, studio/preference.py) are the
        candidates of the kept ones' batches decided not kept, by hand or by the rule."""
        extra = {"dropped": dropped} if dropped else {}  # a medium with no preference objective never sees it
        return self.part("tune", "build_task")(handle, examples, self.parse_tune_settings(settings),
                                               parent_adapter, prior, **extra)

    def export(self, handle: Any, version: Version | None, fmt: str, out_dir: Path,
               curated: Sequence[Candidate]) -> list[Path]:
        """Write ``fmt`` (one of ``export_formats``) into ``out_dir``; return the files written."""
        return self.part("export", "export")(version, fmt, Path(out_dir), curated)
