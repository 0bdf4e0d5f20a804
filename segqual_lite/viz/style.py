"""The book's figure style and the drawing every figure shares: images as arrays, mask
outlines, the paper's error overlay (green = true positive, red = false positive, blue =
false negative, as in its Figure 2), image grids, and code shown beside its equation.

Importing this module sets the book's figure style (:data:`BOOK_STYLE`): figures drawn
at 150 dpi, text at 8-10 pt. Every figure of the package is at most :data:`PAGE_WIDTH`
inches wide, the width of the book's text column, so the site shows it at full size or
close to it and its text stays at least 8 pt on the page. Chapters size their own
figures with :func:`fit_width`.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from ..tables import in_paper_units, metric_name

__all__ = [
    "BOOK_STYLE",
    "PAGE_WIDTH",
    "PRINT_WIDTH",
    "UNCERTAINTY_COLOURS",
    "fit_width",
    "say",
    "summary_text",
    "show_source",
    "to_hwc",
    "mask_outline",
    "error_overlay",
    "show_grid",
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
PRINT_WIDTH = 74  # characters of printed output that fit the text column, in boxes too
# The book's one colour scale for uncertainty, in every figure and the explorer:
# yellow where the network is sure, dark purple where it is unsure.
UNCERTAINTY_COLOURS = "viridis_r"


def say(*parts, indent: str = "") -> None:
    """Print ``parts`` (joined by spaces, like ``print``) wrapped to the page's column,
    later lines indented by ``indent``: a sentence a chapter computes from its run."""
    text = " ".join(str(p) for p in parts)
    print(textwrap.fill(text, PRINT_WIDTH, subsequent_indent=indent, break_on_hyphens=False))


def summary_text(summary: dict, digits: int = 1) -> str:
    """The five metrics of :func:`segqual_lite.metrics.summarize` in the paper's units,
    on one line: RMSE a fraction of J, the others in % with ``digits`` decimals."""

    def value(name, v):
        if in_paper_units(name, 1.0) == 1.0:  # a fraction
            return f"{v:.{digits + 2}f}"
        return f"{in_paper_units(name, v):.{digits}f}%"

    return ", ".join(f"{metric_name(k)} {value(k, v)}" for k, v in summary.items())


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
