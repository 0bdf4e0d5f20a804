"""Figures of paired comparisons over seeds (chapters 08 and 10): the forest plot of
each row against its control, and the power curve of a reference run."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..metrics import FAILURE_THRESHOLD
from ..rows import label
from ..tables import metric_name
from .style import PAGE_WIDTH, fit_width

__all__ = ["plot_forest", "plot_power", "plot_regimes"]


def plot_forest(comparisons, title: str | None = None, marked=None, marked_label: str = ""):
    """A forest plot of paired comparisons (chapters 10 and 11): one panel per metric, one
    line per row against its control, each seed's improvement as a small dot, the mean
    as a large one and its 95% interval (:func:`segqual_lite.stats.t_interval`) as a bar;
    right of the dashed line the row is better. ``comparisons`` are
    :class:`~segqual_lite.stats.Comparison` objects. ``marked``, comparisons of the same
    rows from another run (a build's few seeds beside a reference), adds their per-seed
    improvements as orange diamonds just above each line, named ``marked_label``."""
    metrics = list(dict.fromkeys(c.metric for c in comparisons))
    pairs = list(dict.fromkeys((c.row, c.control) for c in comparisons))
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(PAGE_WIDTH, 0.6 * len(pairs) + 1.3 + (0.6 if marked else 0)),
        sharey=True,
        squeeze=False,
    )
    for ax, metric in zip(axes[0], metrics, strict=True):
        for y, pair in enumerate(pairs):
            c = next(
                (c for c in comparisons if (c.row, c.control) == pair and c.metric == metric), None
            )
            if c is None:
                continue
            colour = {"better": "tab:green", "worse": "tab:red"}.get(c.outcome, "tab:grey")
            bar_y = y + (0.16 if marked else 0)  # the interval just below the seeds' dots
            ax.plot([c.low, c.high], [bar_y] * 2, color=colour, lw=4, solid_capstyle="butt")
            ax.scatter(
                list(c.per_seed.values()),
                [y] * len(c.per_seed),
                s=14,
                color="k",
                alpha=0.45,
                zorder=3,
                linewidths=0,
            )
            ax.scatter([c.estimate], [bar_y], s=45, color=colour, edgecolor="k", zorder=4)
            other = next(
                (m for m in marked or () if (m.row, m.control) == pair and m.metric == metric),
                None,
            )
            if other is not None:
                ax.scatter(
                    list(other.per_seed.values()),
                    [y - 0.28] * len(other.per_seed),
                    s=22,
                    marker="D",
                    facecolor="none",
                    edgecolor="tab:orange",
                    linewidths=1.2,
                    zorder=5,
                )
        ax.axvline(0, color="k", ls="--", lw=0.8)
        unit = next(c.unit for c in comparisons if c.metric == metric)
        ax.set_title(f"{metric_name(metric)} gain\n({unit})")
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(range(len(pairs)))
    axes[0, 0].set_yticklabels([f"{label(r)}\nvs {label(c)}" for r, c in pairs])
    axes[0, 0].invert_yaxis()
    fig.supxlabel(
        "improvement of the row over its control (right: the row is better)",
        y=0.11 if marked else None,
    )
    if marked:
        n = len(comparisons[0].per_seed)
        handles = [
            mpl.lines.Line2D([], [], ls="", marker="o", color="k", alpha=0.45, ms=4),
            mpl.lines.Line2D([], [], ls="", marker="D", mfc="none", mec="tab:orange", ms=5),
        ]
        names = [f"one of the {n} seeds", marked_label or "another run's seeds"]
        outcomes = {c.outcome for c in comparisons}
        for outcome, colour in (("better", "green"), ("worse", "red"), ("unresolved", "grey")):
            if outcome in outcomes:
                handles.append(mpl.lines.Line2D([], [], color=f"tab:{colour}", lw=4))
                names.append(f"95% interval: {outcome}")
        fig.legend(
            handles,
            names,
            loc="lower center",
            ncol=2,
            frameon=False,
            bbox_to_anchor=(0.5, 0.0),
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.15 if marked else 0, 1, 1))
    return fig


def plot_power(curves: pd.DataFrame, metric: str = "auroc", n_build: int | None = None):
    """The power curve of a reference run (chapter 10), from
    :func:`segqual_lite.power.power_curve`: for each row, the share of draws of k seeds
    that resolve its comparison on ``metric`` in the reference's direction (solid) and
    the share that resolve it the wrong way (dashed), against k; a dotted line at 80%
    and, when given, at the build's ``n_build`` seeds."""
    part = curves[curves["metric"] == metric]
    fig, ax = plt.subplots(figsize=fit_width(PAGE_WIDTH, 3.6))
    for i, (row, lines) in enumerate(part.groupby("row", sort=False)):
        colour = plt.get_cmap("tab10")(i)
        ax.plot(lines["k"], 100 * lines["resolved"], color=colour, lw=2, label=label(row))
        ax.plot(lines["k"], 100 * lines["wrong_way"], color=colour, lw=1.2, ls="--")
    ax.axhline(80, color="k", ls=":", lw=0.8)
    if n_build:
        ax.axvline(n_build, color="tab:orange", ls=":", lw=1.2)
        ax.annotate(
            f"a build: {n_build} seeds",
            (n_build, 97),
            xytext=(4, 0),
            textcoords="offset points",
            color="tab:orange",
            fontsize=8,
            va="top",
        )
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("seeds drawn from the reference (k)")
    ax.set_ylabel("share of draws (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"{metric_name(metric)}: resolved (solid), the wrong way (dashed)")
    ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_regimes(fits: dict, frame: pd.DataFrame, metric: str = "auroc"):
    """When does the map help? (chapter 10). Left, for each regime (``fits``: its name
    mapped to :func:`segqual_lite.regimes.fit_summary`), f's mean Jaccard on its
    training and its test images, joined, with the failure shares; right, each row's
    gain on ``metric`` (:func:`segqual_lite.regimes.regimes_frame`) in each regime, a
    dot and its 95% interval, and as a hollow diamond with its interval the gain without
    ambiguous rims. f's axis spans the upper half of the Jaccard scale, with the 0.7 line."""
    part = frame[frame["metric"] == metric]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(PAGE_WIDTH, 0.55 * len(part) + 2.2), width_ratios=(1, 1.6)
    )
    colours = dict(zip(fits, ("tab:blue", "tab:orange"), strict=False))
    for name, s in fits.items():
        xs = [0, 1]
        left.plot(
            xs,
            [s["train_jaccard"], s["test_jaccard"]],
            "o-",
            color=colours[name],
            label=f"{name}\ngap {s['gap']:+.3f}\nfailures {s['train_failures']:.0%} → "
            f"{s['test_failures']:.0%}",
        )
    left.axhline(FAILURE_THRESHOLD, color="0.4", ls=":", lw=0.8)
    left.annotate(
        f"failure below {FAILURE_THRESHOLD}", (1.3, FAILURE_THRESHOLD), fontsize=7,
        ha="right", va="bottom", color="0.3",
    )  # fmt: skip
    # below the axes, so that no label sits on a line
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8, frameon=False)
    left.set_xticks([0, 1], ["training\nimages", "test\nimages"])
    # the whole upper half of the Jaccard scale: a gap of 0.03 looks like one
    left.set(xlim=(-0.3, 1.3), ylim=(0.5, 1.0), ylabel="f's mean Jaccard (plain U-Net)")
    left.set_title("f's fit")
    left.grid(axis="y", alpha=0.3)
    for i, name in enumerate(fits):
        key = "default" if i == 0 else "overfit"
        ys = np.arange(len(part)) + (0.15 if i else -0.15)
        right.errorbar(
            part[key],
            ys,
            xerr=[part[key] - part[f"{key}_low"], part[f"{key}_high"] - part[key]],
            fmt="o",
            color=colours[name],
            capsize=2,
            label=f"{name}, with rims (95% interval)",
        )
        without = part[f"{key}_no_rims"]
        right.errorbar(
            without,
            ys + (0.1 if i else -0.1),
            xerr=[without - part[f"{key}_no_rims_low"], part[f"{key}_no_rims_high"] - without],
            fmt="D",
            mfc="none",
            color=colours[name],
            alpha=0.6,
            capsize=2,
        )
    right.axvline(0, color="k", ls="--", lw=0.8)
    right.set_yticks(range(len(part)), list(part["row"]))
    right.invert_yaxis()
    unit = part["unit"].iloc[0] if len(part) else ""
    right.set_xlabel(f"gain over the control ({unit})\nright of 0: the map helps")
    right.set_title(f"{metric_name(metric)}: the map's gain")
    right.grid(axis="x", alpha=0.3)
    handles, names = right.get_legend_handles_labels()
    handles.append(
        mpl.lines.Line2D(
            [], [], ls="", marker="D", mfc="none", mec="0.3", label="without rims (95% interval)"
        )
    )
    right.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2,
        frameon=False, fontsize=8,
    )  # fmt: skip
    fig.tight_layout()
    return fig
