"""Scorers by name: a medium's built-ins, ``module:function``, or the ``studio.scorers`` entry points.

A spec is ``NAME`` or ``NAME=WEIGHT`` (``colourfulness=2``, ``mypkg.scores:warmth=0.5``).
Several scorers combine as the weighted mean of their scores, each in [0, 1].
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from importlib.metadata import entry_points
from typing import Any, Callable, Sequence

from .errors import StudioError
from .medium import Candidate, Medium, ScoringContext

COMBINED = "score"  # the key under which a candidate keeps its combined score


@dataclasses.dataclass(frozen=True)
class ScorerSpec:
    name: str
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "ScorerSpec":
        name, sep, weight = text.strip().rpartition("=") if "=" in text else (text.strip(), "", "")
        if not name:
            raise StudioError(f"The scorer '{text}' has no name; write NAME or NAME=WEIGHT.")
        if sep:
            try:
                value = float(weight)
            except ValueError:
                raise StudioError(f"The weight in '{text}' is not a number.") from None
            if not math.isfinite(value) or value < 0:
                raise StudioError(f"The weight in '{text}' must be a finite number >= 0.")
            return cls(name, value)
        return cls(name)


def _plugin(name: str) -> Callable[[Sequence[Candidate]], list[float]] | None:
    for ep in entry_points(group="studio.scorers"):
        if ep.name == name:
            return ep.load()
    return None


def _import(ref: str) -> Callable[[Sequence[Candidate]], list[float]]:
    module, _, attr = ref.partition(":")
    if not module or not attr or module.startswith("."):
        raise StudioError(f"Cannot load the scorer '{ref}': write it as package.module:function.")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        raise StudioError(f"Cannot load the scorer '{ref}' ({exc}).") from None
    if not callable(fn):
        raise StudioError(f"The scorer '{ref}' is not a function.")
    return fn


def resolve(medium: Medium, specs: Sequence[str | ScorerSpec], context: ScoringContext,
            options: dict[str, dict[str, Any]] | None = None,
            allow_code: bool = False) -> list[tuple[ScorerSpec, Callable]]:
    """Turn specs into (spec, score function) pairs; the medium's default when none is given.

    ``module:function`` imports code, so it is honoured only when ``allow_code`` (the CLI and
    preset files); a web request may name built-in and registered (entry-point) scorers only.
    """
    parsed = [s if isinstance(s, ScorerSpec) else ScorerSpec.parse(s) for s in specs] or \
        [ScorerSpec(medium.default_scorer)]
    if sum(s.weight for s in parsed) <= 0:
        raise StudioError("The scorer weights add up to zero; give at least one a positive weight.")
    builtins = medium.scorers()
    resolved = []
    for spec in parsed:
        if spec.name in builtins:
            ctx = dataclasses.replace(context, options=dict((options or {}).get(spec.name, {})))
            resolved.append((spec, builtins[spec.name](ctx)))
        elif ":" in spec.name:
            if not allow_code:
                raise StudioError(f"The scorer '{spec.name}' names code to import, which only the command "
                                  f"line and preset files may do; pick a built-in or registered scorer.")
            resolved.append((spec, _import(spec.name)))
        elif (fn := _plugin(spec.name)) is not None:
            resolved.append((spec, fn))
        else:
            raise StudioError(f"Unknown {medium.name} scorer '{spec.name}'; built-in: "
                              f"{', '.join(sorted(builtins))}, or give module:function.")
    return resolved


def run(scorers: list[tuple[ScorerSpec, Callable]], candidates: Sequence[Candidate]) -> dict[str, list[float]]:
    """Each scorer's scores by name, checked to be finite numbers in [0, 1]."""
    out: dict[str, list[float]] = {}
    for spec, fn in scorers:
        try:
            values = [float(v) for v in fn(list(candidates))]
        except StudioError:
            raise
        except (Exception, SystemExit) as exc:  # a scorer's bug (or exit) must not stop the caller
            raise StudioError(f"The scorer '{spec.name}' failed ({type(exc).__name__}: {exc}).") from None
        if len(values) != len(candidates):
            raise StudioError(f"The scorer '{spec.name}' returned {len(values)} scores for "
                              f"{len(candidates)} candidates.")
        bad = [v for v in values if not math.isfinite(v)]
        if bad:
            raise StudioError(f"The scorer '{spec.name}' returned a non-finite score ({bad[0]}).")
        out[spec.name] = [min(1.0, max(0.0, v)) for v in values]
    return out


def combine(by_name: dict[str, list[float]], specs: Sequence[ScorerSpec]) -> list[float]:
    """The weighted mean of the scorers' scores, per candidate."""
    total = sum(s.weight for s in specs)
    n = len(next(iter(by_name.values()))) if by_name else 0
    return [sum(s.weight * by_name[s.name][i] for s in specs) / total for i in range(n)]
