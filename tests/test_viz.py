import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from segqual_lite.rows import TABLE_ROWS  # noqa: E402
from segqual_lite.viz import (  # noqa: E402
    error_overlay,
    figure2_cases,
    mask_outline,
    pick_cases,
    plot_figure3,
    plot_forest,
    plot_risk_coverage,
)


def test_error_overlay_colours_tp_fp_fn_as_the_paper():
    image = torch.zeros(3, 2, 2, dtype=torch.uint8)
    pred = np.array([[1, 1], [0, 0]])
    true = np.array([[1, 0], [1, 0]])
    rgb = error_overlay(image, pred, true, alpha=1.0)
    np.testing.assert_allclose(rgb[0, 0], [0.0, 0.8, 0.0], rtol=1e-6)  # true positive: green
    np.testing.assert_allclose(rgb[0, 1], [0.9, 0.0, 0.0], rtol=1e-6)  # false positive: red
    np.testing.assert_allclose(rgb[1, 0], [0.0, 0.2, 0.95], rtol=1e-6)  # false negative: blue
    assert rgb[1, 1].tolist() == [0.0, 0.0, 0.0]  # true negative: untouched


def test_mask_outline_is_the_border_of_the_mask():
    mask = np.zeros((5, 5), dtype=bool)
    mask[1:4, 1:4] = True
    outline = mask_outline(mask)
    assert outline.sum() == 8 and not outline[2, 2] and not outline[0, 0]


def test_cases_for_the_figures():
    j = np.array([0.9, 0.2, 0.75, 0.95, 0.5])
    assert pick_cases(j) == {"good": 0, "poor": 1}  # median of the passing ones, the worst
    assert figure2_cases(j) == [3, 2, 1, 1]  # best, median, 10th percentile, worst


def _predictions(methods, seeds=(2, 1), n=12):
    rng = np.random.default_rng(0)
    true = rng.uniform(0.2, 1.0, n)
    return [
        {
            "method": m,
            "seed": s,
            "image_id": f"ISIC_{i:07d}",
            "true_jaccard": float(true[i]),
            "predicted_jaccard": float(np.clip(true[i] + 0.1 * rng.standard_normal(), 0, 1)),
        }
        for s in seeds
        for m in methods
        for i in range(n)
    ]


def test_figure3_has_one_titled_panel_per_row_for_the_first_seed():
    before = set(plt.get_fignums())
    fig = plot_figure3(_predictions(("max_prob", "rca", "custom")))
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert titles == ["RCA", "Max Probability"]  # the paper's order; unknown rows left out
    assert fig._suptitle.get_text().startswith("seed 1:")
    plt.close(fig)
    assert set(plt.get_fignums()) == before  # nothing else left open


def test_risk_coverage_labels_every_row_with_its_automation_rates():
    fig = plot_risk_coverage(_predictions((*TABLE_ROWS[:2], "tta")), seed=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t.split("\n")[0] for t in titles] == ["RCA", "QualityNet", "TTA"]
    assert all("automated:" in t for t in titles)
    plt.close(fig)


def test_forest_plot_has_a_panel_per_metric_and_a_line_per_pair():
    from segqual_lite.stats import compare

    rows = _predictions(("max_prob", "no_uncertainty"), seeds=(0, 1, 2))
    comparisons = [
        compare(rows, "max_prob", "no_uncertainty", m, n_boot=100) for m in ("rmse", "auroc")
    ]
    fig = plot_forest(comparisons)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["rmse", "auroc"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "Max Probability\nvs No Uncertainty"
    ]
    plt.close(fig)
