"""The worker's own pieces: publishing a version once, and the seconds of a resumed tune."""
from __future__ import annotations

import pytest

from studio.errors import StudioError
from studio.store import Store
from studio.tune_worker import PUBLISHED_BY, publish, training_seconds


def _save(text):
    def save(folder):
        folder.mkdir(parents=True)
        (folder / "adapter.safetensors").write_text(text)
    return save


def test_publish_survives_a_crash_after_the_rename_but_never_overwrites_another_job(tmp_path):
    store = Store(tmp_path / "ws")
    job_dir = store.job_dir("job-a")
    job_dir.mkdir(parents=True)
    final = publish(store, job_dir, "fake", "v1", "job-a", _save("a"))
    assert (final / PUBLISHED_BY).read_text() == "job-a" and not (job_dir / "publish").exists()
    # the worker died before recording the version; the resumed one publishes again: same folder, kept
    assert publish(store, job_dir, "fake", "v1", "job-a", _save("a again")) == final
    assert (final / "adapter" / "adapter.safetensors").read_text() == "a"
    other = store.job_dir("job-b")
    other.mkdir(parents=True)
    with pytest.raises(StudioError, match="not written by job job-b"):
        publish(store, other, "fake", "v1", "job-b", _save("b"))
    assert (final / "adapter" / "adapter.safetensors").read_text() == "a"


def test_training_seconds_add_every_segment():
    rows = [{"event": "started", "time": 100.0}, {"event": "step", "time": 101.0}, {"event": "step", "time": 103.0},
            # killed here; resumed
            {"event": "started", "time": 200.0}, {"event": "resumed", "time": 200.1},
            {"event": "step", "time": 202.0}]
    assert training_seconds(rows, last_segment=2.5) == 3.0 + 2.5
    assert training_seconds(rows[:1], last_segment=4.0) == 4.0
