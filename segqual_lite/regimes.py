"""When does the map help? Two regimes of the reference side by side (chapter 10; the
extension of ``book/analysis_plan.md``).

The paper explains its result by g's training data: g learns from f's predictions on
the training images, on which f does better than on new images, and the map tells g
where f is unsure in a way that carries over. A **regime** is a profile's reference run:
its comparisons of each uncertainty row with its control (with the ambiguous rims and
without), and f's fit on its training and test images (``fit.csv``). Comparing the
default ``tiny`` with ``tiny-overfit``, in which f fits its training images better,
tests the explanation: it predicts larger gains where f overfits.

The two regimes are independent runs (other training images, other networks), so the
difference of a row's gains between them is not paired: its interval adds the two
intervals' half-widths in quadrature. The plan's answer for a row and metric is
**yes** when the gain in the overfit regime is *better* and the difference lies above
0, **no** when the difference lies below 0, and **undecided** otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import Profile
from .reference import load_reference
from .rows import METHODS, label
from .stats import Comparison, compare_rows, t_interval

__all__ = [
    "ANSWERS",
    "Regime",
    "Difference",
    "load_regime",
    "fit_summary",
    "regime_difference",
    "regimes_frame",
]

ANSWERS = {
    "yes": "larger where f overfits: the explanation holds",
    "no": "smaller where f overfits: the explanation fails",
    "undecided": "the regimes cannot be told apart",
}


@dataclass
class Regime:
    """One regime: its profile's ``name``, the plan's comparisons with the rims and
    without (:func:`segqual_lite.stats.compare_rows`) and f's ``fit``
    (:func:`segqual_lite.segment.fit_frame`, from the reference's ``fit.csv``)."""

    name: str
    comparisons: list[Comparison]
    counterfactual: list[Comparison] | None
    fit: pd.DataFrame

    def get(self, row: str, metric: str, counterfactual: bool = False) -> Comparison | None:
        pool = (self.counterfactual or []) if counterfactual else self.comparisons
        return next((c for c in pool if c.row == row and c.metric == metric), None)


def load_regime(profile: Profile, folder=None) -> Regime | None:
    """The regime of ``profile``'s reference (from ``folder``, else the shipped one): the
    plan's comparisons of every uncertainty row, with and without rims, and f's fit;
    None when there is no reference, or it records no fit."""
    reference = load_reference(profile, folder)
    if reference is None or reference.fit is None:
        return None
    counterfactual = reference.counterfactual
    return Regime(
        profile.name,
        compare_rows(reference.predictions, METHODS),
        compare_rows(counterfactual, METHODS) if counterfactual is not None else None,
        reference.fit,
    )


@dataclass
class Difference:
    """A row's gain on a metric in one regime minus in the other, with its interval."""

    row: str
    metric: str
    estimate: float
    low: float
    high: float

    @property
    def answer(self) -> str:
        return "above" if self.low > 0 else "below" if self.high < 0 else "spans"


def fit_summary(fit: pd.DataFrame, level: float = 0.95) -> dict[str, float]:
    """f's fit over the seeds of ``fit`` (one method): the mean Jaccard on the training
    and test images, the mean train-test gap with its t interval over seeds, and the
    mean failure share on each split."""
    wide = fit.pivot_table(index="seed", columns="split", values="mean_jaccard")
    fails = fit.pivot_table(index="seed", columns="split", values="failure_share")
    gap = (wide["train"] - wide["test"]).to_numpy()
    low, high = t_interval(gap, 0.0, level) if len(gap) > 1 else (np.nan, np.nan)
    return {
        "seeds": len(gap),
        "train_jaccard": float(wide["train"].mean()),
        "test_jaccard": float(wide["test"].mean()),
        "gap": float(gap.mean()),
        "gap_low": float(low),
        "gap_high": float(high),
        "train_failures": float(fails["train"].mean()),
        "test_failures": float(fails["test"].mean()),
    }


def regime_difference(base: Comparison, other: Comparison) -> Difference:
    """``other``'s gain minus ``base``'s (the same row and metric in two independent
    runs), the interval's half-widths added in quadrature."""
    half = math.hypot((base.high - base.low) / 2, (other.high - other.low) / 2)
    estimate = other.estimate - base.estimate
    return Difference(base.row, base.metric, estimate, estimate - half, estimate + half)


def _answer(overfit: Comparison, difference: Difference) -> str:
    if overfit.outcome == "better" and difference.answer == "above":
        return "yes"
    return "no" if difference.answer == "below" else "undecided"


def regimes_frame(default: Regime, overfit: Regime, metrics=None) -> pd.DataFrame:
    """One line per row and metric: the gain in each regime (with the rims, and without
    them when the reference holds the counterfactual), each with its interval, the
    difference of the gains (overfit minus default) and the plan's answer."""
    lines = []
    for c in default.comparisons:
        if metrics and c.metric not in metrics:
            continue
        o = overfit.get(c.row, c.metric)
        if o is None:
            continue
        d = regime_difference(c, o)
        line = {"row": label(c.row), "metric": c.metric, "unit": c.unit}
        for name, comparison in (("default", c), ("overfit", o)):
            line[f"{name}"] = comparison.estimate
            line[f"{name}_low"], line[f"{name}_high"] = comparison.low, comparison.high
            line[f"{name}_outcome"] = comparison.outcome
            without = (default if name == "default" else overfit).get(c.row, c.metric, True)
            line[f"{name}_no_rims"] = without.estimate if without else np.nan
        line.update(difference=d.estimate, difference_low=d.low, difference_high=d.high)
        line["answer"] = _answer(o, d)
        lines.append(line)
    return pd.DataFrame(lines)
