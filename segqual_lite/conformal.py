"""Split conformal intervals for the predicted Jaccard index (chapter 12).

A quality network predicts one number per segmentation; a reader deciding whether to
trust it wants an interval that holds the true Jaccard with a stated probability.
**Split conformal prediction** (Vovk et al. 2005; Angelopoulos & Bates, "A Gentle
Introduction to Conformal Prediction and Distribution-Free Uncertainty
Quantification", 2021, section 1) gives one with no assumption on g beyond
exchangeability of the calibration and test cases; Wundram et al. (2024) do it for
the Dice score of segmentations ("Conformal performance range prediction for
segmentation output quality control", UNSURE 2024).

1. On n calibration cases with true Jaccard ``J_i`` and prediction ``Ĵ_i``, take the
   scores ``s_i = |J_i - Ĵ_i|`` (or ``|J_i - Ĵ_i| / (σ_i + ε)`` when each case has an
   uncertainty score ``σ_i``: the *normalised* form, Angelopoulos & Bates's
   "conformalizing scalar uncertainty estimates").
2. q̂ is the ⌈(n+1)(1-α)⌉-th smallest score (:func:`conformal_quantile`).
3. A new case gets ``[Ĵ - q̂, Ĵ + q̂]`` (or ``Ĵ ± q̂·(σ + ε)``), clipped to [0, 1].

Then ``P(J ∈ interval) >= 1 - α`` over the draw of the calibration and test cases, and
at most ``1 - α + 1/(n+1)`` when the scores have no ties. Clipping never loses
coverage: J lies in [0, 1]. The calibration cases must not be those g was trained on
(its residuals there are optimistic): hold out part of the test split, or cross-fit.

The **acceptance policy** accepts a segmentation automatically when the interval's
lower end is at least the failure threshold (0.7): its automation rate is the share
accepted (:func:`accepted_share`), and its cost the share of failures among the
accepted (:func:`accepted_failure_share`). Coverage bounds the failures accepted among
*all* cases by α; among the accepted they may be a larger share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .metrics import FAILURE_THRESHOLD, _as_numpy, _check_pair

__all__ = [
    "CONFORMAL_METRICS",
    "ConformalCalibration",
    "min_calibration",
    "conformal_quantile",
    "calibrate",
    "conformal_intervals",
    "coverage",
    "mean_width",
    "accepted_share",
    "accepted_failure_share",
    "summarize_intervals",
    "coverage_band",
]

CONFORMAL_METRICS = ("coverage", "mean_width", "automation_rate", "accepted_failures")


@dataclass(frozen=True)
class ConformalCalibration:
    """What :func:`calibrate` learned: the miscoverage ``alpha``, the quantile ``q̂`` of
    the calibration scores, their number ``n``, whether the scores were normalised by
    an uncertainty score, and the ``eps`` added to it."""

    alpha: float
    quantile: float
    n: int
    normalized: bool
    eps: float


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha is the miscoverage rate, strictly between 0 and 1; got {alpha}")


def _rank(n: int, alpha: float) -> int:
    """⌈(n+1)(1-α)⌉: which smallest of n calibration scores is the conformal quantile
    (the tolerance absorbs float rounding)."""
    return math.ceil((n + 1) * (1 - alpha) - 1e-9)


def min_calibration(alpha: float) -> int:
    """The fewest calibration cases for which :func:`conformal_quantile` at ``alpha``
    exists: ⌈(1 - α)/α⌉ (9 for 90% coverage)."""
    _check_alpha(alpha)
    return math.ceil((1 - alpha) / alpha - 1e-9)


def conformal_quantile(scores, alpha: float) -> float:
    """The ⌈(n+1)(1-α)⌉-th smallest of n calibration scores: the finite-sample quantile
    of split conformal prediction (Angelopoulos & Bates 2021, section 1), no interpolation.

    Raises ValueError when n is too small for α, i.e. ⌈(n+1)(1-α)⌉ > n (n < 1/α - 1):
    no finite interval then covers with probability 1 - α.
    """
    _check_alpha(alpha)
    s = _as_numpy(scores).astype(np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"calibration scores must be a non-empty 1-D array, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("calibration scores contain NaN or inf")
    n = s.size
    rank = _rank(n, alpha)
    if rank > n:
        needed = min_calibration(alpha)
        raise ValueError(
            f"{n} calibration cases are too few for alpha={alpha}: the conformal quantile "
            f"is the ceil((n+1)(1-alpha)) = {rank}-th smallest score, so it needs "
            f"n >= {needed}; calibrate on more cases or raise alpha"
        )
    return float(np.partition(s, rank - 1)[rank - 1])


def _check_sigma(sigma, n: int) -> np.ndarray:
    s = _as_numpy(sigma).astype(np.float64)
    if s.shape != (n,):
        raise ValueError(
            f"sigma must hold one uncertainty score per case ({n}), got shape {s.shape}"
        )
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("sigma must be finite and >= 0 (an uncertainty score, not a quality)")
    return s


def calibrate(
    true_j, pred_j, alpha: float = 0.1, sigma=None, eps: float = 1e-6
) -> ConformalCalibration:
    """Calibrate split conformal intervals on held-out (true, predicted) Jaccard pairs.

    The scores are the absolute residuals ``|J - Ĵ|``, divided by ``sigma + eps`` when an
    uncertainty score ``sigma`` (>= 0, one per case; e.g. an image score of
    :mod:`segqual_lite.scores`) is given; ``q̂`` is :func:`conformal_quantile`. Chapter 12.
    """
    t, p = _check_pair(true_j, pred_j)
    scores = np.abs(t - p)
    if sigma is not None:
        scores = scores / (_check_sigma(sigma, t.size) + eps)
    return ConformalCalibration(
        alpha=float(alpha),
        quantile=conformal_quantile(scores, alpha),
        n=int(t.size),
        normalized=sigma is not None,
        eps=float(eps),
    )


def conformal_intervals(
    calibration: ConformalCalibration, pred_j, sigma=None
) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` for each predicted Jaccard: ``Ĵ ± q̂``, or ``Ĵ ± q̂·(σ + ε)`` for a
    normalised calibration (then ``sigma`` is required), clipped to [0, 1]. Chapter 12."""
    p = _as_numpy(pred_j).astype(np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)):
        raise ValueError(f"predicted Jaccard must be a finite 1-D array, got shape {p.shape}")
    if calibration.normalized != (sigma is not None):
        need = "needs" if calibration.normalized else "was calibrated without"
        raise ValueError(
            f"this calibration {need} an uncertainty score sigma: pass sigma exactly "
            "when calibrate() was given one"
        )
    half = calibration.quantile
    if sigma is not None:
        half = half * (_check_sigma(sigma, p.size) + calibration.eps)
    return np.clip(p - half, 0.0, 1.0), np.clip(p + half, 0.0, 1.0)


def _check_intervals(lower, upper) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _as_numpy(lower).astype(np.float64), _as_numpy(upper).astype(np.float64)
    if lo.shape != hi.shape or lo.ndim != 1:
        raise ValueError(
            f"lower and upper must be 1-D of one length, got {lo.shape} and {hi.shape}"
        )
    if np.any(lo > hi):
        raise ValueError("an interval has lower > upper: pass (lower, upper) in that order")
    return lo, hi


def coverage(true_j, lower, upper) -> float:
    """Share of cases whose true Jaccard lies in its interval, ends included."""
    lo, hi = _check_intervals(lower, upper)
    t, _ = _check_pair(true_j, lo)
    return float(np.mean((lo <= t) & (t <= hi)))


def mean_width(lower, upper) -> float:
    """Mean of ``upper - lower`` over the cases (a fraction of the Jaccard scale)."""
    lo, hi = _check_intervals(lower, upper)
    return float(np.mean(hi - lo))


def accepted_share(lower, threshold: float = FAILURE_THRESHOLD) -> float:
    """Automation rate of the policy "accept when the interval's lower end >= threshold":
    the share of all cases accepted without review."""
    lo = _as_numpy(lower).astype(np.float64)
    if lo.ndim != 1 or lo.size == 0:
        raise ValueError(f"lower must be a non-empty 1-D array, got shape {lo.shape}")
    return float(np.mean(lo >= threshold))


def accepted_failure_share(true_j, lower, threshold: float = FAILURE_THRESHOLD) -> float:
    """Among the cases the policy accepts (lower end >= threshold), the share whose true
    Jaccard is below the threshold: failures let through. 0 when nothing is accepted
    (no case was let through; the automation rate of 0 tells that story), as the false
    discovery rate is 0 without discoveries (Benjamini & Hochberg 1995)."""
    t, lo = _check_pair(true_j, lower)
    accepted = lo >= threshold
    if not accepted.any():
        return 0.0
    return float(np.mean(t[accepted] < threshold))


def summarize_intervals(
    true_j, lower, upper, threshold: float = FAILURE_THRESHOLD
) -> dict[str, float]:
    """The four numbers of a conformal row, keyed as in :data:`CONFORMAL_METRICS`:
    coverage, mean width, automation rate and accepted failures, all fractions."""
    return {
        "coverage": coverage(true_j, lower, upper),
        "mean_width": mean_width(lower, upper),
        "automation_rate": accepted_share(lower, threshold),
        "accepted_failures": accepted_failure_share(true_j, lower, threshold),
    }


def coverage_band(
    n_calibration: int, n_test: int, alpha: float, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """What one run's empirical coverage should look like: ``(expected, low, high)``.

    Over the draw of the calibration cases, the coverage of split conformal intervals
    (continuous scores, no ties) follows Beta(r, n + 1 - r) with r = ⌈(n+1)(1-α)⌉, mean
    r / (n + 1) (Angelopoulos & Bates 2021, section 3.2); the share covered among
    ``n_test`` test cases adds binomial noise. ``low``, ``high``: the central ``level``
    range of 100 000 simulated runs (seeded). Chapter 12."""
    if n_calibration < min_calibration(alpha):
        raise ValueError(
            f"{n_calibration} calibration cases are too few for alpha={alpha} "
            f"(at least {min_calibration(alpha)})"
        )
    a = _rank(n_calibration, alpha)
    b = n_calibration + 1 - a
    rng = np.random.default_rng(seed)
    runs = rng.binomial(n_test, rng.beta(a, b, 100_000)) / n_test
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(runs, [tail, 100 - tail])
    return a / (n_calibration + 1), float(low), float(high)
