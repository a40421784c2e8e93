"""The acceptance math, checked statistically; the mutation tests show the checks have teeth."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from studio import sampling
from studio.errors import StudioError
from studio.sampling import accept, acceptance_probability, best_of_n, rejection_sample

M_NORMAL_CAUCHY = math.sqrt(2 * math.pi / math.e)  # sup N(0,1)/Cauchy, reached at x = +-1
P_MIN = 1e-3  # a correct sampler fails a check this rarely; the seeds are fixed anyway


def sample_normal_via_cauchy(n: int = 20_000, seed: int = 1234) -> sampling.RejectionResult:
    """The seeds' example: standard normal target, Cauchy proposal, M = sqrt(2 pi / e)."""
    return rejection_sample(stats.norm.pdf, lambda rng, size: rng.standard_cauchy(size),
                            stats.cauchy.pdf, M_NORMAL_CAUCHY, n, seed)


def normal_via_cauchy_failures(result: sampling.RejectionResult) -> list[str]:
    """What is wrong with a N(0,1)-from-Cauchy run: KS against N(0,1) and rate vs 1/M."""
    failures = []
    ks = stats.kstest(result.samples, "norm")
    if ks.pvalue <= P_MIN:
        failures.append(f"KS against N(0,1): p = {ks.pvalue:.3g}")
    expected = 1 / M_NORMAL_CAUCHY
    sigma = math.sqrt(expected * (1 - expected) / result.proposals)  # binomial standard error
    if abs(result.acceptance_rate - expected) > 4 * sigma:
        failures.append(f"acceptance rate {result.acceptance_rate:.4f}, expected "
                        f"{expected:.4f} +- {4 * sigma:.4f}")
    return failures


MODEL_P = np.array([0.30, 0.25, 0.20, 0.12, 0.08, 0.05])  # a small discrete "model"
MODEL_SCORES = np.array([0.05, 0.25, 0.45, 0.60, 0.80, 0.95])


def tilted_chisquare_pvalue(temperature: float, threshold: float = 1.0, n: int = 200_000,
                            seed: int = 7) -> float:
    """Chi-square p-value of the kept outcomes against p(x) exp(s(x)/T) / Z."""
    rng = np.random.default_rng(seed)
    outcomes = rng.choice(MODEL_P.size, size=n, p=MODEL_P)
    kept = outcomes[accept(MODEL_SCORES[outcomes], threshold, temperature, rng)]
    observed = np.bincount(kept, minlength=MODEL_P.size)
    tilted = MODEL_P * np.exp(MODEL_SCORES / temperature)
    expected = tilted / tilted.sum() * kept.size
    return float(stats.chisquare(observed, expected).pvalue)


# -- classical rejection sampling ---------------------------------------------------------------

def test_normal_from_cauchy_matches_target_and_rate():
    result = sample_normal_via_cauchy()
    assert result.samples.shape == (20_000,)
    assert normal_via_cauchy_failures(result) == []
    assert result.acceptance_rate == 20_000 / result.proposals


def test_acceptance_without_M_is_caught(monkeypatch):
    # Mutation: accept when u <= p/q (M forgotten) gives min(p, q)/Z, at the wrong rate.
    monkeypatch.setattr(sampling, "_acceptance_ratio", lambda p, q, M: p / q)
    failures = normal_via_cauchy_failures(sample_normal_via_cauchy())
    assert any("KS" in f for f in failures), failures
    assert any("acceptance rate" in f for f in failures), failures


def test_no_rejection_at_all_is_caught(monkeypatch):
    # Mutation: every proposal accepted -> Cauchy samples, rate 1.
    monkeypatch.setattr(sampling, "_acceptance_ratio", lambda p, q, M: np.ones_like(p))
    failures = normal_via_cauchy_failures(sample_normal_via_cauchy())
    assert len(failures) == 2, failures


def test_same_seed_same_samples_and_exactly_n():
    a, b = sample_normal_via_cauchy(n=777, seed=3), sample_normal_via_cauchy(n=777, seed=3)
    assert a.samples.shape == (777,)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.proposals == b.proposals
    assert not np.array_equal(a.samples, sample_normal_via_cauchy(n=777, seed=4).samples)


def test_two_dimensional_samples_disk_from_square():
    def disk_pdf(x):
        return (np.sum(x**2, axis=1) <= 1.0) / math.pi

    def square_pdf(x):
        return np.full(len(x), 0.25)

    result = rejection_sample(disk_pdf, lambda rng, size: rng.uniform(-1, 1, (size, 2)),
                              square_pdf, 4 / math.pi, 5_000, np.random.default_rng(0))
    assert result.samples.shape == (5_000, 2)
    assert np.all(np.sum(result.samples**2, axis=1) <= 1.0)
    sigma = math.sqrt(math.pi / 4 * (1 - math.pi / 4) / result.proposals)
    assert abs(result.acceptance_rate - math.pi / 4) < 4 * sigma


def test_wrong_envelope_names_the_x():
    # N(0, 0.5) is thinner than N(0, 1) in the tails: no M bounds the ratio.
    with pytest.raises(StudioError, match=r"envelope is wrong: at x = -?\d"):
        rejection_sample(stats.norm.pdf, lambda rng, size: rng.normal(0, 0.5, size),
                         lambda x: stats.norm.pdf(x, scale=0.5), 2.0, 100, 0)


def test_max_proposals_runs_out():
    with pytest.raises(StudioError, match=r"accepted only \d+ of 100 samples in 1000 proposals"):
        rejection_sample(lambda x: np.ones(len(x)), lambda rng, size: rng.random(size),
                         lambda x: np.ones(len(x)), 1000.0, 100, 0, max_proposals=1000)


def test_envelope_touching_target_accepts_everything():
    result = rejection_sample(lambda x: np.ones(len(x)), lambda rng, size: rng.random(size),
                              lambda x: np.ones(len(x)), 1.0, 500, 0)
    assert result.proposals == 500 and result.acceptance_rate == 1.0


@pytest.mark.parametrize("M, n, match", [
    (0.0, 10, "envelope M"), (-1.0, 10, "envelope M"), (float("nan"), 10, "envelope M"),
    (float("inf"), 10, "envelope M"), (2.0, 0, "number of samples"),
    (2.0, 1.5, "number of samples"), (2.0, True, "number of samples"),
])
def test_rejection_sample_bad_arguments(M, n, match):
    with pytest.raises(StudioError, match=match):
        rejection_sample(stats.norm.pdf, lambda rng, size: rng.standard_cauchy(size),
                         stats.cauchy.pdf, M, n, 0)


def test_nan_density_is_an_error():
    with pytest.raises(StudioError, match="finite and non-negative"):
        rejection_sample(lambda x: np.full(len(x), np.nan), lambda rng, size: rng.random(size),
                         lambda x: np.ones(len(x)), 1.0, 10, 0)


# -- the studio's keep rule ---------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_keep_rule_is_rejection_sampling_of_tilted_model(temperature):
    assert tilted_chisquare_pvalue(temperature) > P_MIN


def test_keep_rule_with_threshold_at_the_top_score():
    assert tilted_chisquare_pvalue(0.5, threshold=float(MODEL_SCORES.max())) > P_MIN


def test_temperature_ignored_is_caught(monkeypatch):
    real = sampling.acceptance_probability
    monkeypatch.setattr(sampling, "acceptance_probability",
                        lambda s, threshold, temperature: real(s, threshold, 1.0))
    assert tilted_chisquare_pvalue(0.2) < 1e-6


def test_untilted_keep_rule_is_caught(monkeypatch):
    # Mutation: accepting with probability s itself tilts by s, not exp(s/T).
    monkeypatch.setattr(sampling, "acceptance_probability",
                        lambda s, threshold, temperature: np.asarray(s, dtype=float))
    assert tilted_chisquare_pvalue(0.2) < 1e-6


def test_formula_values():
    p = acceptance_probability([0.2, 0.5, 0.8], 0.5, 0.1)
    np.testing.assert_allclose(p, [math.exp(-3.0), 1.0, 1.0])


def test_temperature_zero_is_the_hard_threshold():
    scores = np.array([0.0, 0.2, 0.4999, 0.5, 0.5001, 1.0])
    hard = scores >= 0.5
    np.testing.assert_array_equal(acceptance_probability(scores, 0.5, 0.0), hard.astype(float))
    for seed in range(5):
        np.testing.assert_array_equal(accept(scores, 0.5, 0, seed), hard)


def test_tiny_temperature_approaches_hard_threshold_without_warnings():
    scores = np.array([0.0, 0.4999, 0.5, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = acceptance_probability(scores, 0.5, 1e-300)
    np.testing.assert_array_equal(p, [0.0, 0.0, 1.0, 1.0])


def test_large_temperature_accepts_nearly_everything():
    scores = np.random.default_rng(0).random(10_000)
    assert acceptance_probability(scores, 1.0, 1e6).min() > 1 - 1e-5
    assert accept(scores, 1.0, 1e6, 0).mean() > 0.999
    assert accept(scores, 1.0, float("inf"), 0).all()


def test_accept_is_seeded():
    scores = np.random.default_rng(1).random(1000)
    a = accept(scores, 0.8, 0.1, 42)
    np.testing.assert_array_equal(a, accept(scores, 0.8, 0.1, np.random.default_rng(42)))
    assert a.dtype == bool and 0 < a.sum() < 1000
    assert not np.array_equal(a, accept(scores, 0.8, 0.1, 43))


# -- best of n ----------------------------------------------------------------------------------

def test_best_of_n_keeps_top_k_per_prompt():
    scores = [0.1, 0.9, 0.5, 0.5, 0.3, 0.7]
    groups = ["a", "a", "a", "b", "b", "b"]
    assert best_of_n(scores, groups, 2).tolist() == [False, True, True, True, False, True]


def test_best_of_n_ties_go_to_the_earlier():
    assert best_of_n([0.5, 0.5, 0.5, 0.4], [1, 1, 1, 1], 2).tolist() == [True, True, False, False]


def test_best_of_n_exactly_k_per_group_interleaved():
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 7, 400).tolist() + list(range(7)) * 3  # every group has >= 3
    scores = rng.random(len(groups)).round(2)  # rounding makes ties
    mask = best_of_n(scores, groups, 3)
    labels = np.array(groups)
    for g in range(7):
        mine = labels == g
        assert mask[mine].sum() == 3
        assert scores[mine & mask].min() >= scores[mine & ~mask].max()


def test_best_of_n_small_groups_are_kept_whole():
    assert best_of_n([0.1, 0.2, 0.3], ["x", 1, "x"], 5).all()
    assert best_of_n([], [], 1).shape == (0,)


# -- bad input: one clear sentence --------------------------------------------------------------

@pytest.mark.parametrize("scores, threshold, temperature, match", [
    ([0.1, float("nan")], 0.5, 1.0, "finite"),
    ([0.1, float("inf")], 0.5, 1.0, "finite"),
    ([0.1], 0.5, -0.1, "temperature"),
    ([0.1], 0.5, float("nan"), "temperature"),
    ([0.1], 1.5, 1.0, "threshold must be between 0 and 1"),
    ([0.1], -0.1, 1.0, "threshold must be between 0 and 1"),
    ([0.1], float("nan"), 1.0, "threshold must be between 0 and 1"),
    ([0.1], "high", 1.0, "threshold must be a number"),
    (["good"], 0.5, 1.0, "Scores must be numbers"),
])
def test_keep_rule_bad_input(scores, threshold, temperature, match):
    for call in (lambda: acceptance_probability(scores, threshold, temperature),
                 lambda: accept(scores, threshold, temperature, 0)):
        with pytest.raises(StudioError, match=match) as info:
            call()
        message = str(info.value)
        assert message.endswith(".") and "\n" not in message


@pytest.mark.parametrize("scores, groups, k, match", [
    ([0.1, 0.2], ["a", "a"], 0, "at least 1"),
    ([0.1, 0.2], ["a", "a"], 1.5, "at least 1"),
    ([0.1, float("nan")], ["a", "a"], 1, "finite"),
    ([0.1, 0.2], ["a"], 1, "2 scores but 1 group labels"),
])
def test_best_of_n_bad_input(scores, groups, k, match):
    with pytest.raises(StudioError, match=match):
        best_of_n(scores, groups, k)


def test_negative_seed_is_an_error():
    with pytest.raises(StudioError, match="seed"):
        accept([0.5], 0.5, 1.0, -1)
