"""The workspace survives a writer killed mid-batch; migrations are recorded."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from studio.medium import Candidate
from studio.store import MIGRATIONS, Store

WRITER = r"""
import sys, time
from studio.medium import Candidate
from studio.store import Store
store = Store(sys.argv[1])
for batch in range(10_000):
    b = store.new_batch("fake", "p", "base", "m", {}, [batch])
    cands = []
    for i in range(20):
        cid = f"{batch}-{i}"
        files = store.write_media("fake", cid, {"txt": b"x" * 4096, "png": b"y" * 8192})
        cands.append(Candidate(id=cid, medium="fake", prompt="p", seed=i, params={}, version="base", model="m",
                               path=files["txt"], files=files, batch=b))
    store.add_candidates(cands)
    store.set_decisions({c.id: "auto_accepted" for c in cands[::2]})
    print(batch, flush=True)
"""


def test_killed_writer_leaves_a_consistent_workspace(tmp_path):
    ws = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ws)], stdout=subprocess.PIPE, text=True)
    for _ in range(3):  # let it commit a few batches, then kill it mid-write
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(ws)
    assert store.integrity_check() == "ok"
    rows = store.candidates("fake")
    assert len(rows) >= 60 and len(rows) % 20 == 0  # whole batches only
    for c in rows:
        for path in c.files.values():
            assert Path(path).exists(), path


def test_migrations_are_recorded_once(tmp_path):
    store = Store(tmp_path / "ws")
    assert store.schema_version() == len(MIGRATIONS)
    store.close()
    again = Store(tmp_path / "ws")  # reopening applies nothing twice
    assert again.schema_version() == len(MIGRATIONS)


def test_rule_never_overwrites_hand_decision(tmp_path):
    store = Store(tmp_path / "ws")
    files = store.write_media("fake", "a", {"txt": b"red"})
    store.add_candidates([Candidate(id="a", medium="fake", prompt="p", seed=0, params={}, version="base",
                                    model="m", path=files["txt"], files=files)])
    store.set_decisions({"a": "hand_rejected"})
    store.set_decisions({"a": "auto_accepted"})
    assert store.candidate("a").decision == "hand_rejected"
    store.set_decisions({"a": "hand_accepted"})
    assert store.candidate("a").decision == "hand_accepted"


def test_workspace_settings_use_wal(tmp_path):
    store = Store(tmp_path / "ws")
    assert store._query("PRAGMA journal_mode")[0][0] == "wal"
    assert store._query("PRAGMA synchronous")[0][0] == 2  # FULL
