"""How many seeds a comparison needs, by simulation (chapters 08 and 10; the analysis
plan, ``book/analysis_plan.md``): how often an interval of :mod:`segqual_lite.stats`
covers the true improvement (:func:`simulate_coverage`), how often it resolves a given
one (:func:`power`), and, from a reference run's seeds, how often k of them would
(:func:`power_curve`). Per-seed improvements are simulated with two spreads, the
training runs' (per seed) and the test images' (shared by every seed of a run). And how
often a healthy build on another CPU fails the reference check, and how often a broken
row is caught (:func:`simulate_build_check`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .reference import FAMILY_ALPHA, prediction_interval
from .stats import Comparison, t_half_width

__all__ = [
    "bootstrap_interval",
    "simulate_coverage",
    "power",
    "power_curve",
    "simulate_build_check",
]


def bootstrap_interval(
    per_seed, image_sd: float, level: float = 0.95, n_boot: int = 1000, rng=None
) -> tuple[float, float]:
    """The book's former interval, for comparison (chapter 08): a percentile bootstrap
    over the seeds, each drawn seed moved by its own test-image noise of sd
    ``image_sd`` (the two-level bootstrap of the previous editions, in summary form)."""
    rng = np.random.default_rng(rng)
    d = np.asarray(list(per_seed), float)
    k = len(d)
    drawn = d[rng.integers(0, k, size=(n_boot, k))] + rng.normal(0, image_sd, (n_boot, k))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(drawn.mean(axis=1), [tail, 100 - tail])
    return float(low), float(high)


def _simulated_seeds(effect, seed_sd, image_sd, k, n_sim, n_images, rng):
    """``n_sim`` runs of ``k`` seeds: per-seed improvements (the test images' luck shared
    by every seed of a run) and each run's image variance as a bootstrap over
    ``n_images`` images would estimate it (a scaled chi-square)."""
    shared = rng.normal(0, image_sd, size=(n_sim, 1))
    d = effect + shared + rng.normal(0, seed_sd, size=(n_sim, k))
    image_var = image_sd**2 * rng.chisquare(n_images - 1, size=n_sim) / (n_images - 1)
    return d, image_var


def simulate_coverage(
    k: int,
    seed_sd: float,
    image_sd: float,
    effect: float = 0.0,
    n_sim: int = 2000,
    n_images: int = 150,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """The share of ``n_sim`` simulated comparisons of ``k`` seeds whose interval covers
    the true ``effect``, for :func:`~segqual_lite.stats.t_interval` (``"t"``) and
    :func:`bootstrap_interval` (``"bootstrap"``); per-seed improvements drawn with the
    spreads ``seed_sd`` (training runs) and ``image_sd`` (test images, shared by the
    seeds). With ``effect=0`` one minus the coverage is how often the interval claims an
    effect that is not there."""
    rng = np.random.default_rng(seed)
    d, image_var = _simulated_seeds(effect, seed_sd, image_sd, k, n_sim, n_images, rng)
    off = np.abs(d.mean(axis=1) - effect)  # the t interval, for every run at once
    covered_t = float(np.mean(off <= t_half_width(d, image_var, level)))
    hits = 0
    for run, v in zip(d, image_var, strict=True):
        low, high = bootstrap_interval(run, np.sqrt(v), level, n_boot=400, rng=rng)
        hits += low <= effect <= high
    return {"t": covered_t, "bootstrap": hits / n_sim}


def power(
    effect: float,
    seed_sd: float,
    image_sd: float,
    k: int,
    n_sim: int = 4000,
    n_images: int = 150,
    level: float = 0.95,
    seed: int = 0,
) -> float:
    """The share of simulated comparisons of ``k`` seeds whose
    :func:`~segqual_lite.stats.t_interval` lies above 0 when the true improvement is
    ``effect`` (the analysis plan's power)."""
    rng = np.random.default_rng(seed)
    d, image_var = _simulated_seeds(effect, seed_sd, image_sd, k, n_sim, n_images, rng)
    low = d.mean(axis=1) - t_half_width(d, image_var, level)
    return float(np.mean(low > 0))


def power_curve(
    comparison: Comparison, ks, n_draws: int = 2000, level: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """For each k in ``ks``: the share of ``n_draws`` draws of k seeds, **with
    replacement**, from the comparison's seeds (a reference run) whose interval resolves
    the comparison in the direction of the reference's mean (``resolved``), and the share
    that resolve it the other way (``wrong_way``). Drawing with replacement keeps the
    draws independent as k nears the number of seeds (without replacement they share most
    seeds, and power is overstated)."""
    rng = np.random.default_rng(seed)
    d = np.array(list(comparison.per_seed.values()), float)
    sign = 1.0 if comparison.estimate >= 0 else -1.0
    records = []
    for k in ks:
        drawn = d[rng.integers(0, len(d), size=(n_draws, k))]
        half = t_half_width(drawn, comparison.image_sd**2, level)
        low, high = drawn.mean(axis=1) - half, drawn.mean(axis=1) + half
        right = (low > 0) if sign > 0 else (high < 0)
        wrong = (high < 0) if sign > 0 else (low > 0)
        records.append(
            {
                "row": comparison.row,
                "metric": comparison.metric,
                "k": k,
                "resolved": float(right.mean()),
                "wrong_way": float(wrong.mean()),
            }
        )
    return pd.DataFrame(records)


def _outside(reference: np.ndarray, build: np.ndarray, alpha: float) -> np.ndarray:
    """Per draw and column: whether the mean of ``build`` (draws x m x K) lies outside
    the :func:`~segqual_lite.reference.prediction_interval` of ``reference`` (draws x n
    x K) at ``1 - alpha``."""
    low, high = prediction_interval(reference, build.shape[1], alpha, axis=1)
    mean = build.mean(axis=1)
    return (mean < low) | (mean > high)


def simulate_build_check(
    table: pd.DataFrame,
    m: int = 3,
    family_alpha: float = FAMILY_ALPHA,
    n_sim: int = 20000,
    broken: dict[str, str] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """How the other-environment check of :func:`~segqual_lite.reference.check_build`
    behaves for a reference's per-seed metrics ``table`` (:func:`~segqual_lite.reference.
    seed_table`; (row, metric) columns with a non-finite value dropped) and builds of
    ``m`` seeds, each of the K intervals at ``1 - family_alpha / K``. Shares of
    ``n_sim`` simulated healthy builds that fail:

    * ``normal_false_failure``: reference and build seeds drawn from a normal with the
      reference's means and covariances (rank n - 1: ``mean + D'w / sqrt(n - 1)``, ``D``
      the centred seeds, ``w`` standard normal); ``normal_coverage``: one interval's
      coverage there (nominal ``1 - family_alpha / K``);
    * ``resampled_false_failure``: this reference as it is, builds of ``m`` of its own
      seeds drawn with replacement (no normality assumed; optimistic, in-sample);
    * ``bootstrap_false_failure``: reference and build both drawn with replacement from
      its seeds (pessimistic: a third of the drawn references lack any one seed, e.g. a
      rare diverged training run, which a build then meets unprepared);
    * ``caught`` (with ``broken``, a map row -> the row whose values it takes: a map of
      zeros turns an uncertainty row into its no-uncertainty control): the share of
      resampled builds with those rows broken that fail."""
    wide = table.unstack("method").swaplevel(axis=1)
    wide = wide.loc[:, np.isfinite(wide.to_numpy()).all(axis=0)]
    x = wide.to_numpy(float)
    n, k = x.shape
    alpha = family_alpha / k
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n_sim, n + m, n))
    draws = x.mean(axis=0) + w @ (x - x.mean(axis=0)) / np.sqrt(n - 1)
    outside = _outside(draws[:, :n], draws[:, n:], alpha)
    picks = rng.integers(0, n, size=(n_sim, n + m))
    as_is = np.broadcast_to(x, (n_sim, n, k))
    result = {
        "intervals": k,
        "normal_false_failure": float(outside.any(axis=1).mean()),
        "normal_coverage": float(1 - outside.mean()),
        "resampled_false_failure": float(_outside(as_is, x[picks[:, n:]], alpha).any(1).mean()),
        "bootstrap_false_failure": float(
            _outside(x[picks[:, :n]], x[picks[:, n:]], alpha).any(axis=1).mean()
        ),
    }
    if broken:
        bad = x.copy()
        for i, (row, metric) in enumerate(wide.columns):
            if row in broken and (broken[row], metric) in wide.columns:
                bad[:, i] = x[:, wide.columns.get_loc((broken[row], metric))]
        result["caught"] = float(_outside(as_is, bad[picks[:, n:]], alpha).any(axis=1).mean())
    return result
