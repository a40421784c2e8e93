"""Concurrent generate requests on one studio: one after the other (the page before issue 21) against side by side
into the engine, which joins requests that share a model call (studio.coalesce); docs/page.md, "Several artists".

Each mode runs in a fresh workspace on the medium's built-in model, loaded and warmed by one generate first;
every request asks for ``-n`` candidates of the same prompt and settings, request i on seeds ``n*i ..``
(``--same-seeds``: every request on seeds 0..n-1, as fresh pages that keep the default seed).  Requests report
progress, as the page's do.  Prints one JSON line per mode: wall and CPU seconds (all threads; a shared machine's
load moves the wall time), model calls and their sizes, and how many candidates' files are byte for byte the ones
made one after the other.

    OMP_NUM_THREADS=1 python benchmarks/bench_concurrency.py image --requests 8 -n 4
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

PROMPTS = {"image": "a circle", "text": "a short sea poem, melancholy", "music": "a gentle lullaby in C major, 3/4",
           "voice": "Good morning, everyone."}


def run(medium: str, requests: int, n: int, same_seeds: bool, side_by_side: bool) -> dict:
    from studio import media
    from studio.engine import Studio

    with tempfile.TemporaryDirectory() as folder:
        studio = Studio(Path(folder) / "workspace")
        the_medium = media.get(medium)
        studio.generate(medium, "warm up", n=1, seed=10**6)  # the model loaded and warm, outside the figures
        sizes: list[int] = []
        plain = the_medium.generate

        def counted(handle, prompt, seeds, params, **kwargs):
            sizes.append(len(seeds))
            return plain(handle, prompt, seeds, params, **kwargs)

        the_medium.generate = counted
        try:
            out: list = [None] * requests

            def one(i: int) -> None:
                out[i] = studio.generate(medium, PROMPTS[medium], n=n, seed=0 if same_seeds else n * i,
                                         on_progress=lambda done, total: None)

            started, cpu = time.perf_counter(), time.process_time()
            if side_by_side:
                threads = [threading.Thread(target=one, args=(i,)) for i in range(requests)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            else:
                for i in range(requests):
                    one(i)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            del the_medium.generate
        files = {c.seed: Path(c.path).read_bytes() for made in out for c in made}
        return {"mode": "side by side, joined" if side_by_side else "one after the other", "medium": medium,
                "requests": requests, "n": n, "same_seeds": same_seeds, "seconds": round(seconds, 1),
                "cpu_seconds": round(cpu, 1),
                "model_calls": len(sizes), "call_sizes": sizes, "files": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("medium", choices=sorted(PROMPTS))
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--same-seeds", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="run both modes this many times, alternating")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    for _ in range(args.repeat):  # alternating, so a shared machine's load falls on both modes alike
        before = run(args.medium, args.requests, args.n, args.same_seeds, side_by_side=False)
        after = run(args.medium, args.requests, args.n, args.same_seeds, side_by_side=True)
        same = sum(after["files"][s] == data for s, data in before["files"].items())
        after["identical_files"] = f"{same} of {len(before['files'])}"
        for result in (before, after):
            result.pop("files")
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
