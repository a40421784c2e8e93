"""The acceptance math: classical rejection sampling and the studio's keep rule.

Classical rejection sampling draws from a target p with a proposal q and an envelope M
(p(x) <= M q(x) everywhere): draw x ~ q, u ~ U(0, 1), accept when u <= p(x) / (M q(x)).
The accepted x are distributed exactly as p, and a proposal is accepted with probability
1/M (p and q normalised).

The studio keeps a generated candidate with score s in [0, 1] with probability

    P(accept) = min(1, exp(-(threshold - s) / temperature))

Temperature 0 is the hard threshold (keep iff s >= threshold); an infinite temperature
keeps everything.  When threshold >= every score, this *is* rejection sampling with the
model as proposal and M = exp(threshold / T) / Z: the kept set is an exact sample of the
model's distribution tilted by exp(s / T), p(x) exp(s(x) / T) / Z.  Best-of-n (the top k of
each prompt's candidates) is the other rule.

Everything is vectorised with numpy; nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from studio.errors import StudioError

DEFAULT_MAX_PROPOSALS = 10_000_000  # a guard against an envelope M far too loose
MAX_BATCH = 1_000_000  # proposals drawn at once: bounds memory, not results
ENVELOPE_RTOL = 1e-9  # p may exceed M q by float rounding where the envelope touches p


@dataclasses.dataclass(frozen=True)
class RejectionResult:
    """The n accepted samples and how many proposals it took to get them."""

    samples: np.ndarray  # exactly n accepted draws, in draw order
    proposals: int  # proposals up to and including the n-th acceptance
    acceptance_rate: float  # n / proposals; 1/M in expectation for normalised p and q


def _generator(rng: np.random.Generator | int) -> np.random.Generator:
    """A numpy Generator from a Generator or a non-negative integer seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise StudioError(f"The random seed must be a non-negative integer, not {rng}.")
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator or an integer seed, not {type(rng).__name__}")


def _acceptance_ratio(p: np.ndarray, q: np.ndarray, M: float) -> np.ndarray:
    """p(x) / (M q(x)): the probability of accepting a proposal x (at most 1 for a valid M)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return p / (M * q)


def _check_envelope(x: np.ndarray, p: np.ndarray, q: np.ndarray, M: float) -> None:
    """Raise when a drawn x shows p(x) > M q(x), or a density is not a finite number >= 0."""
    bad_value = ~np.isfinite(p) | ~np.isfinite(q) | (p < 0) | (q < 0)
    if bad_value.any():
        i = int(np.flatnonzero(bad_value)[0])
        raise StudioError(
            f"The densities must be finite and non-negative, but at x = {_show(x[i])} "
            f"the target gives {p[i]!r} and the proposal {q[i]!r}.")
    with np.errstate(over="ignore"):
        over = p > M * q * (1.0 + ENVELOPE_RTOL)
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise StudioError(
            f"The envelope is wrong: at x = {_show(x[i])} the target density {p[i]:.6g} exceeds "
            f"M times the proposal density ({M:.6g} * {q[i]:.6g} = {M * q[i]:.6g}); raise M.")


def _show(x: Any) -> str:
    return np.array2string(np.asarray(x), precision=6) if np.ndim(x) else f"{float(x):.6g}"


def rejection_sample(
    target_pdf: Callable[[np.ndarray], np.ndarray],
    proposal_sample: Callable[[np.random.Generator, int], np.ndarray],
    proposal_pdf: Callable[[np.ndarray], np.ndarray],
    M: float,
    n: int,
    rng: np.random.Generator | int,
    max_proposals: int = DEFAULT_MAX_PROPOSALS,
) -> RejectionResult:
    """Draw exactly n samples from target_pdf by classical rejection sampling.

    Rule: draw x ~ q (``proposal_sample(rng, size)``, samples along the first axis), u ~ U(0, 1),
    accept when u <= p(x) / (M q(x)).  The densities are evaluated on whole batches and need
    not be normalised; with normalised p and q the acceptance rate is 1/M.  Proposals are
    drawn in batches until n are accepted; the statistics count proposals as if they had been
    drawn one at a time (up to the n-th acceptance).  Any drawn x with p(x) > M q(x) means the
    envelope is wrong and raises StudioError, as does running out of ``max_proposals``.
    """
    M = _positive_finite(M, "The envelope M")
    n = _count(n, "The number of samples n")
    max_proposals = _count(max_proposals, "max_proposals")
    gen = _generator(rng)

    kept: list[np.ndarray] = []
    accepted = drawn = 0
    rate_guess = 1.0 / M  # exact for normalised densities; corrected by what is observed
    while accepted < n:
        if drawn >= max_proposals:
            raise StudioError(
                f"Rejection sampling accepted only {accepted} of {n} samples in {drawn} proposals "
                f"(max_proposals); tighten the envelope M or raise max_proposals.")
        want = math.ceil((n - accepted) / rate_guess * 1.1) + 16
        size = int(min(want, MAX_BATCH, max_proposals - drawn))
        x = np.asarray(proposal_sample(gen, size))
        if x.shape[:1] != (size,):
            raise StudioError(
                f"proposal_sample returned shape {x.shape} for a batch of {size}; "
                f"samples must lie along the first axis.")
        p = np.asarray(target_pdf(x), dtype=float).reshape(size)
        q = np.asarray(proposal_pdf(x), dtype=float).reshape(size)
        _check_envelope(x, p, q, M)
        u = gen.random(size)
        hits = np.flatnonzero(u <= _acceptance_ratio(p, q, M))
        take = hits[: n - accepted]
        kept.append(x[take])
        accepted += take.size
        # Sequential count: stop at the n-th acceptance, as the one-at-a-time algorithm would.
        drawn += (int(take[-1]) + 1) if accepted == n else size
        if accepted:
            rate_guess = max(accepted / drawn, 1.0 / MAX_BATCH)
    samples = np.concatenate(kept, axis=0)
    return RejectionResult(samples=samples, proposals=drawn, acceptance_rate=n / drawn)


def acceptance_probability(scores: Any, threshold: float, temperature: float) -> np.ndarray:
    """P(accept) = min(1, exp(-(threshold - s) / temperature)) for each score s.

    Temperature 0 is the hard threshold (1 where s >= threshold, else 0); an infinite
    temperature accepts everything.  When threshold >= every score, accepting the model's own
    samples with these probabilities is exact rejection sampling of the tilted distribution
    p(x) exp(s(x) / T) / Z (proposal = the model, M = exp(threshold / T) / Z).  Computed in the
    log domain and clipped at 0 before exp, so no temperature overflows.
    """
    s = _scores(scores)
    threshold = _threshold(threshold)
    temperature = _temperature(temperature)
    if temperature == 0.0:
        return (s >= threshold).astype(float)
    if math.isinf(temperature):
        return np.ones_like(s)
    with np.errstate(over="ignore", under="ignore"):
        log_p = np.minimum((s - threshold) / temperature, 0.0)
        return np.exp(log_p)


def accept(scores: Any, threshold: float, temperature: float,
           rng: np.random.Generator | int) -> np.ndarray:
    """A boolean mask: each score kept with acceptance_probability (u < P, u ~ U(0, 1)).

    The same scores, rule and seed give the same mask; scores of probability 1 are always
    kept and of probability 0 never.
    """
    prob = acceptance_probability(scores, threshold, temperature)
    u = _generator(rng).random(prob.shape)
    return u < prob


def best_of_n(scores: Any, groups: Sequence[Hashable], k: int) -> np.ndarray:
    """A boolean mask keeping the k highest scores of each group (a group = one prompt).

    Ties go to the earlier candidate; a group with k or fewer candidates is kept whole.
    """
    s = _scores(scores)
    if s.ndim != 1:
        raise StudioError(f"Best-of-n needs a flat list of scores, not an array of shape {s.shape}.")
    k = _count(k, "k (how many to keep per prompt)")
    labels = list(groups)
    if len(labels) != s.size:
        raise StudioError(f"Best-of-n got {s.size} scores but {len(labels)} group labels.")
    index: dict[Hashable, int] = {}
    group = np.fromiter((index.setdefault(g, len(index)) for g in labels), dtype=np.int64,
                        count=len(labels))
    if s.size == 0:
        return np.zeros(0, dtype=bool)
    # Sort by group, then score descending, then position: each group's best come first.
    order = np.lexsort((np.arange(s.size), -s, group))
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    sizes = np.diff(np.r_[starts, s.size])
    rank = np.arange(s.size) - np.repeat(starts, sizes)
    mask = np.zeros(s.size, dtype=bool)
    mask[order] = rank < k
    return mask


KEEP_RULES = ("all", "spread")  # what to do among the candidates the rule keeps


def spread(mask: Any, scores: Any, duplicates: Callable[[int, list[int]], bool]) -> np.ndarray:
    """Variety-aware keeping: the rule's kept candidates without near-duplicates.

    Walks the kept candidates from the best score down (ties: the earlier first) and drops
    each one that ``duplicates(i, kept_so_far)`` calls a near-duplicate of one already kept,
    so the kept set stays as varied as what the rule let through, and a tune on it has no
    reason to copy one example several times over.
    """
    keep = np.asarray(mask, dtype=bool).copy()
    s = _scores(scores)
    if keep.shape != s.shape:
        raise StudioError(f"Variety-aware keeping got {s.size} scores for {keep.size} decisions.")
    chosen: list[int] = []
    for i in np.lexsort((np.arange(s.size), -s)):
        if not keep[i]:
            continue
        if chosen and duplicates(int(i), chosen):
            keep[i] = False
        else:
            chosen.append(int(i))
    return keep


# -- validation: one clear sentence per mistake ------------------------------------------------

def _number(value: Any, what: str) -> float:
    if isinstance(value, (str, bytes)) or value is None:
        raise StudioError(f"{what} must be a number, not {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise StudioError(f"{what} must be a number, not {value!r}.") from None


def _scores(scores: Any) -> np.ndarray:
    try:
        s = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise StudioError("Scores must be numbers.") from None
    finite = np.isfinite(s)
    if not finite.all():
        i = int(np.flatnonzero(~finite.ravel())[0])
        raise StudioError(f"Scores must be finite numbers, but score #{i} is {s.ravel()[i]}.")
    return s


def _threshold(threshold: Any) -> float:
    t = _number(threshold, "The threshold")
    if not 0.0 <= t <= 1.0:
        raise StudioError(f"The threshold must be between 0 and 1, not {t}.")
    return t


def _temperature(temperature: Any) -> float:
    t = _number(temperature, "The temperature")
    if math.isnan(t) or t < 0.0:
        raise StudioError(f"The temperature must be 0 or more (0 is the hard threshold), not {t}.")
    return t


def _positive_finite(value: Any, what: str) -> float:
    v = _number(value, what)
    if not (math.isfinite(v) and v > 0.0):
        raise StudioError(f"{what} must be a positive finite number, not {v}.")
    return v


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise StudioError(f"{what} must be a whole number of at least 1, not {value!r}.")
    return int(value)
