"""Tune processes: kill -9 mid-tune and resume; cancel; a non-finite loss fails cleanly."""
from __future__ import annotations

import time

from fake_medium import curate_some
from studio import runner
from studio.engine import Studio
from studio.training import latest_checkpoint, read_progress


def test_kill_mid_tune_then_resume_completes_with_right_step_count(workspace, fake):
    studio = Studio(workspace)
    curate_some(studio)
    job = studio.start_tune("fake", steps=40, settings={"slow": 0.1, "checkpoint_every": 5})
    deadline = time.time() + 120
    while time.time() < deadline and (latest_checkpoint(studio.store.job_dir(job)) is None
                                      or runner.status(studio.store, job)["step"] < 12):
        time.sleep(0.2)
    runner.kill(studio.store, job)
    time.sleep(0.5)
    info = runner.status(studio.store, job)
    assert info["status"] == "interrupted"
    assert 10 <= info["step"] < 40
    assert studio.store.version("fake", info["version"]) is None  # nothing half-made

    runner.resume(studio.store, job)
    done = studio.wait_tune(job)
    assert done["status"] == "done" and done["step"] == 40
    rows = read_progress(studio.store.job_dir(job))
    resumed = [r for r in rows if r.get("event") == "resumed"]
    assert resumed and resumed[0]["step"] % 5 == 0
    steps_after = [r["step"] for r in rows if r.get("event") == "step" and r["time"] > resumed[0]["time"]]
    assert steps_after == list(range(resumed[0]["step"] + 1, 41))
    assert studio.store.version("fake", "v1") is not None


def test_cancel_keeps_a_checkpoint_and_makes_no_version(workspace, fake):
    studio = Studio(workspace)
    curate_some(studio)
    job = studio.start_tune("fake", steps=200, settings={"slow": 0.05})
    while runner.status(studio.store, job)["step"] < 3:
        time.sleep(0.1)
    runner.cancel(studio.store, job)
    info = runner.wait(studio.store, job, timeout=60)
    assert info["status"] == "cancelled"
    assert latest_checkpoint(studio.store.job_dir(job)) is not None
    assert studio.store.versions("fake") == []


def test_non_finite_loss_stops_with_a_sentence_and_leaves_parent(workspace, fake):
    import pytest

    from studio.errors import StudioError

    studio = Studio(workspace)
    curate_some(studio)
    studio.tune("fake", steps=5)
    before = (studio.store.version_dir("fake", "v1") / "adapter" / "adapter.safetensors").read_bytes()
    with pytest.raises(StudioError, match="non-finite"):
        studio.tune("fake", from_version="v1", steps=5, settings={"fail": "nan"})
    after = (studio.store.version_dir("fake", "v1") / "adapter" / "adapter.safetensors").read_bytes()
    assert before == after
    assert [v.name for v in studio.store.versions("fake")] == ["v1"]


def test_a_second_worker_for_the_same_job_exits_without_touching_it(workspace, fake):
    import subprocess
    import sys

    studio = Studio(workspace)
    curate_some(studio)
    job = studio.start_tune("fake", steps=30, settings={"slow": 0.1})
    job_dir = studio.store.job_dir(job)
    while runner.owner(job_dir) is None:
        time.sleep(0.1)
    second = subprocess.run([sys.executable, "-m", "studio.tune_worker", str(job_dir)], capture_output=True,
                            text=True, timeout=120)
    assert second.returncode == 3 and "already has a running worker" in second.stderr
    done = studio.wait_tune(job)
    assert done["step"] == 30
    steps = [r["step"] for r in read_progress(job_dir) if r.get("event") == "step"]
    assert steps == list(range(1, 31))


def test_a_job_never_writes_over_a_version_folder_it_did_not_make(workspace, fake):
    import pytest

    from studio.errors import StudioError

    studio = Studio(workspace)
    curate_some(studio)
    foreign = studio.store.version_dir("fake", "v1") / "adapter"
    foreign.mkdir(parents=True)
    (foreign / "adapter.safetensors").write_bytes(b"someone else's weights")
    with pytest.raises(StudioError, match="already exists and was not written by job"):
        studio.tune("fake", steps=5)
    assert (foreign / "adapter.safetensors").read_bytes() == b"someone else's weights"
    assert studio.store.versions("fake") == []
    assert studio.store.jobs("fake")[0]["status"] == "failed"


def test_owner_is_read_from_the_lock_without_taking_it(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import sys, time; from studio.runner import take_ownership; "
            "print(take_ownership(sys.argv[1]) is not None, flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        assert runner.owner(tmp_path) == holder.pid
        assert runner.owner(tmp_path) == holder.pid  # asking twice never takes or drops it
        assert runner.take_ownership(tmp_path) is None  # a second owner is refused
    finally:
        holder.kill()
        holder.wait()
    assert runner.owner(tmp_path) is None  # the kernel dropped it with the process
    fd = runner.take_ownership(tmp_path)
    assert fd is not None and (tmp_path / runner.OWNER).read_text() == str(os.getpid())
    os.close(fd)


def test_a_tune_between_its_row_and_its_process_reads_as_running_not_interrupted(workspace, fake, monkeypatch):
    """The row is written before the worker is launched; a page polling in that moment saw 'interrupted'."""
    studio = Studio(workspace)
    curate_some(studio)
    monkeypatch.setattr(runner, "_spawn", lambda store, job_id: None)  # the moment before the process exists
    job = studio.start_tune("fake", steps=5)
    assert runner.status(studio.store, job)["status"] == "running"
    monkeypatch.setattr(runner, "STARTING_GRACE", 0.0)  # a launch that never happened is read as interrupted
    assert runner.status(studio.store, job)["status"] == "interrupted"


def test_a_tune_whose_process_cannot_start_fails_with_a_sentence_and_frees_the_medium(workspace, fake, monkeypatch):
    import pytest

    from studio.errors import StudioError

    studio = Studio(workspace)
    curate_some(studio)
    launch = runner.launch_command
    monkeypatch.setattr(runner, "launch_command", lambda job_dir: [str(workspace / "no-such-python")])
    with pytest.raises(StudioError, match="could not start"):
        studio.start_tune("fake", steps=5)
    job = studio.store.jobs("fake")[0]
    assert runner.status(studio.store, job["id"])["status"] == "failed"
    monkeypatch.setattr(runner, "launch_command", launch)
    assert studio.wait_tune(studio.start_tune("fake", steps=5))["status"] == "done"  # the medium is free
