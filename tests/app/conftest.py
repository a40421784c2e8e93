"""The app points Gradio's cache into each test's workspace; put the environment back afterwards."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _gradio_environment(monkeypatch):
    for key in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE"):
        monkeypatch.delenv(key, raising=False)  # restored to its old value (or absence) after the test
    yield
