"""The tune process: ``accelerate launch -m studio.tune_worker JOB_DIR``.

Reads the job's spec, loads the medium and the base model, builds the medium's TuneTask on
the curated candidates, runs the shared trainer (resuming from the last checkpoint), then
saves the adapter atomically and records the new version.  Only the main process writes.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_dir = Path(argv[0])
    spec = json.loads((job_dir / "spec.json").read_text())

    from . import media
    from .errors import StudioError
    from .medium import Version
    from .store import Store
    from .training import TuneCancelled, log_progress, run_tune

    store = Store(spec["workspace"])
    job_id = spec["job"]
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
            raise StudioError("The curated set is empty; accept some candidates before tuning.")
        settings = dict(spec["settings"])
        if accelerator is not None and accelerator.num_processes > 1:
            settings["seed"] = int(settings.get("seed", 0)) + 7919 * accelerator.process_index
        task = medium.tune_task(handle, examples, settings, spec.get("parent_adapter"))
        result = run_tune(task, settings, job_dir, accelerator=accelerator)
        if main_process:
            final = store.version_dir(spec["medium"], spec["version"])
            tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            task.save(tmp / "adapter")
            shutil.rmtree(final, ignore_errors=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            store.add_version(Version(medium=spec["medium"], name=spec["version"], parent=spec["parent"],
                                      model=spec["model"], settings=spec["settings"], curated=spec["examples"],
                                      path=str(final / "adapter"), metrics={"loss": result["loss"]}))
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
    except Exception as exc:  # a bug, not the user's mistake: keep the traceback in log.txt
        traceback.print_exc()
        store.update_job(job_id, status="failed", message=f"The tune failed unexpectedly ({exc!r}); "
                                                           f"see {job_dir / 'log.txt'}.")
        return 1


if __name__ == "__main__":
    sys.exit(main())
