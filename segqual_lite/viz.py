"""Figures shared by the chapters: images with mask outlines, error overlays, grids.

Colours follow the paper's Figure 2: green = true positive, red = false positive,
blue = false negative.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["to_hwc", "mask_outline", "error_overlay", "show_grid"]


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
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
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
