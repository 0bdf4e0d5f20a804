"""Figures of the predicted quality, per row of the results (chapters 10-12): the
paper's Figure 3, risk-coverage curves, a metric per row, and the shift test."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..metrics import FAILURE_THRESHOLD, risk_coverage
from ..rows import BEYOND_ROWS, TABLE_ROWS, get_row, label
from ..tables import LOWER_IS_BETTER, METRIC_LABELS, per_seed_arrays
from .style import PAGE_WIDTH, fit_width

__all__ = ["plot_figure3", "plot_risk_coverage", "plot_row_metric", "plot_shift"]


PERCENT_METRICS = ("auroc", "aupr_pass", "aupr_fail")  # in % in the shift results


def _row_panels(predictions, order, seed: int | None, size, **subplots):
    """A grid of panels, four a line, one per row of ``order`` found in ``predictions``,
    for one seed (the first by default). Returns ``(fig, axes, seed, panels)`` with
    ``panels = [(ax, method, true Jaccard, predicted Jaccard)]``; spare axes are hidden."""
    arrays = per_seed_arrays(predictions)
    seed = min(s for by_seed in arrays.values() for s in by_seed) if seed is None else seed
    methods = [m for m in order if m in arrays]
    ncols = min(4, len(methods))
    nrows = -(-len(methods) // ncols)
    figsize = fit_width(size[0] * ncols, size[1] * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **subplots)
    for ax in axes.flat[len(methods) :]:
        ax.axis("off")
    panels = [(ax, m, *arrays[m][seed]) for ax, m in zip(axes.flat, methods, strict=False)]
    return fig, axes, seed, panels


def plot_figure3(
    predictions, seed: int | None = None, threshold: float = FAILURE_THRESHOLD, data: str = ""
):
    """The paper's Figure 3: true against predicted Jaccard per row, with the 0.7 lines
    (one seed, the first by default). ``data``: the data's name, for the title."""
    fig, axes, seed, panels = _row_panels(
        predictions, TABLE_ROWS, seed, (1.75, 1.9), sharex=True, sharey=True
    )
    for ax, method, true, pred in panels:
        ax.scatter(true, pred, s=6, alpha=0.6)
        ax.plot([0, 1], [0, 1], c="grey", lw=0.8)
        ax.axvline(threshold, ls=":", c="k", lw=0.8)
        ax.axhline(threshold, ls=":", c="k", lw=0.8)
        ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xticks=[0, 0.5, 1], yticks=[0, 0.5, 1])
        ax.set_title(label(method), fontsize=9)
        ax.tick_params(labelsize=8, labelbottom=True)
    for ax in axes[-1]:
        ax.set_xlabel("true Jaccard", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted Jaccard", fontsize=8)
    where = f"{data}, seed {seed}" if data else f"seed {seed}"
    fig.suptitle(f"{where}: missed failures top left, detected failures bottom left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_risk_coverage(
    predictions, seed: int | None = None, reference: str = "max_prob", highlight=None
):
    """Risk-coverage curves (chapter 11) of every row in one plot, for one seed (the first
    by default): the mean true Jaccard of the accepted cases against the share accepted,
    highest predicted quality first. The oracle order (by true Jaccard) and the random
    order (flat at the mean) of the ``reference`` row's masks (the plain U-Net's) frame
    them; rows on other segmenters' masks have references of their own, close to these.
    ``highlight`` (rows): drawn in colour and named, every other row thin and grey; a
    row and its cross-fitted twin share a colour, the twin dashed."""
    arrays = per_seed_arrays(predictions)
    seed = min(s for by_seed in arrays.values() for s in by_seed) if seed is None else seed
    rows = [m for m in (*TABLE_ROWS, *BEYOND_ROWS) if m in arrays]
    highlight = [r for r in (highlight or rows) if r in rows]
    bases = list(dict.fromkeys(r.removesuffix("_crossfit") for r in highlight))
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.6))
    others = [r for r in rows if r not in highlight]
    for k, method in enumerate(others):
        coverage, accepted = risk_coverage(*arrays[method][seed])
        name = f"the other {len(others)} rows" if k == 0 else None
        ax.plot(coverage, accepted, color="0.75", lw=0.8, label=name, zorder=1)
    for method in highlight:
        base = method.removesuffix("_crossfit")
        colour = plt.get_cmap("tab10")(bases.index(base) % 10)
        coverage, accepted = risk_coverage(*arrays[method][seed])
        style = "--" if method != base else "-"
        ax.plot(coverage, accepted, style, color=colour, lw=1.5, label=label(method), zorder=2)
    true, _ = arrays[reference][seed]
    for scores, style, name in (
        (true, dict(c="k", ls="--", lw=1.2), "oracle order"),
        (np.zeros_like(true), dict(c="k", ls=":", lw=1.2), "random order"),
    ):
        coverage, accepted = risk_coverage(true, scores)
        ax.plot(coverage, accepted, label=f"{name} ({label(reference)}'s masks)", **style)
    ax.set(xlabel="share accepted (coverage)", ylabel="mean true J of the accepted", xlim=(0, 1))
    ax.set_title(f"seed {seed}: highest predicted quality accepted first")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_row_metric(table: pd.DataFrame, rows, metric: str = "augrc", groups=None):
    """One line per row of a long-format table (:func:`~segqual_lite.tables.beyond_table`)
    in ``rows``, best first: the mean over seeds of ``metric`` as a dot, ± one std over
    seeds as a bar (chapter 12). ``groups`` maps a row to a colour group name (e.g. "g"
    or "training-free"), shown in the legend."""
    cells = table[(table["metric"] == metric) & table["method"].isin(rows)]
    lower = metric in LOWER_IS_BETTER
    cells = cells.sort_values("mean", ascending=lower)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.24 * len(cells) + 1.0))
    names = list(dict.fromkeys((groups or {}).values())) or [None]
    colours = {g: plt.get_cmap("tab10")(k) for k, g in enumerate(names)}
    shown = set()
    for y, r in enumerate(cells.to_dict("records")):
        group = (groups or {}).get(r["method"])
        colour = colours.get(group, "tab:blue")
        ax.errorbar(
            r["mean"],
            y,
            xerr=r["std"],
            fmt="o",
            ms=4,
            color=colour,
            capsize=2,
            label=group if group not in shown else None,
        )
        shown.add(group)
    ax.set_yticks(range(len(cells)))
    ax.set_yticklabels([label(m) for m in cells["method"]], fontsize=8)
    ax.invert_yaxis()
    best = "lower" if lower else "higher"
    ax.set_xlabel(f"{METRIC_LABELS[metric]} (mean ± std over seeds; {best} is better)")
    ax.grid(axis="x", alpha=0.3)
    if groups:  # where the best rows are, the bars are short
        ax.legend(fontsize=8, loc="upper right" if lower else "upper left")
    fig.tight_layout()
    return fig


def plot_shift(frame: pd.DataFrame, metric: str = "auroc"):
    """The shift test (chapter 12): for each corruption, f's mean Jaccard on the masks of
    each U-Net (top) and each row's ``metric`` (bottom) against the severity, the mean
    over seeds with a band of ± one std. ``frame`` is
    :func:`segqual_lite.deployment.shift_results`'s."""
    kinds = [k for k in dict.fromkeys(frame["corruption"]) if k != "none"]
    rows = list(dict.fromkeys(frame["row"]))
    masks = {get_row(r).method: r for r in reversed(rows)}  # one row per U-Net's masks
    fig, axes = plt.subplots(
        2, len(kinds), figsize=(PAGE_WIDTH, 5.4), sharex=True, sharey="row", squeeze=False
    )
    clean = frame[frame["severity"] == 0]
    for col, kind in enumerate(kinds):
        part = pd.concat([clean, frame[frame["corruption"] == kind]])
        # A U-Net's masks take the colour of the row named after its method (Max
        # Probability's masks, Max Probability's AUROC), else of the row that reads them.
        lines = [
            (0, "mean_jaccard", r, m if m in rows else r, f"{label(m)}'s masks")
            for m, r in masks.items()
        ]
        lines += [(1, metric, r, r, label(r)) for r in rows]
        for i, column, row, named, name in lines:
            by = part[part["row"] == row].groupby("severity")[column]
            mean, std = by.mean(), by.std().fillna(0)
            colour = f"C{rows.index(named)}"
            ax = axes[i, col]
            ax.plot(mean.index, mean, marker="o", ms=3, color=colour, label=name)
            # the band stays within the metric's range: [0, 100] % or [0, 1]
            top = 100.0 if column in PERCENT_METRICS else 1.0
            low, high = (mean - std).clip(lower=0), (mean + std).clip(upper=top)
            ax.fill_between(mean.index, low, high, color=colour, alpha=0.15)
        axes[0, col].set_title(kind)
        axes[1, col].set_xlabel("severity")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("f's mean Jaccard")
    unit = " (%)" if metric in PERCENT_METRICS else ""
    axes[1, 0].set_ylabel(METRIC_LABELS.get(metric, metric) + unit)
    axes[1, 0].set_xticks(sorted(set(frame["severity"])))
    handles, names = [], []
    for ax in axes[:, 0]:
        h, n = ax.get_legend_handles_labels()
        handles, names = handles + h, names + n
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return fig
