"""Scorers that name code: only the CLI and presets may import them; a failing scorer is one sentence."""
from __future__ import annotations

import pytest

from studio.engine import Studio
from studio.errors import StudioError


@pytest.mark.parametrize("spec", ["sys:exit", "os:system", "bad_scorers:leave=2"])
def test_the_app_studio_never_imports_code_named_by_a_request(workspace, fake, spec):
    studio = Studio(workspace)  # what the web app builds
    made = studio.generate("fake", "a colour", n=2)
    with pytest.raises(StudioError, match="names code to import"):
        studio.score("fake", made, [spec])


@pytest.mark.parametrize("spec, message", [("bad_scorers:leave", "SystemExit"),
                                           ("bad_scorers:broken", "ZeroDivisionError")])
def test_a_failing_scorer_is_one_sentence_not_an_exit(workspace, fake, spec, message):
    studio = Studio(workspace, allow_code_scorers=True)  # what the CLI builds
    made = studio.generate("fake", "a colour", n=2)
    with pytest.raises(StudioError, match=f"failed \\({message}"):
        studio.score("fake", made, [spec])
