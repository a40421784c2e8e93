"""One RSFT round per (setting, seed) on an embedded default: the ablation tables of docs/results.md.

Each run is ``Studio.loop`` in a fresh workspace: 32 candidates on training seeds
``1000*s ..``, the upper quartile kept by a built-in scorer, one tune, then base vs the tuned
version on held-out seeds.  A setting is a JSON object of loop keywords (``strength``,
``keep``, ``threshold``), tune settings under ``"settings"`` (``epochs``, ``lr``,
``prior_weight`` ...) and generation defaults under ``"params"`` (``adapter_from`` ...).

    python benchmarks/ablate_round.py image brightness --seeds 0 1 2 \\
        --setting defaults='{}' --setting all-steps='{"params": {"adapter_from": 0}}' --out runs.jsonl
    python benchmarks/ablate_round.py --table runs.jsonl      # markdown rows, mean ± spread over seeds

Figures vary with the machine only through floating point; times are this machine's.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from runs_file import named_settings, record, run_args  # beside this script

PROMPTS = {"image": "a circle", "text": "a short sea poem, melancholy", "music": "a gentle lullaby in C major, 3/4"}


def targets(result: dict) -> dict[str, bool]:
    """Issue 10's four targets for one round (the same rule as tests/test_loop_media.py)."""
    before, after = result["before"], result["after"]
    a, b = after["acceptance_rate"], before["acceptance_rate"]
    return {"lift": a - b >= 0.15 and (a >= 2 * b or (1 - a) <= (1 - b) / 2),
            "best_of_2": a > result["best_of_n_base"]["acceptance_rate"],
            "variety": (after["variety_vs_kept"] or 0.0) >= 0.8,
            "copies": after["copies"] <= 0.10}


def _default_model(medium: str) -> str:
    from studio import media

    return media.get(medium).default_model()


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the tune worker): the round's cost on a machine
    that is not shared, where wall time is about this divided by the threads used."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_one(medium: str, scorer: str, prompt: str, seed: int, setting: dict, options: dict | None,
            n: int = 32) -> dict:
    from studio.engine import Studio

    setting = dict(setting)
    params = setting.pop("params", {})  # generation settings for both rounds and the comparison
    with tempfile.TemporaryDirectory() as ws:
        studio = Studio(ws)
        start, cpu = time.perf_counter(), _cpu_seconds()
        result = studio.loop(medium, prompt, scorers=[scorer], temperature=0.0, n=n, seed=1000 * seed,
                             options=options, params=params, **setting)
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    before, after = result["before"], result["after"]
    return {"medium": medium, "scorer": scorer, "prompt": prompt, "seed": seed, "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "model": _default_model(medium), "n": n, "tune_seconds": result["rounds"][0]["tune_seconds"],
            "kept": result["rounds"][0]["accepted"], "before": before["acceptance_rate"],
            "after": after["acceptance_rate"], "best_of_2": result["best_of_n_base"]["acceptance_rate"],
            "variety_vs_kept": after["variety_vs_kept"], "copies": after["copies"],
            "target_copies": before.get("copies_over_rule"), "base_copies": before["copies"],
            "note": result["rounds"][0].get("note"), "targets": targets(result)}


def table(path: Path) -> None:
    import numpy as np

    rows: dict[tuple, list[dict]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            rows.setdefault((r["medium"], r["scorer"], r["name"]), []).append(r)
    print("| medium · scorer | setting | seeds | acceptance base → tuned | best-of-2 | variety vs kept "
          "| copies (target's) | targets per seed | round s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    def ms(values):
        values = [v for v in values if v is not None]
        if not values:
            return "–"
        return f"{np.mean(values):.2f}" + (f" ± {np.std(values):.2f}" if len(values) > 1 else "")

    for (medium, scorer, name), runs in rows.items():
        runs.sort(key=lambda r: r["seed"])
        marks = " ".join("".join("✓" if ok else "✗" for ok in r["targets"].values()) for r in runs)
        print(f"| {medium} · {scorer} | {name} | {', '.join(str(r['seed']) for r in runs)} "
              f"| {ms([r['before'] for r in runs])} → {ms([r['after'] for r in runs])} "
              f"| {ms([r['best_of_2'] for r in runs])} | {ms([r['variety_vs_kept'] for r in runs])} "
              f"| {ms([r['copies'] for r in runs])} ({ms([r['target_copies'] for r in runs])}) | {marks} "
              f"| {np.mean([r['seconds'] for r in runs]):.0f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("medium", nargs="?")
    parser.add_argument("scorer", nargs="?")
    parser.add_argument("--prompt")
    parser.add_argument("--options", default="{}", help="scorer options as JSON, e.g. '{\"max_words\": 12}'")
    args = run_args(parser, argv, table, "loop keywords, tune settings under \"settings\", generation under \"params\"")
    if args is None:
        return 0
    prompt = args.prompt or PROMPTS[args.medium]
    options = json.loads(args.options)
    for name, setting in named_settings(args.setting):
        for seed in args.seeds:
            row = {"name": name, "setting": setting,
                   **run_one(args.medium, args.scorer, prompt, seed, setting,
                             {args.scorer: options} if options else None, args.n)}
            record(row, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
