"""Shared fixtures: every test gets its own workspace; the fake medium is registered."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
# tune processes import the fake medium too
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# the tests write text with the 1M-parameter grammar model (fast); SmolLM2, the users' default, has slow tests
os.environ.setdefault("STUDIO_TEXT_MODEL", "built-in:grammar")


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    ws = tmp_path / "workspace"
    monkeypatch.setenv("STUDIO_HOME", str(ws))
    return ws


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """The fake medium registered as ``fake``, with its model folder."""
    from fake_medium import make_model

    from studio import media

    model = make_model(tmp_path / "fake-model")
    monkeypatch.setenv("FAKE_MODEL", str(model))
    media.register("fake", "fake_medium:FakeMedium")
    yield model
    media._extra.pop("fake", None)
    media._instances.pop("fake", None)
