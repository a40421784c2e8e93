"""Each text preset on a model: its combined score's quartiles over seeds, so the threshold keeps about a quarter.

    python benchmarks/measure_presets.py --model built-in:smollm2 --seeds 32 [haiku slogan story]

Prints one JSON line per preset: the quartiles of the combined score, the share each candidate
threshold would keep, and a few texts with their scores.  Times are this machine's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def measure(name: str, model: str, seeds: int) -> dict:
    import numpy as np

    from studio import presets
    from studio.engine import Studio

    preset = presets.load("text", name)
    with tempfile.TemporaryDirectory() as ws:
        studio = Studio(ws)
        start = time.perf_counter()
        cands = studio.generate("text", preset.render_prompt(), seeds=list(range(seeds)), model=model,
                                params=dict(preset.params))
        seconds = time.perf_counter() - start
        combined = studio.score("text", cands, preset.scorer_specs(), preset.scorer_options())
        texts = [open(c.path, encoding="utf-8").read() for c in cands]
    q = np.quantile(combined, [0.25, 0.5, 0.75])
    return {"preset": name, "model": model, "n": seeds, "generate_seconds": round(seconds, 1),
            "quartiles": [round(float(v), 3) for v in q],
            "keeps_at_threshold": round(float(np.mean(np.asarray(combined) >= preset.threshold)), 3),
            "threshold": preset.threshold, "scores": [round(float(v), 3) for v in combined],
            "by_scorer_mean": {k: round(float(np.mean([c.scores[k] for c in cands])), 3)
                               for k in cands[0].scores if k != "score"},
            "examples": [{"score": round(float(s), 3), "text": t} for s, t in
                         sorted(zip(combined, texts), key=lambda st: -st[0])[::max(1, seeds // 6)]]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=["haiku", "slogan", "story"])
    parser.add_argument("--model", default="built-in:smollm2")
    parser.add_argument("--seeds", type=int, default=32)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    for name in args.presets:
        print(json.dumps(measure(name, args.model, args.seeds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
