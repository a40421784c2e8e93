"""The CLI contract: names, JSON shapes, one sentence on stderr for a user's mistake."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import build_parser, main


@pytest.fixture(autouse=True)
def plain_python_launcher(monkeypatch):
    monkeypatch.setenv("STUDIO_LAUNCHER", "python")  # accelerate's start-up is tested in tests/test_audit.py


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"serve", "generate", "curate", "tune", "compare", "loop", "export"} <= set(sub.choices)
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"studio {name} {action.option_strings} has no help"


def test_help_runs_without_loading_models():
    out = subprocess.run([sys.executable, "-m", "studio", "generate", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--prompt" in out.stdout and "--workspace" in out.stdout


def test_import_does_no_work():
    code = "import sys, studio, studio.cli, studio.engine, studio.media; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_curate_top_share(capsys, workspace, fake):
    run(capsys, "generate", "fake", "--prompt", "a colour", "-n", "8", "--json")
    code, out, err = run(capsys, "curate", "fake", "--scorer", "bright", "--top", "0.25", "--temperature", "0",
                         "--keep", "all", "--json")
    curated = json.loads(out)
    assert code == 0, err
    assert curated["top"] == 0.25 and 2 <= len(curated["accepted"]) < 8


def test_a_scorer_option_reaches_its_scorer(capsys, workspace, fake):
    code, out, err = run(capsys, "generate", "fake", "--prompt", "a colour", "-n", "16", "--json")
    made = {c["id"]: Path(c["path"]).read_text() for c in json.loads(out)["candidates"]}
    colour = sorted(made.values())[0]
    code, out, err = run(capsys, "curate", "fake", "--scorer", "colour", "--scorer-option", f"colour.colour={colour}",
                         "--threshold", "0.5", "--temperature", "0", "--keep", "all", "--json")
    assert code == 0, err
    assert sorted(json.loads(out)["accepted"]) == sorted(i for i, c in made.items() if c == colour)
    code, out, err = run(capsys, "settings", "image", "--json")  # where an artist finds a scorer's options
    scorers = {s["name"]: s for s in json.loads(out)["scorers"]}
    assert scorers["palette"]["options"] == ["colors"] and scorers["brightness"]["options"] == []
    code, out, err = run(capsys, "settings", "text")
    assert ("constraints [options: min_words, max_words, min_lines, max_lines, syllables, must, must_not, regex, "
            "repetition]") in out
    with pytest.raises(SystemExit):  # argparse's one line, exit 2
        main(["curate", "fake", "--scorer", "colour", "--scorer-option", "colour=blue"])
    assert "is not SCORER.KEY=VALUE" in capsys.readouterr().err


def test_flow_json_shapes(capsys, workspace, fake, tmp_path):
    code, out, err = run(capsys, "generate", "fake", "--prompt", "a colour", "-n", "12", "--json")
    assert code == 0, err
    cands = json.loads(out)["candidates"]
    assert len(cands) == 12 and set(cands[0]) >= {"id", "seed", "path", "scores", "decision"}

    code, out, err = run(capsys, "curate", "fake", "--scorer", "bright", "--threshold", "0.5",
                         "--temperature", "0", "--reject", cands[0]["id"], "--json")
    curated = json.loads(out)
    assert code == 0 and set(curated) >= {"accepted", "rejected", "acceptance_rate"}
    assert cands[0]["id"] in curated["rejected"]

    code, out, err = run(capsys, "tune", "fake", "--steps", "5", "--json")
    tuned = json.loads(out)
    assert code == 0 and tuned["version"] == "v1"

    code, out, err = run(capsys, "compare", "fake", "--after", "v1", "--prompt", "a colour", "-n", "4", "--json")
    compared = json.loads(out)
    assert set(compared["before"]) >= {"acceptance_rate", "mean_score", "diversity"}
    assert set(compared["after"]) >= {"acceptance_rate", "mean_score", "diversity"}

    code, out, err = run(capsys, "export", "fake", "--version", "v1", "--format", "jsonl",
                         "--out", str(tmp_path / "x"), "--json")
    assert code == 0 and json.loads(out)["files"]


def test_loop_json_shape(capsys, workspace, fake):
    code, out, err = run(capsys, "loop", "fake", "--prompt", "a colour", "--scorer", "bright", "--threshold", "0.7",
                         "--temperature", "0", "-n", "16", "--steps", "20", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert len(result["rounds"]) == 1 and set(result) >= {"rounds", "before", "after"}


def test_loop_says_why_a_round_s_tune_stopped(capsys, workspace, fake):
    code, out, err = run(capsys, "loop", "fake", "--prompt", "a colour", "--scorer", "bright", "--threshold", "0.7",
                         "--temperature", "0", "-n", "16", "--steps", "20", "--setting", "stop=true")
    assert code == 0, err
    assert out.splitlines()[0] == ("round 1: The tune stopped after step 5 of 20: it looked wrong; this version is "
                                   "its starting model, unchanged.")
    code, out, err = run(capsys, "loop", "fake", "--prompt", "a colour", "--scorer", "bright", "--threshold", "0.7",
                         "--temperature", "0", "-n", "16", "--steps", "20", "--json", "--setting", "stop=true")
    assert json.loads(out)["rounds"][0]["note"].startswith("The tune stopped after step 5 of 20")


@pytest.mark.parametrize("argv, sentence", [
    (["generate", "nope", "--prompt", "x"], "Unknown medium 'nope'; available media:"),
    (["generate", "fake", "--prompt", ""], "The prompt is empty"),
    (["generate", "fake", "--prompt", "x", "-n", "0"], "number of candidates must be between"),
    (["generate", "fake", "--prompt", "x", "-n", "99999999"], "number of candidates must be between"),
    (["generate", "fake", "--prompt", "x", "--version", "v3"], "Unknown fake version 'v3'"),
    (["generate", "fake", "--prompt", "x", "--model", "/no/such/model"], "does not exist"),
    (["curate", "fake", "--temperature", "nan"], "temperature must be 0 or more"),
    (["curate", "fake", "--temperature", "-1"], "temperature must be 0 or more"),
    (["curate", "fake", "--threshold", "1.5"], "threshold must be between 0 and 1"),
    (["curate", "fake", "--threshold", "0.5"], "no fake candidates yet"),
    (["curate", "fake", "--top", "2"], "--top must be a share of the batch"),
    (["curate", "fake", "--top", "0.25", "--best-of", "2"], "--top replaces --threshold and --best-of"),
    (["tune", "fake"], "kept fake set is empty"),
    (["tune", "fake", "--from", "v2"], "Unknown fake version 'v2'"),
    (["compare", "fake", "--after", "v1", "--prompt", "x"], "Unknown fake version 'v1'"),
    (["loop", "fake", "--prompt", "x", "--rounds", "0"], "--rounds must be between"),
    (["loop", "fake", "--prompt", "x", "--setting", "epoch=3"], "Unknown fake tune setting 'epoch'; known:"),
    (["tune", "fake", "--setting", "goldfish=4"], "Unknown fake tune setting 'goldfish'"),
    (["loop", "text", "--prompt", "x", "--setting", "goldfish=1"], "The goldfish setting must be 0 (off) or a whole number from 2 up"),
    (["tune", "text", "--setting", "anchor=2"], "setting 'anchor' must be a number from 0 up to (not including) 1"),
    (["export", "fake", "--version", "v1", "--format", "jsonl", "--out", "/tmp/x"], "Unknown fake version"),
    (["serve", "--host", "0.0.0.0"], "give --auth USER:PASSWORD"),
    (["curate", "fake", "--scorer", "bright", "--scorer-option", "colour.colour=blue"],
     "--scorer-option colour.colour is for the scorer 'colour', which is not among the --scorer scorers (bright)"),
    (["resume", "nojob"], "There is no tune job 'nojob'"),
])
def test_bad_input_is_one_sentence(capsys, workspace, fake, argv, sentence):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert sentence in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_tune_settings_and_generation_params_reach_the_tune_and_both_sides(capsys, workspace, fake):
    code, out, err = run(capsys, "loop", "fake", "--prompt", "a colour", "--scorer", "bright", "--temperature", "0",
                         "-n", "16", "--setting", "epochs=4", "--setting", "lr=0.05", "--param", "temperature=1.5",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    code, out, err = run(capsys, "versions", "fake", "--json")
    settings = json.loads(out)["versions"][-1]["settings"]
    assert settings["epochs"] == 4 and settings["lr"] == 0.05
    assert settings["steps"] == 10  # 4 passes over the kept few: the fewest steps a tune takes
    assert result["params"]["temperature"] == 1.5  # both sides of the comparison sampled with it


def test_loop_and_compare_keep_and_judge_by_the_top_share(capsys, workspace, fake):
    """--top in a loop keeps each round's own top share (not a threshold fixed from the base's first batch), and
    its comparison, like compare --top, judges both sides by the before side's top share."""
    from studio.engine import Studio, top_threshold

    code, out, err = run(capsys, "loop", "fake", "--prompt", "a colour", "--scorer", "bright", "--temperature", "0",
                         "--keep", "all", "-n", "16", "--rounds", "2", "--top", "0.25", "--setting", "epochs=4",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    studio = Studio(workspace)
    for r, batch in enumerate((range(0, 16), range(16, 32))):  # each round's batch, its own top quarter kept
        pool = [c for c in studio.store.candidates("fake", purpose="curate") if c.seed in batch]
        cut = top_threshold([c.scores["bright"] for c in pool], 0.25)
        assert result["rounds"][r]["accepted"] == sum(c.scores["bright"] >= cut for c in pool)
    before = studio.store.candidates("fake", ids=result["before"]["candidates"])
    assert result["threshold"] == top_threshold([c.scores["bright"] for c in before], 0.25)
    code, out, err = run(capsys, "compare", "fake", "--after", "v1", "--prompt", "a colour", "-n", "8", "--scorer",
                         "bright", "--top", "0.5", "--json")
    assert code == 0, err
    compared = json.loads(out)
    before = studio.store.candidates("fake", ids=compared["before"]["candidates"])
    assert compared["threshold"] == top_threshold([c.scores["bright"] for c in before], 0.5)
    assert compared["top"] == 0.5 and result["top"] == 0.25  # the JSON says which rule judged
    code, out, err = run(capsys, "compare", "fake", "--after", "v1", "--prompt", "a colour", "--top", "0.5",
                         "--threshold", "0.3")
    assert code == 2 and "--top replaces --threshold" in err


def test_accept_and_reject_take_several_ids_after_one_flag_and_may_repeat(workspace, fake, capsys):
    code, out, _ = run(capsys, "generate", "fake", "--prompt", "a colour", "-n", "5", "--json")
    ids = [c["id"] for c in json.loads(out)["candidates"]]
    code, out, err = run(capsys, "curate", "fake", "--accept", ids[0], ids[1], "--accept", ids[2],
                         "--reject", ids[3], ids[4], "--json")
    assert code == 0, err
    result = json.loads(out)
    assert sorted(result["accepted"]) == sorted(ids[:3]) and sorted(result["rejected"]) == sorted(ids[3:])


def test_series_scopes_the_kept_set_a_tune_learns_from(workspace, fake, capsys):
    code, out, _ = run(capsys, "generate", "fake", "--prompt", "red stars", "-n", "4", "--json")
    stars = [c["id"] for c in json.loads(out)["candidates"]]
    assert run(capsys, "curate", "fake", "--accept", *stars[:2], "--json")[0] == 0
    code, out, _ = run(capsys, "generate", "fake", "--prompt", "a lighthouse", "-n", "4", "--series", "sea", "--json")
    sea = [c["id"] for c in json.loads(out)["candidates"]]
    code, out, _ = run(capsys, "curate", "fake", "--accept", sea[0], "--json")  # sea stays current
    assert code == 0 and json.loads(out)["series"] == "sea" and json.loads(out)["curated_total"] == 1
    code, out, _ = run(capsys, "tune", "fake", "--steps", "2", "--json")
    result = json.loads(out)
    assert code == 0 and result["series"] == "sea" and result["curated"] == 1
    code, out, _ = run(capsys, "tune", "fake", "--steps", "2", "--series", "main", "--json")
    assert code == 0 and json.loads(out)["curated"] == 2
    code, _, err = run(capsys, "curate", "fake", "--series", "a/b")
    assert code != 0 and err.startswith("error: A series name is 1 to 64 letters") and len(err.splitlines()) == 1
