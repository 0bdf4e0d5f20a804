"""Figures shared by the chapters: images with mask outlines, error overlays, grids.

Colours follow the paper's Figure 2: green = true positive, red = false positive,
blue = false negative.

Importing this module sets the book's figure style (:data:`BOOK_STYLE`): figures drawn
at 150 dpi, text at 8-10 pt. Every figure here is at most :data:`PAGE_WIDTH` inches
wide, the width of the book's text column, so the site shows it at full size or close
to it and its text stays at least 8 pt on the page. Chapters size their own figures
with :func:`fit_width`.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .metrics import FAILURE_THRESHOLD, risk_coverage
from .rows import BEYOND_ROWS, TABLE_ROWS, get_row, label, map_maximum
from .tables import LOWER_IS_BETTER, METRIC_LABELS, per_seed_arrays

__all__ = [
    "plot_row_metric",
    "plot_shift",
    "BOOK_STYLE",
    "PAGE_WIDTH",
    "fit_width",
    "show_source",
    "to_hwc",
    "mask_outline",
    "error_overlay",
    "show_grid",
    "plot_learning_curve",
    "plot_unet",
    "pick_cases",
    "show_uncertainty_maps",
    "uncertainty_error_summary",
    "plot_uncertainty_vs_error",
    "figure2_cases",
    "display_scale",
    "plot_figure2",
    "plot_figure3",
    "plot_risk_coverage",
    "plot_forest",
    "plot_power",
]


BOOK_STYLE = {
    "figure.dpi": 150,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 10,
    "figure.labelsize": 9,
}
mpl.rcParams.update(BOOK_STYLE)
PRINT_WIDTH = 76  # characters of printed output that fit the text column
PAGE_WIDTH = 7.0  # inches: the text column of the site (about 690 px)


def fit_width(width: float, height: float) -> tuple[float, float]:
    """A figure size no wider than :data:`PAGE_WIDTH`, scaled down with its aspect."""
    scale = min(1.0, PAGE_WIDTH / width)
    return width * scale, height * scale


def show_source(*functions):
    """The code of ``functions`` (their docstrings left out), as one highlighted Python
    block for a chapter's output: the lines behind an equation, next to it."""
    from IPython.display import Markdown

    blocks = []
    for function in functions:
        source = textwrap.dedent(inspect.getsource(function))
        lines = source.splitlines()
        body = ast.parse(source).body[0].body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            first, last = body[0].lineno, body[0].end_lineno  # the docstring's lines, from 1
            lines = lines[: first - 1] + lines[last:]
        where = f"# {function.__module__}.{function.__qualname__}"
        blocks.append("\n".join([where, *lines]))
    return Markdown("```python\n" + "\n\n".join(blocks) + "\n```")


def to_hwc(image) -> np.ndarray:
    """A ``[3, H, W]`` tensor/array (uint8 or float in [0, 1]) as float ``[H, W, 3]``."""
    a = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if a.ndim == 3 and a.shape[0] == 3:
        a = a.transpose(1, 2, 0)
    a = a.astype(np.float32)
    return a / 255.0 if a.max() > 1.0 else a


def mask_outline(mask) -> np.ndarray:
    """Boolean ``[H, W]``: mask pixels with a 4-neighbour outside the mask."""
    m = np.asarray(mask).astype(bool)
    padded = np.pad(m, 1, mode="edge")
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & m
    return m & ~interior


def error_overlay(image, pred_mask, true_mask, alpha: float = 0.55) -> np.ndarray:
    """The image tinted green (TP), red (FP) and blue (FN), as in the paper's Figure 2."""
    rgb = to_hwc(image).copy()
    pred = np.asarray(pred_mask).astype(bool)
    true = np.asarray(true_mask).astype(bool)
    for region, colour in (
        (pred & true, (0.0, 0.8, 0.0)),
        (pred & ~true, (0.9, 0.0, 0.0)),
        (~pred & true, (0.0, 0.2, 0.95)),
    ):
        rgb[region] = (1 - alpha) * rgb[region] + alpha * np.asarray(colour)
    return rgb


def show_grid(images, masks=None, titles=None, ncols: int = 6, size: float = 1.9):
    """Images in a grid, each with its mask outline in yellow; returns the figure."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    figsize = fit_width(size * ncols, size * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        rgb = to_hwc(images[i]).copy()
        if masks is not None:
            rgb[mask_outline(masks[i])] = (1.0, 0.9, 0.0)
        ax.imshow(rgb, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def plot_unet(net, image_size: int | None = None):
    """The U-Net ``net`` as a diagram (chapter 02): encoder blocks down the left, the
    bottleneck at the bottom, decoder blocks up the right, one box per block of two 3x3
    convolutions with its number of filters (and resolution, given ``image_size``),
    skip connections across, and the blocks followed by dropout filled in orange."""
    from matplotlib.patches import Patch

    dropped = [not isinstance(m, torch.nn.Identity) for m in net.encoder_dropout]
    decoder_dropped = [not isinstance(m, torch.nn.Identity) for m in net.decoder_dropout]
    depth = net.depth

    def filters(block):
        return [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)][-1].out_channels

    blocks = []  # (x, level, filters, followed by dropout)
    for i, enc in enumerate(net.encoders):
        blocks.append((i, i, filters(enc), dropped[i]))
    blocks.append((depth, depth, filters(net.bottleneck), True))
    for j, dec in enumerate(net.decoders):
        blocks.append((depth + 1 + j, depth - 1 - j, filters(dec), decoder_dropped[j]))
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.4))
    for x, level, filters, drop in blocks:
        ax.add_patch(
            plt.Rectangle(
                (x - 0.38, -level - 0.3),
                0.76,
                0.6,
                facecolor="tab:orange" if drop else "0.88",
                edgecolor="k",
                lw=0.8,
            )
        )
        size = f"\n{image_size // 2**level} px" if image_size else ""
        ax.text(x, -level, f"{filters}{size}", ha="center", va="center", fontsize=8)
    for i in range(depth):  # skips, down (max-pool) and up (transposed convolution)
        ax.annotate(
            "",
            (2 * depth - i - 0.4, -i),
            (i + 0.4, -i),
            arrowprops=dict(arrowstyle="->", ls="--", color="0.5", lw=0.8),
        )
        ax.annotate(
            "",
            (i + 1 - 0.15, -i - 1 + 0.3),
            (i + 0.15, -i - 0.3),
            arrowprops=dict(arrowstyle="->", color="k", lw=0.8),
        )
        ax.annotate(
            "",
            (2 * depth - i + 0.15 - 0.3, -i - 0.3),
            (2 * depth - i - 1 + 0.15, -i - 1 + 0.3),
            arrowprops=dict(arrowstyle="->", color="k", lw=0.8),
        )
    ax.text(-0.5, 0.55, "image x", fontsize=8, ha="left")
    ax.text(2 * depth + 0.5, 0.55, "logits rho (1x1 conv)", fontsize=8, ha="right")
    ax.set(xlim=(-0.7, 2 * depth + 0.7), ylim=(-depth - 0.6, 0.9))
    ax.axis("off")
    ax.legend(
        handles=[
            Patch(facecolor="0.88", edgecolor="k", label="two 3x3 conv + BN + ReLU (filters)"),
            Patch(facecolor="tab:orange", edgecolor="k", label="... followed by dropout, p = 0.5"),
            Patch(facecolor="none", edgecolor="0.5", ls="--", label="skip connection (dashed)"),
        ],
        loc="lower left",
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    return fig


def plot_learning_curve(history: list[dict], ax=None, title: str | None = None):
    """Training loss and validation Jaccard per epoch (chapter 02)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["loss"] for h in history], color="tab:red", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:red")
    right = ax.twinx()
    right.plot(epochs, [h["val_jaccard"] for h in history], color="tab:blue", label="val J")
    right.set_ylabel("validation Jaccard", color="tab:blue")
    right.set_ylim(0, 1)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax


def pick_cases(jaccard_values, threshold: float = FAILURE_THRESHOLD) -> dict[str, int]:
    """Indices of a good segmentation (the median of those that pass) and a poor one
    (the worst), for the chapters' side-by-side figures."""
    j = np.asarray(jaccard_values)
    order = np.argsort(j)
    passing = order[j[order] >= threshold]
    good = int(passing[len(passing) // 2]) if len(passing) else int(order[-1])
    return {"good": good, "poor": int(order[0])}


def show_uncertainty_maps(
    images,
    true_masks,
    pred_masks,
    maps: dict,
    cases: dict[str, int],
    jaccard_values,
    cmap: str = "viridis_r",
):
    """For each case: the image, the error overlay and each uncertainty map (chapters
    03-06). ``maps`` is {name: [N, H, W] array}; the colour map runs yellow (sure) to
    purple (unsure), as in the paper's Figure 2, on one scale per map from 0 to its
    largest value over the cases shown, so that the cases compare."""
    names = list(maps)
    arrays = {
        name: [
            np.asarray(m[i].detach().cpu() if hasattr(m, "detach") else m[i])
            for i in cases.values()
        ]
        for name, m in maps.items()
    }
    top = {name: max(float(a.max()) for a in shown) for name, shown in arrays.items()}
    ncols = 2 + len(names)
    figsize = fit_width(2.3 * ncols, 2.4 * len(cases))
    fig, axes = plt.subplots(len(cases), ncols, figsize=figsize, squeeze=False)
    for row, (case, i) in enumerate(cases.items()):
        ax = axes[row]
        ax[0].imshow(to_hwc(images[i]))
        ax[0].set_title(f"{case}: image", fontsize=9)
        ax[1].imshow(error_overlay(images[i], pred_masks[i], true_masks[i]))
        ax[1].set_title(f"J = {float(jaccard_values[i]):.2f}", fontsize=9)
        for k, name in enumerate(names):
            im = ax[2 + k].imshow(arrays[name][row], cmap=cmap, vmin=0, vmax=top[name] or 1)
            ax[2 + k].set_title(name, fontsize=9)
            fig.colorbar(im, ax=ax[2 + k], fraction=0.046, pad=0.03)
        for a in ax:
            a.axis("off")
    fig.tight_layout()
    return fig


def uncertainty_error_summary(uncertainty, pred_masks, true_masks, jaccard_values) -> dict:
    """How a map tracks mistakes: its mean on wrong and on correct pixels, their ratio,
    and the correlation of each image's mean map with its Jaccard index."""
    u = np.asarray(uncertainty, dtype=np.float64)
    wrong = np.asarray(pred_masks).astype(bool) != np.asarray(true_masks).astype(bool)
    on_wrong, on_right = float(u[wrong].mean()), float(u[~wrong].mean())
    return {
        "wrong_pixels": on_wrong,
        "correct_pixels": on_right,
        "ratio": on_wrong / max(on_right, 1e-12),
        "image_correlation": float(np.corrcoef(u.mean(axis=(1, 2)), jaccard_values)[0, 1]),
    }


def plot_uncertainty_vs_error(uncertainty, pred_masks, true_masks, jaccard_values, name: str):
    """Two views of whether the map tracks mistakes: its distribution on wrong and right
    pixels, and per image its mean against the Jaccard index; prints the summary of
    :func:`uncertainty_error_summary`."""
    u = np.asarray(uncertainty, dtype=np.float64)
    wrong = np.asarray(pred_masks).astype(bool) != np.asarray(true_masks).astype(bool)
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 2.8))
    axes[0].hist(u[~wrong].ravel(), bins=40, alpha=0.6, density=True, label="correct pixels")
    axes[0].hist(u[wrong].ravel(), bins=40, alpha=0.6, density=True, label="wrong pixels")
    axes[0].set(xlabel=name, ylabel="density", yscale="log")
    axes[0].legend(fontsize=8)
    axes[1].scatter(u.mean(axis=(1, 2)), jaccard_values, s=10)
    axes[1].axhline(FAILURE_THRESHOLD, ls=":", c="grey")
    axes[1].set(xlabel=f"mean {name} per image", ylabel="true Jaccard")
    fig.tight_layout()
    s = uncertainty_error_summary(u, pred_masks, true_masks, jaccard_values)
    print(
        textwrap.fill(
            f"{name}: mean {s['wrong_pixels']:.3f} on wrong pixels, {s['correct_pixels']:.3f} "
            f"on correct ones ({s['ratio']:.1f}x); correlation of the per-image mean with the "
            f"Jaccard index {s['image_correlation']:.2f}",
            PRINT_WIDTH,
        )
    )
    return fig


def figure2_cases(jaccard_values, quantiles=(1.0, 0.5, 0.1, 0.0)) -> list[int]:
    """Test images for Figure 2 at the given quantiles of the Jaccard index: by default
    the best, the median, a poor one (10th percentile) and the worst."""
    order = np.argsort(jaccard_values)  # worst first
    return [int(order[round(q * (len(order) - 1))]) for q in quantiles]


def display_scale(method: str, maps) -> float:
    """The divisor that puts ``method``'s maps on one scale with the others for display:
    the largest value the map can take (:func:`~segqual_lite.rows.map_maximum`), or for
    HCNN's unbounded sigma the 99th percentile of ``maps`` (the images shown)."""
    maximum = map_maximum(method)
    if maximum is not None:
        return maximum
    return max(float(np.quantile(np.asarray(maps, dtype=np.float64), 0.99)), 1e-6)


def plot_figure2(sets: dict, indices: list[int] | None = None):
    """The paper's Figure 2: for a few test images (:func:`figure2_cases` of the first
    method's Jaccard by default), each method's segmentation (green TP, red FP, blue FN)
    above its uncertainty map (yellow sure, purple unsure), every map divided by its
    :func:`display_scale` so that one colour bar serves them all. ``sets`` maps a method
    to its :class:`~segqual_lite.segment.SegmentationSet` on the test split."""
    first = next(iter(sets.values()))
    indices = indices if indices is not None else figure2_cases(first.jaccard)
    fig, axes = plt.subplots(
        2 * len(sets),
        len(indices),
        figsize=fit_width(1.5 * len(indices) + 1.0, 1.5 * 2 * len(sets)),
        squeeze=False,
        layout="constrained",
    )
    for r, (method, seg) in enumerate(sets.items()):
        scale = display_scale(method, seg.maps[indices])
        for c, i in enumerate(indices):
            top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
            top.imshow(error_overlay(seg.images[i], seg.masks[i], seg.true_masks[i]))
            top.set_title(f"J = {seg.jaccard[i]:.2f}", fontsize=8)
            shown = bottom.imshow(seg.maps[i].numpy() / scale, cmap="viridis_r", vmin=0, vmax=1)
            if c == 0:
                top.set_ylabel(label(method), fontsize=8)
                bottom.set_ylabel("uncertainty", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(
        shown, ax=axes[1::2, :], shrink=0.6, label="map / its largest value (HCNN: 99th pct.)"
    )
    return fig


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


def plot_figure3(predictions, seed: int | None = None, threshold: float = FAILURE_THRESHOLD):
    """The paper's Figure 3: true against predicted Jaccard per row, with the 0.7 lines
    (one seed, the first by default)."""
    fig, axes, seed, panels = _row_panels(predictions, TABLE_ROWS, seed, (3, 3))
    for ax, method, true, pred in panels:
        ax.scatter(true, pred, s=8, alpha=0.6)
        ax.plot([0, 1], [0, 1], c="grey", lw=0.8)
        ax.axvline(threshold, ls=":", c="k", lw=0.8)
        ax.axhline(threshold, ls=":", c="k", lw=0.8)
        ax.set(xlim=(0, 1.02), ylim=(0, 1.02), title=label(method))
        ax.set_xlabel("true Jaccard", fontsize=8)
        ax.set_ylabel("predicted Jaccard", fontsize=8)
    fig.suptitle(f"seed {seed}: false positives sit top left, detected failures bottom left")
    fig.tight_layout()
    return fig


def plot_risk_coverage(predictions, seed: int | None = None, reference: str = "max_prob"):
    """Risk-coverage curves (chapter 11) of every row in one plot, for one seed (the first
    by default): the mean true Jaccard of the accepted cases against the share accepted,
    highest predicted quality first. The oracle order (by true Jaccard) and the random
    order (flat at the mean) of the ``reference`` row's masks (the plain U-Net's) frame
    them; rows on other segmenters' masks have references of their own, close to these.
    """
    arrays = per_seed_arrays(predictions)
    seed = min(s for by_seed in arrays.values() for s in by_seed) if seed is None else seed
    rows = [m for m in (*TABLE_ROWS, *BEYOND_ROWS) if m in arrays]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.6))
    colours = plt.get_cmap("tab20")
    for k, method in enumerate(rows):
        true, pred = arrays[method][seed]
        coverage, accepted = risk_coverage(true, pred)
        ax.plot(coverage, accepted, color=colours(k % 20), lw=1.3, label=label(method))
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
        ax.set_title(f"{METRIC_LABELS.get(metric, metric)}\n({unit})")
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
    :func:`segqual_lite.stats.power_curve`: for each row, the share of draws of k seeds
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
    ax.set_title(f"{METRIC_LABELS.get(metric, metric)}: resolved (solid), the wrong way (dashed)")
    ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
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
        lines = [(0, "mean_jaccard", r, f"{label(m)}'s masks") for m, r in masks.items()]
        lines += [(1, metric, r, label(r)) for r in rows]
        for k, (i, column, row, name) in enumerate(lines):
            by = part[part["row"] == row].groupby("severity")[column]
            mean, std = by.mean(), by.std().fillna(0)
            colour = f"C{rows.index(row)}" if i else f"C{7 + k % 3}"
            ax = axes[i, col]
            ax.plot(mean.index, mean, marker="o", ms=3, color=colour, label=name)
            ax.fill_between(mean.index, mean - std, mean + std, color=colour, alpha=0.15)
        axes[0, col].set_title(kind)
        axes[1, col].set_xlabel("severity")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("f's mean Jaccard")
    unit = " (%)" if metric in ("auroc", "aupr_pass", "aupr_fail") else ""
    axes[1, 0].set_ylabel(METRIC_LABELS.get(metric, metric) + unit)
    axes[1, 0].set_xticks(sorted(set(frame["severity"])))
    handles, names = [], []
    for ax in axes[:, 0]:
        h, n = ax.get_legend_handles_labels()
        handles, names = handles + h, names + n
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return fig
