"""What a reader should conclude from a run: the analysis plan's verdicts as one table
and as paragraphs of prose, each sentence computed from the numbers (chapter 10's
Conclusions; ``book/analysis_plan.md`` fixes the comparisons and the rules).

The inputs are the plan's comparisons (:func:`segqual_lite.stats.compare_rows`) on the
data with ambiguous rims and without them, and a few facts the run measured; nothing
here trains or loads anything, so the sentences stay true when the run is regenerated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .rows import METHODS, PAPER_TABLE1, label
from .stats import COMPARED_METRICS, RIM_VERDICTS, Comparison, gain_difference, rim_verdict
from .tables import METRICS, metric_name, per_seed_arrays, seed_metrics, signed

__all__ = [
    "Evidence",
    "baseline_auroc",
    "interval_text",
    "counterfactual_frame",
    "verdict_table",
    "comparisons_frame",
    "conclusions_markdown",
]


@dataclass
class Evidence:
    """The plan's comparisons and the facts the conclusions cite.

    ``comparisons``: the 12 comparisons on the data with rims; ``counterfactual``: the
    same on the data without them (or None); ``seeds``: how many seeds they rest on;
    ``baseline_auroc``: the control No Uncertainty's mean AUROC (%) over those seeds;
    ``train_test_gap``: f's mean Jaccard on its training images minus on the test
    images (the mean over the reference's seeds, or one seed of a build without a
    reference); ``power_at_build``: ``{row: share of draws of ``build_seeds``
    seeds that resolve its AUROC comparison}``."""

    comparisons: list[Comparison]
    counterfactual: list[Comparison] | None
    seeds: int
    baseline_auroc: float
    train_test_gap: float
    build_seeds: int
    power_at_build: dict[str, float]

    def get(self, row: str, metric: str, counterfactual: bool = False) -> Comparison:
        pool = self.counterfactual if counterfactual else self.comparisons
        return next(c for c in pool if c.row == row and c.metric == metric)

    @property
    def rows(self) -> list[str]:
        return list(dict.fromkeys(c.row for c in self.comparisons))


def baseline_auroc(predictions, row: str = "no_uncertainty") -> float:
    """The mean AUROC over seeds of ``row`` (%), NaN when it is undefined on every seed."""
    by_seed = per_seed_arrays(predictions)[row]
    values = [seed_metrics(row, s, *arrays)["auroc"] for s, arrays in by_seed.items()]
    finite = [v for v in values if math.isfinite(v)]
    return 100 * sum(finite) / len(finite) if finite else math.nan


def interval_text(c: Comparison, sep: str = " ") -> str:
    """``"+1.2 [+0.3, +2.1]"``: the mean improvement and its interval, in the metric's
    unit (RMSE to 3 decimals, percentage points to 1), ``sep`` between them (a newline in
    tables); the interval never breaks across lines."""
    low, mean, high = (signed(v, c.number_format) for v in (c.low, c.estimate, c.high))
    return f"{mean}{sep}[{low},\u00a0{high}]"


def counterfactual_frame(comparisons: list[Comparison], counterfactual: list[Comparison]):
    """One line per row and metric: the gain with rims (``comparisons``), without them
    (``counterfactual``), their difference (each the mean, then its 95% interval on a
    line of its own, in the metric's unit: RMSE a fraction of J, the others in percentage points)
    and the plan's verdict (:func:`segqual_lite.stats.rim_verdict`)."""
    records = []
    for with_ in comparisons:
        without = next(c for c in counterfactual if (c.row, c.metric) == (with_.row, with_.metric))
        diff = gain_difference(with_, without)
        records.append(
            {
                "row": label(with_.row),
                "metric": metric_name(with_.metric),
                "gain with rims": interval_text(with_, "\n"),
                "gain without rims": interval_text(without, "\n"),
                "difference": interval_text(diff, "\n"),
                "verdict": RIM_VERDICTS[rim_verdict(with_, without, diff)],
            }
        )
    return pd.DataFrame(records)


def verdict_table(evidence: Evidence) -> pd.DataFrame:
    """The table of verdicts: per row (against its control), each metric's improvement
    (the mean, its interval on the next line, then the outcome), the share of seeds on
    which the row's AUROC is better with its interval, and whether the paper's finding
    holds (RMSE and AUROC both better)."""
    records = []
    for row in evidence.rows:
        record = {"row": label(row)}
        for metric in COMPARED_METRICS:
            c = evidence.get(row, metric)
            record[metric_name(metric)] = f"{interval_text(c, chr(10))}\n{c.outcome}"
        share, low, high = evidence.get(row, "auroc").beats
        record["AUROC better on"] = f"{share:.0%}\nof seeds\n[{low:.0%},\u00a0{high:.0%}]"
        record["paper's finding"] = "holds" if finding_holds(evidence, row) else "not shown"
        records.append(record)
    return pd.DataFrame(records)


def comparisons_frame(comparisons: list[Comparison]) -> pd.DataFrame:
    """Verdicts as one table (chapters 11 and 12): a line per row and the control it is
    compared with, a column per metric (its unit in the header) holding the mean
    improvement, its 95% interval on the next line and the outcome, and the share of
    seeds on which the row is better (on AUROC where it is compared, else on the first
    metric)."""
    lines: dict[tuple[str, str], dict] = {}
    beats: dict[tuple[str, str], Comparison] = {}
    for c in comparisons:
        key = (c.row, c.control)
        line = lines.setdefault(key, {"row": label(c.row), "against": label(c.control)})
        line[f"{metric_name(c.metric)}\n({c.unit})"] = f"{interval_text(c, chr(10))}\n{c.outcome}"
        if key not in beats or c.metric == "auroc":
            beats[key] = c
    for key, c in beats.items():
        share, low, high = c.beats
        lines[key][f"better on ({metric_name(c.metric)})"] = (
            f"{share:.0%} of seeds\n[{low:.0%},\u00a0{high:.0%}]"
        )
    frame = pd.DataFrame(lines.values())
    last = [c for c in frame.columns if c.startswith("better on")]
    return frame[[c for c in frame.columns if c not in last] + last]


def finding_holds(evidence, row: str) -> bool:
    """Whether the paper's finding holds for ``row``: its RMSE and its AUROC both
    resolved better than its control. ``evidence``: anything with ``get(row, metric)``
    returning a :class:`~segqual_lite.stats.Comparison` (an :class:`Evidence`, a
    :class:`~segqual_lite.regimes.Regime`)."""
    return all(evidence.get(row, m).outcome == "better" for m in ("rmse", "auroc"))


def _names(rows) -> str:
    return _names_plain([label(r) for r in rows])


def _by_row(pairs) -> str:
    """``[(row, metric), ...]`` as "Max Probability (RMSE and AUROC); LCE (AUROC)"."""
    metrics: dict[str, list[str]] = {}
    for row, metric in pairs:
        metrics.setdefault(row, []).append(metric_name(metric))
    return "; ".join(f"{label(r)} ({_names_plain(ms)})" for r, ms in metrics.items())


def _names_plain(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _paper_gains() -> tuple[float, float]:
    base = PAPER_TABLE1["no_uncertainty"][METRICS.index("auroc")][0]
    gains = [PAPER_TABLE1[r][METRICS.index("auroc")][0] - base for r in METHODS]
    return base, max(gains)


def _baseline(evidence: Evidence, gains: dict[str, float]) -> str | None:
    paper_base, paper_gain = _paper_gains()
    largest = max(gains, key=gains.get)
    if not (math.isfinite(evidence.baseline_auroc) and math.isfinite(gains[largest])):
        return None
    strong = evidence.baseline_auroc > paper_base
    return (
        ("**The baseline is strong.** " if strong else "**The baseline.** ")
        + f"*g* without a map reaches a mean AUROC of {evidence.baseline_auroc:.1f}% over the "
        f"{evidence.seeds} seeds here, "
        f"against {paper_base:.1f}% in the paper, where the best map added "
        f"{paper_gain:.1f} points. Here the largest mean gain is {gains[largest]:+.1f} "
        f"points ({label(largest)})"
        + (
            ": from the image and the mask alone, *g* already ranks most failures, and "
            "there is less left for a map to add."
            if strong
            else "."
        )
    )


def _gap(evidence: Evidence) -> str | None:
    gap = evidence.train_test_gap
    if not math.isfinite(gap):
        return None
    if gap > 0.01:
        found = (
            f"better on its training images than on the test images by {gap:.3f} in mean Jaccard."
        )
    else:
        found = (
            f"no better on its training images than on the test images ({gap:+.3f} in mean "
            "Jaccard): *g* learns from segmentations about as good as those it will judge, "
            "so the part of the paper's mechanism that the map repairs is missing here, and "
            "a gain found here must come from elsewhere: the rims below and the second "
            "regime after them ask where."
        )
    return (
        "***f*'s train/test gap.** The paper's explanation is that *g* learns from *f*'s "
        "segmentations of *f*'s own training images, which *f* fits better than new ones, so "
        "that *g* sees too few failures in training and needs the map to recognise them at "
        f"test time. Here *f* is {found}"
    )


def conclusions_markdown(evidence: Evidence) -> str:
    """The Conclusions as Markdown paragraphs (module docstring)."""
    rows = evidence.rows
    holds = [r for r in rows if finding_holds(evidence, r)]
    auroc_only = [
        r for r in rows if r not in holds and evidence.get(r, "auroc").outcome == "better"
    ]
    rmse_better = [r for r in rows if evidence.get(r, "rmse").outcome == "better"]
    worse = [c for c in evidence.comparisons if c.outcome == "worse"]
    gains = {r: evidence.get(r, "auroc").estimate for r in rows}
    paragraphs = []

    # 0. The bottom line.
    _, paper_gain = _paper_gains()
    finite = [g for g in gains.values() if math.isfinite(g)]
    finding = "the paper's finding (the map lowers *g*'s RMSE and raises its AUROC, both resolved)"
    bottom = (
        f"**In short:** on {evidence.seeds} seeds, {finding} holds for "
        + (
            f"{_names(holds)}, {len(holds)} of the {len(rows)} uncertainty rows"
            if holds
            else f"no row of the {len(rows)} uncertainty rows"
        )
        + (
            f"; the {len(finite)} rows' mean AUROC gains are {min(finite):+.1f} to "
            f"{max(finite):+.1f} points, against up to {paper_gain:.1f} in the paper."
            if finite
            else "."
        )
    )
    paragraphs.append(bottom)

    # 1. The rows where it does not hold.
    title = "**The other rows.**" if holds else "**Row by row.**"
    first = title
    if auroc_only:
        first += (
            f" For {_names(auroc_only)} the map helps *g* rank the images, raising AUROC by "
            + ", ".join(f"{gains[r]:+.1f}" for r in auroc_only)
            + " points, "
            + (
                "but RMSE is not resolved: *g* ranks failures better without predicting "
                "the Jaccard index more accurately."
                if not rmse_better
                else "while RMSE is resolved only for "
                + _names([r for r in rmse_better if r in auroc_only] or rmse_better)
                + "."
            )
        )
    rest = [r for r in rows if r not in holds and r not in auroc_only]
    if rest:
        means = ", ".join(f"{gains[r]:+.1f}" for r in rest)
        first += f" For {_names(rest)} no AUROC gain is resolved (mean {means} points)."
    if worse:
        first += " Resolved as worse than the control: " + "; ".join(
            f"{label(c.row)} on {metric_name(c.metric)} ({interval_text(c)} {c.unit})"
            for c in worse
        )
        first += "."
    if first != title:  # every row holds, none worse: nothing more to say
        paragraphs.append(first)

    # 2. The baseline, and 3. f's train/test gap (when the run measured them).
    paragraphs += [p for p in (_baseline(evidence, gains), _gap(evidence)) if p]

    # 4. The rims.
    if evidence.counterfactual:
        verdicts = {
            (r, m): rim_verdict(
                evidence.get(r, m),
                evidence.get(r, m, counterfactual=True),
                gain_difference(evidence.get(r, m), evidence.get(r, m, counterfactual=True)),
            )
            for r in rows
            for m in COMPARED_METRICS
        }
        carried = [k for k, v in verdicts.items() if v == "carried"]
        independent = [k for k, v in verdicts.items() if v == "independent"]
        text = (
            "**The rim cases.** Some synthetic lesions have an ambiguous rim: faint "
            "pigment that the annotator included for half of them, a coin flip that no "
            "image can predict, so *f* is unsure along the whole rim. On the same data "
            "without such rims, "
        )
        gained = [k for k in verdicts if evidence.get(*k).outcome == "better"]
        if carried:
            text += (
                "the gain shrinks by a resolved margin for "
                + _by_row(carried)
                + ": there the map helps *g* mostly by marking the lesions whose label is a "
                "coin flip."
            )
        elif gained:
            text += "no resolved gain shrinks by a resolved margin."
        else:
            text += "there is no resolved gain whose source it could show."
        resolved_without = [
            (c.row, c.metric) for c in evidence.counterfactual if c.outcome == "better"
        ]
        if resolved_without:
            text += (
                f" Without the rims, {len(resolved_without)} of {len(evidence.counterfactual)}"
                " comparisons still resolve a gain: " + _by_row(resolved_without) + "."
            )
        else:
            text += (
                " Without the rims, no row's gain over its control is resolved, on any "
                f"metric ({len(evidence.counterfactual)} comparisons)."
            )
        if independent:
            text += " The gain stays resolved without the rims for " + _by_row(independent) + "."
        undecided = len(verdicts) - len(carried) - len(independent)
        if undecided == len(verdicts):
            text += (
                f" The counterfactual decides nothing for any of the {len(verdicts)} row and "
                "metric pairs."
            )
        elif undecided:
            text += (
                f" For the other {undecided} of {len(verdicts)} row and metric pairs it "
                "decides nothing."
            )
        paragraphs.append(text)

    # 5. A build's few seeds.
    if evidence.power_at_build and evidence.build_seeds < evidence.seeds:
        low, high = min(evidence.power_at_build.values()), max(evidence.power_at_build.values())
        share = f"{low:.0%}" if f"{low:.0%}" == f"{high:.0%}" else f"{low:.0%} to {high:.0%}"
        paragraphs.append(
            f"**{evidence.build_seeds} seeds decide little.** Drawn from these "
            f"{evidence.seeds} seeds, {evidence.build_seeds} seeds resolve an AUROC "
            f"comparison in {share} of draws. A build's own "
            "verdicts come and go with its training runs; the verdicts above rest on the "
            "reference run, whose comparisons the analysis plan fixed before it was run."
        )
    return "\n\n".join(paragraphs)
