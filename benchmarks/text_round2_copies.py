"""Whose copies a second text round's are: the suite's two rounds on one run, then v1 and v2 on the same held-out
seeds, each counted against round 2's keeps (what v2 learned) and round 1's, with the keeps and the copying texts.

    OMP_NUM_THREADS=1 python benchmarks/text_round2_copies.py --scorer topic --seed 33 --round2 '{"lr": 0.0003}'

The simulated artist is eval_suite.py's with ``--builtin`` (keeps the top quarter and drops the bottom quarter by
the named built-in scorer; with ``--eval`` the eval scorer of that name, eval_suite.py without ``--builtin``, to
read a suite run's copies, never to choose); each keep is printed with how many other candidates of its own batch copy it (a keep
the version writes again and again is one of its modes).
"""
from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np

from eval_suite import HELD_OUT, PROMPTS, artist  # beside this script


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scorer", default="topic")
    parser.add_argument("--seed", type=int, default=33)
    parser.add_argument("-n", type=int, default=16)
    parser.add_argument("--round2", default="{}", help="tune settings of the second round (JSON)")
    parser.add_argument("--eval", action="store_true", help="the artist judges with the eval scorer of that name")
    args = parser.parse_args(argv)

    from studio.engine import Studio
    from studio.media.text.embedding import candidate_text

    prompt, n, seed = PROMPTS["text"], args.n, args.seed
    with tempfile.TemporaryDirectory() as ws:
        studio = Studio(ws)
        judge = artist(studio, "text", args.scorer, not args.eval, seed)
        versions, version = [], "base"
        for r, settings in enumerate(({}, json.loads(args.round2))):  # eval_suite.run_one's rounds
            seeds = list(range(1000 * seed + r * n, 1000 * seed + (r + 1) * n))
            cands = studio.generate("text", prompt, seeds=seeds, version=version)
            order = np.argsort(-np.array(judge(cands)), kind="stable")
            quarter = max(1, n // 4)
            studio.curate("text", accept=[cands[i].id for i in order[:quarter]],
                          reject=[cands[i].id for i in order[-quarter:]], apply_rule=False)
            version = studio.tune("text", from_version=version, settings=settings)["version"]
            versions.append(version)
        medium = studio.medium("text")
        kept = [studio.kept_set("text", v) for v in versions]
        handle = studio.handle("text", kept[0][0].model)
        for number, keeps in enumerate(kept, 1):
            print(f"round {number}'s keeps (other candidates of the batch that copy each):")
            for k in keeps:
                others = [c for c in studio.store.candidates("text", batch=k.batch) if c.id != k.id]
                print(f"  {sum(medium.copies(handle, others, [k]))}  {candidate_text(k)!r}")
        for v in versions:
            result = studio.compare("text", after=v, prompt=prompt, n=n, seed=HELD_OUT + 1000 * seed,
                                    threshold=0.5, temperature=0.0)
            texts = studio.store.candidates("text", ids=result["after"]["candidates"])
            shares = [float(np.mean(medium.copies(handle, texts, keeps))) for keeps in kept]
            print(f"{v} on held-out seeds: copies of round 1's keeps {shares[0]:.3f}, of round 2's {shares[1]:.3f}")
            for number, keeps in enumerate(kept, 1):
                for c, hit in zip(texts, medium.copies(handle, texts, keeps)):
                    if hit:
                        print(f"  copies a round-{number} keep: {candidate_text(c)!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
