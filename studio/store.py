"""The workspace: one SQLite database plus a media folder.

    WORKSPACE/studio.db            candidates, batches, versions, rounds, jobs (WAL, synchronous=FULL)
    WORKSPACE/media/MEDIUM/ID.EXT  the candidates' files, written atomically before their row
    WORKSPACE/versions/MEDIUM/vN/  each version's adapter
    WORKSPACE/jobs/ID/             each tune's spec, progress.jsonl and checkpoints

A row is committed only after its media files are on disk, so a crash can leave an
orphaned file but never a row without its file (``clean_leftovers`` removes such files).
Paths are stored relative to the workspace, so a moved or copied workspace reads its own
files.  Schema changes are numbered migrations recorded in ``schema_migrations``, applied
under one write lock so several processes may open a new workspace at once.  A database
that is empty while the workspace holds media, versions or jobs is refused, never
re-initialised over them.  One connection per process, guarded by a lock: one writer;
other processes read concurrently through WAL.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .errors import StudioError, disk_full
from .fsutil import atomic_write_bytes
from .medium import ACCEPTED, DECISIONS, Candidate, Version

def _relative_paths(db: sqlite3.Connection) -> None:
    """Stored absolute paths become workspace-relative (``media/M/ID.EXT``, ``versions/M/vN/adapter``)."""
    def media_path(medium: str, path: str) -> str:
        return path if not os.path.isabs(path) else f"media/{medium}/{os.path.basename(path)}"

    for cid, medium, path, files in db.execute("SELECT id, medium, path, files FROM candidates").fetchall():
        files = {ext: media_path(medium, p) for ext, p in json.loads(files).items()}
        db.execute("UPDATE candidates SET path = ?, files = ? WHERE id = ?",
                   (media_path(medium, path), json.dumps(files), cid))
    for medium, name, path in db.execute("SELECT medium, name, path FROM versions").fetchall():
        if path and os.path.isabs(path) and f"/versions/{medium}/{name}/" in path:
            db.execute("UPDATE versions SET path = ? WHERE medium = ? AND name = ?",
                       (f"versions/{medium}/{name}/" + path.rsplit(f"/versions/{medium}/{name}/", 1)[1],
                        medium, name))


# Each migration is SQL (statements split on ';') or a function of the open connection.
MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
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
    # 2: a batch is the candidates one generate returned (cached ones included), written with them
    """
    CREATE TABLE batch_candidates (
        batch INTEGER NOT NULL REFERENCES batches(id), candidate TEXT NOT NULL REFERENCES candidates(id),
        PRIMARY KEY (batch, candidate));
    INSERT INTO batch_candidates SELECT batch, id FROM candidates WHERE batch IS NOT NULL;
    """,
    # 3: paths relative to the workspace, so a moved or copied workspace reads its own files
    _relative_paths,
    # 4: a batch belongs to a series (a project the artist names); a tune learns from one series' kept set
    "ALTER TABLE batches ADD COLUMN series TEXT NOT NULL DEFAULT 'main';",
]
DEFAULT_SERIES = "main"  # the series of every batch made before series existed, and of a new workspace

CONTENT = ("media", "versions", "jobs")  # folders whose files mean the workspace is in use
WRITERS_LOCK = ".writers.lock"  # shared by writers of media files, exclusive for clean_leftovers


def default_workspace() -> Path:
    """``$STUDIO_HOME``, else ``$XDG_DATA_HOME/studio``, else ``~/.local/share/studio``."""
    if os.environ.get("STUDIO_HOME"):
        return Path(os.environ["STUDIO_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "studio"


def _has_content(root: Path) -> bool:
    """Whether any file lies under the workspace's media, versions or jobs folders."""
    for name in CONTENT:
        for _, _, files in os.walk(root / name):
            if files:
                return True
    return False


class Store:
    """The workspace's database and files.  Safe to share between threads."""

    def __init__(self, root: Path | str):
        if not str(root).strip():
            raise StudioError("The workspace folder name is empty; give --workspace DIR or set STUDIO_HOME.")
        try:
            self.root = Path(root).expanduser().resolve()
        except (RuntimeError, OSError):  # Python raises RuntimeError on a symlink loop
            raise StudioError(f"The workspace {root} is a link that points back to itself; "
                              "give a real folder as --workspace.") from None
        if self.root.exists() and not self.root.is_dir():
            raise StudioError(f"The workspace {self.root} is a file, not a folder.")
        database = self.root / "studio.db"
        if database.is_dir():
            raise StudioError(f"The workspace database {database} is a folder, not a file.")
        self._db = None
        if database.is_file() and database.stat().st_size > 0:  # looked at before anything is created or written
            try:
                self._db = _connect(database)
            except sqlite3.Error:
                self._db = None  # the open below says why
            else:
                _refuse_foreign(self._db, database)
        try:
            (self.root / "media").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.close_quietly()
            raise StudioError(f"Cannot create the workspace folder {self.root}: {exc.strerror}.") from None
        self._lock = threading.RLock()
        if (not database.exists() or database.stat().st_size == 0) and _has_content(self.root):
            self.close_quietly()
            raise _emptied(self.root)
        try:
            if self._db is None:
                self._db = _connect(database)
            self._db.row_factory = sqlite3.Row
            _retry_locked(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if self._db is not None:
                self._db.close()
            raise StudioError(_open_failure(self.root, database, exc)) from None
        except BaseException:
            if self._db is not None:
                self._db.close()
            raise

    # -- plumbing -------------------------------------------------------------------------
    def _migrate(self) -> None:
        """Apply missing migrations under one write lock (safe when several processes open at once)."""
        with self._lock:
            latest = self._db.execute("SELECT name FROM sqlite_master WHERE name = 'schema_migrations'").fetchone()
            if latest and self._db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] \
                    == len(MIGRATIONS):
                return  # the common case: nothing to do, no write lock taken
            _retry_locked(lambda: self._db.execute("BEGIN IMMEDIATE"))
            try:
                if self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0 \
                        and _has_content(self.root):
                    raise _emptied(self.root)
                self._db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                                 "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
                applied = {r[0] for r in self._db.execute("SELECT version FROM schema_migrations")}
                if applied and max(applied) > len(MIGRATIONS):
                    raise StudioError(f"The workspace {self.root} was written by a newer studio "
                                      f"(schema {max(applied)}); upgrade studio to open it.")
                for number, migration in enumerate(MIGRATIONS, start=1):
                    if number in applied:
                        continue
                    if callable(migration):
                        migration(self._db)
                    else:
                        for statement in migration.split(";"):
                            if statement.strip():
                                self._db.execute(statement)
                    self._db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, time.time()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- stored paths: relative to the workspace ------------------------------------------
    def relative(self, path: str | Path | None) -> str | None:
        """``path`` relative to the workspace when it lies inside it, else unchanged."""
        if path is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def absolute(self, path: str | None) -> str | None:
        if path is None:
            return None
        return path if os.path.isabs(path) else str(self.root / path)

    def _candidate(self, row: sqlite3.Row) -> Candidate:
        files = {ext: self.absolute(p) for ext, p in json.loads(row["files"]).items()}
        return Candidate(id=row["id"], medium=row["medium"], prompt=row["prompt"], seed=row["seed"],
                         params=json.loads(row["params"]), version=row["version"], model=row["model"],
                         path=self.absolute(row["path"]), files=files, scores=json.loads(row["scores"]),
                         decision=row["decision"], created_at=row["created_at"], batch=row["batch"])

    def _version(self, row: sqlite3.Row) -> Version:
        return Version(medium=row["medium"], name=row["name"], parent=row["parent"], model=row["model"],
                       settings=json.loads(row["settings"]), curated=json.loads(row["curated"]),
                       path=self.absolute(row["path"]), created_at=row["created_at"],
                       metrics=json.loads(row["metrics"]))

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

    def close_quietly(self) -> None:
        """Close the connection of a store that failed to open (no lock exists yet)."""
        if self._db is not None:
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
    @contextlib.contextmanager
    def writing(self):
        """Held (shared) while media files are written and not yet in a row: clean_leftovers waits."""
        with open(self.root / WRITERS_LOCK, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def write_media(self, medium: str, candidate_id: str, files: dict[str, bytes]) -> dict[str, str]:
        """Write a candidate's files atomically; returns ext -> path.  On failure none is left."""
        folder = self.media_dir(medium)
        paths: dict[str, str] = {}
        try:
            for ext, data in files.items():
                path = folder / f"{candidate_id}.{ext}"
                atomic_write_bytes(path, data)
                paths[ext] = str(path)
        except BaseException:
            remove_files(paths.values())
            raise
        return paths

    def add_batch(self, medium: str, prompt: str, version: str, model: str, params: dict,
                  seeds: Sequence[int], candidates: Sequence[Candidate], ids: Sequence[str],
                  purpose: str = "curate", series: str = DEFAULT_SERIES) -> int:
        """One transaction: the batch row, its new candidates (``batch`` set here) and its members ``ids``.

        A candidate that exists keeps its decision, scores and first batch.  Nothing is written
        for a run that fails before this, so a batch is never empty.
        """
        if not ids:
            raise StudioError("A batch needs at least one candidate.")
        with self.transaction() as db:
            cur = db.execute("INSERT INTO batches (medium, prompt, version, model, params, seeds, purpose, created_at, "
                             "series) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (medium, prompt, version, model, json.dumps(params, sort_keys=True),
                              json.dumps(list(seeds)), purpose, time.time(), series))
            batch = int(cur.lastrowid)
            db.executemany("INSERT INTO candidates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT(id) DO NOTHING", [self._row(c, batch) for c in candidates])
            db.executemany("INSERT OR IGNORE INTO batch_candidates VALUES (?, ?)", [(batch, cid) for cid in ids])
        return batch

    def _row(self, c: Candidate, batch: int | None) -> tuple:
        files = {ext: self.relative(p) for ext, p in c.files.items()}
        return (c.id, c.medium, c.prompt, c.seed, json.dumps(c.params, sort_keys=True), c.version, c.model,
                self.relative(c.path), json.dumps(files), json.dumps(c.scores), c.decision, c.created_at, batch)

    def add_candidates(self, candidates: Iterable[Candidate]) -> None:
        """Insert in one transaction; a candidate that exists keeps its decision and scores."""
        candidates = list(candidates)
        with self.transaction() as db:
            db.executemany("INSERT INTO candidates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT(id) DO NOTHING", [self._row(c, c.batch) for c in candidates])
            db.executemany("INSERT OR IGNORE INTO batch_candidates VALUES (?, ?)",
                           [(c.batch, c.id) for c in candidates if c.batch is not None])

    def candidate(self, candidate_id: str) -> Candidate | None:
        rows = self._query("SELECT * FROM candidates WHERE id = ?", (candidate_id,))
        return self._candidate(rows[0]) if rows else None

    def candidates(self, medium: str, *, ids: Sequence[str] | None = None, batch: int | None = None,
                   decisions: Sequence[str] | None = None, purpose: str | None = None,
                   series: str | None = None, limit: int | None = None) -> list[Candidate]:
        """The medium's candidates, oldest first; ``series`` keeps those whose first batch is in it."""
        sql = "SELECT c.* FROM candidates c LEFT JOIN batches b ON b.id = c.batch WHERE c.medium = ?"
        args: list[Any] = [medium]
        if ids is not None:
            sql += f" AND c.id IN ({','.join('?' * len(ids))})"
            args += list(ids)
        if batch is not None:
            sql += " AND c.id IN (SELECT candidate FROM batch_candidates WHERE batch = ?)"
            args.append(batch)
        if decisions is not None:
            sql += f" AND c.decision IN ({','.join('?' * len(decisions))})"
            args += list(decisions)
        if purpose is not None:
            sql += " AND COALESCE(b.purpose, 'curate') = ?"
            args.append(purpose)
        if series is not None:
            sql += " AND COALESCE(b.series, ?) = ?"
            args += [DEFAULT_SERIES, series]
        sql += " ORDER BY c.created_at, c.seed"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        found = [self._candidate(r) for r in self._query(sql, args)]
        if ids is not None:  # keep the caller's order
            order = {cid: i for i, cid in enumerate(ids)}
            found.sort(key=lambda c: order[c.id])
        return found

    def latest_batch(self, medium: str, purpose: str = "curate", series: str | None = None) -> int | None:
        """The newest batch of ``medium`` (in ``series`` when given) that holds candidates (an empty one never
        counts)."""
        sql = ("SELECT MAX(b.id) FROM batches b WHERE b.medium = ? AND b.purpose = ? "
               "AND EXISTS (SELECT 1 FROM batch_candidates m WHERE m.batch = b.id)")
        args: list[Any] = [medium, purpose]
        if series is not None:
            sql += " AND b.series = ?"
            args.append(series)
        return self._query(sql, args)[0][0]

    def series(self, medium: str) -> list[str]:
        """The series that hold a batch of ``medium``, oldest first."""
        rows = self._query("SELECT series FROM batches WHERE medium = ? GROUP BY series ORDER BY MIN(id)", (medium,))
        return [r[0] for r in rows]

    def batch(self, batch_id: int) -> dict[str, Any] | None:
        if not -2**63 <= batch_id < 2**63:
            return None
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

    def curated(self, medium: str, model: str | None = None, series: str | None = None) -> list[Candidate]:
        """The kept set: the kept candidates of every round (of one ``series`` when given; never held-out
        compare batches)."""
        found = self.candidates(medium, decisions=ACCEPTED, purpose="curate", series=series)
        return [c for c in found if model is None or c.model == model]

    def decided_by_hand(self, medium: str, series: str | None = None) -> list[Candidate]:
        return self.candidates(medium, decisions=("hand_accepted", "hand_rejected"), series=series)

    # -- versions and rounds --------------------------------------------------------------
    def versions(self, medium: str) -> list[Version]:
        rows = self._query("SELECT * FROM versions WHERE medium = ? ORDER BY created_at", (medium,))
        return [self._version(r) for r in rows]

    def version(self, medium: str, name: str) -> Version | None:
        rows = self._query("SELECT * FROM versions WHERE medium = ? AND name = ?", (medium, name))
        return self._version(rows[0]) if rows else None

    @staticmethod
    def _next_version_name(db: sqlite3.Connection, medium: str) -> str:
        names = [r[0] for r in db.execute("SELECT name FROM versions WHERE medium = ? UNION "
                                          "SELECT version FROM jobs WHERE medium = ? AND version IS NOT NULL",
                                          (medium, medium))]
        numbers = [int(n[1:]) for n in names if n[:1] == "v" and n[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1}"

    def next_version_name(self, medium: str) -> str:
        """The name the next tune would get (``reserve_job`` is what takes it)."""
        with self._lock:
            return self._next_version_name(self._db, medium)

    def add_version(self, version: Version) -> None:
        """Record a finished version; the job that reserved ``version.name`` is its only writer."""
        if version.name in ("", "base"):
            raise StudioError(f"'{version.name}' cannot name a tuned version.")
        self._write("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (version.medium, version.name, version.parent, version.model, json.dumps(version.settings),
                     json.dumps(version.curated), self.relative(version.path), json.dumps(version.metrics),
                     version.created_at))

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
    def reserve_job(self, job_id: str, medium: str, spec: dict[str, Any],
                    busy: Callable[[list[dict[str, Any]]], str | None] | None = None) -> str:
        """Atomically name the next version and record the job that alone will write it.

        ``busy`` sees the medium's unfinished jobs inside the same write lock and may return a
        reason to refuse (one tune per medium at a time).  Returns the reserved version name.
        """
        now = time.time()
        with self.transaction() as db:
            if busy is not None:
                open_jobs = [self._job(r) for r in db.execute(
                    "SELECT * FROM jobs WHERE medium = ? AND status IN ('queued', 'running')", (medium,))]
                reason = busy(open_jobs)
                if reason:
                    raise StudioError(reason)
            version = self._next_version_name(db, medium)
            spec = {**spec, "version": version}
            db.execute("INSERT INTO jobs (id, medium, status, spec, version, created_at, updated_at) "
                       "VALUES (?, ?, 'queued', ?, ?, ?, ?)", (job_id, medium, json.dumps(spec), version, now, now))
        return version

    def add_job(self, job_id: str, medium: str, spec: dict, version: str) -> None:
        now = time.time()
        self._write("INSERT INTO jobs (id, medium, status, spec, version, created_at, updated_at) "
                    "VALUES (?, ?, 'queued', ?, ?, ?, ?)", (job_id, medium, json.dumps(spec), version, now, now))

    def update_job(self, job_id: str, only_if: Sequence[str] | None = None, **fields: Any) -> bool:
        """Set fields; with ``only_if``, only while the job's status is one of those.  True when changed."""
        allowed = {"status", "pid", "message", "result"}
        if set(fields) - allowed:
            raise ValueError(f"unknown job fields {set(fields) - allowed}")
        if "result" in fields:
            fields["result"] = json.dumps(fields["result"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        sql, args = f"UPDATE jobs SET {sets}, updated_at = ? WHERE id = ?", [*fields.values(), time.time(), job_id]
        if only_if is not None:
            sql += f" AND status IN ({','.join('?' * len(only_if))})"
            args += list(only_if)
        return self._write(sql, args).rowcount > 0

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


    # -- leftovers ----------------------------------------------------------------------------
    def clean_leftovers(self) -> list[Path]:
        """Remove media files no row names and temporary files a killed writer left behind.

        Runs only while no other process is writing media (it takes the writers' lock
        exclusively, without waiting); returns what it removed.
        """
        removed: list[Path] = []
        with open(self.root / WRITERS_LOCK, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return removed
            try:
                known = {r[0] for r in self._query("SELECT id FROM candidates")}
                media = self.root / "media"
                for folder in (p for p in media.iterdir() if p.is_dir()) if media.is_dir() else ():
                    for path in folder.iterdir():
                        stale = path.name.startswith(".") and path.name.endswith(".tmp")
                        if path.is_file() and (stale or path.name.split(".", 1)[0] not in known):
                            path.unlink(missing_ok=True)
                            removed.append(path)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return removed


# SQLite's own words for a file that is not (or no longer) a sound database: only these mean "restore it"
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
FULL_BELOW = 1 << 20  # bytes free under which a failed open is put down to a full disk


def _connect(database: Path) -> sqlite3.Connection:
    return sqlite3.connect(database, timeout=30, check_same_thread=False, isolation_level=None)


def _refuse_foreign(db: sqlite3.Connection, database: Path) -> None:
    """Refuse a ``studio.db`` that another program wrote (tables, none of them studio's), touching nothing:
    a read of its table names, on the connection the store then uses, before any write."""
    try:
        tables = {r[0] for r in _retry_locked(lambda: db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetchall())}
    except sqlite3.Error:
        return  # not a database at all, or unreadable: the open below says why
    if tables and not {"schema_migrations", "candidates"} <= tables:
        db.close()
        raise StudioError(f"The file {database} is another program's database, not a studio workspace; "
                          "give another folder as --workspace (nothing was changed).")


def _open_failure(root: Path, database: Path, exc: sqlite3.DatabaseError) -> str:
    """One sentence for a database that would not open: a damaged file only when SQLite says so."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(_DAMAGED):
        return (f"The workspace database {database} is unreadable ({exc}); restore it from a backup or use "
                "another --workspace.")
    if disk_full(exc) or name.startswith("SQLITE_FULL") or _free_bytes(root) < FULL_BELOW:
        return f"The disk holding {root} is full (no space left); free some space and try again."
    if name.startswith("SQLITE_READONLY") or _read_only(root, database):
        return (f"The workspace {root} is read-only, so studio cannot write to it; make it writable or give "
                "another --workspace.")
    return f"Could not open the workspace database {database} ({exc}); nothing was changed."


def _free_bytes(root: Path) -> int:
    try:
        return shutil.disk_usage(root).free
    except OSError:
        return FULL_BELOW


def _read_only(root: Path, database: Path) -> bool:
    try:
        if os.statvfs(root).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        pass
    return not os.access(root, os.W_OK) or (database.exists() and not os.access(database, os.W_OK))


def _emptied(root: Path) -> StudioError:
    return StudioError(f"The workspace {root} holds media, versions or jobs but its database studio.db is "
                       "empty or missing; restore studio.db from a backup or use another --workspace "
                       "(nothing was changed).")


def remove_files(paths: Iterable[str | Path]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def _retry_locked(action: Callable[[], Any], seconds: float = 30.0) -> Any:
    """Run ``action``, retrying while another connection holds the lock it needs."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class _Transaction:
    """``with store.transaction() as db:`` — BEGIN IMMEDIATE ... COMMIT, under the store's lock."""

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        try:
            _retry_locked(lambda: self.store._db.execute("BEGIN IMMEDIATE"))
        except BaseException:
            self.store._lock.release()
            raise
        return self.store._db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()
