"""Presets: a named starting point for a medium, one TOML file each.

A medium ships its own in its folder (``studio/media/MEDIUM/presets/NAME.toml``); a presets
folder given by hand (tests, an artist's own) holds ``MEDIUM-NAME.toml`` files.

A preset holds what an artist would otherwise set by hand in a tab::

    description = "Saturated, high-contrast pictures"
    prompt = "a {subject}, bold saturated colours"   # a template: {subject} is filled in
    subject = "lighthouse at dusk"                    # the default subject
    n = 8                                             # candidates per batch
    seed = 0

    [params]            # the medium's generation settings (checked by medium.validate_params)
    steps = 20

    [[scorers]]         # built-in scorer names (or module:function), their weights and options
    name = "colourfulness"
    weight = 1.0
    options = { target = "warm" }

    [rule]
    threshold = 0.6     # in [0, 1]
    temperature = 0.05  # 0 is the hard threshold

    [tune]              # LoRA settings for the tune: steps, rank, lr, and any medium setting
    steps = 100
    rank = 8
    lr = 1e-3

Loading validates shape and ranges, and [params] and [tune] against the medium's own settings; a broken
preset is one clear sentence (StudioError).
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

from .engine import MAX_CANDIDATES
from .errors import StudioError

KNOWN_KEYS = {"description", "prompt", "subject", "n", "seed", "params", "scorers", "rule", "tune"}


@dataclasses.dataclass(frozen=True)
class ScorerChoice:
    name: str
    weight: float = 1.0
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Preset:
    medium: str
    name: str
    description: str
    prompt: str  # the template, with an optional {subject}
    subject: str
    n: int
    seed: int
    params: dict[str, Any]
    scorers: tuple[ScorerChoice, ...]
    threshold: float
    temperature: float
    tune: dict[str, Any]

    def render_prompt(self, subject: str | None = None) -> str:
        """The template with ``subject`` (the preset's own subject when None) filled in."""
        return self.prompt.replace("{subject}", self.subject if subject is None else subject).strip()

    def scorer_specs(self) -> list[str]:
        """``NAME=WEIGHT`` strings, the engine's and the CLI's scorer syntax."""
        return [f"{s.name}={s.weight:g}" for s in self.scorers]

    def scorer_options(self) -> dict[str, dict[str, Any]]:
        return {s.name: dict(s.options) for s in self.scorers if s.options}


def _files(medium: str, presets_dir: Path | str | None = None) -> dict[str, Path]:
    """The medium's preset files by name: its own folder's, or ``MEDIUM-NAME.toml`` in ``presets_dir``."""
    if presets_dir is None:
        from . import media

        root, pattern, cut = media.get(medium).folder() / "presets", "*.toml", 0
    else:
        root, pattern, cut = Path(presets_dir), f"{medium}-*.toml", len(medium) + 1
    if not root.is_dir():
        return {}
    return {p.stem[cut:]: p for p in root.glob(pattern)}


def names(medium: str, presets_dir: Path | str | None = None) -> list[str]:
    """The medium's preset names, sorted (``bold-colour.toml`` -> ``bold-colour``)."""
    return sorted(_files(medium, presets_dir))


def load(medium: str, name: str, presets_dir: Path | str | None = None) -> Preset:
    path = _files(medium, presets_dir).get(name)
    if path is None:
        have = ", ".join(names(medium, presets_dir)) or "none"
        raise StudioError(f"There is no {medium} preset '{name}'; available: {have}.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StudioError(f"The preset {path.name} is not valid TOML ({exc}).") from None
    preset = parse(medium, name, data, path.name)
    fits(preset, path.name)
    return preset


def fits(preset: Preset, source: str) -> None:
    """A preset's [params] and [tune] checked against its medium's own settings, when that medium is installed:
    a value no generate or tune could use is one sentence naming the preset, when it is read, not when it runs."""
    from . import media

    classes = media.classes()
    if preset.medium not in classes:  # a medium not installed here: the shape checks of ``parse`` only
        return
    kind = classes[preset.medium]
    try:
        kind.generate_settings.parse(preset.params, preset.medium)
        kind.tune_settings.parse(preset.tune, f"{preset.medium} tune")
    except StudioError as exc:
        raise StudioError(f"{str(exc).rstrip('.')} (the preset {source}).") from None


def parse(medium: str, name: str, data: dict[str, Any], source: str = "preset") -> Preset:
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise StudioError(f"The preset {source} has unknown keys: {', '.join(sorted(unknown))}.")
    prompt = _text(data.get("prompt"), "prompt", source)
    if not prompt:
        raise StudioError(f"The preset {source} needs a prompt.")
    n = data.get("n", 8)
    if not _is_int(n) or not 1 <= n <= MAX_CANDIDATES:
        raise StudioError(f"The preset {source} has n = {n!r}; use a whole number from 1 to {MAX_CANDIDATES}.")
    seed = data.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        raise StudioError(f"The preset {source} has seed = {seed!r}; use a whole number of 0 or more.")
    params = _table(data.get("params", {}), "params", source)
    rule = _table(data.get("rule", {}), "rule", source)
    threshold = _number(rule.get("threshold", 0.5), "rule.threshold", source)
    temperature = _number(rule.get("temperature", 0.05), "rule.temperature", source)
    if not 0.0 <= threshold <= 1.0:
        raise StudioError(f"The preset {source} has threshold {threshold}; it must be between 0 and 1.")
    if temperature < 0:
        raise StudioError(f"The preset {source} has temperature {temperature}; it must be 0 or more.")
    tune = _table(data.get("tune", {}), "tune", source)
    for key, check in (("steps", lambda v: _is_int(v) and v >= 1), ("rank", lambda v: _is_int(v) and v >= 1),
                       ("lr", lambda v: isinstance(v, (int, float)) and math.isfinite(v) and 0 < v < 1)):
        if key in tune and not check(tune[key]):
            raise StudioError(f"The preset {source} has tune.{key} = {tune[key]!r}, which is out of range.")
    scorers = data.get("scorers", [])
    if not isinstance(scorers, list):
        raise StudioError(f"The preset {source} must list scorers as [[scorers]] tables.")
    choices = []
    for entry in scorers:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise StudioError(f"Each [[scorers]] table in {source} needs a name.")
        weight = _number(entry.get("weight", 1.0), f"the weight of {entry['name']}", source)
        if weight < 0:
            raise StudioError(f"The preset {source} gives {entry['name']} a negative weight.")
        options = _table(entry.get("options", {}), f"the options of {entry['name']}", source)
        choices.append(ScorerChoice(entry["name"], weight, options))
    if choices and sum(c.weight for c in choices) <= 0:
        raise StudioError(f"The scorer weights in {source} add up to zero.")
    return Preset(medium=medium, name=name, description=_text(data.get("description"), "description", source),
                  prompt=prompt, subject=_text(data.get("subject"), "subject", source), n=n, seed=seed,
                  params=params, scorers=tuple(choices), threshold=threshold, temperature=temperature, tune=tune)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any, key: str, source: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise StudioError(f"The preset {source} has a {key} that is not text.")
    return value


def _number(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StudioError(f"The preset {source} has {key} = {value!r}, which is not a finite number.")
    return float(value)


def _table(value: Any, key: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StudioError(f"The preset {source} needs {key} as a table.")
    return dict(value)
