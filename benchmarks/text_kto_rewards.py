"""How far a text kto tune moves each kept and dropped text: the rewards r = log pi(y) - log pi_ref(y) per step.

One round of the built-in protocol (``ablate_round.py text topic``: "a haiku about the first snow", 16
candidates on training seeds 1000*s.., the upper quartile kept by the built-in ``topic`` scorer, every drop of
the rule counted), then the text tune with the given settings, printing every row's reward before each step;
then 16 held-out texts of the tuned adapter and how many bring a kept text back (the medium's copy test).

    OMP_NUM_THREADS=1 python benchmarks/text_kto_rewards.py --seed 1 --settings '{"lr": 0.0005, "epochs": 40}'
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

PROMPT = "a haiku about the first snow"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settings", default="{}", help="text tune settings as JSON (default: the defaults)")
    args = parser.parse_args(argv)

    import torch

    from studio.engine import Studio, steps_for_passes
    from studio.media.text.embedding import candidate_text
    from studio.media.text.generate import sample
    from studio.settings import HELD_OUT_SEED
    from studio.training import run_tune
    from studio.variety import text_copies

    def rounded(values):
        return [round(float(v), 1) for v in values]

    with tempfile.TemporaryDirectory() as ws:
        studio = Studio(ws)
        cands = studio.generate("text", PROMPT, seeds=list(range(1000 * args.seed, 1000 * args.seed + 16)))
        studio.curate("text", scorers=["topic"], temperature=0.0)
        medium = studio.medium("text")
        kept = studio.next_kept_set("text", cands[0].model)
        settings = medium.parse_tune_settings(json.loads(args.settings))
        settings["steps"] = steps_for_passes(settings["epochs"], len(kept), settings["batch_size"])
        dropped = studio.dropped_set("text", kept, settings["drop_share"])
        handle = studio.handle("text", cands[0].model)
        task = medium.tune_task(handle, kept, settings, None, dropped=dropped)
        if task.preference is None:
            parser.error("the settings give no preference objective (kto or dpo) to read rewards of")
        n_kept = task.preference.kept
        run = {"seed": args.seed, "settings": json.loads(args.settings)}  # on every line: runs may share a file
        print(json.dumps({**run, "steps": settings["steps"],
                          "kept": [candidate_text(c) for c in kept], "dropped": [candidate_text(c) for c in dropped],
                          "reference": rounded(task.preference.reference)}))

        def rewards():
            with torch.no_grad():
                return task.sequence_log_probs(torch.arange(len(task.inputs))).cpu() - task.preference.reference

        inner = task.loss

        def loss(step, generator):
            r = rewards()
            print(json.dumps({**run, "step": step, "kept": rounded(r[:n_kept]), "dropped": rounded(r[n_kept:])}),
                  flush=True)
            return inner(step, generator)

        task.loss = loss
        run_tune(task, settings, Path(ws) / "job")
        r = rewards()
        handle.adapters.setdefault(task.name, task.name)
        seeds = list(range(HELD_OUT_SEED + 1000 * args.seed, HELD_OUT_SEED + 1000 * args.seed + 16))
        texts = sample(handle, PROMPT, seeds, medium.validate_params(kept[0].params), task.name)[0]
        copied = text_copies(texts, [candidate_text(c) for c in kept])
        print(json.dumps({**run, "step": settings["steps"], "kept": rounded(r[:n_kept]), "dropped": rounded(r[n_kept:]),
                          "held_out_copies": sum(copied), "held_out": texts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
