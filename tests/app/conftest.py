"""The app points Gradio's cache into each test's workspace; put the environment back afterwards.

The browser tests share ``flow.py`` (an artist's steps on a tab), importable from here.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture(autouse=True)
def _gradio_environment(monkeypatch):
    for key in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE"):
        monkeypatch.delenv(key, raising=False)  # restored to its old value (or absence) after the test
    yield
