"""The registry of media: built-ins by name, others through the entry-point group ``studio.media``.

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

BUILTIN = {
    "image": "studio.media.image:ImageMedium",
    "text": "studio.media.text:TextMedium",
    "music": "studio.media.music:MusicMedium",
}
_extra: dict[str, str] = {}
_instances: dict[str, "Medium"] = {}


def register(name: str, ref: str) -> None:
    """Register a medium as ``module:Class`` (tests and plugins)."""
    _extra[name] = ref
    _instances.pop(name, None)


def _refs() -> dict[str, str]:
    refs = dict(BUILTIN)
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
    """Names of the media whose code is installed, in a stable order."""
    return [name for name, ref in _refs().items() if _importable(ref)]


def reference(name: str) -> str:
    """``module:Class`` of a medium, so a tune process can load the same one."""
    refs = _refs()
    if name not in refs or not _importable(refs[name]):
        have = ", ".join(available()) or "none yet"
        raise StudioError(f"Unknown medium '{name}'; available media: {have}.")
    return refs[name]


def load_ref(ref: str) -> "Medium":
    module, _, attr = ref.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls()


def get(name: str) -> "Medium":
    """The medium's singleton instance."""
    if name not in _instances:
        _instances[name] = load_ref(reference(name))
    return _instances[name]
