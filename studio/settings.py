"""Typed settings: one dataclass per medium for generating and one for tuning.

Each field is declared once with ``setting(default, help, ...)``: its default, its range and a
one-line help.  The engine validates with it (``parse``), the CLI prints it (``studio settings
MEDIUM``), the page builds its widgets from it and the docs list it, so a default or a limit lives
in exactly one place (as peft's ``LoraConfig`` does)::

    @dataclasses.dataclass
    class ImageGenerate(Settings):
        steps: int = setting(12, "denoising steps", min=1, max=500, label="Steps")

``parse`` turns loose values (a preset's TOML, ``--param KEY=VALUE``, the page's widgets) into a
checked instance, or raises StudioError with one sentence.  Settings travel between processes as
plain dicts (``to_dict``): complete, so no reader needs a fallback default of its own.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, ClassVar, Mapping

from .errors import StudioError

_SPEC = "studio"
HELD_OUT_SEED = 1_000_000  # compare and loop measure on seeds from here; training rounds use seeds below
TUNE_FROM = ("last", "base")  # where a loop round's tune starts: the version before, or the base on all kept


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a field promises besides its type: its range and how to show it."""

    help: str
    label: str | None = None  # the page's label; the field's name with spaces when None
    min: float | None = None  # inclusive
    max: float | None = None  # inclusive
    above: float | None = None  # exclusive lower bound
    below: float | None = None  # exclusive upper bound
    choices: tuple[Any, ...] | None = None
    escapes: bool = False  # a list whose items may hold line breaks: the page writes them as \n (and \ as \\)
    shown: tuple[str, ...] | None = None  # what the page shows for each choice (the choices themselves when None)


def setting(default: Any, help: str, *, label: str | None = None, min: float | None = None,
            max: float | None = None, above: float | None = None, below: float | None = None,
            choices: tuple[Any, ...] | None = None, escapes: bool = False, shown: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with its one-line help and range (lists get a fresh copy per instance); ``shown``
    names each of the ``choices`` for the page (the choices are what the command line and presets take)."""
    if shown is not None and (choices is None or len(shown) != len(choices)):
        raise ValueError("shown names each choice once")
    spec = Spec(help, label, min, max, above, below, tuple(choices) if choices is not None else None, escapes,
                tuple(shown) if shown is not None else None)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={_SPEC: spec})
    return dataclasses.field(default=default, metadata={_SPEC: spec})


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    name: str
    kind: str  # "int", "float", "bool", "str", "list" (of strings)
    optional: bool  # None is allowed (an empty field: "follow the default rule")
    default: Any
    spec: Spec

    @property
    def label(self) -> str:
        return self.spec.label or self.name.replace("_", " ").capitalize()

    def expected(self) -> str:
        """The sentence part that says what the field takes: 'a whole number from 1 to 500'."""
        s = self.spec
        if s.choices is not None:
            return "one of " + ", ".join(str(c) for c in s.choices)
        noun = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text",
                "list": "a list of non-empty texts"}[self.kind]
        low = (f"from {_num(s.min)}" if s.min is not None else
               f"above {_num(s.above)}" if s.above is not None else "")
        high = (f"to {_num(s.max)}" if s.max is not None and s.min is not None else
                f"up to (not including) {_num(s.below)}" if s.below is not None and s.min is not None else
                f"at most {_num(s.max)}" if s.max is not None else
                f"below {_num(s.below)}" if s.below is not None else "")
        if low and high:
            return f"{noun} {low} {high}" if s.min is not None else f"{noun} {low} and {high}"
        if low:
            return f"{noun} {low}" + (" up" if s.min is not None else "")
        return f"{noun} {high}".strip()

    def check(self, value: Any, owner: str) -> Any:
        """The value, converted where lossless (4.0 -> 4 for a whole number), or one sentence."""
        if value is None and self.optional:
            return None
        out = _convert(self.kind, value)
        ok = out is not _BAD
        if ok and self.kind in ("int", "float"):
            s = self.spec
            ok = ((s.min is None or out >= s.min) and (s.max is None or out <= s.max)
                  and (s.above is None or out > s.above) and (s.below is None or out < s.below))
        if ok and self.spec.choices is not None:
            ok = out in self.spec.choices
        if not ok:
            empty = " (or empty)" if self.optional else ""
            raise StudioError(f"The {owner} setting '{self.name}' must be {self.expected()}{empty}, not {value!r}.")
        return out


_BAD = object()


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _convert(kind: str, value: Any) -> Any:
    if kind == "bool":
        return value if isinstance(value, bool) else _BAD
    if kind == "str":
        return value if isinstance(value, str) else _BAD
    if kind == "list":
        if isinstance(value, str):
            value = [value]
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)
        return list(value) if ok else _BAD
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _BAD
    if not math.isfinite(value):
        return _BAD
    if kind == "int":
        return int(value) if float(value).is_integer() else _BAD
    return float(value)


def _kind(annotation: Any) -> tuple[str, bool]:
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0] if len(args) == 1 else str
    if typing.get_origin(annotation) is list:
        return "list", optional
    return {int: "int", float: "float", bool: "bool", str: "str"}[annotation], optional


class Settings:
    """Base of the typed settings dataclasses (subclasses are ``@dataclasses.dataclass``)."""

    owner: ClassVar[str] = ""  # the word errors use: "image", "text tune"

    @classmethod
    def fields(cls) -> list[FieldInfo]:
        """The declared fields, read once per class (validation runs on every generate)."""
        cached = cls.__dict__.get("_fields_cache")
        if cached is None:
            cached = cls._read_fields()
            cls._fields_cache = cached
        return list(cached)

    @classmethod
    def _read_fields(cls) -> list[FieldInfo]:
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            spec = f.metadata.get(_SPEC)
            if spec is None:
                continue
            kind, optional = _kind(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out.append(FieldInfo(f.name, kind, optional, default, spec))
        return out

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in cls.fields()]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in cls.fields()}

    @classmethod
    def parse(cls, values: Mapping[str, Any] | None = None, owner: str | None = None):
        """A checked instance from loose values; an unknown name or a bad value is one sentence."""
        owner = owner or cls.owner or "a"
        values = dict(values or {})
        known = {f.name: f for f in cls.fields()}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise StudioError(f"Unknown {owner} setting '{unknown[0]}'; known: {', '.join(sorted(known))}.")
        checked = {name: known[name].check(value, owner) for name, value in values.items()}
        instance = cls(**checked)
        instance.check(owner)
        return instance

    def check(self, owner: str) -> None:
        """Checks across fields (min below max...); one sentence when they disagree."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self.fields()}

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """Every field as plain data, for the CLI's ``settings`` command and the docs."""
        return [{"name": f.name, "type": f.kind, "default": f.default, "takes": f.expected()
                 + (" (or empty)" if f.optional else ""), "help": f.spec.help, "label": f.label}
                for f in cls.fields()]


@dataclasses.dataclass
class NoSettings(Settings):
    """A medium with no generation settings."""


def rank_setting(default: int) -> Any:
    """The ``rank`` field with a medium's measured default."""
    return setting(default, "LoRA rank: how much the adapter can learn (higher: more, and more copying)",
                   min=1, max=512, label="Adapter size")


def momentum_setting(default: float, models: str = "") -> Any:
    """The ``momentum`` field (AdamW's first beta, ``training.run_tune``), with a medium's measured default;
    ``models``: what the help adds about models whose own default differs (``Medium.model_tune_defaults``)."""
    return setting(default, "AdamW's momentum (its first beta): the share of each step carried into the next; 0 = "
                            "every step follows its own gradient alone, so a preference tune stops moving once its "
                            f"pairs are won{models}", min=0, below=1, label="Momentum")


def stop_narrowing_setting(what: str) -> Any:
    """The ``stop_narrowing`` field (off by default): a watched tune's look at 16 trial ``what`` (training.py)."""
    return setting(0.0, f"look at 16 trial {what} after each quarter of the tune and stop it at its last good look "
                        f"once their variety falls below this share of the kept set's (0 = never look)",
                   min=0, max=10, label="Stop when it narrows")


def lr_setting(default: float) -> Any:
    """The ``lr`` field, with a medium's measured default."""
    return setting(default, "learning rate", above=0, below=1, label="Learning rate")


def tuned_lr_scale_setting(default: float) -> Any:
    """The ``tuned_lr_scale`` field (``training.tune_lr``), with a medium's measured default (1: the same rate)."""
    return setting(default, "the learning rate times this for a tune that starts from a tuned version (a later "
                            "round): a gentler step from where the last round left the model; 1: the same rate "
                            "every round", above=0, max=100, label="Later rounds' step (x learning rate)")


@dataclasses.dataclass
class TuneSettings(Settings):
    """The shared trainer's settings (``studio.training``); a medium subclasses it to change a
    default or add its own.  ``steps`` empty means: follow the kept set (``epochs`` passes)."""

    owner: ClassVar[str] = "tune"
    # LoRA alpha when ``alpha`` is empty is this many times the rank (the adapter's scale alpha / rank)
    alpha_per_rank: ClassVar[float] = 1.0

    steps: int | None = setting(None, "optimisation steps; empty: follow the kept set (epochs passes)",
                                min=1, max=100_000, label="Steps")
    epochs: float = setting(30.0, "passes over the kept set when steps is empty", above=0, max=10_000,
                            label="Passes over the kept set")
    rank: int = rank_setting(8)
    alpha: float | None = setting(None, "LoRA alpha (the adapter's scale is alpha / rank); empty: the medium's rule",
                                  above=0, max=10_000)
    lr: float = lr_setting(1e-3)
    tuned_lr_scale: float = tuned_lr_scale_setting(1.0)
    batch_size: int = setting(8, "examples per optimisation step", min=1, max=4096)
    seed: int = setting(0, "the tune's seed (LoRA init, batch order, noise)", min=0, max=2**32 - 1)
    warmup: float = setting(0.05, "share of the steps the learning rate warms up over", min=0, max=1)
    checkpoint_every: int = setting(25, "steps between checkpoints (a killed tune resumes from the last)",
                                    min=1, max=100_000)
    max_grad_norm: float = setting(1.0, "gradient clipping norm", above=0, max=1e6)
    # at 0 the text tune (dpo) met 165 of its built-in protocol's 216 checks as 0.9 did, lifting less and varying
    # more; on a batch where 0.9 drifted into talk about texts it kept to short poems; music at 0 met fewer (61
    # against 65 on 8 runs, a copy missed), pictures too (76 of 96 against 81: wider, lifting less); the built-in
    # voice's default is 0 (voice/settings.py) (docs/objectives.md, "Text: a tune without momentum", "Pictures: a tune
    # without momentum")
    momentum: float = momentum_setting(0.9)
    accumulate: int = setting(1, "batches per process per optimisation step", min=1, max=1024)
    prior_weight: float = setting(0.0, "share of each batch drawn from the batch's un-kept candidates "
                                       "(prior preservation; 0 = off)", min=0, below=1)
    relearn: bool = setting(True, "a tune from a tuned version learns again the kept candidates that version "
                                  "learned (off: only the keeps it has not learned)", label="Learn earlier keeps again")
    distinct_keeps: bool = setting(False, "of a tuned version's keeps that copy each other within one batch, a tune "
                                          "learns the first alone", label="One keep per copy")

    def lora_alpha(self) -> float:
        return self.alpha if self.alpha is not None else self.alpha_per_rank * self.rank
