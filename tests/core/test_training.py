"""The shared trainer's looks: a task that watches its own samples stops at its last good look."""
from __future__ import annotations

import json

import pytest

from studio.training import CANCEL, GOOD, TuneCancelled, look_steps, read_progress, run_tune


class Drifting:
    """One weight pulled toward 5; its look objects once the weight passes ``limit`` (None: never looks)."""

    def __init__(self, limit=None, cancel_at_look=None, job_dir=None):
        import torch

        self.w = torch.nn.Parameter(torch.zeros(1))
        self.limit, self.cancel_at_look, self.job_dir, self.seen = limit, cancel_at_look, job_dir, []
        self.look = self._look if limit is not None else None

    def parameters(self):
        return [self.w]

    def loss(self, step, generator):
        return (self.w - 5.0).pow(2).sum()

    def _look(self):
        self.seen.append(self.w.item())
        if self.cancel_at_look == len(self.seen):  # a kill between two looks, played by the cancel file
            (self.job_dir / CANCEL).write_text("")
        return f"the weight reached {self.w.item():.2f}" if self.w.item() > self.limit else None

    def adapter_state(self):
        return {"w": self.w.detach()}

    def load_adapter_state(self, state):
        import torch

        with torch.no_grad():
            self.w.copy_(state["w"])


SETTINGS = {"steps": 20, "lr": 0.3, "warmup": 0.0, "checkpoint_every": 1, "seed": 0}


def test_looks_fall_after_each_quarter_of_the_steps():
    assert look_steps(20) == [5, 10, 15, 20]
    assert look_steps(10) == [3, 5, 8, 10]
    assert look_steps(2) == [1, 2]


def test_a_wrong_look_ends_the_tune_at_the_last_good_one(tmp_path):
    free = Drifting()
    run_tune(free, SETTINGS, tmp_path / "free")
    watched = Drifting(limit=float("inf"))  # looks, never objects: the same tune
    run_tune(watched, SETTINGS, tmp_path / "watched")
    assert float(watched.w) == float(free.w) and len(watched.seen) == 4
    assert not any(r["event"] == "stopped" for r in read_progress(tmp_path / "watched"))

    limit = (watched.seen[1] + watched.seen[2]) / 2  # passed at the second look, not at the third
    stopped = Drifting(limit=limit)
    result = run_tune(stopped, SETTINGS, tmp_path / "stopped")
    assert result["stopped_at"] == 15 and result["good_step"] == 10
    assert float(stopped.w) == pytest.approx(watched.seen[1])  # the weights of the second look, step 10
    assert result["note"].startswith("The tune stopped after step 15 of 20: the weight reached")
    assert result["note"].endswith("this version is the tune at step 10.")
    events = [r for r in read_progress(tmp_path / "stopped") if r["event"] in ("looked", "stopped")]
    assert [(r["event"], r["step"]) for r in events] == [("looked", 5), ("looked", 10), ("stopped", 15)]
    assert json.loads((tmp_path / "stopped" / GOOD / "state.json").read_text())["step"] == 10


def test_a_first_look_that_objects_leaves_the_starting_weights(tmp_path):
    task = Drifting(limit=0.0)
    result = run_tune(task, SETTINGS, tmp_path / "job")
    assert float(task.w) == 0.0 and result["good_step"] == 0 and result["stopped_at"] == 5
    assert result["note"].endswith("this version is its starting model, unchanged.")


def test_a_resumed_tune_goes_back_to_the_good_look_it_made_before_the_kill(tmp_path):
    watched = Drifting(limit=float("inf"))
    run_tune(watched, SETTINGS, tmp_path / "watched")
    limit = (watched.seen[1] + watched.seen[2]) / 2
    job = tmp_path / "job"
    first = Drifting(limit=limit, cancel_at_look=2, job_dir=job)
    with pytest.raises(TuneCancelled):
        run_tune(first, SETTINGS, job)
    (job / CANCEL).unlink()
    again = Drifting(limit=limit)  # a new process: fresh weights, the checkpoint and the good look from disk
    result = run_tune(again, SETTINGS, job)
    assert result["stopped_at"] == 15 and result["good_step"] == 10
    assert float(again.w) == pytest.approx(watched.seen[1])


class Retargeted(Drifting):
    """Its first look changes what it learns (the target 5 -> -5), as a text tune's look adds dropped rows."""

    def __init__(self, **kwargs):
        super().__init__(limit=float("inf"), **kwargs)
        self.target = 5.0

    def loss(self, step, generator):
        return (self.w - self.target).pow(2).sum()

    def _look(self):
        said = super()._look()
        self.target = -5.0
        return said

    def look_state(self):
        return {"target": self.target}

    def load_look_state(self, state):
        self.target = state["target"]


def test_what_a_look_added_to_a_task_comes_back_with_the_checkpoint(tmp_path):
    whole = Retargeted()
    run_tune(whole, SETTINGS, tmp_path / "whole")
    job = tmp_path / "job"
    first = Retargeted(cancel_at_look=2, job_dir=job)  # killed after its second look, step 10
    with pytest.raises(TuneCancelled):
        run_tune(first, SETTINGS, job)
    (job / CANCEL).unlink()
    again = Retargeted()  # a new process: the target its first look set, from the checkpoint
    run_tune(again, SETTINGS, job)
    assert again.target == -5.0 and float(again.w) == pytest.approx(float(whole.w))
    free = Drifting()
    run_tune(free, SETTINGS, tmp_path / "free")
    assert float(whole.w) < float(free.w) - 1  # the look's change is in the weights
    early = Retargeted()
    early.look_at_end = False  # its looks change what the rest learns: none after the last step
    run_tune(early, SETTINGS, tmp_path / "early")
    assert len(early.seen) == 3 and len(whole.seen) == 4 and float(early.w) == float(whole.w)


class Won(Drifting):
    """One weight under a dpo-like loss, -log sigmoid(10 w): after its first step the pair is won (loss near 0)."""

    def loss(self, step, generator):
        import torch

        return -torch.nn.functional.logsigmoid(10 * self.w).sum()


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_without_momentum_a_won_loss_stops_the_weights(tmp_path, momentum):
    task = Won()
    run_tune(task, {**SETTINGS, "lr": 0.5, "momentum": momentum, "steps": 12}, tmp_path)
    moved = float(task.w)
    # the first step (0.5) wins the pair (a margin of 5 nats); momentum carries the weight on by what the steps
    # before it learned (1.87 at 0.9), without it the small gradients left move it little (0.69)
    assert (moved > 1.5) if momentum else (0.5 < moved < 1.0)
