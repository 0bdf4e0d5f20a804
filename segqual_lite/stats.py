"""Paired comparisons of two rows: per-seed differences and a two-level bootstrap
(taught in chapter 08, used in chapters 10 and 11).

Two rows are compared on the *same* test images, seed by seed: for each seed (each
training run of f and g) the difference of a metric between the rows. A training run
moves these differences far more than the choice of test images does, so the interval
counts both: a **two-level bootstrap** resamples the seeds, then the test images within
each resampled seed (the same images for both rows), and takes the mean difference over
the resampled seeds; the 95% interval is the 2.5th to 97.5th percentile of that mean.

Differences are **improvements**: positive when the row is better than the control
(lower RMSE or detection error, higher AUROC), in the paper's units: RMSE a fraction of
the Jaccard index, detection error and AUROC points of %. With few seeds the interval
is wide, as it should be: it cannot be narrower than what the seeds tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .metrics import FAILURE_THRESHOLD
from .rows import label
from .tables import LOWER_IS_BETTER, in_paper_units, predictions_frame

__all__ = [
    "COMPARED_METRICS",
    "RESAMPLED_METRICS",
    "UNITS",
    "Comparison",
    "resampled_metric",
    "paired_arrays",
    "compare",
    "comparisons_frame",
]

COMPARED_METRICS = ("rmse", "auroc", "detection_error")
# Chapter 12 also compares rows on AUGRC (a fraction of all test images).
RESAMPLED_METRICS = (*COMPARED_METRICS, "augrc")
# The paper's units (tables.in_paper_units): fractions stay fractions, the rest is in %.
UNITS = {
    m: "a fraction of J" if in_paper_units(m, 1.0) == 1.0 else "points of %"
    for m in (*COMPARED_METRICS, "aupr_pass", "aupr_fail")
}
UNITS["augrc"] = "a fraction of the test images"


def resampled_metric(
    metric: str,
    true_j: np.ndarray,
    pred_j: np.ndarray,
    idx: np.ndarray,
    threshold: float = FAILURE_THRESHOLD,
) -> np.ndarray:
    """``metric`` (a fraction) on every resample of images ``idx`` [R, n] at once.

    Vectorised twins of :mod:`segqual_lite.metrics` for RMSE, AUROC (average ranks for
    ties, as ``roc_auc_score``), detection error (every distinct score as threshold,
    plus one above them all, as ``roc_curve``) and AUGRC (tied predictions enter
    together, :func:`~segqual_lite.metrics.augrc`); NaN for a resample with one class
    only, except RMSE and AUGRC, which are defined then.
    """
    t, p = np.asarray(true_j, float)[idx], np.asarray(pred_j, float)[idx]
    if metric == "rmse":
        return np.sqrt(np.mean((p - t) ** 2, axis=1))
    passed = t >= threshold
    n_pos = passed.sum(axis=1)
    n_neg = passed.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "auroc":
            ranks = rankdata(p, axis=1)
            u = (ranks * passed).sum(axis=1) - n_pos * (n_pos + 1) / 2
            return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)
        if metric == "detection_error":
            order = np.argsort(-p, axis=1, kind="stable")
            scores = np.take_along_axis(p, order, axis=1)
            positive = np.take_along_axis(passed, order, axis=1)
            tpr = np.cumsum(positive, axis=1) / n_pos[:, None]
            fpr = np.cumsum(~positive, axis=1) / n_neg[:, None]
            error = 0.5 * (1 - tpr) + 0.5 * fpr
            last_of_ties = np.ones_like(positive)
            last_of_ties[:, :-1] = scores[:, :-1] != scores[:, 1:]
            best = np.minimum(np.where(last_of_ties, error, np.inf).min(axis=1), 0.5)
            return np.where((n_pos > 0) & (n_neg > 0), best, np.nan)
    if metric == "augrc":
        return _resampled_augrc(p, ~passed)
    raise ValueError(f"no resampled form of {metric!r}: choose one of {RESAMPLED_METRICS}")


def _resampled_augrc(p: np.ndarray, failed: np.ndarray) -> np.ndarray:
    """AUGRC of each row of ``p`` [R, n]: cases accepted by decreasing prediction, each
    group of tied predictions counted with its mean failure rate (the expected curve),
    the trapezoid over coverage steps of 1/n."""
    r, n = p.shape
    order = np.argsort(-p, axis=1, kind="stable")
    scores = np.take_along_axis(p, order, axis=1)
    losses = np.take_along_axis(failed, order, axis=1).astype(np.float64)
    starts = np.ones_like(scores, dtype=bool)
    starts[:, 1:] = scores[:, 1:] != scores[:, :-1]
    group = (np.cumsum(starts, axis=1) - 1 + n * np.arange(r)[:, None]).ravel()
    sums = np.bincount(group, weights=losses.ravel(), minlength=r * n)
    counts = np.bincount(group, minlength=r * n)
    means = (sums / np.maximum(counts, 1))[group].reshape(r, n)
    risk = np.cumsum(means, axis=1) / n
    return ((2 * risk - means / n) / 2).sum(axis=1) / n


def paired_arrays(predictions, row: str, control: str) -> dict[int, tuple[np.ndarray, ...]]:
    """``{seed: (true J of row, predicted J of row, true J of control, predicted J of
    control)}`` on the test images both rows have, in the same order."""
    frame = predictions_frame(predictions)
    out = {}
    for seed in sorted(set(frame["seed"])):
        parts = [
            frame[(frame["method"] == m) & (frame["seed"] == seed)].set_index("image_id")
            for m in (row, control)
        ]
        if parts[0].empty or parts[1].empty:
            continue
        ids = parts[0].index.intersection(parts[1].index, sort=False)
        out[int(seed)] = tuple(
            part.loc[ids, col].to_numpy(float)
            for part in parts
            for col in ("true_jaccard", "predicted_jaccard")
        )
    if not out:
        raise ValueError(f"no seed holds both {row!r} and {control!r}")
    return out


@dataclass
class Comparison:
    """``row`` against ``control`` on ``metric``: improvements (positive = row better),
    in the paper's units (:data:`UNITS`)."""

    row: str
    control: str
    metric: str
    per_seed: dict[int, float]
    estimate: float  # mean of the per-seed improvements
    low: float
    high: float  # the two-level bootstrap interval
    level: float
    n_images: int

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    @property
    def outcome(self) -> str:
        """``"better"`` or ``"worse"`` when the interval excludes 0; ``"undefined"`` when
        the metric is not defined on some seed's test images (all pass, or all fail: a
        run far too short or small, such as a rehearsal); else ``"unresolved"``."""
        if not np.isfinite(self.estimate):
            return "undefined"
        return "better" if self.low > 0 else "worse" if self.high < 0 else "unresolved"

    def verdict(self) -> str:
        """One sentence, worded by the numbers, naming the unit and the interval."""
        if self.outcome == "undefined":
            return (
                f"{label(self.row)} cannot be compared with {label(self.control)} on "
                f"{self.metric}: it is undefined when all test images of a seed pass or all "
                "fail"
            )
        fmt = {"rmse": "{:+.3f}", "augrc": "{:+.4f}"}.get(self.metric, "{:+.1f}")
        seeds = ", ".join(fmt.format(v) for v in self.per_seed.values())
        what = {
            "better": f"better than {label(self.control)}",
            "worse": f"worse than {label(self.control)}",
            "unresolved": f"not distinguishable from {label(self.control)}",
        }[self.outcome]
        return (
            f"{label(self.row)} is {what} on {self.metric}: improvement "
            f"{fmt.format(self.estimate)} ({self.unit}), {self.level:.0%} interval "
            f"[{fmt.format(self.low)}, {fmt.format(self.high)}] over {len(self.per_seed)} "
            f"seeds and {self.n_images} test images; per seed {seeds}"
        )


def compare(
    predictions,
    row: str,
    control: str,
    metric: str,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Compare ``row`` with ``control`` on ``metric`` (module docstring); the bootstrap
    draws from a generator seeded by ``seed``, so the interval is reproducible."""
    arrays = paired_arrays(predictions, row, control)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    rng = np.random.default_rng(seed)
    seeds = list(arrays)
    k = len(seeds)
    n = len(next(iter(arrays.values()))[0])
    per_seed, boot = {}, np.empty((k, n_boot, k))
    for j, s in enumerate(seeds):
        true_r, pred_r, true_c, pred_c = arrays[s]
        if len(true_r) != n:
            raise ValueError(f"seed {s} has {len(true_r)} shared test images, another {n}")
        whole = np.arange(n)[None]
        full = resampled_metric(metric, true_r, pred_r, whole) - resampled_metric(
            metric, true_c, pred_c, whole
        )
        per_seed[s] = sign * in_paper_units(metric, float(full[0]))
        # k independent image resamples per bootstrap replicate: one per seed drawn.
        idx = rng.integers(0, n, size=(n_boot * k, n))
        diff = resampled_metric(metric, true_r, pred_r, idx) - resampled_metric(
            metric, true_c, pred_c, idx
        )
        boot[j] = sign * in_paper_units(metric, 1.0) * diff.reshape(n_boot, k)
    drawn = rng.integers(0, k, size=(n_boot, k))  # the seeds of each replicate
    means = np.nanmean(boot[drawn, np.arange(n_boot)[:, None], np.arange(k)[None]], axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(means, [tail, 100 - tail])
    estimate = float(np.mean(list(per_seed.values())))
    return Comparison(row, control, metric, per_seed, estimate, float(low), float(high), level, n)


def comparisons_frame(comparisons: list[Comparison]) -> pd.DataFrame:
    """One line per comparison: rows, metric, unit, estimate, interval, outcome and the
    per-seed improvements."""
    return pd.DataFrame(
        [
            {
                "row": label(c.row),
                "control": label(c.control),
                "metric": c.metric,
                "unit": c.unit,
                "improvement": c.estimate,
                "low": c.low,
                "high": c.high,
                "outcome": c.outcome,
                "per seed": ", ".join(f"{v:+.3g}" for v in c.per_seed.values()),
            }
            for c in comparisons
        ]
    )
