"""What the panels of one medium's tab share: the studio, the medium, and the named components.

Like LLaMA-Factory's webui manager: each panel adds its components here by name and wires its
events by name (``listen``): a handler takes ``{name: value}`` and returns ``{name: value}``, so no
handler counts positions.  The engine knows nothing of Gradio.
"""
from __future__ import annotations

import functools
import inspect
import math
import re
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..engine import Studio
from ..errors import StudioError
from ..medium import Medium
from ..settings import FieldInfo


VIEW = ("gallery", "histogram", "warning")  # what re-deciding a batch redraws
VIEW_INPUTS = ("shown", "threshold", "softness", "spread", "keep_by", "top_share")
PICKERS = ("version", "compare_after", "export_version")  # the version pickers a finished tune updates


class TabContext:
    """One medium's tab: its studio, medium, presets folder and components (set by the panels).

    The panels also leave here what other panels call, declared below (set by ``curate_panel``,
    ``generate_panel`` and ``tune_panel`` when they wire): ``view`` redraws the batch, ``run_generation``
    chains a generation after an event, ``poll`` reads the tune's progress.
    """

    view: Callable[[dict[str, Any]], dict[str, Any]]
    run_generation: Callable[[Any], Any]
    poll: Callable[[dict[str, Any]], dict[str, Any]]
    poll_names: tuple[str, ...]

    def __init__(self, studio: Studio, medium: str, presets_dir: Path | None):
        self.studio = studio
        self.name = medium
        self.medium: Medium = studio.medium(medium)
        self.presets_dir = presets_dir
        self.param_names = list(self.medium.generate_settings.names())
        self.scorer_info = scorer_descriptions(self.medium)
        self.scorer_names = list(self.scorer_info)
        self.c: dict[str, Any] = {}  # component by name

    # -- wiring by name ---------------------------------------------------------------------
    def listen(self, trigger: Callable, fn: Callable | None, inputs: Any = (), outputs: Any = (), **kwargs: Any):
        """``trigger(handler, inputs, outputs)`` with names: ``fn`` takes ``{name: value}`` and returns
        ``{name: value}`` for the outputs it changes (a missing name keeps its value).  ``fn`` may take
        ``progress`` as Gradio's progress bar."""
        names_in, names_out = list(inputs), list(outputs)
        if fn is None:
            return trigger(None, outputs=self.many(*names_out), **kwargs)
        by_id = {id(self.c[n]): n for n in names_in}

        def named(data: dict[Any, Any]) -> dict[str, Any]:
            return {by_id[id(component)]: value for component, value in (data or {}).items()}

        def unnamed(result: dict[str, Any] | None) -> dict[Any, Any]:
            return {self.c[n]: value for n, value in (result or {}).items()}

        if "progress" in inspect.signature(fn).parameters:
            def handler(data: dict[Any, Any], progress=gr.Progress()) -> dict[Any, Any]:
                return unnamed(fn(named(data), progress=progress))
        else:
            def handler(data: dict[Any, Any]) -> dict[Any, Any]:
                return unnamed(fn(named(data)))
        functools.update_wrapper(handler, fn, updated=())
        return trigger(handler, inputs=set(self.many(*names_in)) if names_in else None,
                       outputs=self.many(*names_out), **kwargs)

    def params_names(self) -> list[str]:
        return [f"param.{p}" for p in self.param_names]

    def scoring_names(self) -> list[str]:
        return [*(f"weight.{s}" for s in self.scorer_names), "scorer_options"]

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

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        """The medium's settings from the named widgets (``param.NAME``), checked by its typed settings."""
        fields = {f.name: f for f in self.medium.generate_settings.fields()}
        out = {name: in_range(from_widget(values[f"param.{name}"], fields[name]), fields[name])
               for name in self.param_names}
        return self.medium.validate_params(out)

    def weights(self, values: dict[str, Any]) -> dict[str, Any]:
        return {s: values[f"weight.{s}"] for s in self.scorer_names}

    def scoring(self, values: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """(scorer specs as NAME=WEIGHT, per-scorer options) from the weight sliders and the preset's options.

        Only listed names reach the engine: a web request never names code to import.
        """
        weights = {n: weight(n, w) for n, w in self.weights(values).items()}
        options = values.get("scorer_options") or {}
        specs = [f"{n}={w!r}" for n, w in weights.items() if w > 0]
        if not specs:
            raise StudioError("Give at least one scorer a weight above 0 (or pick by hand).")
        if not isinstance(options, dict):
            options = {}
        return specs, {k: v for k, v in options.items() if k in self.scorer_names and isinstance(v, dict)}


def scorer_descriptions(medium: Medium) -> dict[str, str]:
    """Every scorer an artist may pick, with one line about it: the built-ins (their docstrings), then the
    scorers registered under the ``studio.scorers`` entry points (listed by name, never imported here)."""
    from importlib.metadata import entry_points

    from ..scoring import describe

    out = {}
    for scorer in describe(medium):
        doc = re.sub(r"options\['(\w+)'\]", r"the preset's \1", scorer["help"])
        # the docstring's first clause: what it rewards, not how it computes it
        out[scorer["name"]] = re.split(r"\. |[:;] | \(", doc)[0].rstrip(".:;,") + "."
    for ep in entry_points(group="studio.scorers"):
        out.setdefault(ep.name, f"A registered scorer from {ep.value.split(':')[0]}.")
    return out




def weight(name: str, value: Any) -> float:
    """A scorer weight from the page: a finite number >= 0 (a request may send anything)."""
    try:
        number = float(0.0 if value is None else value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise StudioError(f"The weight of the scorer '{name}' must be a number of 0 or more, not {value!r}.")
    return number


ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t"}  # what a line of a list box cannot hold, written out
UNESCAPES = {v[1]: k for k, v in ESCAPES.items()}


def to_widget(value: Any, field: FieldInfo) -> Any:
    """A setting's value as its widget shows it: a list one item a line, with an item's own line break written
    \\n where the setting allows them (a text's stop at a blank line is "\\n\\n")."""
    if field.kind != "list":
        return value
    items = value or []
    if field.spec.escapes:
        items = ["".join(ESCAPES.get(ch, ch) for ch in item) for item in items]
    return "\n".join(items)


def from_widget(value: Any, field: FieldInfo) -> Any:
    """A widget's value as its setting takes it: a list from its lines, empty as None where allowed."""
    if field.kind == "list":
        lines = [line.strip() for line in str(value or "").splitlines() if line.strip()]
        if field.spec.escapes:  # \n, \t and \\ back to what they stand for; any other backslash stays
            lines = [re.sub(r"\\([\\nt])", lambda m: UNESCAPES[m.group(1)], line) for line in lines]
        return lines
    if value is None or value == "":
        return None if field.optional else value
    return value


def whole(value: Any, what: str, low: int | None = None, high: int | None = None) -> int | None:
    """A page box's number as a whole number (empty: None), or one sentence: the boxes keep what was typed
    (no rounding in the browser), so 1.5 candidates is said, not made 2; with ``low`` and ``high``, 0 candidates
    too (in the page's words: Gradio's own bounds check says only "Error", so the boxes carry none)."""
    if value is None or value == "":
        return None
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise StudioError(f"The {what} must be a whole number, not {value:g}.")
    if low is not None and high is not None and not low <= int(value) <= high:
        raise StudioError(f"The {what} must be between {low} and {high}, not {int(value)}.")
    return int(value)


def in_range(value: Any, field: FieldInfo) -> Any:
    """A page box's number for a typed setting, checked by the setting's own range but said in the page's words
    (the box's label, not the setting's name): "Adapter size must be a whole number from 1 to 512, not 0.".
    The boxes carry no Gradio bounds, whose check runs first and says only "Error"."""
    if value is None or value == "" or field.kind not in ("int", "float"):
        return value
    try:
        return field.check(value, "page")
    except StudioError:
        shown = f"{value:g}" if isinstance(value, (int, float)) else repr(value)
        raise StudioError(f"{field.label} must be {field.expected()}, not {shown}.") from None


def friendly(fn: Callable) -> Callable:
    """A StudioError becomes a Gradio error toast with its one sentence (never a traceback)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
    return wrapper


def param_widget(field: FieldInfo) -> Any:
    """A widget for one typed setting: a list of choices, a box, a number with its range, or lines of text."""
    label, info = field.label, field.spec.help[:1].upper() + field.spec.help[1:] + "."
    if field.spec.choices is not None:
        shown = field.spec.shown or field.spec.choices
        return gr.Dropdown(choices=list(zip(shown, field.spec.choices)), value=field.default, label=label, info=info,
                           min_width=140)
    if field.kind == "bool":
        return gr.Checkbox(value=bool(field.default), label=label, info=info)
    if field.kind in ("int", "float"):
        return gr.Number(value=field.default, label=label, info=info, min_width=140)  # in_range checks it
    if field.kind == "list":
        lines = " One a line; \\n is a line break." if field.spec.escapes else " One a line."
        return gr.Textbox(value=to_widget(field.default, field), label=label, info=info + lines,
                          lines=2, min_width=140)
    return gr.Textbox(value="" if field.default is None else str(field.default), label=label, info=info,
                      min_width=140)


def event_value(event: gr.EventData, key: str) -> str:
    """What a page script sent under ``key`` with ``trigger(event, {key: ...})``; empty when nothing."""
    data = getattr(event, "_data", None)
    return str(data.get(key, "")) if isinstance(data, dict) else ""
