"""Tune jobs: each tune runs in its own process, started through ``accelerate launch``.

The job's folder holds ``spec.json`` (what to train), ``progress.jsonl`` (one line per
step: step, loss, seconds left), ``checkpoints/``, ``log.txt`` and ``owner.lock``.  The
worker holds a POSIX lock on ``owner.lock`` for its whole life: a job has one owner at a
time, and whether it runs is read from that lock (the kernel drops it when the worker
dies), never from a PID that may be the launcher's.  The database row says queued /
running / done / failed / cancelled; an unfinished job that nobody owns is reported as
``interrupted`` and ``resume`` continues it from its last checkpoint.  The process is
detached from the caller, so closing the browser or the CLI never stops it.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import StudioError
from .fsutil import atomic_write_text
from .store import Store
from .training import CANCEL, read_progress

FINISHED = ("done", "failed", "cancelled")
OWNER = "owner.lock"
STARTING_GRACE = 300.0  # seconds a launched job may take to reach its worker's lock

def _flock_query() -> bytes:
    """A ``struct flock`` asking about a write lock on the whole file (Linux and macOS layouts)."""
    if sys.platform == "darwin":  # start, len, pid, type, whence
        return struct.pack("qqihh", 0, 0, 0, fcntl.F_WRLCK, os.SEEK_SET)
    return struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)  # type, whence, start, len, pid


def _flock_answer(data: bytes) -> tuple[int, int]:
    """(lock type, holder PID) from the kernel's answer."""
    if sys.platform == "darwin":
        _, _, pid, kind, _ = struct.unpack("qqihh", data)
    else:
        kind, _, _, _, pid = struct.unpack("hhqqi4x", data)
    return kind, pid


def take_ownership(job_dir: Path) -> int | None:
    """Lock ``owner.lock`` for this process and write our PID in it; None when another owns it.

    Returns the open descriptor: keep it open.  A POSIX lock is dropped when its process closes
    *any* descriptor of the file, so the owning process must never call ``owner`` on its own job.
    """
    fd = os.open(Path(job_dir) / OWNER, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    os.fsync(fd)
    return fd


def owner(job_dir: Path) -> int | None:
    """The PID of the process that holds the job's lock, or None (asked without taking it)."""
    try:
        fd = os.open(Path(job_dir) / OWNER, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        kind, pid = _flock_answer(fcntl.fcntl(fd, fcntl.F_GETLK, _flock_query()))
        return pid if kind != fcntl.F_UNLCK else None
    finally:
        os.close(fd)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def launch_command(job_dir: Path) -> list[str]:
    """``accelerate launch`` on every visible GPU, or one CPU process.

    ``STUDIO_LAUNCHER=python`` runs the worker with plain Python (no accelerate start-up).
    """
    worker = ["-m", "studio.tune_worker", str(job_dir)]
    if os.environ.get("STUDIO_LAUNCHER") == "python":
        return [sys.executable, *worker]
    gpus = 0
    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        pass
    args = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--dynamo_backend", "no"]
    if gpus > 1:
        args += ["--multi_gpu", "--num_processes", str(gpus), "--mixed_precision", "bf16"]
    elif gpus == 1:
        args += ["--num_processes", "1", "--mixed_precision", "bf16"]
    else:
        args += ["--cpu", "--num_processes", "1", "--mixed_precision", "no"]
    return [*args, "-m", "studio.tune_worker", str(job_dir)]


def _spawn(store: Store, job_id: str) -> None:
    """Launch the worker; the row keeps the launcher's PID until the worker takes the lock."""
    job_dir = store.job_dir(job_id)
    env = dict(os.environ, STUDIO_HOME=str(store.root), PYTHONUNBUFFERED="1")
    try:
        with open(job_dir / "log.txt", "ab") as log:
            proc = subprocess.Popen(launch_command(job_dir), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=env, start_new_session=True, cwd=os.getcwd())
    except OSError as exc:  # a row left queued without a process would read as starting for the whole grace
        message = f"The tune process could not start: {exc.strerror or exc}."
        store.update_job(job_id, only_if=("queued",), status="failed", message=message)
        raise StudioError(message) from exc
    store.update_job(job_id, only_if=("queued",), pid=proc.pid)


def start(store: Store, spec: dict[str, Any]) -> str:
    """Reserve the next version name with the job row (atomically), write the spec, launch the worker.

    Raises StudioError when a tune of the same medium is running.  Returns the job id.
    """
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    job_dir = store.job_dir(job_id)
    job_dir.mkdir(parents=True)
    spec = {**spec, "job": job_id}
    spec.pop("version", None)
    try:
        version = store.reserve_job(job_id, spec["medium"], spec, busy=lambda jobs: _busy_jobs(store, jobs))
    except BaseException:
        os.rmdir(job_dir)
        raise
    spec["version"] = version
    atomic_write_text(job_dir / "spec.json", json.dumps(spec, indent=2))
    _spawn(store, job_id)
    return job_id


def _busy_jobs(store: Store, jobs: list[dict[str, Any]]) -> str | None:
    for job in jobs:
        if _running(job, owner(store.job_dir(job["id"]))):
            return f"A {job['medium']} tune is already running (job {job['id']}); wait for it or cancel it."
    return None


def _running(job: dict[str, Any], owner_pid: int | None) -> bool:
    """Owned by a live worker, or launched moments ago and still starting up.

    A queued row without a PID is being launched right now (its row is written before the
    process starts, and the PID after): it counts as starting, not interrupted, for the grace.
    """
    if owner_pid is not None:
        return True
    launching = job["pid"] is None or _alive(job["pid"])
    return job["status"] == "queued" and launching and time.time() - job["updated_at"] < STARTING_GRACE


def status(store: Store, job_id: str) -> dict[str, Any]:
    """The job row plus its progress; an unfinished job that no worker owns is ``interrupted``."""
    job_dir = store.job_dir(job_id)
    holder = owner(job_dir)  # before the row: a worker that finishes in between is then read as done
    job = store.job(job_id)
    if job is None:
        raise StudioError(f"There is no tune job '{job_id}'.")
    rows = read_progress(job_dir)
    steps = [r for r in rows if r.get("event") == "step"]
    state = job["status"]
    if state in ("running", "queued"):
        state = "running" if _running(job, holder) else "interrupted"
    last = steps[-1] if steps else {}
    result = job["result"] or {}
    return {"job": job_id, "medium": job["medium"], "version": job["version"], "status": state,
            "step": last.get("step", 0), "steps": job["spec"]["settings"]["steps"],
            "loss": last.get("loss"), "seconds_left": last.get("seconds_left"),
            "losses": [[r["step"], r["loss"]] for r in steps],
            "rewards": late_rewards(steps, result.get("good_step")),
            # a kto tune that fell back to sft says so (the engine's note), a tune that stopped early too (the result's)
            "message": job["message"] or " ".join(filter(None, [job["spec"].get("note"),
                                                                result.get("note")])) or None,
            "result": job["result"], "pid": holder}


def late_rewards(steps: Sequence[dict[str, Any]], upto: int | None = None) -> dict[str, float] | None:
    """A preference tune's mean kept and dropped rewards (training.step_rewards) over the last quarter of its logged
    steps, rounded to 3 places: how far it has raised the kept and lowered the dropped against the starting model.
    ``upto``: a tune a look stopped went back to this step's weights (its result's ``good_step``), so only the steps up
    to it count.  None for a plain tune, before any step, or when the tune went back to its start."""
    rows = [r for r in steps if ("kept_reward" in r or "dropped_reward" in r) and (upto is None or r["step"] <= upto)]
    late = rows[len(rows) - max(1, len(rows) // 4):] if rows else []
    means = {k: [r[k] for r in late if k in r] for k in ("kept_reward", "dropped_reward")}
    return {k: round(sum(v) / len(v), 3) for k, v in means.items() if v} or None


def active(store: Store, medium: str | None = None) -> list[dict[str, Any]]:
    """Jobs that are running or interrupted (so the app finds them after a reload)."""
    found = [status(store, j["id"]) for j in store.jobs(medium, status=("queued", "running"))]
    return found


def cancel(store: Store, job_id: str) -> dict[str, Any]:
    """Ask the job to stop at its next step (it keeps a checkpoint)."""
    info = status(store, job_id)
    if info["status"] in FINISHED:
        return info
    (store.job_dir(job_id) / CANCEL).touch()
    if info["status"] == "interrupted":
        store.update_job(job_id, status="cancelled", message="Cancelled while interrupted.")
    return status(store, job_id)


def kill(store: Store, job_id: str) -> None:
    """Kill the job's worker and its launcher at once (tests use this to simulate a crash)."""
    job = store.job(job_id)
    for pid in {owner(store.job_dir(job_id)), job["pid"] if job else None} - {None}:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def resume(store: Store, job_id: str) -> str:
    """Relaunch an interrupted job; it continues from its last checkpoint.

    Only one worker ever owns a job: a second one launched by a racing resume finds the lock
    taken and exits without touching the job.
    """
    info = status(store, job_id)
    if info["status"] == "done":
        raise StudioError(f"The tune job '{job_id}' has already finished.")
    if info["status"] == "running":
        raise StudioError(f"The tune job '{job_id}' is still running (process {info['pid'] or 'starting'}).")
    (store.job_dir(job_id) / CANCEL).unlink(missing_ok=True)
    store.update_job(job_id, status="queued", message=None, pid=None)
    _spawn(store, job_id)
    return job_id


def wait(store: Store, job_id: str, on_progress: Callable[[dict[str, Any]], None] | None = None,
         poll: float = 0.5, timeout: float | None = None) -> dict[str, Any]:
    """Block until the job finishes or its process dies; returns its final status."""
    began = time.time()
    seen = -1
    while True:
        info = status(store, job_id)
        if on_progress and info["step"] != seen:
            seen = info["step"]
            on_progress(info)
        if info["status"] in FINISHED or info["status"] == "interrupted":
            return info
        if timeout is not None and time.time() - began > timeout:
            return info
        time.sleep(poll)
