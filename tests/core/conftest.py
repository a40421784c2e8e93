"""Core tests start tune workers with plain Python: accelerate's start-up is tested once, in
tests/test_audit.py (kill the launcher, resume), and by the two-process training test."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def plain_python_launcher(monkeypatch):
    monkeypatch.setenv("STUDIO_LAUNCHER", "python")
