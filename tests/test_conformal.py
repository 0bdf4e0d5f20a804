import math

import numpy as np
import pytest
from scipy.stats import binom

from segqual_lite import conformal as C


# ---- The finite-sample quantile ---------------------------------------------------------
def test_quantile_rule_hand_worked():
    # n = 4, alpha = 0.2: ceil(5 * 0.8) = 4 -> the 4th smallest, the largest.
    assert C.conformal_quantile([0.05, 0.3, 0.1, 0.2], 0.2) == 0.3
    # n = 9, alpha = 0.2: ceil(10 * 0.8) = 8 -> the 8th smallest, not the 9th.
    nine = np.array([9, 1, 8, 2, 7, 3, 6, 4, 5], float)
    assert C.conformal_quantile(nine, 0.2) == 8.0
    # n = 19, alpha = 0.1: ceil(20 * 0.9) = 18; the plain 90% quantile would interpolate.
    assert C.conformal_quantile(np.arange(1.0, 20.0), 0.1) == 18.0
    # (89 + 1) * 0.7 is 62.99999999999999 in floating point: still the 63rd.
    assert C.conformal_quantile(np.arange(1.0, 90.0), 0.3) == 63.0


def test_quantile_needs_enough_cases():
    with pytest.raises(ValueError, match=r"3 calibration cases are too few for alpha=0.2.*n >= 4"):
        C.conformal_quantile([0.1, 0.2, 0.3], 0.2)
    assert C.conformal_quantile(np.ones(4), 0.2) == 1.0  # n = 4 is enough
    with pytest.raises(ValueError, match="n >= 19"):
        C.conformal_quantile(np.ones(18), 0.05)
    for alpha in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            C.conformal_quantile(np.ones(50), alpha)


def test_calibrate_and_intervals_hand_worked():
    true_j = np.array([0.5, 0.8, 0.9, 0.6])
    pred_j = np.array([0.6, 0.7, 0.95, 0.6])  # residuals 0.1, 0.1, 0.05, 0
    cal = C.calibrate(true_j, pred_j, alpha=0.2)
    assert (cal.n, cal.normalized) == (4, False)
    assert cal.quantile == pytest.approx(0.1)
    lower, upper = C.conformal_intervals(cal, np.array([0.95, 0.05, 0.5]))
    np.testing.assert_allclose(lower, [0.85, 0.0, 0.4])  # clipped at 0
    np.testing.assert_allclose(upper, [1.0, 0.15, 0.6])  # clipped at 1

    sigma = np.array([0.2, 0.1, 0.1, 0.5])  # normalised scores 0.5, 1, 0.5, 0
    cal = C.calibrate(true_j, pred_j, alpha=0.2, sigma=sigma, eps=0.0)
    assert cal.quantile == pytest.approx(1.0)
    lower, upper = C.conformal_intervals(cal, np.array([0.5, 0.5]), sigma=np.array([0.2, 0.05]))
    np.testing.assert_allclose(lower, [0.3, 0.45])
    np.testing.assert_allclose(upper, [0.7, 0.55])


def test_intervals_refuse_a_missing_or_unexpected_sigma():
    true_j, pred_j = np.linspace(0, 1, 20), np.linspace(0.1, 0.9, 20)
    plain = C.calibrate(true_j, pred_j)
    normalised = C.calibrate(true_j, pred_j, sigma=np.ones(20))
    with pytest.raises(ValueError, match="needs an uncertainty score sigma"):
        C.conformal_intervals(normalised, pred_j)
    with pytest.raises(ValueError, match="calibrated without an uncertainty score"):
        C.conformal_intervals(plain, pred_j, sigma=np.ones(20))
    with pytest.raises(ValueError, match="one uncertainty score per case"):
        C.calibrate(true_j, pred_j, sigma=np.ones(3))
    with pytest.raises(ValueError, match=">= 0"):
        C.calibrate(true_j, pred_j, sigma=-np.ones(20))


# ---- Coverage on exchangeable data ------------------------------------------------------
def synthetic(rng, n, normalised):
    """Exchangeable (true, predicted, sigma) triples; with ``normalised`` the error scale
    varies from case to case and sigma knows it."""
    true_j = rng.uniform(0, 1, n)
    sigma = rng.uniform(0.02, 0.3, n) if normalised else np.full(n, 0.1)
    return true_j, true_j + sigma * rng.standard_normal(n), sigma


@pytest.mark.parametrize("normalised", [False, True])
def test_coverage_is_in_the_binomial_band_around_its_exact_value(normalised):
    """With continuous scores, one test case is covered with probability exactly
    rank / (n + 1), rank = ceil((n + 1)(1 - alpha)), which is >= 1 - alpha. Over R
    independent repetitions (a fresh calibration set and test case each) the number
    covered is Binomial(R, rank / (n + 1)): it must fall in that law's central 99.9%."""
    n, alpha, reps = 30, 0.1, 4000
    exact = math.ceil((n + 1) * (1 - alpha)) / (n + 1)  # 28 / 31
    assert exact >= 1 - alpha
    rng = np.random.default_rng(2024 + normalised)
    covered = 0
    for _ in range(reps):
        true_j, pred_j, sigma = synthetic(rng, n + 1, normalised)
        s = sigma[:n] if normalised else None
        cal = C.calibrate(true_j[:n], pred_j[:n], alpha, sigma=s)
        lower, upper = C.conformal_intervals(
            cal, pred_j[n:], sigma=sigma[n:] if normalised else None
        )
        covered += int(C.coverage(true_j[n:], lower, upper))
    low, high = binom.interval(0.999, reps, exact)
    assert low <= covered <= high, (covered / reps, exact)


def test_normalised_intervals_adapt_their_width():
    rng = np.random.default_rng(7)
    true_j, pred_j, sigma = synthetic(rng, 2000, normalised=True)
    cal = C.calibrate(true_j[:1000], pred_j[:1000], 0.1, sigma=sigma[:1000])
    lower, upper = C.conformal_intervals(cal, pred_j[1000:], sigma=sigma[1000:])
    width = upper - lower
    assert C.coverage(true_j[1000:], lower, upper) == pytest.approx(0.9, abs=0.03)
    sure, unsure = sigma[1000:] < 0.1, sigma[1000:] > 0.2
    assert width[sure].mean() < 0.5 * width[unsure].mean()


# ---- The acceptance policy --------------------------------------------------------------
def test_policy_hand_worked():
    true_j = np.array([0.9, 0.6, 0.8, 0.69])
    lower = np.array([0.75, 0.7, 0.5, 0.69])  # accepts cases 0 and 1 (0.7 is accepted)
    upper = np.array([1.0, 0.9, 0.7, 0.8])
    assert C.accepted_share(lower) == 0.5
    assert C.accepted_failure_share(true_j, lower) == 0.5  # case 1 fails
    assert C.summarize_intervals(true_j, lower, upper) == {
        "coverage": 0.5,  # cases 0 and 3 (ends included); 0.6 < 0.7, 0.8 > 0.7
        "mean_width": pytest.approx(np.mean([0.25, 0.2, 0.2, 0.11])),
        "automation_rate": 0.5,
        "accepted_failures": 0.5,
    }
    assert tuple(C.summarize_intervals(true_j, lower, upper)) == C.CONFORMAL_METRICS


def test_policy_with_nothing_accepted():
    true_j = np.array([0.9, 0.3])
    lower = np.array([0.6, 0.1])
    assert C.accepted_share(lower) == 0.0
    assert C.accepted_failure_share(true_j, lower) == 0.0


def test_interval_checks():
    with pytest.raises(ValueError, match="lower > upper"):
        C.mean_width(np.array([0.5]), np.array([0.4]))
    with pytest.raises(ValueError, match="1-D of one length"):
        C.coverage(np.ones(2), np.zeros(2), np.ones(3))


def test_coverage_band_centres_on_the_beta_mean_and_narrows_with_more_cases():
    from segqual_lite.conformal import coverage_band

    expected, low, high = coverage_band(60, 300, 0.1)
    assert expected == pytest.approx(55 / 61)
    assert low < expected < high and 0.75 < low and high < 1
    _, low2, high2 = coverage_band(2000, 20_000, 0.1)
    assert high2 - low2 < (high - low) / 3
    with pytest.raises(ValueError, match="too few"):
        coverage_band(5, 300, 0.1)
