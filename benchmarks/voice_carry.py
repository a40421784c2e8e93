"""How far a voice tune carries what the kept takes share, on held-out seeds (a diagnosis, not a default's judge).

For each seed: 32 takes of the line; keep the 8 that lean furthest one way on one part of the reading, read from
each take's alignment (``low``: median pitch in semitones, ``slow``: total frames, ``span``: the 5th-95th percentile
pitch span), drop the 8 that lean furthest the other way; one tune with the named settings; then 32 held-out seeds
read by the base and by the tune.  ``share`` is (tuned mean - base mean) / (kept mean - batch mean): 1 is a tune
that moves the readings as far as the kept takes lean (what sft on a Gaussian reading does), below 1 short of it,
far above 1 a tune pushed past them by the dropped takes.

    OMP_NUM_THREADS=1 python benchmarks/voice_carry.py low --seeds 0 1 2 --setting 'kto={}' --setting 'sft={"objective": "sft"}'
"""
from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np

LINE = "The quick brown fox jumps over the lazy dog."
PARTS = {"low": 0, "slow": 1, "span": 2}
HELD_OUT = 1_000_000


def reading(candidate) -> tuple[float, float, float]:
    """(-median pitch in semitones above 100 Hz, total frames, pitch span in semitones) from a take's alignment:
    larger leans further toward ``low``, ``slow`` and ``span``."""
    alignment = json.loads(open(candidate.files["json"]).read())
    semitones = 12 * np.log2(np.asarray(alignment["pitch_hz"], dtype=float) / 100)
    return (-float(np.median(semitones)), float(sum(alignment["durations"])),
            float(np.percentile(semitones, 95) - np.percentile(semitones, 5)))


def carry(part: str, seed: int, settings: dict, n: int = 32) -> dict:
    from studio.engine import Studio

    with tempfile.TemporaryDirectory() as ws:
        studio = Studio(ws)
        takes = studio.generate("voice", LINE, seeds=list(range(1000 * seed, 1000 * seed + n)))
        values = np.array([reading(c)[PARTS[part]] for c in takes])
        order = np.argsort(-values, kind="stable")
        quarter = n // 4
        studio.curate("voice", accept=[takes[i].id for i in order[:quarter]],
                      reject=[takes[i].id for i in order[-quarter:]], apply_rule=False)
        version = studio.tune("voice", settings=settings)["version"]
        held = list(range(HELD_OUT + 1000 * seed, HELD_OUT + 1000 * seed + n))
        sides = {v: np.array([reading(c)[PARTS[part]] for c in studio.generate("voice", LINE, seeds=held, version=v)])
                 for v in ("base", version)}
        kept = float(values[order[:quarter]].mean() - values.mean())
        moved = float(sides[version].mean() - sides["base"].mean())
        return {"part": part, "seed": seed, "settings": settings, "kept_lean": kept, "moved": moved,
                "share": moved / kept}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=sorted(PARTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=JSON", help="voice tune settings")
    parser.add_argument("--out", help="append one JSON line per run")
    args = parser.parse_args(argv)
    for name, _, text in (s.partition("=") for s in args.setting or ["defaults={}"]):
        for seed in args.seeds:
            row = {"name": name, **carry(args.part, seed, json.loads(text or "{}"))}
            print(f"{args.part} {name} seed {seed}: kept lean {row['kept_lean']:+.2f}, tuned - base {row['moved']:+.2f}, "
                  f"share {row['share']:.2f}", flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
