import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from segqual_lite.rows import TABLE_ROWS, label  # noqa: E402
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


def test_risk_coverage_overlays_every_row_with_the_oracle_and_random_references():
    predictions = _predictions(("max_prob", *TABLE_ROWS[:2], "tta"))
    fig = plot_risk_coverage(predictions, seed=2)
    assert len(fig.axes) == 1 and fig.axes[0].get_title().startswith("seed 2:")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == [
        "RCA",
        "QualityNet",
        "Max Probability",
        "TTA",
        "oracle order (Max Probability's masks)",
        "random order (Max Probability's masks)",
    ]
    oracle, random = fig.axes[0].get_lines()[-2:]
    assert np.all(oracle.get_ydata() >= random.get_ydata() - 1e-12)  # the oracle bounds
    plt.close(fig)


def test_forest_plot_has_a_panel_per_metric_and_a_line_per_pair():
    from segqual_lite.stats import compare

    rows = _predictions(("max_prob", "no_uncertainty"), seeds=(0, 1, 2))
    comparisons = [
        compare(rows, "max_prob", "no_uncertainty", m, n_boot=100) for m in ("rmse", "auroc")
    ]
    fig = plot_forest(comparisons)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [
        "RMSE gain",
        "AUROC gain",
    ]  # a gain: higher is better, no arrow
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "Max Probability\nvs No Uncertainty"
    ]
    plt.close(fig)
    # Another run's seeds (a build beside a reference) as diamonds, named in a legend.
    first_two = [r for r in rows if r["seed"] < 2]
    build = [compare(first_two, c.row, c.control, c.metric, n_boot=50) for c in comparisons]
    fig = plot_forest(comparisons, marked=build, marked_label="this build's 2 seeds")
    diamonds = [
        c for ax in fig.axes for c in ax.collections if c.get_paths() and len(c.get_offsets()) == 2
    ]
    assert len(diamonds) == 2  # one set per panel, two seeds each
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["one of the 3 seeds", "this build's 2 seeds"]
    assert any(t.startswith("95% interval: ") for t in legend)
    plt.close(fig)


def _texts(fig):
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text()]


def test_every_figure_fits_the_page_with_text_of_at_least_8_pt():
    """As wide as the site's text column at most, so that the page shows it (nearly) at
    full size: then 8 pt in the figure is 8 pt on the page. Drawn at 150 dpi."""
    from segqual_lite.segment import SegmentationSet
    from segqual_lite.stats import compare
    from segqual_lite.tables import beyond_table
    from segqual_lite.viz import (
        PAGE_WIDTH,
        plot_figure2,
        plot_row_metric,
        plot_shift,
        plot_uncertainty_vs_error,
        show_grid,
        show_uncertainty_maps,
    )

    rng = np.random.default_rng(0)
    images = torch.randint(0, 255, (4, 3, 16, 16), dtype=torch.uint8)
    masks = torch.randint(0, 2, (4, 16, 16), dtype=torch.uint8)
    pred = masks.roll(3, dims=2)  # a prediction with some wrong pixels
    maps = torch.rand(4, 16, 16)
    j = rng.uniform(0.3, 1, 4)
    seg = SegmentationSet([f"ISIC_{i}" for i in range(4)], images, masks, pred, maps, j)
    rows = _predictions(TABLE_ROWS, seeds=(0, 1, 2))
    from segqual_lite.models import UNet
    from segqual_lite.viz import plot_unet

    figures = {
        "unet": plot_unet(UNet(width=4, depth=4), 64),
        "grid": show_grid(images, masks, [f"ISIC_{i:07d}" for i in range(4)], ncols=6),
        "maps": show_uncertainty_maps(
            images, masks, pred, {"a": maps, "b": maps}, {"good": 0, "poor": 1}, j
        ),
        "vs error": plot_uncertainty_vs_error(maps.numpy(), pred, masks, j, "entropy"),
        "figure 2": plot_figure2({"max_prob": seg, "mc_dropout": seg}),
        "figure 3": plot_figure3(rows),
        "risk-coverage": plot_risk_coverage(rows),
        "forest": plot_forest(
            [compare(rows, "max_prob", "no_uncertainty", m, n_boot=50) for m in ("rmse", "auroc")]
        ),
        "row metric": plot_row_metric(
            beyond_table(rows), TABLE_ROWS, "augrc", {r: "g" for r in TABLE_ROWS}
        ),
        "shift": plot_shift(_shift_frame()),
    }
    for name, fig in figures.items():
        assert fig.get_figwidth() <= PAGE_WIDTH + 1e-9, name
        assert fig.dpi == 150, name
        small = [t.get_text() for t in _texts(fig) if t.get_fontsize() < 8]
        assert not small, (name, small)
        plt.close(fig)


def _shift_frame():
    """A small frame shaped like deployment.shift_results: clean, two corruptions."""
    rng = np.random.default_rng(0)
    records = []
    for seed in (0, 1):
        for kind, severity in (("none", 0), ("blur", 2), ("blur", 4), ("noise", 2), ("noise", 4)):
            for row in ("no_uncertainty", "max_prob", "lce", "max_prob_image_mean"):
                records.append(
                    {
                        "seed": seed,
                        "corruption": kind,
                        "severity": severity,
                        "row": row,
                        "mean_jaccard": 0.8 - 0.05 * severity + 0.01 * rng.random(),
                        "auroc": 80 - 2 * severity + rng.random(),
                    }
                )
    import pandas as pd

    return pd.DataFrame(records)


def test_shift_plot_has_a_column_per_corruption_and_a_line_per_row_and_per_unet():
    from segqual_lite.viz import plot_shift

    fig = plot_shift(_shift_frame())
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[0]] == ["blur", "noise"]
    assert len(axes[1, 0].get_lines()) == 4  # one per row
    assert len(axes[0, 0].get_lines()) == 2  # one per U-Net whose masks are judged
    # severity 0 (the clean images) starts every line
    assert all(line.get_xdata()[0] == 0 for line in axes[1, 0].get_lines())
    # a U-Net's masks and the row named after its method share a colour
    colour = {line.get_label(): line.get_color() for ax in axes[:, 0] for line in ax.get_lines()}
    assert colour["Max Probability's masks"] == colour["Max Probability"]
    assert colour["LCE's masks"] == colour["LCE"] != colour["Max Probability"]
    plt.close(fig)


def test_uncertainty_maps_of_the_cases_shown_share_one_scale_per_map():
    from segqual_lite.viz import show_uncertainty_maps

    images = torch.zeros(3, 3, 8, 8, dtype=torch.uint8)
    masks = torch.zeros(3, 8, 8, dtype=torch.uint8)
    quiet, loud = torch.full((8, 8), 0.1), torch.full((8, 8), 0.4)
    maps = {"entropy": torch.stack([quiet, loud, quiet])}
    fig = show_uncertainty_maps(images, masks, masks, maps, {"good": 0, "poor": 1}, [0.9, 0.3, 0.5])
    shown = [ax.images[0] for ax in fig.axes if ax.get_title() == "entropy"]
    assert len(shown) == 2
    assert all(im.get_clim() == pytest.approx((0.0, 0.4)) for im in shown)  # 0.1 looks quiet
    plt.close(fig)


def test_show_source_gives_the_code_without_its_docstring():
    from segqual_lite.models import UNet
    from segqual_lite.uncertainty import entropy
    from segqual_lite.viz import show_source

    text = show_source(entropy, UNet.forward).data
    assert text.startswith("```python\n# segqual_lite.uncertainty.entropy\ndef entropy(")
    assert "xlogy" in text and '"""' not in text and text.endswith("\n```")
    assert "# segqual_lite.models.UNet.forward\ndef forward(self" in text  # dedented method


def test_the_unet_diagram_marks_every_block_followed_by_dropout():
    from matplotlib.patches import Rectangle

    from segqual_lite.models import UNet
    from segqual_lite.viz import plot_unet

    for depth in (3, 4):
        net = UNet(width=4, depth=depth)
        fig = plot_unet(net, 64)
        boxes = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
        orange = [
            p for p in boxes if p.get_facecolor()[:3] == matplotlib.colors.to_rgb("tab:orange")
        ]
        dropouts = sum(type(m).__name__ == "MCDropout" for m in net.modules())
        assert len(boxes) == 2 * depth + 1 and len(orange) == dropouts == 5
        plt.close(fig)


def test_shift_bands_stay_within_each_metric_s_range():
    from segqual_lite.viz import plot_shift

    frame = _shift_frame()
    frame["auroc"] = np.where(frame["seed"] == 0, 100.0, 80.0)  # sd 14 points around 90
    frame["mean_jaccard"] = np.where(frame["seed"] == 0, 1.0, 0.6)
    fig = plot_shift(frame)
    axes = np.array(fig.axes).reshape(2, 2)
    for ax, top in ((axes[0, 0], 1.0), (axes[1, 0], 100.0)):
        bands = [c.get_paths()[0].vertices[:, 1] for c in ax.collections]
        assert bands and max(b.max() for b in bands) <= top
    plt.close(fig)


def test_risk_coverage_highlights_the_compared_rows_over_the_rest_in_grey():
    predictions = _predictions(("max_prob", "max_prob_crossfit", *TABLE_ROWS[:2], "tta"))
    fig = plot_risk_coverage(predictions, seed=2, highlight=["max_prob", "max_prob_crossfit"])
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    grey = [line for line in fig.axes[0].get_lines() if line.get_color() == "0.75"]
    assert len(grey) == 3 and "the other 3 rows" in lines  # RCA, QualityNet, TTA: one entry
    plain, twin = lines["Max Probability"], lines[label("max_prob_crossfit")]
    assert plain.get_color() == twin.get_color() and twin.get_linestyle() == "--"
    plt.close(fig)
