"""What a text tune that runs on is made of, read from a loop's workspace (docs/objectives.md, stop 72).

For a workspace that ran ``studio loop text`` (a base batch, a tuned ``v1``, compare's held-out seeds), prints:

- per version and side (all, kept): how many texts, the share cut off at the length limit, the share that repeat
  a three-word run in more than a tenth of their runs, and the mean words;
- per kept and dropped text of the base batch: how far ``v1`` moved its end token's log-prob and the rest of it
  against the base (``--ends``; loads the model);
- compare's held-out texts of each version kept at the threshold by ``topic`` as scored, by ``topic`` times one
  minus the repeated share, and by ``topic`` halved for a text cut off (``--threshold``). Since stop 73 the stored
  ``topic`` has the repeated share in it already (its ``repetition`` option); the second way then counts it twice.

    python benchmarks/text_run_on.py WORKSPACE --threshold 0.956 --ends
"""
from __future__ import annotations

import argparse
import json
import re
import sqlite3
from collections import defaultdict
from pathlib import Path

from studio.media.text.metrics import repeated_share

HELD_OUT = 1_000_000  # compare's seeds start here (studio.settings.HELD_OUT_SEED)
KEPT = ("auto_accepted", "hand_accepted")


def _rows(workspace: Path) -> list[dict]:
    from studio.media.text.model import reached_limit

    db = sqlite3.connect(workspace / "studio.db")
    rows = []
    for cid, prompt, seed, version, decision, model, params, scores in db.execute(
            "select id, prompt, seed, version, decision, model, params, scores from candidates where medium = 'text'"):
        path = workspace / "media" / "text" / f"{cid}.txt"
        if not path.exists():
            continue
        text = path.read_text()
        rows.append({"prompt": prompt, "seed": seed, "version": version, "kept": decision in KEPT,
                     "decision": decision, "text": text, "model": model, "params": json.loads(params),
                     "cut": reached_limit(model, text, json.loads(params)), "scores": json.loads(scores)})
    return rows


def _shares(rows: list[dict]) -> None:
    groups = defaultdict(list)
    for row in rows:
        groups[row["version"]].append(row)
        if row["kept"]:
            groups[row["version"] + "/kept"].append(row)
    for name, group in sorted(groups.items()):
        words = sum(len(re.findall(r"[a-z']+", r["text"].lower())) for r in group) / len(group)
        print(f"{name:10s} n={len(group):3d} cut off {sum(r['cut'] for r in group) / len(group):.2f} "
              f"repeating {sum(repeated_share(r['text']) > 0.1 for r in group) / len(group):.2f} words {words:.1f}")


def _ends(workspace: Path, rows: list[dict]) -> None:
    import torch

    from studio.media.text.model import active, load
    from studio.media.text.prompting import example_ids

    decided = [r for r in rows if r["version"] == "base" and r["decision"] != "pending" and r["seed"] < HELD_OUT]
    handle = load(decided[0]["model"])
    adapter = str(workspace / "versions" / "text" / "v1" / "adapter")

    def log_probs(adapter_or_none, ids, counted):
        with active(handle, adapter_or_none) as model, torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
        values = logits[:-1].gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
        return values[torch.tensor(counted[1:])]

    for row in sorted(decided, key=lambda r: not r["kept"]):
        ids, counted = example_ids(handle.tokenizer, row["prompt"], row["text"], ended=not row["cut"])
        moved = log_probs(adapter, ids, counted) - log_probs(None, ids, counted)
        end = "cut off" if row["cut"] else f"end {float(moved[-1]):+.2f}"
        rest = moved if row["cut"] else moved[:-1]
        print(f"{'kept' if row['kept'] else 'dropped':8s} {end:12s} rest {float(rest.sum()):+7.2f} over "
              f"{len(rest)} tokens")


def _rescored(rows: list[dict], threshold: float) -> None:
    ways = {"topic": lambda r: r["scores"]["topic"],
            "topic x (1 - repeated)": lambda r: r["scores"]["topic"] * (1 - repeated_share(r["text"])),
            "topic, cut off halved": lambda r: r["scores"]["topic"] * (0.5 if r["cut"] else 1.0)}
    for version in sorted({r["version"] for r in rows}):
        held = [r for r in rows if r["version"] == version and r["seed"] >= HELD_OUT and "topic" in r["scores"]]
        for name, score in ways.items() if held else ():
            kept = [r for r in held if score(r) >= threshold]
            print(f"{version:6s} {name:24s} kept {len(kept) / len(held):.2f} of {len(held)} "
                  f"({sum(r['cut'] for r in kept)} cut off)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--threshold", type=float, help="compare's threshold: re-score its held-out texts")
    parser.add_argument("--ends", action="store_true", help="the end tokens' move under v1 (loads the model)")
    args = parser.parse_args(argv)
    rows = _rows(args.workspace)
    _shares(rows)
    if args.ends:
        _ends(args.workspace, rows)
    if args.threshold is not None:
        _rescored(rows, args.threshold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
