"""What one run's checks can say: the chance that issue 20's lift and best-of-2 targets pass on one run, given the
true share over the artist's bar of the base (``--base``, 0.25 for a bar at the upper quartile) and of the tuned
version, when each side is ``n`` held-out candidates (16 for text and voice on the suite, 32 for pictures and music).

Exact, not sampled: the base's ``n`` candidates form ``n / 2`` pairs (best of 2 reads them so), so the base side is
the multinomial count of pairs with two, one or no candidate over the bar, and the tuned side a binomial; the targets
are ``eval_suite.targets``.  A medium meets the bar when 80% of its runs pass, so the last column is what a tune's
true share must be for one run to pass both checks that often.

    python benchmarks/check_power.py --n 16 32
"""
from __future__ import annotations

import argparse
import sys
from math import comb, factorial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_suite import targets  # noqa: E402


def pass_rates(base: float, tuned: float, n: int) -> dict[str, float]:
    """The chance that lift, best-of-2, and both pass on one run (exact), ``n`` candidates a side (even)."""
    pairs = n // 2
    both, none_ = base * base, (1 - base) * (1 - base)
    tuned_odds = [comb(n, k) * tuned ** k * (1 - tuned) ** (n - k) for k in range(n + 1)]
    out = {"lift": 0.0, "best_of_2": 0.0, "both": 0.0}
    for two in range(pairs + 1):
        for one in range(pairs - two + 1):
            zero = pairs - two - one
            p = (factorial(pairs) / (factorial(two) * factorial(one) * factorial(zero))
                 * both ** two * (2 * base * (1 - base)) ** one * none_ ** zero)
            if p == 0.0:
                continue
            b, best2 = (2 * two + one) / n, (two + one) / pairs
            for k, q in enumerate(tuned_odds):
                met = targets(k / n, b, best2, 1.0, 0.0)
                out["lift"] += p * q * met["lift"]
                out["best_of_2"] += p * q * met["best_of_2"]
                out["both"] += p * q * (met["lift"] and met["best_of_2"])
    return out


def needed(base: float, n: int, share: float = 0.8, step: float = 0.01) -> float:
    """The least true tuned share (to ``step``) at which one run passes lift and best-of-2 ``share`` of the time."""
    tuned = base
    while tuned < 1.0 and pass_rates(base, tuned, n)["both"] < share:
        tuned = round(tuned + step, 10)
    return min(tuned, 1.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[16, 32], help="held-out candidates a side (even)")
    parser.add_argument("--base", type=float, default=0.25, help="the base's true share over the bar")
    parser.add_argument("--tuned", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    args = parser.parse_args(argv)
    print("| candidates a side | tuned share (true) | lift passes | best-of-2 passes | both | both in 80% of runs at |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in args.n:
        at = needed(args.base, n)
        for tuned in args.tuned:
            r = pass_rates(args.base, tuned, n)
            print(f"| {n} | {args.base:.2f} -> {tuned:.2f} | {r['lift']:.2f} | {r['best_of_2']:.2f} | {r['both']:.2f} "
                  f"| {at:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
