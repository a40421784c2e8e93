"""Tune jobs: each tune runs in its own process, started through ``accelerate launch``.

The job's folder holds ``spec.json`` (what to train), ``progress.jsonl`` (one line per
step: step, loss, seconds left), ``checkpoints/`` and ``log.txt``.  The database row says
queued / running / done / failed / cancelled; a running job whose process has died is
reported as ``interrupted`` and ``resume`` continues it from its last checkpoint.  The
process is detached from the caller, so closing the browser or the CLI never stops it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from .errors import StudioError
from .fsutil import atomic_write_text
from .store import Store
from .training import CANCEL, read_progress

FINISHED = ("done", "failed", "cancelled")


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
    job_dir = store.job_dir(job_id)
    env = dict(os.environ, STUDIO_HOME=str(store.root), PYTHONUNBUFFERED="1")
    with open(job_dir / "log.txt", "ab") as log:
        proc = subprocess.Popen(launch_command(job_dir), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=env, start_new_session=True, cwd=os.getcwd())
    store.update_job(job_id, status="running", pid=proc.pid)


def start(store: Store, spec: dict[str, Any]) -> str:
    """Create the job folder and row, launch the process, return the job id."""
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    job_dir = store.job_dir(job_id)
    job_dir.mkdir(parents=True)
    spec = {**spec, "job": job_id, "workspace": str(store.root)}
    atomic_write_text(job_dir / "spec.json", json.dumps(spec, indent=2))
    store.add_job(job_id, spec["medium"], spec, spec["version"])
    _spawn(store, job_id)
    return job_id


def status(store: Store, job_id: str) -> dict[str, Any]:
    """The job row plus its progress; a running job with a dead process is ``interrupted``."""
    job = store.job(job_id)
    if job is None:
        raise StudioError(f"There is no tune job '{job_id}'.")
    rows = read_progress(store.job_dir(job_id))
    steps = [r for r in rows if r.get("event") == "step"]
    state = job["status"]
    if state in ("running", "queued") and not _alive(job["pid"]):
        state = "interrupted"
    last = steps[-1] if steps else {}
    return {"job": job_id, "medium": job["medium"], "version": job["version"], "status": state,
            "step": last.get("step", 0), "steps": job["spec"]["settings"]["steps"],
            "loss": last.get("loss"), "seconds_left": last.get("seconds_left"),
            "losses": [[r["step"], r["loss"]] for r in steps], "message": job["message"],
            "result": job["result"]}


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
    """Kill the job's process group at once (tests use this to simulate a crash)."""
    job = store.job(job_id)
    if job and job["pid"]:
        try:
            os.killpg(job["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def resume(store: Store, job_id: str) -> str:
    """Relaunch an interrupted job; it continues from its last checkpoint."""
    info = status(store, job_id)
    if info["status"] == "done":
        raise StudioError(f"The tune job '{job_id}' has already finished.")
    if info["status"] == "running":
        raise StudioError(f"The tune job '{job_id}' is still running.")
    (store.job_dir(job_id) / CANCEL).unlink(missing_ok=True)
    store.update_job(job_id, status="queued", message=None)
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
