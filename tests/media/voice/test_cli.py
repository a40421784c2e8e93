"""Every CLI command on voice with a tiny voice: generate, curate, tune, compare, loop, export."""
from __future__ import annotations

import csv
import json

import pytest

from studio.cli import main
from studio.media.voice.phonemes import espeak_available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_voice_through_every_command(capsys, workspace, tiny_voice, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_LAUNCHER", "python")
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    fast = ["--param", "vocoder_iterations=4"]
    code, out, err = run(capsys, "generate", "voice", "--prompt", "The quick brown fox jumps over the lazy dog.",
                         "-n", "4", "--model", str(tiny_voice), *fast, "--json")
    assert code == 0, err
    takes = json.loads(out)["candidates"]
    assert len({t["path"] for t in takes}) == 4 and all(t["path"].endswith(".wav") for t in takes)

    code, out, err = run(capsys, "curate", "voice", "--scorer", "pace", "--scorer", "pitch_range",
                         "--best-of", "2", "--reject", takes[0]["id"], "--json")
    assert code == 0, err
    curated = json.loads(out)
    assert takes[0]["id"] in curated["rejected"] and curated["accepted"]

    code, out, err = run(capsys, "tune", "voice", "--steps", "3", "--json")
    assert code == 0 and json.loads(out)["version"] == "v1", err

    code, out, err = run(capsys, "compare", "voice", "--after", "v1", "--prompt", "Where is the station?", "-n", "2",
                         "--scorer", "pace", *fast, "--json")
    assert code == 0, err
    assert set(json.loads(out)["after"]) >= {"acceptance_rate", "mean_score", "diversity", "variety_vs_kept", "copies"}

    code, out, err = run(capsys, "export", "voice", "--version", "v1", "--format", "ljspeech",
                         "--out", str(tmp_path / "lj"), "--json")
    assert code == 0, err
    rows = list(csv.reader(open(tmp_path / "lj" / "metadata.csv", encoding="utf-8"), delimiter="|"))
    assert {r[0] for r in rows} == set(curated["accepted"])

    code, out, err = run(capsys, "loop", "voice", "--prompt", "Good night.", "--scorer", "pace", "-n", "2",
                         "--steps", "2", *fast, "--json")
    assert code == 0, err
    assert set(json.loads(out)) >= {"rounds", "before", "after"}

    code, out, err = run(capsys, "generate", "voice", "--prompt", "slwo: Hello.", "--json")
    assert code != 0 and "Unknown voice style 'slwo'" in err and "Traceback" not in err
