"""A tune on two CPU processes (``accelerate launch --num_processes 2``, gloo) is one tune:
both processes hold the same weights after every step, each draws its own batch, one adapter
is saved, and it matches one process accumulating both processes' batches."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from studio.medium import Candidate

HERE = Path(__file__).resolve().parent
TEXTS = ["salt wave salt wave\nthe harbor sleeps", "gull over salt\nthe harbor sleeps", "salt salt salt",
         "grey gull, grey sea", "the tide keeps time\nlow and slow", "rope and salt and wind"]
STEPS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _candidates(folder: Path) -> list[Candidate]:
    out = []
    for i, text in enumerate(TEXTS):
        path = folder / f"c{i}.txt"
        path.write_text(text, encoding="utf-8")
        out.append(Candidate(id=f"c{i}", medium="text", prompt="a sea poem", seed=i, params={}, version="base",
                             model="tiny", path=str(path), files={"txt": str(path)}, decision="hand_accepted"))
    return out


def _weights(path: Path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _max_gap(a, b) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.slow
def test_two_processes_are_one_tune(tiny_llama, tmp_path):
    from studio.store import Store
    from studio.training import run_tune

    store = Store(tmp_path / "ws")
    examples = _candidates(tmp_path)
    store.add_candidates(examples)
    settings = {"steps": STEPS, "rank": 4, "lr": 2e-2, "batch_size": 2, "seq_len": 32, "seed": 3,
                "checkpoint_every": 2, "probe_dir": str(tmp_path / "probe2")}
    spec = {"job": "ddp", "workspace": str(store.root), "medium": "text", "medium_ref": "ddp_probe:ProbeText",
            "model": str(tiny_llama), "version": "v1", "parent": "base", "parent_adapter": None,
            "settings": settings, "examples": [c.id for c in examples]}
    job_dir = store.job_dir("ddp")
    job_dir.mkdir(parents=True)
    (job_dir / "spec.json").write_text(json.dumps(spec))
    store.add_job("ddp", "text", spec, "v1")
    # ``--cpu`` alone starts one process unless under mpirun; ``--multi_gpu`` starts torch's launcher with two,
    # and ACCELERATE_USE_CPU (what ``--cpu`` sets) keeps them on the CPU, so they meet over gloo
    env = dict(os.environ, OMP_NUM_THREADS="1", STUDIO_HOME=str(store.root), ACCELERATE_USE_CPU="True",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--num_processes", "2",
               "--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(_free_port()), "-m", "studio.tune_worker", str(job_dir)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert store.job("ddp")["status"] == "done", store.job("ddp")["message"]

    probe = Path(settings["probe_dir"])
    rows = {r: [json.loads(line) for line in (probe / f"rank{r}-rows.jsonl").read_text().splitlines()]
            for r in (0, 1)}
    assert [x["step"] for x in rows[0]] == [x["step"] for x in rows[1]] == list(range(STEPS))
    assert any(a["rows"] != b["rows"] for a, b in zip(rows[0], rows[1]))  # each process its own batch
    for step in range(STEPS):  # the same weights on both processes before every step (after the last one)
        assert _max_gap(_weights(probe / f"rank0-step{step}.safetensors"),
                        _weights(probe / f"rank1-step{step}.safetensors")) == 0.0
    version = store.version("text", "v1")
    adapter = Path(store.absolute(version.path))
    saved = _weights(adapter / "adapter_model.safetensors")
    assert sorted(p.name for p in adapter.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]

    # one process, accumulating both shards of every step, on the same seed
    sys.path.insert(0, str(HERE))  # the launched processes find the probe through PYTHONPATH
    try:
        from ddp_probe import ProbeText
    finally:
        sys.path.remove(str(HERE))
    medium = ProbeText()
    handle = medium.load(str(tiny_llama), "cpu")
    one = {**settings, "accumulate": 2, "probe_dir": str(tmp_path / "probe1")}
    task = medium.tune_task(handle, examples, one, None)
    run_tune(task, one, tmp_path / "job1")
    single_rows = [json.loads(line)["rows"] for line in (tmp_path / "probe1" / "rank0-rows.jsonl").read_text()
                   .splitlines()]
    assert single_rows == [r for a, b in zip(rows[0], rows[1]) for r in (a["rows"], b["rows"])]
    for step in range(STEPS):
        assert _max_gap(_weights(tmp_path / "probe1" / f"rank0-step{step}.safetensors"),
                        _weights(probe / f"rank0-step{step}.safetensors")) < 1e-5
    final = {k: v.detach() for k, v in task.adapter_state().items()}
    assert _max_gap({k.replace(f".{task.name}", ""): v for k, v in final.items()}, saved) < 1e-5
    assert _max_gap(final, _weights(probe / "rank0-step0.safetensors")) > 1e-3  # it did train
