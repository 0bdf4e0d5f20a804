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

from .conclusions import _by_row, _names, _names_plain, finding_holds
from .config import Profile
from .reference import load_reference
from .rows import METHODS, label
from .stats import COMPARED_METRICS, Comparison, compare_rows, t_interval
from .tables import metric_name, signed

__all__ = [
    "ANSWERS",
    "Regime",
    "Difference",
    "load_regime",
    "fit_summary",
    "regime_difference",
    "regimes_frame",
    "regimes_table",
    "regimes_markdown",
    "regimes_conclusion",
    "DATA_ANSWERS",
    "data_sets_frame",
    "data_sets_markdown",
]

GAP_AIM = 0.05  # the plan's aim for f's train-test gap in the overfit regime

ANSWERS = {
    "yes": "larger where f overfits: the explanation holds",
    "no": "smaller where f overfits: the explanation fails",
    "undecided": "the regimes cannot be told apart",
}


# the plan's answer when the same rows meet on synthetic lesions and on PH2
DATA_ANSWERS = {
    "larger": "larger on real dermoscopy",
    "smaller": "smaller on real dermoscopy",
    "undecided": "the data sets cannot be told apart",
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


def load_regime(profile: Profile, folder=None, reference=None) -> Regime | None:
    """The regime of ``profile``'s reference (``reference`` when given, already loaded;
    else read from ``folder``, else the shipped one): the plan's comparisons of every
    uncertainty row, with and without rims, and f's fit; None when there is no
    reference, or it records no fit."""
    if reference is None:
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


def _data_answer(real: Comparison, difference: Difference) -> str:
    return {"above": "larger", "below": "smaller"}.get(difference.answer, "undecided")


def regimes_frame(default: Regime, overfit: Regime, metrics=None, answer=_answer) -> pd.DataFrame:
    """One line per row and metric: the gain in each regime (with the rims, and without
    them when the reference holds the counterfactual), each with its interval, the
    difference of the gains (overfit minus default) and the plan's ``answer`` (its rule
    for the regimes, or :func:`data_sets_frame`'s); ``format`` is how the metric's
    numbers print (:attr:`~segqual_lite.stats.Comparison.number_format`)."""
    lines = []
    for c in default.comparisons:
        if metrics and c.metric not in metrics:
            continue
        o = overfit.get(c.row, c.metric)
        if o is None:
            continue
        d = regime_difference(c, o)
        line = {"row": label(c.row), "metric": c.metric, "unit": c.unit, "format": c.number_format}
        for name, comparison in (("default", c), ("overfit", o)):
            line[f"{name}"] = comparison.estimate
            line[f"{name}_low"], line[f"{name}_high"] = comparison.low, comparison.high
            line[f"{name}_outcome"] = comparison.outcome
            without = (default if name == "default" else overfit).get(c.row, c.metric, True)
            line[f"{name}_no_rims"] = without.estimate if without else np.nan
            line[f"{name}_no_rims_low"] = without.low if without else np.nan
            line[f"{name}_no_rims_high"] = without.high if without else np.nan
        line.update(difference=d.estimate, difference_low=d.low, difference_high=d.high)
        line["answer"] = answer(o, d)
        lines.append(line)
    return pd.DataFrame(lines)


def _cell(frame_line, key: str, fmt: str) -> str:
    low, high = (signed(frame_line[f"{key}_{end}"], fmt) for end in ("low", "high"))
    return f"{signed(frame_line[key], fmt)}\n[{low},\u00a0{high}]"


def regimes_table(
    frame: pd.DataFrame, names=("default", "overfit"), outcomes: bool = False
) -> pd.DataFrame:
    """:func:`regimes_frame` for reading: per row and metric, each regime's gain and the
    difference, each the mean with its 95% interval on the next line (and, with
    ``outcomes``, each gain's verdict under it), and the answer; ``names`` head the two
    regimes' columns."""
    lines = []
    for _, x in frame.iterrows():
        fmt = x["format"]
        said = {k: f"\n{x[f'{k}_outcome']}" if outcomes else "" for k in ("default", "overfit")}
        lines.append(
            {
                "row": x["row"],
                "gain in": f"{metric_name(x['metric'])}\n({x['unit']})",
                names[0]: _cell(x, "default", fmt) + said["default"],
                names[1]: _cell(x, "overfit", fmt) + said["overfit"],
                "difference": _cell(x, "difference", fmt),
                "answer": x["answer"],
            }
        )
    return pd.DataFrame(lines)


def _fit_sentence(name: str, s: dict) -> str:
    return (
        f"In `{name}` ({s['seeds']} seeds), *f*'s mean Jaccard is {s['train_jaccard']:.3f} "
        f"on its training images and {s['test_jaccard']:.3f} on the test images, a gap of "
        f"{s['gap']:+.3f} [{s['gap_low']:+.3f}, {s['gap_high']:+.3f}]; "
        f"{s['train_failures']:.0%} of *g*'s training images are failures, against "
        f"{s['test_failures']:.0%} of the test images."
    )


def _answers_by_metric(frame: pd.DataFrame) -> list[str]:
    said = []
    for metric in COMPARED_METRICS:
        part = frame[frame["metric"] == metric]
        if part.empty:
            continue
        groups = {a: list(part.loc[part["answer"] == a, "row"]) for a in ANSWERS}
        pieces = [
            f"*{a}* for " + ("every row" if len(r) == len(part) > 1 else _names_plain(r))
            for a, r in groups.items()
            if r
        ]
        name = metric_name(metric)
        said.append(f"{name[0].upper()}{name[1:]}: " + "; ".join(pieces))
    return said


def regimes_markdown(fits: dict[str, dict], frame: pd.DataFrame) -> str:
    """The section's answer as Markdown: each regime's fit (``fits``: name mapped to
    :func:`fit_summary`, the default first), whether the overfit regime reached the
    plan's aim, and the plan's answer per metric, all computed from the runs."""
    (default, d), (overfit, o) = fits.items()
    reached = "reaches" if o["gap"] >= GAP_AIM else "falls short of"
    contrast = o["gap"] - d["gap"]
    fit_text = (
        f"{_fit_sentence(default, d)} {_fit_sentence(overfit, o)} So `{overfit}`'s own gap, "
        f"{o['gap']:.3f}, {reached} the plan's aim of {GAP_AIM} or more; it differs from "
        f"`{default}`'s by {contrast:+.3f}."
    )
    counts = frame["answer"].value_counts()
    answer = (
        "**Does the paper's explanation hold here?** It predicts larger gains where *f* "
        "fits its training images better. Of the "
        f"{len(frame)} row and metric pairs, the answer is *yes* for {counts.get('yes', 0)}, "
        f"*no* for {counts.get('no', 0)} and *undecided* for {counts.get('undecided', 0)}. "
        + ". ".join(_answers_by_metric(frame))
        + "."
    )
    larger = int((frame["difference"] > 0).sum())
    resolved = {k: int((frame[f"{k}_outcome"] == "better").sum()) for k in ("default", "overfit")}
    answer += (
        f" By point estimate, the gain is larger in `{overfit}` for {larger} of the "
        f"{len(frame)} pairs, and {resolved['overfit']} of its comparisons are resolved "
        f"better, against {resolved['default']} in `{default}`; the plan counts neither as "
        "an answer."
    )
    if counts.get("yes", 0) == 0 and counts.get("no", 0) == 0:
        answer += (
            f" Two independent runs of {o['seeds']} and {d['seeds']} seeds cannot tell "
            "these gains apart: the "
            "difference's interval adds both runs' half-widths in quadrature, so it spans 0 "
            "unless the gains differ by more than that combined half-width."
        )
    return f"{fit_text}\n\n{answer}"


def regimes_conclusion(fits: dict[str, dict], frame: pd.DataFrame) -> str:
    """One paragraph for the Conclusions: the gap the second regime made and the
    plan's answer in counts."""
    (_, d), (overfit, o) = fits.items()
    counts = frame["answer"].value_counts()
    short = f", short of the plan's aim of {GAP_AIM}" if o["gap"] < GAP_AIM else ""
    answered = (
        f"*undecided* for all {len(frame)} row and metric pairs"
        if counts.get("undecided", 0) == len(frame)
        else f"*yes* for {counts.get('yes', 0)}, *no* for {counts.get('no', 0)} and "
        f"*undecided* for {counts.get('undecided', 0)} of the {len(frame)} row and metric pairs"
    )
    text = (
        f"**When does the map help?** In `{overfit}`, *f* fits its training images better "
        f"than new ones (gap {o['gap']:+.3f} against {d['gap']:+.3f}{short}). The plan's "
        f"answer to the paper's explanation, larger gains there, is {answered}."
    )
    if counts.get("yes", 0) == counts.get("no", 0) == 0:
        text += (
            " So these runs neither confirm nor refute it: a test of the explanation needs "
            "a larger train–test gap, or more seeds in both regimes."
        )
    return text


def data_sets_frame(synthetic: Regime, real: Regime) -> pd.DataFrame:
    """The PH2 extension of the plan: :func:`regimes_frame` of the synthetic reference
    (``default``) and the real one (``overfit``), the answer *larger* when the
    difference of the gains (real minus synthetic) lies above 0, *smaller* below,
    *undecided* otherwise."""
    return regimes_frame(synthetic, real, answer=_data_answer)


def _holding(regime: Regime) -> tuple[list[str], list[str]]:
    """The rows for which the paper's finding holds (RMSE and AUROC both better), and
    those resolved worse on some metric."""
    rows = list(dict.fromkeys(c.row for c in regime.comparisons))
    holds = [r for r in rows if finding_holds(regime, r)]
    worse = [r for r in rows if any(c.outcome == "worse" for c in regime.comparisons if c.row == r)]
    return holds, worse


def data_sets_markdown(
    synthetic: Regime, real: Regime, fits: dict[str, dict], frame: pd.DataFrame, data_names
) -> str:
    """Where the paper's finding holds on each data set and what differs, computed from
    the two references: ``fits`` maps each regime's name to :func:`fit_summary`;
    ``data_names`` names the two data sets (synthetic first)."""
    said = []
    for regime, name in zip((synthetic, real), data_names, strict=True):
        holds, worse = _holding(regime)
        rows = len(set(c.row for c in regime.comparisons))
        seeds = len(regime.comparisons[0].per_seed)
        where = (
            f"holds for {_names(holds)} ({len(holds)} of {rows} rows)"
            if holds
            else f"holds for none of its {rows} rows"
        )
        text = f"On {name} (`{regime.name}`, {seeds} seeds) the paper's finding {where}"
        partly = [
            (c.row, c.metric)
            for c in regime.comparisons
            if c.row not in holds and c.outcome == "better"
        ]
        if partly:
            text += "; resolved better without the finding holding: " + _by_row(partly)
        if worse:
            text += f"; {_names(worse)} did worse than its control on some metric"
        said.append(text + ".")
    counts = frame["answer"].value_counts()
    pieces = [f"*{a}* for {counts[a]}" for a in DATA_ANSWERS if counts.get(a, 0)]
    differs = (
        "Between the data sets, the gain over the control (real minus synthetic, independent "
        f"runs) is {_names_plain(pieces)} of the {len(frame)} row and metric pairs"
    )
    by_metric = []
    for answer in ("larger", "smaller"):
        for metric in COMPARED_METRICS:
            chosen = (frame["metric"] == metric) & (frame["answer"] == answer)
            if chosen.any():
                rows_said = _names_plain(list(frame.loc[chosen, "row"]))
                by_metric.append(f"{metric_name(metric)}: *{answer}* for {rows_said}")
    differs += f" ({'; '.join(by_metric)})." if by_metric else "."
    s, r = fits[synthetic.name], fits[real.name]
    fit_text = (
        f"*f* itself differs: its mean test Jaccard is {s['test_jaccard']:.3f} on "
        f"{data_names[0]} and {r['test_jaccard']:.3f} on {data_names[1]}, and "
        f"{s['test_failures']:.0%} against {r['test_failures']:.0%} of the test images "
        f"fail; its train-test gap is {s['gap']:+.3f} and {r['gap']:+.3f}."
    )
    return " ".join(said) + f" {differs} {fit_text}"
