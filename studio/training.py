"""The shared LoRA trainer: one loop for every medium.

A medium supplies a ``TuneTask`` (its trainable LoRA weights and a ``loss`` per step); this
loop owns the rest: AdamW with warm-up, gradient clipping, bf16 autocast on a GPU,
JSON-lines progress, checkpoints every N steps, cancellation, resume, the non-finite
loss guard, a preference task's rewards in each step's log (``task.reward_log``, a
preference.RewardLog), and a task's looks at its own samples (``task.look``), which may end a tune at
its last good look.  Batches are seeded by step, so a resumed tune replays the same batches.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from .errors import StudioError
from .fsutil import atomic_write_text

PROGRESS = "progress.jsonl"
CHECKPOINTS = "checkpoints"
CANCEL = "cancel"
GOOD = "good"  # the adapter at the last look that found nothing wrong (a watched tune goes back to it)
LOOKS = 4  # a watched tune looks at its own samples after each quarter of its steps
TRIAL_SEED = 3_000_000  # a look's samples' seeds: clear of the training seeds and of compare's held-out ones
# (1,000,000 up)


class TuneCancelled(Exception):
    """The artist pressed cancel; the last checkpoint is kept."""


def log_progress(job_dir: Path, **fields: Any) -> None:
    """Append one JSON line; a reader never sees half a line because each is one write."""
    fields.setdefault("time", time.time())
    line = json.dumps(fields, sort_keys=True) + "\n"
    with open(job_dir / PROGRESS, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_progress(job_dir: Path) -> list[dict[str, Any]]:
    path = Path(job_dir) / PROGRESS
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: ignore it
            continue
    return rows


def latest_checkpoint(job_dir: Path) -> Path | None:
    root = Path(job_dir) / CHECKPOINTS
    if not root.exists():
        return None
    done = [p for p in root.iterdir() if p.name.startswith("step-") and (p / "state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def _optimizer_tensors(optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """AdamW state as flat tensors (for safetensors) plus JSON-able metadata."""
    state = optimizer.state_dict()
    tensors, meta = {}, {"param_groups": state["param_groups"], "scalars": {}}
    for index, slots in state["state"].items():
        for slot, value in slots.items():
            key = f"{index}.{slot}"
            if hasattr(value, "shape"):
                tensors[key] = value.detach().contiguous().cpu()
            else:
                meta["scalars"][key] = value
    return tensors, meta


def _load_optimizer(optimizer, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, slot = key.split(".", 1)
        state.setdefault(int(index), {})[slot] = value
    for key, value in meta["scalars"].items():
        index, slot = key.split(".", 1)
        state.setdefault(int(index), {})[slot] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(job_dir: Path, step: int, task, optimizer, keep: int = 2) -> Path:
    """Write ``checkpoints/step-N`` atomically (a temporary folder, then rename)."""
    from safetensors.torch import save_file

    root = Path(job_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    adapter = {k: v.detach().contiguous().cpu() for k, v in task.adapter_state().items()}
    save_file(adapter, str(tmp / "adapter.safetensors"))
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    looked = task.look_state() if hasattr(task, "look_state") else None  # what a task's looks added to it
    atomic_write_text(tmp / "state.json", json.dumps({"step": step, "optimizer": opt_meta,
                                                      **({"task": looked} if looked else {})}))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    older = sorted((p for p in root.iterdir() if p.name.startswith("step-")),
                   key=lambda p: int(p.name.split("-")[1]))
    for stale in older[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def look_steps(steps: int, looks: int = LOOKS) -> list[int]:
    """The steps after which a watched tune looks at its own samples: the end of each of ``looks`` equal parts."""
    return sorted({max(1, math.ceil(k * steps / looks)) for k in range(1, looks + 1)})


def trial_groups(trials: Sequence[tuple[str, dict[str, Any]]], count: int) -> list[tuple[str, dict[str, Any], list[int]]]:
    """A look's ``count`` samples: the (prompt, settings) of ``trials`` in turn on seeds from TRIAL_SEED (never a
    candidate's), grouped as (prompt, settings, seeds) so each group is one generate call."""
    groups: dict[str, tuple[str, dict[str, Any], list[int]]] = {}
    for i in range(count):
        prompt, params = trials[i % len(trials)]
        key = json.dumps([prompt, params], sort_keys=True, default=str)
        groups.setdefault(key, (prompt, params, []))[2].append(TRIAL_SEED + i)
    return list(groups.values())


def save_good(job_dir: Path, step: int, task) -> None:
    """The adapter at ``step`` as the one to go back to, written beside and renamed into place."""
    from safetensors.torch import save_file

    final, tmp = Path(job_dir) / GOOD, Path(job_dir) / f".tmp-{GOOD}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in task.adapter_state().items()},
              str(tmp / "adapter.safetensors"))
    atomic_write_text(tmp / "state.json", json.dumps({"step": step}))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def read_good(job_dir: Path) -> tuple[int, dict[str, Any]]:
    """The last good look's step and adapter, as ``save_good`` wrote them."""
    from safetensors.torch import load_file

    folder = Path(job_dir) / GOOD
    return int(json.loads((folder / "state.json").read_text())["step"]), load_file(str(folder / "adapter.safetensors"))


def batch_rows(kept: int, total: int, size: int, prior_weight: float, generator):
    """One batch's row indices: kept rows ``0..kept-1``, and when ``prior_weight`` > 0 that share of the
    batch (at least one row) from the prior-preservation rows ``kept..total-1`` after them."""
    import torch

    prior = max(1, round(size * prior_weight)) if prior_weight > 0 else 0
    rows = torch.randint(0, kept, (size - prior,), generator=generator)
    if prior:
        rows = torch.cat([rows, torch.randint(kept, total, (prior,), generator=generator)])
    return rows


def batch_seed(seed: int, step: int, shard: int = 0) -> int:
    """The seed of one shard's batch at one step: shard 0 is the whole batch of a one-process tune.

    A step is made of ``shards`` batches (processes x accumulation); shard k of step s draws the
    same rows however the shards are spread over processes, so the result does not depend on it.
    """
    return (seed * 1_000_003 + step + shard * 0x9E3779B97F4A7C15) % (1 << 63)


def _flat(tensors, like):
    import torch

    return torch.cat([t.reshape(-1) if t is not None else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                      for t, p in zip(tensors, like)])


def _unflat(flat, params):
    out, at = [], 0
    for p in params:
        out.append(flat[at:at + p.numel()].view_as(p))
        at += p.numel()
    return out


def tune_lr(settings: dict[str, Any], parent_adapter: str | None) -> float:
    """The learning rate a tune uses: the setting, times ``tuned_lr_scale`` when it starts from a tuned version
    (``preference.tune_beta``'s twin).  A job stored before the scale existed reads as 1, so it resumes as made."""
    scale = float(settings.get("tuned_lr_scale", 1.0)) if parent_adapter else 1.0
    return float(settings["lr"]) * scale


def run_tune(task, settings: dict[str, Any], job_dir: Path, accelerator=None) -> dict[str, Any]:
    """Train ``task`` for ``settings['steps']`` steps, resuming from the last checkpoint.

    settings: steps, lr, warmup (fraction of steps), checkpoint_every, seed, max_grad_norm, momentum,
    accumulate (batches per process per step, default 1).
    With several processes (``accelerate launch``) every process starts from the main
    process's weights, draws its own shards of each step, and applies the same averaged
    gradient, so all replicas stay equal and the tune equals one process accumulating
    every shard.  Returns {"steps", "loss", "seconds"}, and when a look ended the tune early
    "stopped_at", "good_step" (the weights it went back to) and a one-sentence "note"; raises
    TuneCancelled or StudioError.
    """
    import torch
    from safetensors.torch import load_file

    from .settings import TuneSettings

    settings = {**TuneSettings.defaults(), **settings}  # the shared trainer's defaults, from their one place
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    steps = int(settings["steps"])
    # a task whose loss moves its output faster than its weights (the image tune's guided mix) scales its own rate
    lr = float(settings["lr"]) * float(getattr(task, "lr_scale", 1.0))
    warmup = max(1, int(steps * float(settings["warmup"])))
    every = int(settings["checkpoint_every"])
    # a task may look at its own samples after each quarter of the steps (``task.look()``: None, or one sentence
    # of what went wrong); the first wrong look ends the tune at the last good one (text: copying the kept set;
    # images: pictures narrower than the kept set)
    look = getattr(task, "look", None)
    looks = set(look_steps(steps)) if look is not None else set()
    if not getattr(task, "look_at_end", True):  # a look that only changes what the rest of the tune learns
        looks.discard(steps)
    seed = int(settings["seed"])
    max_norm = float(settings["max_grad_norm"])
    accumulate = int(settings["accumulate"])
    if accumulate < 1:
        raise StudioError("The accumulate setting must be a whole number of at least 1.")
    world = accelerator.num_processes if accelerator is not None else 1
    rank = accelerator.process_index if accelerator is not None else 0

    params = [p for p in task.parameters() if p.requires_grad]
    if not params:
        raise StudioError("The tune has no trainable weights; check the LoRA target modules.")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(float(settings["momentum"]), 0.999))

    def lr_at(step: int) -> float:  # linear warm-up, then cosine to 10%
        if step < warmup:
            return lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    start = 0
    checkpoint = latest_checkpoint(job_dir)
    if checkpoint is not None:
        state = json.loads((checkpoint / "state.json").read_text())
        task.load_adapter_state(load_file(str(checkpoint / "adapter.safetensors")))
        device = params[0].device
        opt_tensors = {k: v.to(device) if v.dim() else v for k, v in
                       load_file(str(checkpoint / "optimizer.safetensors")).items()}
        _load_optimizer(optimizer, opt_tensors, state["optimizer"])
        start = int(state["step"])
        if state.get("task") and hasattr(task, "load_look_state"):
            task.load_look_state(state["task"])
        if rank == 0:
            log_progress(job_dir, event="resumed", step=start, steps=steps)

    def agreed(flag: bool) -> bool:  # every process acts on the main process's view
        if world == 1:
            return flag
        from accelerate.utils import broadcast

        return bool(broadcast(torch.tensor([float(flag)], device=params[0].device), from_process=0).item())

    if world > 1:  # whatever seeded each process's LoRA initialisation, all start from the main one's
        from accelerate.utils import broadcast

        with torch.no_grad():
            weights = broadcast(_flat([p.detach() for p in params], params), from_process=0)
            for p, value in zip(params, _unflat(weights, params)):
                p.copy_(value)

    main = rank == 0
    good: tuple[int, dict[str, Any]] = (start, {})
    if looks:  # the adapter to go back to: the last good look's (a resume's, from disk) or the starting one
        good = read_good(job_dir) if (job_dir / GOOD).exists() else (-1, {})
        if not 0 <= good[0] <= start:  # none yet (or one ahead of the checkpoint, which the replay looks at again)
            good = (start, _snapshot(task))
            if main:
                save_good(job_dir, start, task)
    began = time.time()
    loss_value = float("nan")
    for step in range(start, steps):
        if agreed((job_dir / CANCEL).exists()):
            if main:
                save_checkpoint(job_dir, step, task, optimizer)
                log_progress(job_dir, event="cancelled", step=step, steps=steps)
            raise TuneCancelled(f"The tune was cancelled at step {step}.")
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=params[0].device)
        for micro in range(accumulate):
            shard = rank * accumulate + micro
            generator = torch.Generator().manual_seed(batch_seed(seed, step, shard))
            torch.manual_seed(batch_seed(seed, step, shard))  # any global-RNG use (dropout) repeats too
            if accelerator is not None:
                with accelerator.autocast():
                    loss = task.loss(step, generator) / accumulate
                accelerator.backward(loss)
            else:
                loss = task.loss(step, generator) / accumulate
                loss.backward()
            total += loss.detach().float()
        if world > 1:  # one all-reduce of every gradient and the loss: the mean over all shards
            flat = torch.cat([_flat([p.grad for p in params], params).float(), total.reshape(1)])
            flat = accelerator.reduce(flat, reduction="mean")
            for p, grad in zip(params, _unflat(flat[:-1], params)):
                p.grad = grad.to(p.dtype)
            total = flat[-1]
        loss_value = float(total.cpu())
        if not math.isfinite(loss_value):
            if main:
                log_progress(job_dir, event="error", step=step, steps=steps, message="non-finite loss")
            raise StudioError(f"The loss became non-finite at step {step + 1}; lower the learning rate "
                              "and tune again (the parent version is untouched).")
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        done = step + 1
        if main:
            elapsed = time.time() - began
            rate = elapsed / (done - start)
            log_progress(job_dir, event="step", step=done, steps=steps, loss=round(loss_value, 6),
                         lr=lr_at(step), seconds_left=round(rate * (steps - done), 2), **step_rewards(task))
        if done in looks:
            said = look() if main else None  # the replicas hold the same weights: the main one looks for all
            if world > 1 and hasattr(task, "look_state"):  # and what its look added to the task, the replicas add
                from accelerate.utils import broadcast_object_list

                shared = broadcast_object_list([task.look_state() if main else None], from_process=0)[0]
                if shared and not main:
                    task.load_look_state(shared)
            if agreed(said is not None):
                task.load_adapter_state(good[1])
                if not main:
                    return {"steps": steps, "loss": loss_value}
                log_progress(job_dir, event="stopped", step=done, steps=steps, good=good[0], message=said)
                return {"steps": steps, "loss": loss_value, "seconds": round(time.time() - began, 3),
                        "stopped_at": done, "good_step": good[0],
                        "note": f"The tune stopped after step {done} of {steps}: {said}; this version is "
                                + (f"the tune at step {good[0]}." if good[0] else "its starting model, unchanged.")}
            good = (done, _snapshot(task))
            if main:
                log_progress(job_dir, event="looked", step=done, steps=steps)
                save_good(job_dir, done, task)
        if main and done % every == 0 and done < steps:
            save_checkpoint(job_dir, done, task, optimizer)
    return {"steps": steps, "loss": loss_value, "seconds": round(time.time() - began, 3)}


def step_rewards(task) -> dict[str, float]:
    """A preference tune's last batch, for its step's log: the mean kept and dropped rewards its ``reward_log``
    (preference.RewardLog) holds; {} for a plain tune.  With several processes, the main process's own shards."""
    log = getattr(task, "reward_log", None)
    return log.means() if log is not None else {}


def _snapshot(task) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in task.adapter_state().items()}
