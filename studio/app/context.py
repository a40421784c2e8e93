"""What the panels of one medium's tab share: the studio, the medium, and the named components.

Like LLaMA-Factory's webui manager: each panel adds its components here by name and wires
its events to engine calls; the engine knows nothing of Gradio.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..engine import Studio
from ..errors import StudioError
from ..medium import Medium


class TabContext:
    """One medium's tab: its studio, medium, presets folder and components (set by the panels)."""

    def __init__(self, studio: Studio, medium: str, presets_dir: Path | None):
        self.studio = studio
        self.name = medium
        self.medium: Medium = studio.medium(medium)
        self.presets_dir = presets_dir
        self.param_names = list(self.medium.default_params())
        self.scorer_names = sorted(self.medium.scorers())
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
        return [*(self.c[f"weight.{s}"] for s in self.scorer_names), self.c["custom_scorer"],
                self.c["scorer_options"]]

    def params(self, values: list[Any]) -> dict[str, Any]:
        """The medium's settings from the widgets, typed like their defaults."""
        defaults = self.medium.default_params()
        out = {}
        for name, value in zip(self.param_names, values):
            out[name] = coerce(value, defaults[name], name)
        return self.medium.validate_params(out)

    def scoring(self, values: list[Any]) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """(scorer specs as NAME=WEIGHT, per-scorer options) from the weight fields, custom box and options."""
        weights = values[: len(self.scorer_names)]
        custom, options_text = values[len(self.scorer_names):]
        specs = [f"{n}={float(w):g}" for n, w in zip(self.scorer_names, weights) if w and float(w) > 0]
        specs += [s.strip() for s in (custom or "").split(",") if s.strip()]
        try:
            options = json.loads(options_text) if (options_text or "").strip() else {}
        except json.JSONDecodeError as exc:
            raise StudioError(f"The scorer options are not valid JSON ({exc.msg} at line {exc.lineno}).") from None
        if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
            raise StudioError('The scorer options must be a JSON object like {"scorer": {"option": value}}.')
        return specs, options


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
    """A widget for one of the medium's settings, chosen by its default's type."""
    if isinstance(default, bool):
        return gr.Checkbox(value=default, label=name)
    if isinstance(default, int):
        return gr.Number(value=default, label=name, precision=0, min_width=100)
    if isinstance(default, float):
        return gr.Number(value=default, label=name, min_width=100)
    if isinstance(default, (list, dict)):
        return gr.Textbox(value=json.dumps(default), label=name + " (JSON)")
    return gr.Textbox(value="" if default is None else str(default), label=name)
