"""Scorers that name code: only the CLI and presets may import them; a failing scorer is one sentence."""
from __future__ import annotations

import sys
import types

import pytest

from studio.engine import Studio
from studio.errors import StudioError


@pytest.fixture
def exiting_scorer(monkeypatch):
    module = types.ModuleType("exiting_scorer")

    def leave(candidates):
        raise SystemExit(0)

    def broken(candidates):
        return [1 / 0 for _ in candidates]

    module.leave, module.broken = leave, broken
    monkeypatch.setitem(sys.modules, "exiting_scorer", module)
    return module


@pytest.mark.parametrize("spec", ["sys:exit", "os:system", "exiting_scorer:leave=2"])
def test_the_app_studio_never_imports_code_named_by_a_request(workspace, fake, spec):
    studio = Studio(workspace)  # what the web app builds
    made = studio.generate("fake", "a colour", n=2)
    with pytest.raises(StudioError, match="names code to import"):
        studio.score("fake", made, [spec])


@pytest.mark.parametrize("spec, message", [("exiting_scorer:leave", "SystemExit"),
                                           ("exiting_scorer:broken", "ZeroDivisionError")])
def test_a_failing_scorer_is_one_sentence_not_an_exit(workspace, fake, exiting_scorer, spec, message):
    studio = Studio(workspace, allow_code_scorers=True)  # what the CLI builds
    made = studio.generate("fake", "a colour", n=2)
    with pytest.raises(StudioError, match=f"failed \\({message}"):
        studio.score("fake", made, [spec])
