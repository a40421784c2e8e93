"""The tune process: ``accelerate launch -m studio.tune_worker JOB_DIR``.

Reads the job's spec, takes the job's lock (one owner at a time: a second worker launched
for the same job exits at once), loads the medium and the base model, builds the medium's
TuneTask on the curated candidates, runs the shared trainer (resuming from the last
checkpoint), then saves the adapter and records the new version.  Only the main process
writes, and only into its own job folder and the version folder its job reserved.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from pathlib import Path

PUBLISHED_BY = ".job"  # inside a version folder: the job that wrote it


def training_seconds(rows: list[dict], last_segment: float) -> float:
    """Seconds trained over every segment of a job: each killed segment up to its last step, plus this one."""
    total, began, last = 0.0, None, None
    for row in rows:
        if row.get("event") == "started":
            if began is not None and last is not None:
                total += max(0.0, last - began)
            began, last = row["time"], None
        elif row.get("event") == "step" and began is not None:
            last = row["time"]
    return round(total + last_segment, 3)


def publish(store, job_dir: Path, medium: str, version: str, job_id: str, save) -> Path:
    """Save the adapter inside the job folder, then move it to the reserved version folder.

    The version folder is never overwritten: if it exists and another job wrote it, this
    fails with one sentence (the name was reserved for this job alone).
    """
    from .errors import StudioError

    final = store.version_dir(medium, version)
    if final.exists():
        marker = final / PUBLISHED_BY
        if marker.exists() and marker.read_text().strip() == job_id:
            return final  # published before a crash; the row comes next
        raise StudioError(f"The folder {final} already exists and was not written by job {job_id}; "
                          "move it away and resume the job.")
    staging = job_dir / "publish"
    shutil.rmtree(staging, ignore_errors=True)
    save(staging / "adapter")
    (staging / PUBLISHED_BY).write_text(job_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, final)  # fails rather than replace if another folder appeared meanwhile
    return final


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_dir = Path(argv[0]).resolve()
    spec = json.loads((job_dir / "spec.json").read_text())
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)

    from .quiet import quiet_libraries
    from .runner import late_rewards, take_ownership

    quiet_libraries()  # the job's log.txt holds the tune's own lines

    lock = take_ownership(job_dir) if rank == 0 else None
    if rank == 0 and lock is None:
        print(f"error: the job {spec['job']} already has a running worker; this one exits.", file=sys.stderr)
        return 3

    # the sole owner now: temporary folders a killed worker left behind are ours to remove
    from .training import GOOD

    for stale in ([job_dir / "publish", *(job_dir / "checkpoints").glob(".tmp-*"), *job_dir.glob(f".tmp-{GOOD}-*")]
                  if rank == 0 else []):
        shutil.rmtree(stale, ignore_errors=True)

    from . import media
    from .errors import StudioError, os_error_sentence
    from .medium import Version
    from .store import Store
    from .training import TuneCancelled, log_progress, read_progress, run_tune, tune_lr

    store = Store(job_dir.parent.parent)  # the workspace holding this job, wherever it now lies
    job_id = spec["job"]
    if rank == 0:
        store.update_job(job_id, status="running", pid=os.getpid())
    accelerator = None
    try:
        from accelerate import Accelerator

        accelerator = Accelerator()
    except Exception:  # accelerate missing or no launcher environment: plain single process
        accelerator = None
    main_process = accelerator is None or accelerator.is_main_process
    try:
        medium = media.load_ref(spec["medium_ref"])
        device = str(accelerator.device) if accelerator is not None else None
        handle = medium.load(spec["model"], device=device)
        examples = store.candidates(spec["medium"], ids=spec["examples"])
        if not examples:
            raise StudioError("The kept set is empty; keep some candidates before tuning.")
        settings = medium.parse_tune_settings(dict(spec["settings"]))  # complete, checked again in this process
        parent_adapter = store.absolute(spec.get("parent_adapter"))
        prior = store.candidates(spec["medium"], ids=spec["prior"]) if spec.get("prior") else []
        extra = {"prior": prior} if prior else {}  # media without prior preservation never see it
        if spec.get("dropped"):  # a preference objective's drops (media without one never see them)
            extra["dropped"] = store.candidates(spec["medium"], ids=spec["dropped"])
        if spec.get("undecided"):  # what a preference tune with hold keeps as likely (media with the setting)
            extra["undecided"] = store.candidates(spec["medium"], ids=spec["undecided"])
        task = medium.tune_task(handle, examples, settings, parent_adapter, **extra)
        settings = {**settings, "lr": tune_lr(settings, parent_adapter)}  # a later round's own step
        if main_process:
            log_progress(job_dir, event="started", pid=os.getpid(), lr=settings["lr"])
        result = run_tune(task, settings, job_dir, accelerator=accelerator)
        if main_process:
            rows = read_progress(job_dir)  # once: the seconds trained and the rewards both come from it
            result["seconds"] = training_seconds(rows, result["seconds"])
            if getattr(task, "note", None):  # a sentence the task has for the artist (what it could not use)
                result["note"] = " ".join(filter(None, [task.note, result.get("note")]))
            final = publish(store, job_dir, spec["medium"], spec["version"], job_id, task.save)
            # a preference tune's late rewards stay with its version, for History's words (runner.late_rewards)
            rewards = late_rewards(rows, result.get("good_step"))
            metrics = {"loss": result["loss"], **({"rewards": rewards} if rewards else {})}
            with store.transaction():  # the version and its round appear together
                store.add_version(Version(medium=spec["medium"], name=spec["version"], parent=spec["parent"],
                                          model=spec["model"], settings=spec["settings"],
                                          curated=spec["examples"], path=str(final / "adapter"),
                                          metrics=metrics))
                store.add_round(spec["medium"], spec["version"], spec["parent"], len(examples),
                                {"loss": result["loss"], "seconds": result["seconds"]})
            log_progress(job_dir, event="done", step=result["steps"], steps=result["steps"])
            store.update_job(job_id, status="done", result=result)
        return 0
    except TuneCancelled as exc:
        store.update_job(job_id, status="cancelled", message=str(exc))
        return 0
    except StudioError as exc:
        store.update_job(job_id, status="failed", message=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the machine said no (a full disk, a permission): one sentence, details in log.txt
        traceback.print_exc()
        store.update_job(job_id, status="failed", message=os_error_sentence(exc, "finish the tune"))
        return 1
    except Exception as exc:  # a bug, not the user's mistake: keep the traceback in log.txt
        traceback.print_exc()
        store.update_job(job_id, status="failed", message=f"The tune failed unexpectedly ({exc!r}); "
                                                           f"see {job_dir / 'log.txt'}.")
        return 1


if __name__ == "__main__":
    sys.exit(main())
