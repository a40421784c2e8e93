"""Where the studio keeps things outside a workspace: the model cache.

Built-in models that are too large for the package (or that the artist retrains) and models
converted once from another format live in the cache; downloaded hub models stay in
huggingface_hub's own cache.  Nothing is ever written into the installed package.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$STUDIO_CACHE``, else ``$XDG_CACHE_HOME/studio``, else ``~/.cache/studio``."""
    if os.environ.get("STUDIO_CACHE"):
        return Path(os.environ["STUDIO_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "studio"


def model_cache(name: str) -> Path:
    """The cache folder of one model the studio made or converted (``cache_dir()/models/NAME``)."""
    return cache_dir() / "models" / name
