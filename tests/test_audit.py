"""The audit: bad inputs to every command, kills, races and a full disk.

Every bad input must end with a non-zero exit, exactly one sentence on stderr (one line,
``error: ...``, no traceback) and a workspace whose database passes ``PRAGMA
integrity_check``.  Commands run in-process through ``studio.cli.main`` on the fake medium;
subprocesses only where a real process is the point (a closed pipe, a kill, a race).
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_medium import curate_some
from studio import media, runner
from studio.cli import main

CLI = ("import sys; from studio import media; media.register('fake', 'fake_medium:FakeMedium'); "
       "media.register('fake2', 'fake_medium:FakeMedium'); from studio.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A workspace with two batches (fake, fake2), a curated set, v1 and a finished job; and odd files."""
    from fake_medium import make_model

    from studio.engine import Studio

    root = tmp_path_factory.mktemp("audit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAKE_MODEL", str(make_model(root / "fake-model")))
        mp.setenv("STUDIO_LAUNCHER", "python")
        media.register("fake", "fake_medium:FakeMedium")
        media.register("fake2", "fake_medium:FakeMedium")
        studio = Studio(root / "ws")
        studio.generate("fake2", "a colour", n=4)
        other_batch = studio.store.latest_batch("fake2")
        media._extra.pop("fake2", None)  # registered for this batch only: later modules see the installed media
        media._instances.pop("fake2", None)
        studio.generate("fake", "a colour", n=12)
        studio.curate("fake", best_of=4)
        studio.tune("fake", steps=5)
        job = studio.store.jobs("fake")[0]["id"]
        while runner.owner(studio.store.job_dir(job)) is not None:  # the worker has exited
            time.sleep(0.05)
        studio.store.close()  # the last connection: the WAL is folded into studio.db
        truncated = make_model(root / "truncated-model")
        weights = truncated / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:20])
        (root / "a-file").write_text("just a file")
        (root / "empty-file").write_text("")
        (root / "loop").symlink_to(root / "loop")  # a symlink that points at itself
        plugin = root / "plugins" / "broken_scorers-0.1.dist-info"  # installed scorer plugins that cannot load
        plugin.mkdir(parents=True)
        (plugin / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-scorers\nVersion: 0.1\n")
        (plugin / "entry_points.txt").write_text("[studio.scorers]\nbroken_plugin = no_such_plugin_module:score\n"
                                                 "missing_plugin = bad_scorers:gone\n")
        from studio.media.text.builtin import grammar_folder

        vocab = shutil.copytree(grammar_folder(), root / "vocab-model")  # the tiny built-in: a folder to break
        config = (vocab / "config.json").read_text()
        (vocab / "config.json").write_text(config.replace('"vocab_size": 1024', '"vocab_size": 2048'))
        emptied = root / "emptied"
        shutil.copytree(root / "ws", emptied)
        for name in ("studio.db", "studio.db-wal", "studio.db-shm"):
            (emptied / name).unlink(missing_ok=True)
        (emptied / "studio.db").write_bytes(b"")
        corrupt = root / "corrupt"
        shutil.copytree(root / "ws", corrupt)
        (corrupt / "studio.db").write_bytes(b"this is not a database " * 200)
        for name in ("studio.db-wal", "studio.db-shm"):
            (corrupt / name).unlink(missing_ok=True)
        yield {"root": root, "other_batch": other_batch, "truncated": truncated,
               "job": job}
        media._extra.pop("fake2", None)
        media._instances.pop("fake2", None)


@pytest.fixture
def audit_ws(prepared, tmp_path, monkeypatch):
    """A fresh copy of the prepared workspace for each case, with two broken scorer plugins installed."""
    monkeypatch.syspath_prepend(str(prepared["root"] / "plugins"))
    ws = tmp_path / "ws"
    shutil.copytree(prepared["root"] / "ws", ws)
    monkeypatch.setenv("STUDIO_HOME", str(ws))
    monkeypatch.setenv("FAKE_MODEL", str(prepared["root"] / "fake-model"))
    media.register("fake", "fake_medium:FakeMedium")
    media.register("fake2", "fake_medium:FakeMedium")
    yield ws
    media._extra.pop("fake", None)
    media._instances.pop("fake", None)


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


BUSY = _busy_port()  # held for the module: a port some other program uses
BIG = str(2**63)
HUGE = str(2**70)

# (argv, words the one sentence must hold).  {root}: the prepared folder, {tmp}: this case's folder,
# {other_batch}: a fake2 batch, {truncated}: a model with a cut-off .safetensors, {job}: a finished job.
CASES = [
    # generate
    (["generate", "nope", "--prompt", "x"], "Unknown medium 'nope'"),
    (["generate", "fake", "--prompt", ""], "prompt is empty"),
    (["generate", "fake", "--prompt", "   "], "prompt is empty"),
    (["generate", "fake", "--prompt", "x" * 3000], "keep it under"),
    (["generate", "fake", "--prompt", "caf\udce9 au lait"], "not valid text"),
    (["generate", "fake", "--prompt", "x", "-n", "0"], "number of candidates must be between"),
    (["generate", "fake", "--prompt", "x", "-n", "-3"], "number of candidates must be between"),
    (["generate", "fake", "--prompt", "x", "-n", "99999999"], "number of candidates must be between"),
    (["generate", "fake", "--prompt", "x", "-n", "abc"], "invalid int value"),
    (["generate", "fake", "--prompt", "x", "--seed", "-1"], "seed must be between"),
    (["generate", "fake", "--prompt", "x", "--seed", BIG], "seed must be between"),
    (["generate", "fake", "--prompt", "x", "--seed", HUGE], "seed must be between"),
    (["generate", "fake", "--prompt", "x", "--seed", str(2**32 - 1), "-n", "2"], "go past"),
    (["generate", "fake", "--prompt", "x", "--version", "v9"], "Unknown fake version 'v9'"),
    (["generate", "fake", "--prompt", "x", "--version", ""], "Unknown fake version"),
    (["generate", "fake", "--prompt", "x", "--model", "/no/such/model"], "does not exist"),
    (["generate", "fake", "--prompt", "x", "--model", "{root}/a-file"], "is a file"),
    (["generate", "fake", "--prompt", "x", "--model", "{truncated}"], "damaged or truncated"),
    (["generate", "fake", "--prompt", "x", "--param", "colour=1"], "Unknown fake setting 'colour'"),
    (["generate", "fake", "--prompt", "x", "--param", "temperature=0"], "temperature must be above 0"),
    (["generate", "fake", "--prompt", "x", "--param", "=3"], "is not KEY=VALUE"),
    (["generate", "fake", "--prompt", "x", "--version", "v1", "--strength", "9"], "strength"),
    (["generate", "fake", "--prompt", "x", "--version", "v1", "--strength", "nan"], "strength"),
    (["generate", "fake", "--prompt", "x", "--workspace", ""], "workspace folder name is empty"),
    (["generate", "fake", "--prompt", "x", "--workspace", "{root}/a-file"], "is a file, not a folder"),
    (["generate", "fake", "--prompt", "x", "--workspace", "{root}/emptied"], "empty or missing"),
    (["generate", "fake", "--prompt", "x", "--workspace", "{root}/corrupt"], "unreadable"),
    (["generate", "fake", "--prompt", "x", "--workspace", "{root}/loop"], "points back to itself"),
    (["jobs", "--workspace", "{root}/loop/sub"], "points back to itself"),
    (["generate", "fake"], "required: --prompt"),
    (["generate", "text", "--prompt", "x", "--model", "{root}/vocab-model"], "weights do not fit its configuration"),
    (["generate", "image", "--prompt", "x", "--model", "someone/no-such-model"],
     "is not on this machine; get it first with `studio models pull someone/no-such-model`"),
    (["generate", "image", "--prompt", "x", "--model", "not a model"], "neither a folder on this machine nor a hub id"),
    (["generate", "text", "--prompt", "x", "--param", "min_new_tokens=500"], "min_new_tokens (500) is above"),
    (["generate", "text", "--prompt", "x", "--param", "max_new_tokens=100000000"], "beyond this model's context"),
    (["export", "text", "--version", "base", "--format", "jsonl", "--out", "{tmp}/x"], "no kept text"),
    (["generate", "fake", "--prompt", "x", "--param", "temperature"], "is not KEY=VALUE"),
    # curate
    (["curate", "fake", "--batch", "9999"], "no fake batch 9999"),
    (["curate", "fake", "--batch", "-1"], "no fake batch -1"),
    (["curate", "fake", "--batch", HUGE], "no fake batch"),
    (["curate", "fake", "--batch", "{other_batch}"], "no fake batch"),
    (["curate", "fake", "--batch", "x"], "invalid int value"),
    (["curate", "fake", "--threshold", "1.5"], "threshold must be between 0 and 1"),
    (["curate", "fake", "--threshold", "nan"], "threshold must be between 0 and 1"),
    (["curate", "fake", "--temperature", "-1"], "temperature must be 0 or more"),
    (["curate", "fake", "--temperature", "warm"], "is not a number"),
    (["curate", "fake", "--best-of", "0"], "--best-of must be 1 or more"),
    (["curate", "fake", "--accept", "nosuchid"], "no fake candidate 'nosuchid'"),
    (["curate", "fake", "--scorer", "nosuch"], "Unknown fake scorer 'nosuch'"),
    (["curate", "fake", "--scorer", ":"], "Cannot load the scorer"),
    (["curate", "fake", "--scorer", ".relative:fn"], "Cannot load the scorer"),
    (["curate", "fake", "--scorer", "os:system"], "The scorer 'os:system' failed"),
    (["curate", "fake", "--scorer", "builtins:len"], "The scorer 'builtins:len' failed"),
    (["curate", "fake", "--scorer", "sys:exit"], "The scorer 'sys:exit' failed"),
    (["curate", "fake", "--scorer", "bad_scorers:raises_generator_exit"], "failed (GeneratorExit)"),
    (["curate", "fake", "--scorer", "bad_scorers:no_such_function"], "Cannot load the scorer"),
    (["curate", "fake", "--scorer", "bad_scorers:not_a_function"], "is not a function"),
    (["curate", "fake", "--scorer", "no_such_module_here:score"], "No module named"),
    (["curate", "fake", "--scorer", "broken_plugin"], "Cannot load the scorer 'broken_plugin'"),
    (["curate", "fake", "--scorer", "missing_plugin"], "has no attribute"),
    (["curate", "fake", "--scorer", "bright=-1"], "finite number >= 0"),
    (["curate", "fake", "--scorer", "bright=abc"], "is not a number"),
    (["curate", "fake", "--scorer", "bright=0"], "add up to zero"),
    (["curate", "fake", "--workspace", "{tmp}/new"], "no fake candidates yet"),
    # tune
    (["tune", "fake", "--steps", "0"], "setting 'steps' must be a whole number from 1"),
    (["tune", "fake", "--steps", "-5"], "setting 'steps' must be a whole number from 1"),
    (["tune", "fake", "--steps", HUGE], "setting 'steps' must be a whole number from 1"),
    (["tune", "fake", "--rank", "0"], "setting 'rank' must be a whole number from 1"),
    (["tune", "fake", "--lr", "0"], "setting 'lr' must be a number above 0"),
    (["tune", "fake", "--lr", "nan"], "setting 'lr' must be a number above 0"),
    (["tune", "fake", "--lr", "5"], "setting 'lr' must be a number above 0"),
    (["tune", "fake", "--from", "v9"], "Unknown fake version 'v9'"),
    (["tune", "fake", "--setting", "batch_size=0"], "setting 'batch_size' must be a whole number from 1"),
    (["tune", "fake", "--setting", "checkpoint_every=0"], "setting 'checkpoint_every' must be a whole number from 1"),
    (["tune", "fake", "--setting", "warmup=-5"], "setting 'warmup' must be a number from 0 to 1"),
    (["tune", "fake", "--setting", "warmup=NaN"], "setting 'warmup' must be a number"),
    (["tune", "fake", "--setting", "accumulate=0"], "setting 'accumulate' must be a whole number"),
    (["tune", "fake", "--setting", "max_grad_norm=0"], "setting 'max_grad_norm' must be a number above 0"),
    (["tune", "fake", "--setting", "seed=-1"], "setting 'seed' must be a whole number"),
    (["tune", "fake", "--setting", "epochs=0"], "setting 'epochs' must be a number above 0"),
    (["tune", "fake", "--setting", "alpha=-1"], "setting 'alpha' must be a number"),
    (["tune", "fake", "--setting", "batch_size=2.5"], "setting 'batch_size' must be a whole number"),
    (["tune", "fake", "--setting", "steps=\"many\""], "setting 'steps' must be a whole number"),
    (["loop", "fake", "--prompt", "x", "--setting", "batch_size=0"], "setting 'batch_size' must be a whole number"),
    (["tune", "fake", "--workspace", "{tmp}/new"], "kept fake set is empty"),
    (["tune", "fake", "--steps", "abc"], "invalid int value"),
    # compare
    (["compare", "fake", "--after", "base", "--prompt", "x"], "must be a tuned version"),
    (["compare", "fake", "--after", "v1", "--before", "v1", "--prompt", "x"], "both 'v1'"),
    (["compare", "fake", "--after", "v9", "--prompt", "x"], "Unknown fake version 'v9'"),
    (["compare", "fake", "--after", "v1", "--prompt", "x", "--seed", "-5"], "seed must be between"),
    (["compare", "fake", "--after", "v1", "--prompt", "x", "--seed", HUGE], "seed must be between"),
    (["compare", "fake", "--after", "v1", "--prompt", "x", "-n", "1"], "-n must be between 2"),
    (["compare", "fake", "--after", "v1", "--prompt", ""], "prompt is empty"),
    (["compare", "fake", "--after", "v1", "--prompt", "x", "--threshold", "2"], "threshold must be between"),
    (["compare", "fake", "--prompt", "x"], "required: --after"),
    # loop
    (["loop", "fake", "--prompt", "x", "--rounds", "0"], "--rounds must be between"),
    (["loop", "fake", "--prompt", "x", "-n", "1"], "-n must be between 2"),
    (["loop", "fake", "--prompt", ""], "prompt is empty"),
    (["loop", "fake", "--prompt", "x", "--temperature", "-1"], "temperature must be 0 or more"),
    (["loop", "fake", "--prompt", "x", "--seed", "-1"], "seed must be"),
    # export
    (["export", "fake", "--version", "v9", "--format", "jsonl", "--out", "{tmp}/x"], "Unknown fake version"),
    (["export", "fake", "--version", "v1", "--format", "zip", "--out", "{tmp}/x"], "Unknown fake export format"),
    (["export", "fake", "--version", "v1", "--format", "jsonl", "--out", "{root}/a-file"], "is a file"),
    (["export", "fake", "--version", "v1", "--format", "jsonl", "--out", "{root}/a-file/sub"],
     "Could not create the export folder"),
    (["export", "fake", "--version", "v1", "--format", "jsonl", "--out", "/proc/studio-export"],
     "Could not create the export folder"),
    (["export", "fake", "--version", "v1", "--format", "jsonl", "--out", ""], "export folder name is empty"),
    # versions, jobs, resume, cancel
    (["versions", "nope"], "Unknown medium 'nope'"),
    (["jobs", "--workspace", "{root}/a-file"], "is a file, not a folder"),
    (["resume", "nojob"], "There is no tune job 'nojob'"),
    (["resume", "{job}"], "has already finished"),
    (["cancel", "nojob"], "There is no tune job 'nojob'"),
    # serve (none of these starts a server)
    (["serve", "--host", "0.0.0.0"], "exposes the studio to the network"),
    (["serve", "--port", "-1"], "--port must be between 1 and 65535"),
    (["serve", "--port", "99999"], "--port must be between 1 and 65535"),
    (["serve", "--port", "{busy_port}"], "the port is in use"),  # ids stay the same in every process
    (["serve", "--host", "203.0.113.7", "--auth", "ann:secret"], "an address of this machine"),
    (["serve", "--host", "no-such-host.invalid", "--auth", "ann:secret"], "the address is unknown"),
    (["serve", "--auth", "nocolon"], "USER:PASSWORD"),
    (["serve", "--auth", "ann:x", "--auth-file", "{root}/a-file"], "not both"),
    (["serve", "--auth-file", "/no/such/file"], "Cannot read the login file"),
    (["serve", "--auth-file", "{root}/empty-file"], "login file"),
    (["serve", "--auth-file", "{root}", "--host", "0.0.0.0"], "Cannot read the login file"),
    # train-defaults (refused before any training)
    (["train-defaults", "nope"], "Unknown medium 'nope'"),
    (["train-defaults", "fake"], "no built-in model to train"),
    (["train-defaults", "text", "--device", "nosuch"], "Unknown device 'nosuch'"),
    (["train-defaults", "text", "--device", "cuda:7"], "no cuda:7 device"),
    (["train-defaults", "text", "--seed", "-1", "--device", "cpu"], "seed must be between"),
    (["train-defaults", "text", "--out", "{root}/a-file", "--device", "cpu"], "is a file"),
    # the command itself
    (["nosuch"], "invalid choice"),
    ([], "required: COMMAND"),
]


def test_the_table_is_big_enough():
    assert len(CASES) >= 60
    commands = {argv[0] for argv, _ in CASES if argv}
    assert commands >= {"serve", "generate", "curate", "tune", "compare", "loop", "export", "versions", "jobs",
                        "resume", "cancel", "train-defaults"}


def assert_one_sentence(code: int, err: str) -> str:
    assert code != 0
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    sentence = err[len("error: "):].strip()
    assert sentence.endswith("."), sentence
    return sentence


def integrity(ws: Path) -> str:
    db = sqlite3.connect(f"file:{ws / 'studio.db'}?mode=ro", uri=True)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(a)[:60] or "(none)" for a, _ in CASES])
def test_bad_input_is_one_sentence_and_the_workspace_stays_whole(argv, words, prepared, audit_ws, tmp_path, capsys):
    fill = {"{root}": str(prepared["root"]), "{tmp}": str(tmp_path), "{other_batch}": str(prepared["other_batch"]),
            "{truncated}": str(prepared["truncated"]), "{job}": prepared["job"],
            "{busy_port}": str(BUSY.getsockname()[1])}
    args = []
    for arg in argv:
        for key, value in fill.items():
            arg = arg.replace(key, value)
        args.append(arg)
    before = _files(audit_ws)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    sentence = assert_one_sentence(code, err)
    assert words in sentence, sentence
    assert out == ""
    assert integrity(audit_ws) == "ok"
    assert _files(audit_ws) == before  # a refused command adds and removes nothing
    assert not (tmp_path / "x").exists()


def _files(ws: Path) -> list[Path]:
    return sorted(p.relative_to(ws) for p in ws.rglob("*")
                  if p.is_file() and not p.name.startswith(("studio.db", ".writers.lock")))


def test_emptied_and_corrupt_workspaces_are_left_untouched(prepared, audit_ws, capsys):
    emptied = prepared["root"] / "emptied"
    for argv in (["jobs", "--workspace", str(emptied)], ["tune", "fake", "--workspace", str(emptied)]):
        code = main(argv)
        assert "empty or missing" in assert_one_sentence(code, capsys.readouterr().err)
    assert (emptied / "studio.db").read_bytes() == b""
    assert not (emptied / "studio.db-wal").exists()


def test_a_truncated_adapter_is_one_sentence(audit_ws, capsys):
    adapter = audit_ws / "versions" / "fake" / "v1" / "adapter" / "adapter.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:16])
    code = main(["generate", "fake", "--prompt", "a colour", "--version", "v1", "-n", "2"])
    assert "damaged or truncated" in assert_one_sentence(code, capsys.readouterr().err)
    assert integrity(audit_ws) == "ok"


def test_a_failed_export_leaves_no_empty_folder(prepared, audit_ws, tmp_path, capsys, monkeypatch):
    from fake_medium import FakeMedium

    def broken(self, handle, version, fmt, out_dir, curated):
        raise PermissionError(13, "Permission denied", str(out_dir / "curated.jsonl"))

    monkeypatch.setattr(FakeMedium, "export", broken)
    target = tmp_path / "deep" / "er" / "out"
    code = main(["export", "fake", "--version", "v1", "--format", "jsonl", "--out", str(target)])
    assert "Permission denied" in assert_one_sentence(code, capsys.readouterr().err)
    assert not (tmp_path / "deep").exists()


def test_an_empty_or_cached_batch_is_never_curated_by_mistake(prepared, audit_ws, capsys, monkeypatch):
    from fake_medium import FakeMedium

    def crash(self, handle, prompt, seeds, params, adapter=None):
        raise RuntimeError("the model fell over")

    main(["generate", "fake", "--prompt", "a colour", "-n", "12"])  # fully cached: the same 12 candidates
    capsys.readouterr()
    code = main(["curate", "fake", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and len(__import__("json").loads(out)["accepted"]) > 0
    monkeypatch.setattr(FakeMedium, "generate", crash)
    with pytest.raises(RuntimeError):  # a bug stays a traceback, but writes no batch
        main(["generate", "fake", "--prompt", "another", "-n", "3"])
    code = main(["curate", "fake", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and len(__import__("json").loads(out)["accepted"]) > 0  # still the last real batch


def test_a_closed_pipe_is_quiet(prepared, audit_ws):
    proc = subprocess.Popen([sys.executable, "-c", CLI, "versions", "fake", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "STUDIO_HOME": str(audit_ws)})
    proc.stdout.close()  # `studio versions | true`: the reader is gone before anything is written
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_serve_takes_the_login_from_the_environment(audit_ws, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_AUTH", "ann:from-env")  # so the non-local host passes; the busy port stops it
    code = main(["serve", "--host", "0.0.0.0", "--port", str(BUSY.getsockname()[1])])
    assert "the port is in use" in assert_one_sentence(code, capsys.readouterr().err)
    monkeypatch.setenv("STUDIO_AUTH", "no-colon")
    code = main(["serve", "--host", "0.0.0.0"])
    assert "USER:PASSWORD" in assert_one_sentence(code, capsys.readouterr().err)


def test_login_is_throttled_and_read_from_a_file_or_the_environment(tmp_path):
    from studio.app import security

    now = [0.0]
    login = security.LoginThrottle("ann", "secret", clock=lambda: now[0])
    tries = 0
    while now[0] < 1.0:  # an attacker hammering for one second
        login("ann", f"guess{tries}")
        tries += 1
        now[0] += 0.01
    assert tries == 100 and login.failures <= 2  # the rest were refused unchecked
    now[0] += security.MAX_DELAY
    assert not login("ann", "wrong")
    assert not login("ann", "secret")  # even the right password waits out the delay
    now[0] += security.MAX_DELAY
    assert login("ann", "secret") and login.failures == 0
    secret = tmp_path / "login"
    secret.write_text("ann:from-file\n")
    assert security.read_auth(auth_file=secret, environ={}) == "ann:from-file"
    assert security.read_auth(environ={security.AUTH_ENV: "ann:from-env"}) == "ann:from-env"
    assert security.read_auth("ann:flag", environ={security.AUTH_ENV: "ann:from-env"}) == "ann:flag"
    assert security.read_auth(environ={}) is None


FIRST_USE = r"""
import sys
from studio import media
media.register("fake", "fake_medium:FakeMedium")
from studio.engine import Studio
studio = Studio(sys.argv[1])
for i in range(5):
    studio.generate("fake", f"process {sys.argv[2]} batch {i}", n=3)
"""


@pytest.mark.slow
def test_race_first_use_of_a_new_workspace_by_four_processes(prepared, tmp_path):
    from studio.store import MIGRATIONS, Store

    ws = tmp_path / "new"
    env = {**os.environ, "FAKE_MODEL": str(prepared["root"] / "fake-model")}
    procs = [subprocess.Popen([sys.executable, "-c", FIRST_USE, str(ws), str(n)], stderr=subprocess.PIPE, text=True,
                              env=env) for n in range(4)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    store = Store(ws)
    assert store.integrity_check() == "ok" and store.schema_version() == len(MIGRATIONS)
    assert len(store.candidates("fake")) == 60


def test_race_two_tunes_at_once_get_distinct_versions_or_one_clear_refusal(workspace, fake):
    import json

    from studio.engine import Studio

    studio = Studio(workspace)
    curate_some(studio)
    procs = [subprocess.Popen([sys.executable, "-c", CLI, "tune", "fake", "--steps", "5", "--rank", str(rank),
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (4, 16)]
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    made = [json.loads(out)["version"] for code, out, _ in outcomes if code == 0]
    for code, out, err in outcomes:
        if code != 0:  # refused: one sentence, nothing half-made
            assert code == 2 and "already running" in err and err.count("\n") == 1, err
    assert made and len(set(made)) == len(made)
    store = studio.store
    assert store.integrity_check() == "ok"
    for version in store.versions("fake"):  # each folder holds its own job's weights
        job = next(j for j in store.jobs("fake") if j["version"] == version.name)
        assert job["status"] == "done" and job["spec"]["settings"]["rank"] == version.settings["rank"]
        marker = store.version_dir("fake", version.name) / ".job"
        assert marker.read_text() == job["id"]


def _workers(job_dir):
    """PIDs of live tune workers (not their launchers) for this job."""
    import os

    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in args]
        if str(job_dir) in text and "studio.tune_worker" in text and "accelerate.commands.launch" not in text:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                found.append(int(pid))
    return found


def _parent(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow
def test_kill_accelerate_launcher_and_resume_keeps_one_worker(workspace, fake, monkeypatch):
    """Kill the launcher: the worker owns the job and resume refuses; kill the recorded PID and resume
    twice at once: one new worker, the right step count."""
    import threading

    from studio.engine import Studio
    from studio.errors import StudioError
    from studio.training import read_progress

    monkeypatch.delenv("STUDIO_LAUNCHER", raising=False)  # the default: accelerate launch
    studio = Studio(workspace)
    curate_some(studio)
    job = studio.start_tune("fake", steps=40, settings={"slow": 0.1, "checkpoint_every": 5})
    job_dir = studio.store.job_dir(job)
    deadline = time.time() + 120
    while time.time() < deadline and runner.status(studio.store, job)["step"] < 6:
        time.sleep(0.2)
    worker = studio.store.job(job)["pid"]
    assert _workers(job_dir) == [worker] and runner.owner(job_dir) == worker
    launcher = _parent(worker)
    os.kill(launcher, signal.SIGKILL)  # the launcher dies; its worker trains on and still owns the job
    time.sleep(0.5)
    assert runner.status(studio.store, job)["status"] == "running"
    with pytest.raises(StudioError, match="still running"):
        runner.resume(studio.store, job)

    while time.time() < deadline and runner.status(studio.store, job)["step"] < 12:
        time.sleep(0.2)
    os.kill(studio.store.job(job)["pid"], signal.SIGKILL)  # the recorded PID: the worker itself
    while runner.owner(job_dir) is not None:
        time.sleep(0.05)
    assert runner.status(studio.store, job)["status"] == "interrupted"
    answers = []

    def resume():
        try:
            answers.append(runner.resume(studio.store, job))
        except StudioError as exc:  # the other resume won the race
            answers.append(str(exc))

    racers = [threading.Thread(target=resume) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert job in answers
    owners = set()
    while runner.status(studio.store, job)["status"] == "running":
        owners.add(runner.owner(job_dir))
        time.sleep(0.1)
    info = studio.wait_tune(job)
    assert info["status"] == "done" and info["step"] == 40 and len(owners - {None}) == 1
    rows = read_progress(job_dir)
    assert len([r for r in rows if r.get("event") == "started"]) == 2
    last_resume = max(i for i, r in enumerate(rows) if r.get("event") == "resumed")
    after = [r["step"] for r in rows[last_resume:] if r.get("event") == "step"]
    assert after == list(range(rows[last_resume]["step"] + 1, 41))
    round_seconds = studio.store.rounds("fake")[0]["metrics"]["seconds"]
    trained = len([r for r in rows if r.get("event") == "step"])  # steps run in all segments, replays included
    assert round_seconds >= 0.1 * trained  # each step sleeps 0.1 s: every segment counted, not only the last
    assert studio.store.version("fake", "v1") is not None


KILLED_GENERATE = 4  # kills of a CLI generate at staggered moments


def test_kills_during_generate_leave_whole_batches_and_leftovers_are_cleaned(prepared, audit_ws):
    from studio.engine import Studio

    rng = random.Random(7)
    env = {**os.environ, "STUDIO_HOME": str(audit_ws), "FAKE_MODEL": str(prepared["root"] / "fake-model")}
    for k in range(KILLED_GENERATE):
        proc = subprocess.Popen([sys.executable, "-c", CLI, "generate", "fake", "--prompt", f"kill {k}", "-n", "500",
                                 "--seed", str(10_000 * (k + 1))], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(1.0, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert integrity(audit_ws) == "ok"
    studio = Studio(audit_ws)
    for c in studio.store.candidates("fake"):
        assert all(Path(p).exists() for p in c.files.values()), c.id
    for batch in range(1, (studio.store.latest_batch("fake") or 0) + 1):
        found = studio.store.batch(batch)
        if found and found["medium"] == "fake":
            assert studio.store.candidates("fake", batch=batch)  # never an empty batch
    studio.generate("fake", "after the kills", n=2)  # the first generate cleans what the kills left
    known = {c.id for c in studio.store.candidates("fake")}
    leftovers = [p for p in studio.store.media_dir("fake").iterdir() if p.name.split(".", 1)[0] not in known]
    assert leftovers == []


@contextlib.contextmanager
def tmpfs(mount: Path, options: str):
    """A tmpfs mounted at ``mount`` with ``options`` for the block (the test skips where none can be mounted)."""
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_export_to_a_read_only_disk_is_one_sentence(audit_ws, tmp_path, capsys):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as mount:
        code = main(["export", "fake", "--version", "v1", "--format", "jsonl", "--out", str(mount / "out")])
        assert "Read-only file system" in assert_one_sentence(code, capsys.readouterr().err)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_one_sentence_and_loses_nothing(prepared, tmp_path, capsys, monkeypatch):
    with tmpfs(tmp_path / "small", "size=4m") as mount:
        try:
            ws = mount / "ws"
            monkeypatch.setenv("STUDIO_HOME", str(ws))
            monkeypatch.setenv("FAKE_MODEL", str(prepared["root"] / "fake-model"))
            media.register("fake", "fake_medium:FakeMedium")
            assert main(["generate", "fake", "--prompt", "first", "-n", "2"]) == 0
            capsys.readouterr()
            filler = mount / "filler"
            outcomes, sentences = set(), set()
            # fill the disk to different depths: a batch's media files, or the database, hit the wall
            # (the last ones leave room for 200 media files but not for their long-prompted rows)
            for leave, n in ((0, 1), (4096, 1), (16384, 1), (65536, 200), (200 * 4096 + 8192, 200),
                             (200 * 4096 + 65536, 200), (200 * 4096 + 131072, 200)):
                free = shutil.disk_usage(mount).free
                with open(filler, "ab") as fh:
                    fh.write(b"\0" * max(0, free - leave))
                code = main(["generate", "fake", "--prompt", f"full {leave} " + "y" * 1900, "-n", str(n),
                             "--seed", str(leave)])
                _, err = capsys.readouterr()
                if code != 0:
                    assert "disk is full" in assert_one_sentence(code, err)
                outcomes.add(code)
                sentences.add(err)
                assert integrity(ws) == "ok"
                from studio.store import Store

                store = Store(ws)
                known = {c.id for c in store.candidates("fake")}
                for c in store.candidates("fake"):
                    assert all(Path(p).exists() for p in c.files.values())
                assert [p.name for p in store.media_dir("fake").iterdir() if p.name.split(".", 1)[0] not in known] == []
                store.close()
                filler.unlink()
            assert outcomes == {1} and any("database" in e for e in sentences) and any("finish" in e for e in sentences)
            assert main(["generate", "fake", "--prompt", "after", "-n", "2"]) == 0  # space again: all is well
        finally:
            media._extra.pop("fake", None)
            media._instances.pop("fake", None)


def test_another_programs_database_is_refused_and_left_untouched(tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    other = sqlite3.connect(folder / "studio.db")
    other.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    other.execute("INSERT INTO notes (body) VALUES ('mine')")
    other.commit()
    other.close()
    before = (folder / "studio.db").read_bytes()
    for argv in (["versions", "fake"], ["generate", "fake", "--prompt", "x"], ["jobs"]):
        code = main([*argv, "--workspace", str(folder)])
        assert "another program's database" in assert_one_sentence(code, capsys.readouterr().err)
    assert (folder / "studio.db").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["studio.db"]  # no media folder, no WAL


def _cli(ws: Path, prepared, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FAKE_MODEL": str(prepared["root"] / "fake-model"), "STUDIO_HOME": str(ws)}
    return subprocess.run([sys.executable, "-c", CLI, *argv], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_a_read_only_or_full_workspace_says_so_never_restore_from_a_backup(prepared, tmp_path):
    with tmpfs(tmp_path / "disk", "size=4m") as mount:
        ws = mount / "ws"
        shutil.copytree(prepared["root"] / "ws", ws)
        good = (ws / "studio.db").read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        for argv in (["versions", "fake"], ["generate", "fake", "--prompt", "new", "-n", "2"], ["curate", "fake"]):
            done = _cli(ws, prepared, *argv)
            sentence = assert_one_sentence(done.returncode, done.stderr)
            assert "read-only" in sentence and "backup" not in sentence and "unreadable" not in sentence
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
        with open(mount / "filler", "wb") as fh:  # fill the disk to the last byte
            with contextlib.suppress(OSError):
                fh.write(b"\0" * (8 << 20))
        for argv in (["versions", "fake"], ["generate", "fake", "--prompt", "new", "-n", "2"]):
            done = _cli(ws, prepared, *argv)
            if done.returncode == 0:
                continue  # a read needs no space
            sentence = assert_one_sentence(done.returncode, done.stderr)
            assert "full" in sentence and "backup" not in sentence and "unreadable" not in sentence
        assert _cli(ws, prepared, "generate", "fake", "--prompt", "new", "-n", "2").returncode != 0
        (mount / "filler").unlink()
        assert (ws / "studio.db").read_bytes() == good and integrity(ws) == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("args", [["image", "--param", "steps=2"], ["text", "--model", "built-in:grammar"]],
                         ids=["image", "text"])
def test_the_cli_stderr_holds_no_library_noise(tmp_path, args):
    """No FutureWarning (torch_dtype), no torchvision notices, no "Loading pipeline components" bars, nothing
    torchao logs at import (transformers imports it wherever it is installed)."""
    env = {**os.environ, "STUDIO_HOME": str(tmp_path / "ws"), "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-m", "studio", "generate", args[0], "--prompt", "a red circle", "-n", "1",
                           *args[1:]], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_quiet_libraries_silences_an_already_imported_transformers():
    import warnings

    from transformers.utils import logging as transformers_logging

    from studio.quiet import quiet_libraries

    with warnings.catch_warnings():
        quiet_libraries()
        assert transformers_logging.get_verbosity() == transformers_logging.ERROR
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            quiet_libraries()
            warnings.warn_explicit("`torch_dtype` is deprecated", FutureWarning, "deprecation_utils.py", 23,
                                   module="diffusers.utils.deprecation_utils")
        assert caught == []


def test_a_scorer_that_ends_the_process_is_an_error_not_a_silent_exit(prepared, audit_ws, capsys):
    before = {c.id: c.decision for c in _store_candidates(audit_ws)}
    done = _cli(audit_ws, prepared, "curate", "fake", "--scorer", "bad_scorers:exits_quietly", "--json")
    sentence = assert_one_sentence(done.returncode, done.stderr)
    assert "ended its process without returning scores" in sentence and done.stdout == ""
    assert {c.id: c.decision for c in _store_candidates(audit_ws)} == before
    assert main(["curate", "fake", "--scorer", "bad_scorers:prints_and_scores", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["acceptance_rate"] >= 0  # its prints stay out of stdout


def _store_candidates(ws: Path):
    from studio.store import Store

    store = Store(ws)
    try:
        return store.candidates("fake")
    finally:
        store.close()


def test_huge_scorer_weights_weigh_as_their_ratio(audit_ws, capsys):
    """1e308 + 1e308 overflowed to inf: every combined score was 0.0 and nothing was kept, exit 0."""
    argv = ["curate", "fake", "--scorer", "bright=1e308", "--scorer", "favourites=1e308", "--threshold", "0.3",
            "--temperature", "0", "--keep", "all", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["accepted"]
    scored = [c for c in _store_candidates(audit_ws) if "favourites" in c.scores]
    assert len(scored) == 12
    for c in scored:
        assert c.scores["score"] == pytest.approx((c.scores["bright"] + c.scores["favourites"]) / 2)


def test_a_weight_from_the_page_that_is_not_a_finite_number_is_one_sentence(audit_ws):
    from studio.app.context import TabContext
    from studio.engine import Studio
    from studio.errors import StudioError

    ctx = TabContext(Studio(audit_ws), "fake", None)
    names = ctx.scorer_names
    values = {f"weight.{n}": 0.0 for n in names[1:]}
    assert ctx.scoring({f"weight.{names[0]}": 1.0, **values})[0] == [f"{names[0]}=1.0"]
    for bad in (float("nan"), float("inf"), -1.0, "heavy"):
        with pytest.raises(StudioError, match=f"weight of the scorer '{names[0]}' must be a number"):
            ctx.scoring({f"weight.{names[0]}": bad, **values})


def test_media_files_emptied_or_removed_outside_studio_are_refused_at_export(audit_ws, tmp_path, capsys):
    kept = [c for c in _store_candidates(audit_ws) if c.accepted]
    Path(kept[0].path).write_bytes(b"")
    code = main(["export", "fake", "--version", "v1", "--format", "jsonl", "--out", str(tmp_path / "out")])
    sentence = assert_one_sentence(code, capsys.readouterr().err)
    assert f"{kept[0].id} is empty" in sentence and not (tmp_path / "out").exists()
    Path(kept[0].path).unlink()
    Path(kept[1].path).write_bytes(b"")
    code = main(["export", "fake", "--version", "base", "--format", "jsonl", "--out", str(tmp_path / "out")])
    assert "(and 1 more)" in assert_one_sentence(code, capsys.readouterr().err)


def _strict(text: str) -> dict:
    """json.loads that refuses Infinity, -Infinity and NaN, as every other JSON parser does."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.slow
def test_every_commands_json_is_strict_json(prepared, audit_ws, tmp_path, capsys, monkeypatch):
    """``curate --temperature inf --json`` printed Infinity; an infinite temperature keeps everything."""
    monkeypatch.setenv("STUDIO_LAUNCHER", "python")
    outputs = {}
    for argv in (["generate", "fake", "--prompt", "a colour", "-n", "6", "--seed", "100"],
                 ["curate", "fake", "--temperature", "inf", "--threshold", "1", "--keep", "all"],
                 ["tune", "fake", "--steps", "2"],
                 ["compare", "fake", "--after", "v2", "--prompt", "a colour", "-n", "4", "--temperature", "inf"],
                 ["loop", "fake", "--prompt", "a loop", "-n", "4", "--steps", "2", "--temperature", "inf"],
                 ["export", "fake", "--version", "v1", "--format", "jsonl", "--out", str(tmp_path / "out")],
                 ["versions", "fake"], ["jobs"], ["cancel", prepared["job"]]):
        assert main([*argv, "--json"]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert out.count("\n") == 1
        outputs[argv[0]] = _strict(out)
    curated = outputs["curate"]
    assert curated["temperature"] is None and curated["acceptance_rate"] == 1.0 and not curated["rejected"]
    assert outputs["compare"]["after"]["acceptance_rate"] == 1.0


FAKE_PYTHON = """#!/usr/bin/env bash
# stands in for python3 and the venv's python: records nothing, installs nothing
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0
fi
if [ "$1" = "-c" ]; then exit 1; fi  # "import torch": not installed yet
if [ "$1 $2 $3" = "-m pip install" ] && [ "${@: -1}" = "." ]; then touch .venv/bin/studio; chmod +x .venv/bin/studio; fi
exit 0
"""


def test_the_first_setup_says_what_it_installs(tmp_path):
    """The first scripts/serve was silent for two minutes while it installed."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "scripts" / "setup", repo / "scripts" / "setup")
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, body in (("python3", FAKE_PYTHON), ("apt-get", "#!/bin/sh\nexit 0\n"), ("fluidsynth", "#!/bin/sh\n")):
        (tools / name).write_text(body)
        (tools / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "PYTHON": str(tools / "python3")}
    first = subprocess.run(["bash", "scripts/setup"], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    for words in ("creating the virtual environment", "installing torch", "installing studio and its libraries"):
        assert words in first.stderr, first.stderr
    again = subprocess.run(["bash", "scripts/setup"], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert "creating the virtual environment" not in again.stderr and "installing studio" not in again.stderr
