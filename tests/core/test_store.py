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
    cands = []
    for i in range(20):
        cid = f"{batch}-{i}"
        files = store.write_media("fake", cid, {"txt": b"x" * 4096, "png": b"y" * 8192})
        cands.append(Candidate(id=cid, medium="fake", prompt="p", seed=i, params={}, version="base", model="m",
                               path=files["txt"], files=files))
    store.add_batch("fake", "p", "base", "m", {}, [batch], cands, [c.id for c in cands])
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


def _one(store, cid="a", batch_seed=0):
    files = store.write_media("fake", cid, {"txt": b"red"})
    c = Candidate(id=cid, medium="fake", prompt="p", seed=batch_seed, params={}, version="base", model="m",
                  path=files["txt"], files=files)
    return store.add_batch("fake", "p", "base", "m", {}, [batch_seed], [c], [cid])


def test_an_emptied_database_is_refused_not_reinitialised(tmp_path):
    import pytest

    from studio.errors import StudioError

    store = Store(tmp_path / "ws")
    _one(store)
    store.close()
    for name in ("studio.db-wal", "studio.db-shm"):
        (tmp_path / "ws" / name).unlink(missing_ok=True)
    (tmp_path / "ws" / "studio.db").write_bytes(b"")
    with pytest.raises(StudioError, match="empty or missing; restore studio.db"):
        Store(tmp_path / "ws")
    assert (tmp_path / "ws" / "studio.db").read_bytes() == b""  # nothing was written over it
    (tmp_path / "ws" / "studio.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StudioError, match="unreadable"):
        Store(tmp_path / "ws")


def test_paths_are_relative_so_a_moved_or_copied_workspace_reads_its_own_files(tmp_path):
    import shutil

    store = Store(tmp_path / "ws")
    _one(store)
    raw = store._query("SELECT path, files FROM candidates")[0]
    assert raw["path"] == "media/fake/a.txt" and "media/fake/a.txt" in raw["files"]
    store.close()
    shutil.copytree(tmp_path / "ws", tmp_path / "copy")
    (tmp_path / "copy" / "media" / "fake" / "a.txt").write_text("blue")
    shutil.move(tmp_path / "ws", tmp_path / "moved")
    moved, copy = Store(tmp_path / "moved"), Store(tmp_path / "copy")
    assert Path(moved.candidate("a").path).read_text() == "red"
    assert Path(copy.candidate("a").path).read_text() == "blue"
    assert copy.candidate("a").path.startswith(str(tmp_path / "copy"))


def test_old_absolute_paths_are_migrated_to_relative(tmp_path):
    import sqlite3

    ws = tmp_path / "ws"
    Store(ws).close()
    db = sqlite3.connect(ws / "studio.db", isolation_level=None)
    db.execute("DELETE FROM schema_migrations WHERE version >= 3")  # back to schema 2: absolute paths, no series
    db.execute("ALTER TABLE batches DROP COLUMN series")
    db.execute("INSERT INTO candidates (id, medium, prompt, seed, params, version, model, path, files, created_at) "
               "VALUES ('a', 'fake', 'p', 0, '{}', 'base', 'm', '/old/place/media/fake/a.txt', "
               "'{\"txt\": \"/old/place/media/fake/a.txt\"}', 0)")
    db.execute("INSERT INTO versions VALUES ('fake', 'v1', 'base', 'm', '{}', '[]', "
               "'/old/place/versions/fake/v1/adapter', '{}', 0)")
    db.close()
    store = Store(ws)
    assert store.candidate("a").path == str(ws.resolve() / "media/fake/a.txt")
    assert store.version("fake", "v1").path == str(ws.resolve() / "versions/fake/v1/adapter")


def test_batches_are_never_empty_and_cached_runs_count(tmp_path):
    store = Store(tmp_path / "ws")
    first = _one(store)
    assert store.latest_batch("fake") == first
    store._write("INSERT INTO batches (medium, prompt, version, model, params, seeds, created_at) "
                 "VALUES ('fake', 'p', 'base', 'm', '{}', '[]', 0)")  # an empty batch from an older studio
    assert store.latest_batch("fake") == first
    again = store.add_batch("fake", "p", "base", "m", {}, [0], [], ["a"])  # fully cached: same candidate
    assert store.latest_batch("fake") == again and [c.id for c in store.candidates("fake", batch=again)] == ["a"]


def test_clean_leftovers_removes_orphans_but_waits_for_live_writers(tmp_path):
    store = Store(tmp_path / "ws")
    _one(store)
    folder = store.media_dir("fake")
    (folder / "orphan.txt").write_text("x")
    (folder / ".a.txt.123.tmp").write_text("x")
    with store.writing():  # another writer mid-batch: nothing is touched
        assert Store(tmp_path / "ws").clean_leftovers() == []
    removed = store.clean_leftovers()
    assert sorted(p.name for p in removed) == [".a.txt.123.tmp", "orphan.txt"]
    assert (folder / "a.txt").exists()
