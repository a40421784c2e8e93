"""The registry of media: every medium, built-in or plugin, registers through the entry-point group
``studio.media`` (the built-ins in studio's own pyproject), so adding one is a folder plus one line.

Nothing is imported until a medium is asked for, so ``import studio`` stays free.
"""
from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..errors import StudioError

if TYPE_CHECKING:
    from ..medium import Medium

_extra: dict[str, str] = {}
_instances: dict[str, "Medium"] = {}


def register(name: str, ref: str) -> None:
    """Register a medium as ``module:Class`` in this process only (tests; plugins use the entry point)."""
    _extra[name] = ref
    _instances.pop(name, None)


def _refs() -> dict[str, str]:
    refs: dict[str, str] = {}
    for ep in entry_points(group="studio.media"):
        refs.setdefault(ep.name, ep.value)
    refs.update(_extra)
    return refs


def _importable(ref: str) -> bool:
    """The medium's class can be imported (a medium's ``__init__`` is cheap: no torch there)."""
    module, _, attr = ref.partition(":")
    try:
        if importlib.util.find_spec(module) is None:
            return False
        return hasattr(importlib.import_module(module), attr)
    except Exception:  # a half-installed plugin must not break the others
        return False


def available() -> list[str]:
    """Names of the media whose code is installed, in their tab order (``Medium.order``, then name)."""
    refs = _refs()
    names = [name for name, ref in refs.items() if _importable(ref)]
    return sorted(names, key=lambda name: (_class(refs[name]).order, name))


def _class(ref: str) -> type["Medium"]:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def classes() -> dict[str, type["Medium"]]:
    """The installed media's classes by name (cheap: a medium's ``__init__`` imports no torch)."""
    refs = _refs()
    return {name: _class(refs[name]) for name in available()}


def reference(name: str) -> str:
    """``module:Class`` of a medium, so a tune process can load the same one."""
    refs = _refs()
    if name not in refs or not _importable(refs[name]):
        have = ", ".join(available()) or "none yet"
        raise StudioError(f"Unknown medium '{name}'; available media: {have}.")
    return refs[name]


def load_ref(ref: str) -> "Medium":
    return _class(ref)()


def get(name: str) -> "Medium":
    """The medium's singleton instance."""
    if name not in _instances:
        _instances[name] = load_ref(reference(name))
    return _instances[name]
