"""What the round benchmarks share: one torch thread per process, quiet libraries, one JSON line per run."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def run_args(parser: argparse.ArgumentParser, argv, table, setting_help: str) -> argparse.Namespace | None:
    """The benchmark's own options plus what every round benchmark takes (seeds, candidates, named settings,
    the runs file, its table), parsed and ready to run on one thread; None when ``--table`` asked for a runs
    file's rows (printed)."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("-n", type=int, default=32, help="candidates per round (and per side of the comparison)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=JSON", help=setting_help)
    parser.add_argument("--out", type=Path, help="append one JSON line per run to this runs file")
    parser.add_argument("--table", type=Path, help="print the markdown rows of a runs file")
    args = parser.parse_args(argv)
    if args.table:
        table(args.table)
        return None
    one_thread()
    return args


def named_settings(specs: list[str]) -> list[tuple[str, dict]]:
    """``NAME=JSON`` options as (name, settings); none given is one run of the defaults."""
    out = []
    for spec in specs or ["defaults={}"]:
        name, _, text = spec.partition("=")
        out.append((name, json.loads(text or "{}")))
    return out


def one_thread() -> None:
    """torch on OMP_NUM_THREADS threads (1 unless set: rounds run side by side on a shared machine), libraries quiet."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from studio.quiet import quiet_libraries

    quiet_libraries()


def record(row: dict, out: Path | None) -> None:
    """Print the run as one JSON line and append it to ``out`` (the runs file ``--table`` reads)."""
    line = json.dumps(row)
    print(line, flush=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as f:
            f.write(line + "\n")
