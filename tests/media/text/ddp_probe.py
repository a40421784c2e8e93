"""The text medium with a probe for the data-parallel test: before every step each process
writes the weights it holds and the rows it drew, under ``settings['probe_dir']`` (a typed setting the
probe adds to the text medium's, as a plugin would)."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from studio.media.text import TextMedium
from studio.media.text.settings import TextTune
from studio.settings import setting


@dataclasses.dataclass
class ProbeTune(TextTune):
    probe_dir: str = setting("", "where each process writes the weights it holds and the rows it drew")


class ProbeText(TextMedium):
    tune_settings = ProbeTune

    def tune_task(self, handle, examples, settings, parent_adapter, **extra):
        import torch
        from safetensors.torch import save_file

        task = super().tune_task(handle, examples, settings, parent_adapter, **extra)
        probe = Path(settings["probe_dir"])
        probe.mkdir(parents=True, exist_ok=True)
        rank = int(os.environ.get("RANK", "0"))
        plain_loss = task.loss

        def loss(step, generator):
            weights = probe / f"rank{rank}-step{step}.safetensors"
            if not weights.exists():  # the weights this process holds before the step
                save_file({k: v.detach().contiguous().clone() for k, v in task.adapter_state().items()},
                          str(weights))
            twin = torch.Generator().set_state(generator.get_state())
            rows = torch.randint(0, len(task.inputs), (task.batch_size,), generator=twin).tolist()
            with open(probe / f"rank{rank}-rows.jsonl", "a") as fh:
                fh.write(json.dumps({"step": step, "rows": rows}) + "\n")
            return plain_loss(step, generator)

        task.loss = loss
        return task
