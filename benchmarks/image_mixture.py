"""A diagnosis, not a feature: would a mixture of tunes keep the kept set's variety where one tune narrows?

One rule's-protocol round (``ablate_round.py``: "a circle", 32 candidates on seeds ``1000*s ..``, the upper
quartile kept by a built-in scorer, one tune, base vs tuned on held-out seeds), then the kept set split in
``--parts`` by its looks (k-means on the variety measure's 8x8 colours) and one tune per part, each learning its
part of the keeps and all the drops.  The mixture draws the held-out seeds from the parts' tunes, each seed
from one tune, each tune a run of seeds in proportion to its part's size.  Both are judged as the protocol judges
one tune: the share over the base's upper quartile (against best of 2 from the base) and variety against the whole
kept set.

    python benchmarks/image_mixture.py sharpness --seeds 0 1 2 --out runs.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

PROMPT = "a circle"


def parts_of(features: np.ndarray, k: int, seed: int = 0) -> list[int]:
    """k-means (cosine, on unit rows) labels for the kept pictures, started from k of them."""
    rows = features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-9)
    rng = np.random.default_rng(seed)
    centres = rows[rng.choice(len(rows), k, replace=False)]
    for _ in range(50):
        labels = np.argmax(rows @ centres.T, axis=1)
        new = np.stack([rows[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(k)])
        new /= np.linalg.norm(new, axis=1, keepdims=True).clip(1e-9)
        if np.allclose(new, centres):
            break
        centres = new
    return labels.tolist()


def run_one(scorer: str, seed: int, k: int) -> dict:
    from studio.engine import HELD_OUT_SEED, Studio
    from studio.media.image.scorers import image_features

    with tempfile.TemporaryDirectory() as ws:
        st = Studio(ws)
        one = st.loop("image", PROMPT, scorers=[scorer], temperature=0.0, n=32, seed=1000 * seed)
        threshold, held = one["threshold"], st.held_out_seeds("image", PROMPT, 32, HELD_OUT_SEED + 1000 * seed)
        kept = [c for c in st.store.candidates("image", purpose="curate") if c.decision == "auto_accepted"]
        labels = parts_of(image_features(kept), k)
        medium = st.medium("image")
        kept_variety = medium.diversity(None, kept)
        versions = []
        for j in range(k):  # a tune per part: its keeps kept, the other keeps undecided, every drop a drop
            st.store.set_decisions({c.id: "auto_accepted" if labels[i] == j else "pending"
                                    for i, c in enumerate(kept)})
            versions.append(st.tune("image", from_version="base")["version"])
        st.store.set_decisions({c.id: "auto_accepted" for c in kept})
        sizes = np.bincount(labels, minlength=k)
        owner = np.repeat(np.arange(k), np.round(sizes / sizes.sum() * len(held)).astype(int))[:len(held)]
        owner = np.concatenate([owner, np.full(len(held) - len(owner), k - 1)]).astype(int)
        drawn = []
        for j, version in enumerate(versions):
            seeds = [s for s, o in zip(held, owner) if o == j]
            if seeds:
                drawn += st.generate("image", PROMPT, seeds=seeds, version=version, purpose="compare")
        scores = np.asarray(st.score("image", drawn, [scorer]))

        mixture = {"after": float(np.mean(scores >= threshold)), "variety_vs_kept":
                   medium.diversity(None, drawn) / kept_variety if kept_variety else None}
    before, after = one["before"], one["after"]
    return {"scorer": scorer, "seed": seed, "parts": k, "part_sizes": sizes.tolist(), "kept": len(kept),
            "before": before["acceptance_rate"], "best_of_2": one["best_of_n_base"]["acceptance_rate"],
            "one_tune": {"after": after["acceptance_rate"], "variety_vs_kept": after["variety_vs_kept"],
                         "copies": after["copies"]},
            "mixture": mixture}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scorer")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parts", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for seed in args.seeds:
        row = run_one(args.scorer, seed, args.parts)
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
