"""Figures of the uncertainty maps (chapters 03-06 and 10): cases side by side, how a map
tracks f's mistakes, and the paper's Figure 2. Maps run yellow (sure) to purple
(unsure), as in the paper's Figure 2."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from ..metrics import FAILURE_THRESHOLD
from ..rows import label, map_maximum
from .style import (
    PAGE_WIDTH,
    PRINT_WIDTH,
    UNCERTAINTY_COLOURS,
    error_overlay,
    fit_width,
    to_hwc,
)

__all__ = [
    "pick_cases",
    "show_uncertainty_maps",
    "uncertainty_error_summary",
    "plot_uncertainty_vs_error",
    "figure2_cases",
    "display_scale",
    "display_range",
    "plot_figure2",
]


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
    cmap: str = UNCERTAINTY_COLOURS,
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
            bar = fig.colorbar(im, ax=ax[2 + k], fraction=0.046, pad=0.03)
            bar.set_label("uncertainty (purple: unsure)", fontsize=8)
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


def display_range(method: str, maps) -> tuple[float, float]:
    """The map values shown as 0 and 1, in Figure 2 and the explorer alike: 0 and the
    largest value the method's map can take, or for an unbounded map (HCNN's sigma,
    which never falls near 0) its 1st and 99th percentiles over ``maps`` (the whole
    split), so that its structure shows and a quiet lesion still looks quiet."""
    if map_maximum(method) is not None:
        return 0.0, display_scale(method, maps)
    low, high = np.quantile(np.asarray(maps, dtype=np.float64), [0.01, 0.99])
    return float(low), float(max(high, low + 1e-9))


FIGURE2_COLUMNS = ("best", "median", "10th percentile", "worst")  # figure2_cases' defaults


def plot_figure2(sets: dict, indices: list[int] | None = None):
    """The paper's Figure 2: for a few test images (:func:`figure2_cases` of the first
    method's Jaccard by default), each method's segmentation (green TP, red FP, blue FN)
    above its uncertainty map (yellow sure, purple unsure), every map divided by its
    :func:`display_range` (the explorer's) so that one colour bar serves them all; the
    columns are named when ``indices`` is left to its default. ``sets`` maps a method
    to its :class:`~segqual_lite.segment.SegmentationSet` on the test split."""
    first = next(iter(sets.values()))
    columns = FIGURE2_COLUMNS if indices is None else [""] * len(indices)
    indices = indices if indices is not None else figure2_cases(first.jaccard)
    fig, axes = plt.subplots(
        2 * len(sets),
        len(indices),
        figsize=fit_width(1.5 * len(indices) + 1.0, 1.5 * 2 * len(sets)),
        squeeze=False,
        layout="constrained",
    )
    for r, (method, seg) in enumerate(sets.items()):
        low, high = display_range(method, seg.maps)
        for c, i in enumerate(indices):
            top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
            top.imshow(error_overlay(seg.images[i], seg.masks[i], seg.true_masks[i]))
            head = f"{columns[c]}\n" if r == 0 and columns[c] else ""
            top.set_title(f"{head}J = {seg.jaccard[i]:.2f}", fontsize=8)
            shown = bottom.imshow(
                (seg.maps[i].numpy() - low) / (high - low),
                cmap=UNCERTAINTY_COLOURS,
                vmin=0,
                vmax=1,
            )
            if c == 0:
                top.set_ylabel(label(method), fontsize=8)
                bottom.set_ylabel("uncertainty", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(
        shown,
        ax=axes[1::2, :],
        shrink=0.6,
        label="map / its largest value"
        + (" (HCNN: its 1st to 99th pct.)" if "hcnn" in sets else ""),
    )
    return fig
