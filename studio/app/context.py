"""What the panels of one medium's tab share: the studio, the medium, and the named components.

Like LLaMA-Factory's webui manager: each panel adds its components here by name and wires
its events to engine calls; the engine knows nothing of Gradio.
"""
from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..engine import Studio
from ..errors import StudioError
from ..medium import Medium
from .cards import PARAM_WORDS


class TabContext:
    """One medium's tab: its studio, medium, presets folder and components (set by the panels)."""

    def __init__(self, studio: Studio, medium: str, presets_dir: Path | None):
        self.studio = studio
        self.name = medium
        self.medium: Medium = studio.medium(medium)
        self.presets_dir = presets_dir
        self.param_names = list(self.medium.default_params())
        self.scorer_info = scorer_descriptions(self.medium)
        self.scorer_names = list(self.scorer_info)
        self.c: dict[str, Any] = {}  # component by name

    def __getitem__(self, key: str) -> Any:
        return self.c[key]

    def __setitem__(self, key: str, component: Any) -> None:
        self.c[key] = component

    # -- what a reload restores: the last rule, preset and tune settings, kept in the workspace ---
    def remember(self, **values: Any) -> None:
        key = f"app.{self.name}"
        self.studio.store.set_setting(key, {**(self.studio.store.get_setting(key) or {}), **values})

    def recall(self) -> dict[str, Any]:
        return self.studio.store.get_setting(f"app.{self.name}") or {}

    def many(self, *names: str) -> list[Any]:
        return [self.c[n] for n in names]

    # -- inputs shared by several panels ----------------------------------------------------
    def params_inputs(self) -> list[Any]:
        return [self.c[f"param.{p}"] for p in self.param_names]

    def scoring_inputs(self) -> list[Any]:
        return [*(self.c[f"weight.{s}"] for s in self.scorer_names), self.c["scorer_options"]]

    def params(self, values: list[Any]) -> dict[str, Any]:
        """The medium's settings from the widgets, typed like their defaults."""
        defaults = self.medium.default_params()
        out = {}
        for name, value in zip(self.param_names, values):
            out[name] = coerce(value, defaults[name], name)
        return self.medium.validate_params(out)

    def scoring(self, values: list[Any]) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """(scorer specs as NAME=WEIGHT, per-scorer options) from the weight sliders and the preset's options.

        Only listed names reach the engine: a web request never names code to import.
        """
        weights = values[: len(self.scorer_names)]
        options = values[len(self.scorer_names)] if len(values) > len(self.scorer_names) else {}
        specs = [f"{n}={float(w):g}" for n, w in zip(self.scorer_names, weights) if w and float(w) > 0]
        if not specs:
            raise StudioError("Give at least one scorer a weight above 0 (or pick by hand).")
        if not isinstance(options, dict):
            options = {}
        return specs, {k: v for k, v in options.items() if k in self.scorer_names and isinstance(v, dict)}


def scorer_descriptions(medium: Medium) -> dict[str, str]:
    """Every scorer an artist may pick, with one line about it: the built-ins (their docstrings), then the
    scorers registered under the ``studio.scorers`` entry points (listed by name, never imported here)."""
    from importlib.metadata import entry_points

    out = {}
    for name, factory in sorted(medium.scorers().items()):
        doc = re.sub(r"options\['(\w+)'\]", r"the preset's \1", " ".join((factory.__doc__ or "").split()))
        # the docstring's first clause: what it rewards, not how it computes it
        out[name] = re.split(r"\. |[:;] | \(", doc)[0].rstrip(".:;,") + "." if doc else f"The {name} scorer."
    for ep in entry_points(group="studio.scorers"):
        out.setdefault(ep.name, f"A registered scorer from {ep.value.split(':')[0]}.")
    return out




def coerce(value: Any, default: Any, name: str) -> Any:
    """A widget's value as the type of the setting's default (Gradio numbers arrive as floats)."""
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int):
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            raise StudioError(f"The setting '{name}' needs a whole number.")
        if float(value) != int(value):
            raise StudioError(f"The setting '{name}' needs a whole number, not {value}.")
        return int(value)
    if isinstance(default, float):
        if value is None:
            raise StudioError(f"The setting '{name}' needs a number.")
        return float(value)
    if isinstance(default, (list, dict)):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise StudioError(f"The setting '{name}' must be JSON like {json.dumps(default)}.") from None
        return value
    return value if value is not None else default


def friendly(fn: Callable) -> Callable:
    """A StudioError becomes a Gradio error toast with its one sentence (never a traceback)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
    return wrapper


def param_widget(name: str, default: Any) -> Any:
    """A widget for one of the medium's settings, chosen by its default's type, labelled in plain words."""
    label, info = PARAM_WORDS.get(name, (name.replace("_", " ").capitalize(), None))
    if isinstance(default, bool):
        return gr.Checkbox(value=default, label=label, info=info)
    if isinstance(default, int):
        return gr.Number(value=default, label=label, info=info, precision=0, min_width=140)
    if isinstance(default, float):
        return gr.Number(value=default, label=label, info=info, min_width=140)
    if isinstance(default, (list, dict)):
        return gr.Textbox(value=json.dumps(default), label=label, info=(info or "") + " (JSON list)", min_width=140)
    return gr.Textbox(value="" if default is None else str(default), label=label, info=info, min_width=140)
