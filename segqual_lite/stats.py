r"""Paired comparisons of two rows: per-seed differences, an interval that counts the
seeds, the chance of beating the control (taught in chapter 08, used in chapters 10 to
12); their power and coverage by simulation are in :mod:`segqual_lite.power`.

Two rows are compared on the *same* test images, seed by seed: for each seed (each
training run of f and g) the difference of a metric between the rows. Two things move
the mean of these differences away from the truth:

* **the training runs**: per-seed differences scatter from run to run (their standard
  deviation :math:`s` over the :math:`k` seeds, the larger part here);
* **the test images**: every seed is scored on the same images, so their luck is shared
  by all seeds and does not average away with more seeds; its variance :math:`v` is
  estimated by resampling the images (the same resample for every seed and both rows).

The interval is a **Student-t** over the seeds, widened for the images: the half-widths
of the two sources added in quadrature,
:math:`\bar d \pm \sqrt{(t_{k-1}\, s / \sqrt k)^2 + (z \sqrt v)^2}`, where
:math:`t_{k-1}` is the Student-t quantile with :math:`k - 1` degrees of freedom (the seeds'
spread is estimated from :math:`k` values) and :math:`z` the normal one (the images' from
hundreds). Its coverage stays within two points of the nominal 95% at 3 seeds and at 20
(:func:`segqual_lite.power.simulate_coverage`, tested). A percentile bootstrap over the
seeds does not: at 3 seeds it excludes 0 about whenever all three differences share a
sign (chapter 08 counts how often). Beside the mean, :func:`beat_probability` gives the
share of seeds on which the row beats its control, with a Wilson interval (Bouthillier
et al., MLSys 2021).

Differences are **improvements**: positive when the row is better than the control
(lower RMSE or detection error, higher AUROC), in the paper's units: RMSE a fraction of
the Jaccard index, detection error and AUROC in percentage points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest, rankdata
from scipy.stats import t as student_t

from .metrics import FAILURE_THRESHOLD
from .rows import control_of, label
from .tables import LOWER_IS_BETTER, in_paper_units, metric_name, predictions_frame, signed

__all__ = [
    "COMPARED_METRICS",
    "RESAMPLED_METRICS",
    "UNITS",
    "Comparison",
    "resampled_metric",
    "paired_arrays",
    "t_interval",
    "beat_probability",
    "compare",
    "comparisons_frame",
    "t_half_width",
    "compare_rows",
    "gain_difference",
    "RIM_VERDICTS",
    "rim_verdict",
]

COMPARED_METRICS = ("rmse", "auroc", "detection_error")
# Chapter 12 also compares rows on AUGRC (a fraction of all test images).
RESAMPLED_METRICS = (*COMPARED_METRICS, "augrc")
# The paper's units (tables.in_paper_units): fractions stay fractions, the rest is in %.
UNITS = {
    m: "a fraction of J" if in_paper_units(m, 1.0) == 1.0 else "percentage points"
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
    high: float  # the t interval over seeds, widened for the test images (t_interval)
    level: float
    n_images: int
    image_sd: float = 0.0  # sd of the mean improvement over test-image resamples (sqrt v)
    beats: tuple[float, float, float] = (np.nan, np.nan, np.nan)  # beat_probability
    undefined_seeds: tuple[int, ...] = ()  # seeds left out: the metric undefined there

    @property
    def seed_sd(self) -> float:
        """Standard deviation of the per-seed improvements (NaN for one seed)."""
        values = np.array(list(self.per_seed.values()), float)
        return float(values.std(ddof=1)) if len(values) > 1 else np.nan

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    @property
    def outcome(self) -> str:
        """``"better"`` or ``"worse"`` when the interval excludes 0; ``"undefined"`` when
        the metric is defined on no seed's test images (all pass, or all fail: a run far
        too short or small, such as a rehearsal); else ``"unresolved"``."""
        if not np.isfinite(self.estimate):
            return "undefined"
        return "better" if self.low > 0 else "worse" if self.high < 0 else "unresolved"

    @property
    def number_format(self) -> str:
        """How an improvement is printed: RMSE to 3 decimals, AUGRC to 4, the rest to 1."""
        return {"rmse": "{:+.3f}", "augrc": "{:+.4f}"}.get(self.metric, "{:+.1f}")

    def _left_out(self) -> str:
        if not self.undefined_seeds:
            return ""
        seeds = ", ".join(map(str, self.undefined_seeds))
        return f" (seed {seeds} left out: {metric_name(self.metric)} undefined there)"

    def verdict(self) -> str:
        """One sentence, worded by the numbers, naming the unit and the interval."""
        if self.outcome == "undefined":
            return (
                f"{label(self.row)} cannot be compared with {label(self.control)} on "
                f"{metric_name(self.metric)}: it is undefined when all test images of every "
                "seed pass or all fail"
            )
        low, mean, high, *per_seed = (
            signed(v, self.number_format)
            for v in (self.low, self.estimate, self.high, *self.per_seed.values())
        )
        what = {
            "better": f"better than {label(self.control)}",
            "worse": f"worse than {label(self.control)}",
            "unresolved": f"unresolved against {label(self.control)}",
        }[self.outcome]
        return (
            f"{label(self.row)} is {what} on {metric_name(self.metric)}: improvement "
            f"{mean} ({self.unit}), {self.level:.0%} interval [{low}, {high}] over "
            f"{len(self.per_seed)} seeds{self._left_out()} and {self.n_images} test "
            "images; better on "
            f"{self.beats[0]:.0%} of the seeds [{self.beats[1]:.0%}, {self.beats[2]:.0%}]; "
            f"per seed {', '.join(per_seed)}"
        )


def t_half_width(d: np.ndarray, image_var, level: float) -> np.ndarray:
    """Half-width of :func:`t_interval` for per-seed improvements along the last axis of
    ``d`` (one or many runs at once)."""
    k = d.shape[-1]
    return np.hypot(
        student_t.ppf(0.5 + level / 2, k - 1) * d.std(axis=-1, ddof=1) / np.sqrt(k),
        student_t.ppf(0.5 + level / 2, np.inf) * np.sqrt(image_var),
    )


def t_interval(per_seed, image_var: float = 0.0, level: float = 0.95) -> tuple[float, float]:
    """The interval of the mean of the per-seed improvements (module docstring): the
    Student-t half-width over the seeds and the normal half-width of the test images
    (variance ``image_var`` of the mean), added in quadrature; NaNs for fewer than two
    seeds."""
    d = np.asarray(list(per_seed), float)
    if len(d) < 2 or not np.all(np.isfinite(d)):
        return np.nan, np.nan
    half = float(t_half_width(d, image_var, level))
    return float(d.mean() - half), float(d.mean() + half)


def beat_probability(per_seed, level: float = 0.95) -> tuple[float, float, float]:
    """``(share, low, high)``: the share of seeds on which the row beats its control (a
    tie counts half) and its Wilson interval; the chance that the row wins a paired
    training run (Bouthillier et al., MLSys 2021)."""
    d = np.asarray(list(per_seed), float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return np.nan, np.nan, np.nan
    wins = float(np.sum(d > 0) + 0.5 * np.sum(d == 0))
    ci = binomtest(int(round(wins)), len(d)).proportion_ci(level, method="wilson")
    return wins / len(d), float(ci.low), float(ci.high)


def compare(
    predictions,
    row: str,
    control: str,
    metric: str,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Compare ``row`` with ``control`` on ``metric`` (module docstring): the mean of the
    per-seed improvements, its :func:`t_interval` widened by the variance of that mean
    over ``n_boot`` resamples of the test images (the same images for every seed and
    both rows; drawn from a generator seeded by ``seed``, so reproducible), and
    :func:`beat_probability`. A seed on which the metric is undefined (every test image
    of one row passes, or every one fails: no AUROC) is left out and listed in
    ``undefined_seeds``; when it is undefined on every seed, so is the comparison."""
    arrays = paired_arrays(predictions, row, control)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    rng = np.random.default_rng(seed)
    n = len(next(iter(arrays.values()))[0])
    idx = np.concatenate([np.arange(n)[None], rng.integers(0, n, size=(n_boot, n))])
    diffs = []
    for s, (true_r, pred_r, true_c, pred_c) in arrays.items():
        if len(true_r) != n:
            raise ValueError(f"seed {s} has {len(true_r)} shared test images, another {n}")
        diff = resampled_metric(metric, true_r, pred_r, idx) - resampled_metric(
            metric, true_c, pred_c, idx
        )
        diffs.append(sign * in_paper_units(metric, 1.0) * diff)
    diffs = np.array(diffs)  # [seed, 1 + n_boot]: the whole test split, then the resamples
    # A seed on which the metric is undefined (all its test images pass, or all fail) is
    # left out and named; with none defined the comparison is undefined.
    defined = np.isfinite(diffs[:, 0])
    undefined = tuple(s for s, ok in zip(arrays, defined, strict=True) if not ok)
    if defined.any():
        diffs = diffs[defined]
    seeds = [s for s in arrays if s not in undefined] or list(arrays)
    per_seed = dict(zip(seeds, map(float, diffs[:, 0]), strict=True))
    estimate = float(np.mean(diffs[:, 0]))
    image_var = float(np.nanvar(np.mean(diffs[:, 1:], axis=0), ddof=1))
    low, high = t_interval(per_seed.values(), image_var, level)
    if len(per_seed) == 1 and np.isfinite(image_var):  # one seed: the images only (normal)
        half = student_t.ppf(0.5 + level / 2, np.inf) * np.sqrt(image_var)
        low, high = estimate - half, estimate + half
    return Comparison(
        row,
        control,
        metric,
        per_seed,
        estimate,
        low,
        high,
        level,
        n,
        image_sd=float(np.sqrt(image_var)),
        beats=beat_probability(per_seed.values(), level),
        undefined_seeds=undefined if defined.any() else (),
    )


def comparisons_frame(comparisons: list[Comparison]) -> pd.DataFrame:
    """One line per comparison: rows, metric, unit, estimate, interval, outcome, the
    share of seeds on which the row is better with its interval, and the per-seed
    improvements."""
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
                "seeds": len(c.per_seed),
                "left out": ", ".join(map(str, c.undefined_seeds)),
                "better on": c.beats[0],
                "better on, low": c.beats[1],
                "better on, high": c.beats[2],
                "per seed": ", ".join(f"{v:+.3g}" for v in c.per_seed.values()),
            }
            for c in comparisons
        ]
    )


# ---- the comparisons of the analysis plan (book/analysis_plan.md) -----------------------
def compare_rows(predictions, rows, metrics=COMPARED_METRICS, n_boot: int = 1000) -> list:
    """:func:`compare` of each row in ``rows`` with its control on each of ``metrics``:
    the comparisons A of the analysis plan when ``rows`` are the paper's four methods."""
    return [compare(predictions, r, control_of(r), m, n_boot=n_boot) for r in rows for m in metrics]


def gain_difference(with_: Comparison, without: Comparison, level: float = 0.95) -> Comparison:
    """The gain of ``with_`` minus the gain of ``without`` (the same row, control and
    metric on two data sets, the same seeds), seed by seed, with :func:`t_interval` and
    the two runs' image variances added: the counterfactual's difference of the gains."""
    seeds = [s for s in with_.per_seed if s in without.per_seed]
    per_seed = {s: with_.per_seed[s] - without.per_seed[s] for s in seeds}
    image_var = with_.image_sd**2 + without.image_sd**2
    low, high = t_interval(per_seed.values(), image_var, level)
    return Comparison(
        with_.row,
        with_.control,
        with_.metric,
        per_seed,
        float(np.mean(list(per_seed.values()))),
        low,
        high,
        level,
        min(with_.n_images, without.n_images),
        image_sd=float(np.sqrt(image_var)),
        beats=beat_probability(per_seed.values(), level),
    )


RIM_VERDICTS = {
    "carried": "the rims carry the gain",
    "independent": "the gain does not depend on the rims",
    "nothing": "decides nothing",
}


def rim_verdict(with_: Comparison, without: Comparison, difference: Comparison) -> str:
    """The analysis plan's verdict on the counterfactual of one row and metric, a key of
    :data:`RIM_VERDICTS`: ``"carried"`` when the gain with rims is resolved better and the
    difference of the gains lies above 0, ``"independent"`` when the gain is resolved
    better on both data sets, else ``"nothing"``."""
    if with_.outcome == "better" and difference.outcome == "better":
        return "carried"
    if with_.outcome == "better" and without.outcome == "better":
        return "independent"
    return "nothing"
