"""A tune that should change nothing: does the picture tune drift on the base's own pictures?

One batch of 32 from the base ("a circle", training seeds ``1000*s ..``); a random quarter kept and another random
quarter dropped (or, with ``--kept 32``, all of it kept and the objective sft), one tune, then 32 pictures from the
base and from the tuned version on the same held-out seeds (1,000,000 + 1000*s ..).  The kept set is the base's own
pictures, so a faithful tune leaves the pictures as they were: the mean of their 8x8 features where it was
(``shift``, the length of the move, beside ``kept_vs_batch``, how far the kept set's mean is from its batch's) and
their variety (the studio's: mean pairwise cosine distance) as the base's.  A diagnosis, not a feature
(docs/objectives.md, "Pictures: the tune learns the mix guidance draws").

    python benchmarks/image_null_tune.py --seeds 0 1 --kept 32 --setting 'sft={"objective": "sft"}' \\
        --setting 'sft-guided={"objective": "sft", "guided": true}' --out runs.jsonl
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from runs_file import named_settings, one_thread, record  # beside this script

PROMPT = "a circle"


def run_one(seed: int, kept: int, settings: dict, params: dict | None) -> dict:
    import numpy as np

    from studio.engine import Studio
    from studio.media.image.scorers import image_features
    from studio.variety import mean_pairwise_distance

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as ws:
        studio = Studio(ws)
        batch = studio.generate("image", PROMPT, seeds=list(range(1000 * seed, 1000 * seed + 32)), params=params)
        order = np.random.default_rng(seed).permutation(len(batch))
        keep = [batch[i].id for i in order[:kept]]
        drop = [batch[i].id for i in order[kept:kept + 8]] if kept <= 24 else []
        studio.curate("image", accept=keep, reject=drop, apply_rule=False)
        version = studio.tune("image", settings=settings)["version"]
        held = list(range(1_000_000 + 1000 * seed, 1_000_000 + 1000 * seed + 32))
        base = image_features(studio.generate("image", PROMPT, seeds=held, version="base", params=params))
        tuned = image_features(studio.generate("image", PROMPT, seeds=held, version=version, params=params))
        kept_feats = image_features([c for c in batch if c.id in set(keep)])
        return {"seed": seed, "kept": kept, "dropped": len(drop), "params": params or {},
                "shift": float(np.linalg.norm(tuned.mean(0) - base.mean(0))),
                "kept_vs_batch": float(np.linalg.norm(kept_feats.mean(0) - image_features(batch).mean(0))),
                "variety_base": mean_pairwise_distance(base), "variety_tuned": mean_pairwise_distance(tuned),
                "variety_kept": mean_pairwise_distance(kept_feats),
                "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--kept", type=int, default=8, help="pictures kept at random (32: all, and nothing dropped)")
    parser.add_argument("--params", default="{}", help="generation settings for both sides (JSON)")
    parser.add_argument("--setting", action="append", default=[], help="NAME=JSON tune settings; repeat")
    parser.add_argument("--out", type=Path, help="append each run as a JSON line here")
    args = parser.parse_args(argv)
    one_thread()
    params = json.loads(args.params) or None
    for name, settings in named_settings(args.setting or ["defaults={}"]):
        for seed in args.seeds:
            row = {"name": name, "settings": settings, **run_one(seed, args.kept, settings, params)}
            record(row, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
