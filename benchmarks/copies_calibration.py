"""How often the copy tests flag independent base samples (base against base), per medium.

For each prompt: 64 base candidates of the built-in model, split 4 times at random into a "kept"
set of 16 (and of 32) and the rest as candidates; the share of candidates flagged as copies of the
kept set is the test's false-positive rate (docs/copies.md).  With --tuned, one text round (keep the
top quarter by the default scorer, tune, 32 new seeds) shows what the tests flag on a tuned version.

    OMP_NUM_THREADS=1 python benchmarks/copies_calibration.py [text music image voice] [--tuned]
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile

import numpy as np

PROMPTS = {
    "text": ["a poem about the sea", "a haiku about the first snow", "a short poem about fire",
             "a song about leaving home"],
    "music": ["a slow gentle lullaby", "a happy dance tune", "a sad waltz", "a four-part chorale in G major",
              "a gentle lullaby in C major, 3/4"],
    "image": ["a circle", "a red star on a blue sky"],
    "voice": ["The quick brown fox jumps over the lazy dog.", "A gentle breeze moved through the tall grass.",
              "Where is the nearest station?"],
}
SAMPLES, SPLITS, KEPT = 64, 4, (16, 32)


def false_positives(studio, medium: str) -> dict[str, dict[int, float]]:
    the_medium = studio.medium(medium)
    out = {}
    for prompt in PROMPTS[medium]:
        cands = studio.generate(medium, prompt, n=SAMPLES, seed=0)
        handle = studio.handle(medium, cands[0].model)
        rates = {}
        for k in KEPT:
            flagged = []
            for split in range(SPLITS):
                order = list(range(SAMPLES))
                random.Random(split).shuffle(order)
                kept, rest = [cands[i] for i in order[:k]], [cands[i] for i in order[k:]]
                flagged.append(float(np.mean(the_medium.copies(handle, rest, kept))))
            rates[k] = round(float(np.mean(flagged)), 4)
        out[prompt] = rates
        print(medium, prompt, rates, flush=True)
    return out


def tuned_text(studio) -> dict[str, float]:
    from studio.variety import shares_run, words

    prompt = PROMPTS["text"][0]
    studio.generate("text", prompt, n=32, seed=0)
    studio.curate("text", top=0.25, temperature=0.0, keep="all")
    version = studio.tune("text")["version"]
    kept = studio.kept_set("text", version)
    after = studio.generate("text", prompt, n=32, seed=10_000, version=version)
    text = lambda c: open(c.path, encoding="utf-8").read()  # noqa: E731
    handle = studio.handle("text", after[0].model)
    new = studio.medium("text").copies(handle, after, kept)
    old = shares_run([words(text(c)) for c in after], [words(text(k)) for k in kept])
    return {"kept": len(kept), "copies_new_test": float(np.mean(new)), "copies_8_word_run": float(np.mean(old))}


def main() -> None:
    import torch

    from studio.engine import Studio

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("media", nargs="*", default=list(PROMPTS))
    parser.add_argument("--tuned", action="store_true")
    args = parser.parse_args()
    studio = Studio(tempfile.mkdtemp(prefix="copies-"))
    result = {m: false_positives(studio, m) for m in args.media}
    if args.tuned:
        result["text_tuned"] = tuned_text(studio)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
