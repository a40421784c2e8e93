"""One voice round on held-out lines: docs/voice.md's figures.

Per seed, in a fresh workspace: the built-in voice reads LINES lines TAKES times each; the takes
are scored (intelligibility, pace, pitch_range, naturalness, equal weights); the upper quartile
of the combined score is kept (temperature 0); one tune (the medium's defaults); then base vs v1
on HELD lines it never read in the round, TAKES seeds each, under the same rule (``--scorers`` picks
the rule's scorers and weights).

    python benchmarks/bench_voice.py --seeds 0 1 2 --out voice-round.jsonl
    python benchmarks/bench_voice.py --table voice-round.jsonl
    python benchmarks/bench_voice.py --draws --lines 10 --takes 12    # what a tune could carry (below)

Reports per scorer the held-out mean before and after (the lift), the acceptance rate, variety
vs the kept set, copies, and the round's wall and CPU time.

Variety vs kept, two ways.  The engine's figure (``variety_vs_kept``) sets the takes of ONE held-out
line against the whole kept set, which spans several lines of different lengths and so is more
varied than any one line's takes can be: the base itself scores 0.4-1.3 on it.  The per-line figure
(``variety_vs_kept_per_line``) compares like with like: the takes of one held-out line against the
kept takes of one training line (mean pairwise variety within each line with two or more kept
takes), the base's beside it as the chance level.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

SCORERS = ["intelligibility", "pace", "pitch_range", "naturalness"]


def one_round(seed: int, lines: int, held: int, takes: int, model: str | None, specs: list[str] = SCORERS,
              tune_settings: dict | None = None, best_of: int | None = None) -> dict:
    from studio.engine import Studio
    from studio.media.voice.lines import held_out_lines, training_lines
    from studio.scoring import ScorerSpec

    names = [ScorerSpec.parse(s).name for s in specs]

    pool = held_out_lines(60, training_lines(2400))
    random.Random(seed).shuffle(pool)
    round_lines, compare_lines = pool[:lines], pool[lines:lines + held]
    began, cpu_began, children_began = time.time(), time.process_time(), _children_cpu()

    def progress(what: str) -> None:  # on stderr, so a long round on a busy machine can be followed
        print(f"[seed {seed}] {time.time() - began:6.0f} s  {what}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Path(tmp) / "ws")
        if model:
            studio.use_model("voice", model)
        cands = []
        for i, line in enumerate(round_lines):
            cands += studio.generate("voice", line, seeds=list(range(seed * 1000 + i * takes, seed * 1000 + (i + 1) * takes)))
        progress(f"{len(cands)} takes read")
        scores = studio.score("voice", cands, specs)
        progress("scored")
        # the rule: the upper quartile of all the takes read, or (best_of) the best takes of each line, the others
        # dropped; the threshold the comparison applies is the upper quartile's either way
        decisions, threshold = studio.decide(cands, scores, None, 0.0, best_of=best_of, seed=seed)
        studio.store.set_decisions(decisions)
        kept = [c for c in cands if decisions.get(c.id) == "auto_accepted"]
        kept_per_line = _per_line_variety(studio, kept)
        kept_means = {s: sum(c.scores[s] for c in kept) / len(kept) for s in names + ["score"]} if kept else {}
        read_means = {s: sum(c.scores[s] for c in cands) / len(cands) for s in names + ["score"]}
        tuned = studio.tune("voice", settings=tune_settings or None)
        progress(f"tuned on {len(kept)} kept takes")
        per_side = {"before": {s: [] for s in names + ["score"]}, "after": {s: [] for s in names + ["score"]}}
        rates, variety, variety_base, copies = {"before": [], "after": []}, [], [], []
        line_variety = {"before": [], "after": []}  # each held-out line's takes among themselves
        for line in compare_lines:
            result = studio.compare("voice", after=tuned["version"], prompt=line, n=takes, seed=500_000 + seed,
                                    scorers=specs, threshold=threshold, temperature=0.0)
            for side in ("before", "after"):
                rates[side].append(result[side]["acceptance_rate"])
                for c in studio.store.candidates("voice", ids=result[side]["candidates"]):
                    for name in per_side[side]:
                        per_side[side][name].append(c.scores[name])
            progress(f"compared on a held-out line: {line}")
            variety.append(result["after"]["variety_vs_kept"])
            if result["after"]["variety_vs_kept"]:  # the base's takes of a line against the same kept set
                kept_variety = result["after"]["diversity"] / result["after"]["variety_vs_kept"]
                variety_base.append(result["before"]["diversity"] / kept_variety)
            copies.append(result["after"]["copies"])
            for side in ("before", "after"):
                line_variety[side].append(result[side]["diversity"])
        seconds = time.time() - began
        cpu_seconds = time.process_time() - cpu_began + _children_cpu() - children_began

    def mean(values):
        return sum(values) / len(values) if values else None

    return {"seed": seed, "scorers": list(specs), "best_of": best_of, "tune_settings": tune_settings or {}, "read": read_means, "kept_means": kept_means, "lines": lines, "held_out_lines": held, "takes": takes, "kept": len(kept),
            "threshold": threshold, "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
            "tune_seconds": tuned["seconds"], "kept_lines": len({c.prompt for c in kept}),
            "before": {k: mean(v) for k, v in per_side["before"].items()},
            "after": {k: mean(v) for k, v in per_side["after"].items()},
            "acceptance_before": mean(rates["before"]), "acceptance_after": mean(rates["after"]),
            "variety_vs_kept": mean([v for v in variety if v is not None]),
            "variety_vs_kept_base": mean(variety_base), "copies": mean(copies),
            "kept_variety_per_line": kept_per_line,
            "variety_vs_kept_per_line": _ratio(mean(line_variety["after"]), kept_per_line),
            "variety_vs_kept_per_line_base": _ratio(mean(line_variety["before"]), kept_per_line)}


def _per_line_variety(studio, kept) -> float | None:
    """Mean variety among the kept takes of one line, over the lines with two or more kept takes."""
    by_line: dict[str, list] = {}
    for c in kept:
        by_line.setdefault(c.prompt, []).append(c)
    groups = [group for group in by_line.values() if len(group) >= 2]
    if not groups:
        return None
    medium, handle = studio.medium("voice"), studio.handle("voice", kept[0].model)
    return sum(medium.diversity(handle, group) for group in groups) / len(groups)


def _ratio(value, of):
    return value / of if value is not None and of else None


def _children_cpu() -> float:
    """CPU seconds of finished child processes (the tune runs in one)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def table(path: Path) -> str:
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = ["| scorer | before | after | lift | lift per seed (min .. max) | seeds lifted |",
            "| --- | --- | --- | --- | --- | --- |"]
    for name in runs[0]["before"]:
        before = [r["before"][name] for r in runs]
        after = [r["after"][name] for r in runs]
        lifts = [a - b for a, b in zip(after, before)]
        rows.append(f"| {name} | {sum(before) / len(runs):.3f} | {sum(after) / len(runs):.3f} | "
                    f"{sum(lifts) / len(runs):+.3f} | {min(lifts):+.3f} .. {max(lifts):+.3f} | "
                    f"{sum(x > 0 for x in lifts)}/{len(runs)} |")
    rows.append("")
    rows.append("| seed | kept (lines) | acceptance before -> after | variety vs kept, engine (base -> v1) | "
                "variety vs kept, per line (base -> v1) | copies | round wall / CPU seconds |")
    rows.append("| --- | --- | --- | --- | --- | --- | --- |")

    def two(value):
        return "-" if value is None else f"{value:.2f}"

    for r in runs:
        rows.append(f"| {r['seed']} | {r['kept']} ({r.get('kept_lines', '?')}) | {r['acceptance_before']:.2f} -> "
                    f"{r['acceptance_after']:.2f} | {two(r.get('variety_vs_kept_base'))} -> {two(r['variety_vs_kept'])} | "
                    f"{two(r.get('variety_vs_kept_per_line_base'))} -> {two(r.get('variety_vs_kept_per_line'))} | "
                    f"{r['copies']:.2f} | {r['seconds']:.0f} / {r.get('cpu_seconds', float('nan')):.0f} |")
    return "\n".join(rows)


def draws_study(lines: int, takes: int, model: str | None, specs: list[str]) -> dict:
    """How much of each scorer a seed's reading explains: ``takes`` takes of each of ``lines`` held-out lines,
    each scorer regressed within each line on the seed's draws of pace (log), shift and range (log), the
    part of a reading a tune can carry to a new line (``tune.py``).  Slopes are per standard deviation of
    the draw, with their standard errors, beside the scorer's spread within a line."""
    import math

    import numpy as np

    from studio.engine import Studio
    from studio.media.voice.lines import held_out_lines, training_lines
    from studio.scoring import ScorerSpec

    names = [ScorerSpec.parse(s).name for s in specs]
    pool = held_out_lines(60, training_lines(2400))
    random.Random(7).shuffle(pool)
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Path(tmp) / "ws")
        if model:
            studio.use_model("voice", model)
        cands = []
        for i, line in enumerate(pool[:lines]):
            cands += studio.generate("voice", line, seeds=list(range(9000 + i * takes, 9000 + (i + 1) * takes)))
        studio.score("voice", cands, specs)
        rows, groups = [], []
        for c in studio.store.candidates("voice", ids=[c.id for c in cands]):
            drawn = json.loads(Path(c.files["json"]).read_text())["draws"]
            centre = drawn["centre"]
            rows.append([math.log(drawn["pace"] / centre["pace"]), drawn["shift"] - centre["shift"],
                         math.log(drawn["range"] / centre["range"])] + [c.scores[n] for n in names])
            groups.append(c.prompt)
    data = np.asarray(rows)
    for line in set(groups):  # within each line: the line itself is what no reading changes
        inside = np.asarray([g == line for g in groups])
        data[inside] -= data[inside].mean(axis=0)
    x = data[:, :3] / data[:, :3].std(axis=0)
    out = {"lines": lines, "takes": takes, "scorers": list(specs), "draws": ["pace", "shift", "range"], "slopes": {}}
    for j, name in enumerate(names):
        y = data[:, 3 + j]
        slope, *_ = np.linalg.lstsq(x, y, rcond=None)
        residual = y - x @ slope
        dof = max(1, len(y) - 3 - lines)
        error = np.sqrt(residual @ residual / dof * np.diag(np.linalg.inv(x.T @ x)))
        out["slopes"][name] = {"per_sd": [round(float(v), 4) for v in slope], "error": [round(float(v), 4) for v in error],
                               "spread_within_line": round(float(y.std()), 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lines", type=int, default=4, help="lines read in the round")
    parser.add_argument("--held", type=int, default=3, help="held-out lines in the comparison")
    parser.add_argument("--takes", type=int, default=6, help="takes per line")
    parser.add_argument("--model", default=None, help="a voice folder (default: the built-in voice)")
    parser.add_argument("--scorers", nargs="+", default=SCORERS, help="NAME or NAME=WEIGHT: the keep rule's scorers")
    parser.add_argument("--best-of", type=int, default=None,
                        help="keep the best N takes of each line instead of the upper quartile of all of them")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a tune setting, e.g. epochs=5 (studio settings voice)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path)
    parser.add_argument("--draws", action="store_true",
                        help="instead of a round: how much each scorer follows the seed's draws (--lines, --takes)")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    import torch

    torch.set_num_threads(1)
    if args.draws:
        print(json.dumps(draws_study(args.lines, args.takes, args.model, args.scorers)))
        return
    for seed in args.seeds:
        settings = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.setting)}
        row = one_round(seed, args.lines, args.held, args.takes, args.model, args.scorers, settings, args.best_of)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    sys.exit(main())
