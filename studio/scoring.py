"""Scorers by name: a medium's built-ins, ``module:function``, or the ``studio.scorers`` entry points.

A spec is ``NAME`` or ``NAME=WEIGHT`` (``colourfulness=2``, ``mypkg.scores:warmth=0.5``).
Several scorers combine as the weighted mean of their scores, each in [0, 1].
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
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


def _plugin(name: str) -> "CodeScorer | None":
    """The ``studio.scorers`` entry point called ``name``, to run in its own process (never imported here)."""
    for ep in entry_points(group="studio.scorers"):
        if ep.name == name:
            return CodeScorer(ep.value, f"'{name}' (entry point {ep.value})")
    return None


def _import(ref: str) -> "CodeScorer":
    module, _, attr = ref.partition(":")
    if not module or not attr or module.startswith("."):
        raise StudioError(f"Cannot load the scorer '{ref}': write it as package.module:function.")
    return CodeScorer(ref, f"'{ref}'")


class CodeScorer:
    """A scorer from the artist's or a plugin's code (``module:function``), run in a child process.

    The child imports the code and calls it on the candidates, so nothing it does at import or
    call (raise anything, ``sys.exit``, ``os._exit(0)``, crash) can end the studio's own process
    or pass for a result: no scores back is one sentence, never an exit 0 with nothing stored.
    """

    def __init__(self, ref: str, label: str):
        self.ref, self.label = ref, label

    def __call__(self, candidates: Sequence[Candidate]) -> list[float]:
        import subprocess
        import sys
        import tempfile

        request = json.dumps({"ref": self.ref, "candidates": [dataclasses.asdict(c) for c in candidates]},
                             default=str)
        path = [os.getcwd() if p == "" else p for p in sys.path]  # what this process could import
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        with tempfile.TemporaryDirectory(prefix="studio-scorer-") as folder:
            result = Path(folder) / "scores.json"
            done = subprocess.run([sys.executable, "-m", "studio.scoring", str(result)], input=request, text=True,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if not result.exists():
                last = (done.stderr.strip().splitlines() or [""])[-1][:200]
                raise StudioError(f"The scorer {self.label} ended its process without returning scores "
                                  f"(exit code {done.returncode}{': ' + last.rstrip('.') if last else ''}).")
            answer = json.loads(result.read_text())
        if "load_error" in answer:
            raise StudioError(f"Cannot load the scorer {self.label} ({answer['load_error']}).")
        if "error" in answer:
            raise StudioError(f"The scorer {self.label} failed ({answer['error']}).")
        return answer["scores"]


def _score_in_child(result: str) -> None:
    """The child's side of CodeScorer: import, call, write the scores (or what went wrong) to ``result``."""
    from .fsutil import atomic_write_text

    request = json.load(sys.stdin)
    sys.stdout = sys.stderr  # a scorer's prints are not the answer
    try:
        module, _, attr = request["ref"].partition(":")
        fn = importlib.import_module(module)
        for part in attr.split("."):
            fn = getattr(fn, part)
        if not callable(fn):
            raise TypeError(f"{request['ref']} is not a function")
    except BaseException as exc:  # anything the import does, SystemExit included
        atomic_write_text(Path(result), json.dumps({"load_error": _what(exc)}))
        return
    try:
        candidates = [Candidate(**c) for c in request["candidates"]]
        answer = {"scores": [float(v) for v in fn(candidates)]}
    except BaseException as exc:
        answer = {"error": _what(exc)}
    atomic_write_text(Path(result), json.dumps(answer))


def _what(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


OPTION_KEY = re.compile(r"""options\[['"](\w+)['"]\]""")  # how a built-in's docstring names an option it reads


def describe(medium: Medium) -> list[dict[str, Any]]:
    """Each built-in scorer: its name, its docstring on one line, and the options it names there
    (``options['key']``, given as ``--scorer-option NAME.KEY=VALUE`` or a preset's ``options``)."""
    out = []
    for name, factory in sorted(medium.scorers().items()):
        doc = " ".join((factory.__doc__ or "").split())
        out.append({"name": name, "help": doc or f"The {name} scorer.",
                    "options": list(dict.fromkeys(OPTION_KEY.findall(doc)))})
    return out


def run(scorers: list[tuple[ScorerSpec, Callable]], candidates: Sequence[Candidate]) -> dict[str, list[float]]:
    """Each scorer's scores by name, checked to be finite numbers in [0, 1]."""
    out: dict[str, list[float]] = {}
    for spec, fn in scorers:
        try:
            values = [float(v) for v in fn(list(candidates))]
        except StudioError:
            raise
        except (Exception, SystemExit, GeneratorExit) as exc:  # a scorer's bug (or exit) must not stop the caller
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
    """The weighted mean of the scorers' scores, per candidate.

    Weights are scaled by the largest first, so huge ones (1e308) cannot overflow the sum to inf
    and turn every combined score into 0; only their ratios matter.
    """
    top = max((s.weight for s in specs), default=0.0)
    if not top > 0:
        raise StudioError("The scorer weights add up to zero; give at least one a positive weight.")
    weights = [s.weight / top for s in specs]
    total = sum(weights)
    n = len(next(iter(by_name.values()))) if by_name else 0
    return [min(1.0, sum(w * by_name[s.name][i] for w, s in zip(weights, specs)) / total) for i in range(n)]


if __name__ == "__main__":  # a CodeScorer's child process: python -m studio.scoring RESULT_FILE
    _score_in_child(sys.argv[1])


@dataclasses.dataclass(frozen=True)
class Preference:
    """A fitted ``fit_preference`` model: called on features, each row's probability of a keep."""
    mean: Any
    std: Any
    weights: Any
    bias: float

    def __call__(self, features: Any) -> Any:
        import numpy as np

        return 1 / (1 + np.exp(-(((features - self.mean) / self.std) @ self.weights + self.bias)))


def fit_preference(features: Any, labels: Any, steps: int = 300, l2: float = 1e-2) -> Preference:
    """A tiny logistic regression by gradient descent on standardised features: the learned preference
    from hand decisions (keeps 1, drops 0) that several media's ``preference`` scorers fit."""
    import numpy as np

    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    x = (features - mean) / std
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= 0.5 * (x.T @ (p - labels) / len(x) + l2 * w)
        b -= 0.5 * float(np.mean(p - labels))
    return Preference(mean, std, w, b)
