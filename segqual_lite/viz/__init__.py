"""The book's figures, by what they show:

* :mod:`~segqual_lite.viz.style`: the figure style (set on import), images, mask outlines,
  the paper's error overlay (green TP, red FP, blue FN), grids, code beside its equation;
* :mod:`~segqual_lite.viz.networks`: the U-Net's diagram and learning curve (chapter 02);
* :mod:`~segqual_lite.viz.maps`: uncertainty maps and the paper's Figure 2 (03-06, 10);
* :mod:`~segqual_lite.viz.quality`: Figure 3, risk-coverage, a metric per row, the shift
  test (10-12);
* :mod:`~segqual_lite.viz.comparisons`: forest plots and power curves (08, 10).

Every name is importable from ``segqual_lite.viz`` itself.
"""

from .comparisons import plot_forest, plot_power
from .maps import (
    display_scale,
    figure2_cases,
    pick_cases,
    plot_figure2,
    plot_uncertainty_vs_error,
    show_uncertainty_maps,
    uncertainty_error_summary,
)
from .networks import plot_learning_curve, plot_unet
from .quality import plot_figure3, plot_risk_coverage, plot_row_metric, plot_shift
from .style import (
    BOOK_STYLE,
    PAGE_WIDTH,
    PRINT_WIDTH,
    error_overlay,
    fit_width,
    mask_outline,
    show_grid,
    show_source,
    to_hwc,
)

__all__ = [
    "BOOK_STYLE",
    "PAGE_WIDTH",
    "PRINT_WIDTH",
    "fit_width",
    "show_source",
    "to_hwc",
    "mask_outline",
    "error_overlay",
    "show_grid",
    "plot_unet",
    "plot_learning_curve",
    "pick_cases",
    "show_uncertainty_maps",
    "uncertainty_error_summary",
    "plot_uncertainty_vs_error",
    "figure2_cases",
    "display_scale",
    "plot_figure2",
    "plot_figure3",
    "plot_risk_coverage",
    "plot_row_metric",
    "plot_shift",
    "plot_forest",
    "plot_power",
]
