"""The workspace: one SQLite database plus a media folder.

    WORKSPACE/studio.db            candidates, batches, versions, rounds, jobs (WAL, synchronous=FULL)
    WORKSPACE/media/MEDIUM/ID.EXT  the candidates' files, written atomically before their row
    WORKSPACE/versions/MEDIUM/vN/  each version's adapter
    WORKSPACE/jobs/ID/             each tune's spec, progress.jsonl and checkpoints

A row is committed only after its media files are on disk, so a crash can leave an
orphaned file but never a row without its file.  Schema changes are numbered migrations
recorded in ``schema_migrations``.  One connection per process, guarded by a lock: one
writer; other processes read concurrently through WAL.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import StudioError
from .fsutil import atomic_write_bytes
from .medium import ACCEPTED, DECISIONS, Candidate, Version

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        medium TEXT NOT NULL, prompt TEXT NOT NULL, version TEXT NOT NULL, model TEXT NOT NULL,
        params TEXT NOT NULL, seeds TEXT NOT NULL,
        purpose TEXT NOT NULL DEFAULT 'curate',      -- 'curate' (may be tuned on) or 'compare' (held out)
        created_at REAL NOT NULL);
    CREATE TABLE candidates (
        id TEXT PRIMARY KEY,
        medium TEXT NOT NULL, prompt TEXT NOT NULL, seed INTEGER NOT NULL, params TEXT NOT NULL,
        version TEXT NOT NULL, model TEXT NOT NULL, path TEXT NOT NULL, files TEXT NOT NULL,
        scores TEXT NOT NULL DEFAULT '{}',
        decision TEXT NOT NULL DEFAULT 'pending',
        created_at REAL NOT NULL,
        batch INTEGER REFERENCES batches(id));
    CREATE INDEX candidates_by_medium ON candidates(medium, created_at);
    CREATE INDEX candidates_by_batch ON candidates(batch);
    CREATE TABLE versions (
        medium TEXT NOT NULL, name TEXT NOT NULL, parent TEXT, model TEXT NOT NULL,
        settings TEXT NOT NULL, curated TEXT NOT NULL, path TEXT, metrics TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        PRIMARY KEY (medium, name));
    CREATE TABLE rounds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        medium TEXT NOT NULL, version TEXT NOT NULL, parent TEXT, curated INTEGER NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL);
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY, medium TEXT NOT NULL,
        status TEXT NOT NULL,                        -- queued, running, done, failed, cancelled
        spec TEXT NOT NULL, version TEXT, pid INTEGER, message TEXT, result TEXT,
        created_at REAL NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
]


def default_workspace() -> Path:
    """``$STUDIO_HOME``, else ``$XDG_DATA_HOME/studio``, else ``~/.local/share/studio``."""
    if os.environ.get("STUDIO_HOME"):
        return Path(os.environ["STUDIO_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "studio"


def _candidate(row: sqlite3.Row) -> Candidate:
    return Candidate(id=row["id"], medium=row["medium"], prompt=row["prompt"], seed=row["seed"],
                     params=json.loads(row["params"]), version=row["version"], model=row["model"],
                     path=row["path"], files=json.loads(row["files"]), scores=json.loads(row["scores"]),
                     decision=row["decision"], created_at=row["created_at"], batch=row["batch"])


def _version(row: sqlite3.Row) -> Version:
    return Version(medium=row["medium"], name=row["name"], parent=row["parent"], model=row["model"],
                   settings=json.loads(row["settings"]), curated=json.loads(row["curated"]),
                   path=row["path"], created_at=row["created_at"], metrics=json.loads(row["metrics"]))


class Store:
    """The workspace's database and files.  Safe to share between threads."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise StudioError(f"The workspace {self.root} is a file, not a folder.")
        try:
            (self.root / "media").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudioError(f"Cannot create the workspace folder {self.root}: {exc.strerror}.") from None
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.root / "studio.db", timeout=30, check_same_thread=False,
                                       isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StudioError(f"The workspace database {self.root / 'studio.db'} is unreadable ({exc}).") from None

    # -- plumbing -------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                             "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            applied = {r[0] for r in self._db.execute("SELECT version FROM schema_migrations")}
            for number, sql in enumerate(MIGRATIONS, start=1):
                if number in applied:
                    continue
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in sql.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, time.time()))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def _write(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def transaction(self):
        return _Transaction(self)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def integrity_check(self) -> str:
        return self._query("PRAGMA integrity_check")[0][0]

    def schema_version(self) -> int:
        return self._query("SELECT MAX(version) FROM schema_migrations")[0][0]

    # -- paths ----------------------------------------------------------------------------
    def media_dir(self, medium: str) -> Path:
        return self.root / "media" / medium

    def version_dir(self, medium: str, name: str) -> Path:
        return self.root / "versions" / medium / name

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    # -- settings -------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        self._write("INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, json.dumps(value)))

    # -- candidates -----------------------------------------------------------------------
    def new_batch(self, medium: str, prompt: str, version: str, model: str, params: dict,
                  seeds: Sequence[int], purpose: str = "curate") -> int:
        cur = self._write("INSERT INTO batches (medium, prompt, version, model, params, seeds, purpose, created_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (medium, prompt, version, model, json.dumps(params, sort_keys=True),
                           json.dumps(list(seeds)), purpose, time.time()))
        return int(cur.lastrowid)

    def write_media(self, medium: str, candidate_id: str, files: dict[str, bytes]) -> dict[str, str]:
        """Write a candidate's files atomically; returns ext -> path."""
        folder = self.media_dir(medium)
        paths = {}
        for ext, data in files.items():
            path = folder / f"{candidate_id}.{ext}"
            atomic_write_bytes(path, data)
            paths[ext] = str(path)
        return paths

    def add_candidates(self, candidates: Iterable[Candidate]) -> None:
        """Insert in one transaction; a candidate that exists keeps its decision and scores."""
        rows = [(c.id, c.medium, c.prompt, c.seed, json.dumps(c.params, sort_keys=True), c.version, c.model,
                 c.path, json.dumps(c.files), json.dumps(c.scores), c.decision, c.created_at, c.batch)
                for c in candidates]
        with self.transaction() as db:
            db.executemany("INSERT INTO candidates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT(id) DO NOTHING", rows)

    def candidate(self, candidate_id: str) -> Candidate | None:
        rows = self._query("SELECT * FROM candidates WHERE id = ?", (candidate_id,))
        return _candidate(rows[0]) if rows else None

    def candidates(self, medium: str, *, ids: Sequence[str] | None = None, batch: int | None = None,
                   decisions: Sequence[str] | None = None, purpose: str | None = None,
                   limit: int | None = None) -> list[Candidate]:
        sql = "SELECT c.* FROM candidates c LEFT JOIN batches b ON b.id = c.batch WHERE c.medium = ?"
        args: list[Any] = [medium]
        if ids is not None:
            sql += f" AND c.id IN ({','.join('?' * len(ids))})"
            args += list(ids)
        if batch is not None:
            sql += " AND c.batch = ?"
            args.append(batch)
        if decisions is not None:
            sql += f" AND c.decision IN ({','.join('?' * len(decisions))})"
            args += list(decisions)
        if purpose is not None:
            sql += " AND COALESCE(b.purpose, 'curate') = ?"
            args.append(purpose)
        sql += " ORDER BY c.created_at, c.seed"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        found = [_candidate(r) for r in self._query(sql, args)]
        if ids is not None:  # keep the caller's order
            order = {cid: i for i, cid in enumerate(ids)}
            found.sort(key=lambda c: order[c.id])
        return found

    def latest_batch(self, medium: str, purpose: str = "curate") -> int | None:
        rows = self._query("SELECT MAX(id) FROM batches WHERE medium = ? AND purpose = ?", (medium, purpose))
        return rows[0][0]

    def batch(self, batch_id: int) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM batches WHERE id = ?", (batch_id,))
        if not rows:
            return None
        row = dict(rows[0])
        row["params"], row["seeds"] = json.loads(row["params"]), json.loads(row["seeds"])
        return row

    def set_scores(self, scores: dict[str, dict[str, float]]) -> None:
        """Merge scores by scorer name into each candidate's scores."""
        with self.transaction() as db:
            for cid, new in scores.items():
                row = db.execute("SELECT scores FROM candidates WHERE id = ?", (cid,)).fetchone()
                if row is None:
                    continue
                merged = {**json.loads(row[0]), **new}
                db.execute("UPDATE candidates SET scores = ? WHERE id = ?", (json.dumps(merged), cid))

    def set_decisions(self, decisions: dict[str, str]) -> None:
        """Record decisions; a rule's decision (auto_*) never overwrites a hand decision."""
        for decision in decisions.values():
            if decision not in DECISIONS:
                raise StudioError(f"Unknown decision '{decision}'; use one of {', '.join(DECISIONS)}.")
        with self.transaction() as db:
            for cid, decision in decisions.items():
                if decision.startswith("hand_") or decision == "pending":
                    db.execute("UPDATE candidates SET decision = ? WHERE id = ?", (decision, cid))
                else:
                    db.execute("UPDATE candidates SET decision = ? WHERE id = ? AND decision NOT LIKE 'hand_%'",
                               (decision, cid))

    def curated(self, medium: str, model: str | None = None) -> list[Candidate]:
        """The accepted candidates of every round (never held-out compare batches)."""
        found = self.candidates(medium, decisions=ACCEPTED, purpose="curate")
        return [c for c in found if model is None or c.model == model]

    def decided_by_hand(self, medium: str) -> list[Candidate]:
        return self.candidates(medium, decisions=("hand_accepted", "hand_rejected"))

    # -- versions and rounds --------------------------------------------------------------
    def versions(self, medium: str) -> list[Version]:
        rows = self._query("SELECT * FROM versions WHERE medium = ? ORDER BY created_at", (medium,))
        return [_version(r) for r in rows]

    def version(self, medium: str, name: str) -> Version | None:
        rows = self._query("SELECT * FROM versions WHERE medium = ? AND name = ?", (medium, name))
        return _version(rows[0]) if rows else None

    def next_version_name(self, medium: str) -> str:
        numbers = [int(v.name[1:]) for v in self.versions(medium) if v.name[1:].isdigit()]
        jobs = self._query("SELECT version FROM jobs WHERE medium = ? AND version IS NOT NULL", (medium,))
        numbers += [int(r[0][1:]) for r in jobs if r[0][1:].isdigit()]
        return f"v{max(numbers, default=0) + 1}"

    def add_version(self, version: Version) -> None:
        self._write("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (version.medium, version.name, version.parent, version.model, json.dumps(version.settings),
                     json.dumps(version.curated), version.path, json.dumps(version.metrics), version.created_at))

    def set_version_metrics(self, medium: str, name: str, metrics: dict) -> None:
        self._write("UPDATE versions SET metrics = ? WHERE medium = ? AND name = ?",
                    (json.dumps(metrics), medium, name))

    def add_round(self, medium: str, version: str, parent: str | None, curated: int, metrics: dict) -> int:
        cur = self._write("INSERT INTO rounds (medium, version, parent, curated, metrics, created_at) "
                          "VALUES (?, ?, ?, ?, ?, ?)", (medium, version, parent, curated, json.dumps(metrics),
                                                        time.time()))
        return int(cur.lastrowid)

    def rounds(self, medium: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM rounds WHERE medium = ? ORDER BY id", (medium,))
        return [{**dict(r), "metrics": json.loads(r["metrics"])} for r in rows]

    # -- jobs -----------------------------------------------------------------------------
    def add_job(self, job_id: str, medium: str, spec: dict, version: str) -> None:
        now = time.time()
        self._write("INSERT INTO jobs (id, medium, status, spec, version, created_at, updated_at) "
                    "VALUES (?, ?, 'queued', ?, ?, ?, ?)", (job_id, medium, json.dumps(spec), version, now, now))

    def update_job(self, job_id: str, **fields: Any) -> None:
        allowed = {"status", "pid", "message", "result"}
        if set(fields) - allowed:
            raise ValueError(f"unknown job fields {set(fields) - allowed}")
        if "result" in fields:
            fields["result"] = json.dumps(fields["result"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._write(f"UPDATE jobs SET {sets}, updated_at = ? WHERE id = ?", (*fields.values(), time.time(), job_id))

    def job(self, job_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return self._job(rows[0]) if rows else None

    def jobs(self, medium: str | None = None, status: Sequence[str] | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM jobs WHERE 1", []
        if medium is not None:
            sql += " AND medium = ?"
            args.append(medium)
        if status is not None:
            sql += f" AND status IN ({','.join('?' * len(status))})"
            args += list(status)
        return [self._job(r) for r in self._query(sql + " ORDER BY created_at", args)]

    @staticmethod
    def _job(row: sqlite3.Row) -> dict[str, Any]:
        job = dict(row)
        job["spec"] = json.loads(job["spec"])
        job["result"] = json.loads(job["result"]) if job["result"] else None
        return job


class _Transaction:
    """``with store.transaction() as db:`` — BEGIN IMMEDIATE ... COMMIT, under the store's lock."""

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        self.store._db.execute("BEGIN IMMEDIATE")
        return self.store._db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()
