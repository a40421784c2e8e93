"""The scale of Diffusion-KTO's beta for the built-in image model: how far a tune moves the denoising error.

One round on the built-in sketchbook, picked by a *built-in* scorer (never an eval one: this sets a default):
``n`` pictures of the prompt, the top quarter kept and the bottom quarter dropped.  Then

- an sft tune with the image defaults, and the implicit reward it reached, r = (base's error - tune's error)
  per picture, averaged over ``draws`` fixed (noise, timestep) draws, on the kept and on the dropped pictures;
- a kto tune per beta: the same rewards, the share of kept draws past the sigmoid's knee (beta * (r - z0) > 2,
  where a kept picture has stopped pulling), and the scorer's mean over held-out seeds.

    OMP_NUM_THREADS=1 python benchmarks/image_kto_beta.py --betas 30 100 300 1000 3000 --out runs.jsonl
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from runs_file import one_thread, record

PROMPT = "a circle"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--betas", type=float, nargs="+", default=[100.0, 1000.0])
    parser.add_argument("--scorer", default="colourfulness", help="a built-in image scorer")
    parser.add_argument("-n", type=int, default=32)
    parser.add_argument("--draws", type=int, default=16, help="fixed noise draws the rewards average over")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    one_thread()
    import numpy as np
    import torch

    from studio.media.image import ImageMedium
    from studio.media.image.scorers import SCORERS
    from studio.medium import Candidate
    from studio.engine import steps_for_passes
    from studio.training import run_tune

    medium = ImageMedium()
    handle = medium.load(medium.default_model(), "cpu")
    score = SCORERS[args.scorer](None)
    work = Path(tempfile.mkdtemp())

    def pictures(seeds, adapter=None, tag="base"):
        out = []
        for g in medium.generate(handle, PROMPT, seeds, {}, adapter=adapter):
            path = work / f"{tag}-{g.seed}.png"
            path.write_bytes(g.files["png"])
            out.append(Candidate(id=f"{tag}-{g.seed}", medium="image", prompt=PROMPT, seed=g.seed, params={},
                                 version=tag, model="builtin", path=str(path), files={"png": str(path)}))
        return out

    round_ = pictures(range(1000 * args.seed, 1000 * args.seed + args.n))
    order = np.argsort(-np.array(score(round_)), kind="stable")
    quarter = args.n // 4
    kept, dropped = [round_[i] for i in order[:quarter]], [round_[i] for i in order[-quarter:]]
    held_out = list(range(10_000 + 1000 * args.seed, 10_000 + 1000 * args.seed + 16))
    base_score = float(np.mean(score(pictures(held_out))))
    defaults = medium.tune_defaults
    steps = steps_for_passes(defaults["epochs"], len(kept), defaults["batch_size"])

    def rewards(task, beta):
        kept_r, dropped_r, past_knee = [], [], []
        for d in range(args.draws):
            r, is_kept = task.rewards(torch.Generator().manual_seed(77 + d))
            z0 = max(0.0, float(r.mean()))
            kept_r += r[is_kept].tolist()
            dropped_r += r[~is_kept].tolist()
            if beta is not None:  # sft has no knee
                past_knee += (beta * (r[is_kept] - z0) > 2).tolist()
        return {"kept_reward": float(np.mean(kept_r)), "dropped_reward": float(np.mean(dropped_r)),
                "reward_spread": float(np.std(kept_r + dropped_r)),
                "kept_past_knee": float(np.mean(past_knee)) if past_knee else None}

    def tuned(name, settings):
        settings = {**defaults, "steps": steps, **settings}
        task = medium.tune_task(handle, kept, settings, None, dropped=dropped)
        run_tune(task, settings, work / f"job-{name}")
        task.save(work / name)
        state = task.adapter_state()
        task.release()
        probe = medium.tune_task(handle, kept, {**settings, "objective": "kto"}, None, dropped=dropped)
        probe.load_adapter_state(state)  # the tuned weights, measured against the base
        out = rewards(probe, float(settings["beta"]) if settings["objective"] == "kto" else None)
        probe.release()
        out["held_out_score"] = float(np.mean(score(pictures(held_out, str(work / name), name))))
        return out

    common = {"prompt": PROMPT, "scorer": args.scorer, "seed": args.seed, "steps": steps, "base_score": base_score}
    record({**common, "name": "sft", **tuned("sft", {"objective": "sft"})}, args.out)
    for beta in args.betas:
        record({**common, "name": f"kto-beta{beta:g}", "beta": beta,
                **tuned(f"kto{beta:g}", {"objective": "kto", "beta": beta})}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
