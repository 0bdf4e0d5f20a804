"""Two regimes side by side: f's fit, the difference of the gains and the plan's answer."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from segqual_lite.regimes import Regime, fit_summary, regime_difference, regimes_frame  # noqa: E402
from segqual_lite.stats import Comparison  # noqa: E402


def _comparison(row, estimate, half, metric="auroc"):
    seeds = {s: estimate + d for s, d in enumerate((-1.0, 0.0, 1.0))}
    return Comparison(
        row, "control", metric, seeds, estimate, estimate - half, estimate + half, 0.95, 300
    )


def _fit(train, test, seeds=(0, 1, 2)):
    return pd.DataFrame(
        [
            {
                "method": "max_prob",
                "seed": s,
                "split": split,
                "mean_jaccard": j + 0.01 * s,
                "failure_share": 0.5 - j / 2,
                "n_images": 300,
            }
            for s in seeds
            for split, j in (("train", train), ("test", test))
        ]
    )


def test_fit_summary_measures_the_train_test_gap_over_seeds():
    s = fit_summary(_fit(0.80, 0.74))
    assert s["gap"] == pytest.approx(0.06) and s["seeds"] == 3
    assert s["gap_low"] == pytest.approx(0.06) == s["gap_high"]  # the same gap every seed
    assert s["train_failures"] < s["test_failures"]


def test_the_difference_of_independent_gains_adds_half_widths_in_quadrature():
    d = regime_difference(_comparison("max_prob", 1.0, 3.0), _comparison("max_prob", 5.0, 4.0))
    assert d.estimate == 4.0 and (d.low, d.high) == pytest.approx((-1.0, 9.0))
    assert d.answer == "spans"


@pytest.mark.parametrize(
    ("default", "overfit", "answer"),
    [
        ((1.0, 0.5), (6.0, 0.5), "yes"),  # better there, and larger
        ((6.0, 0.5), (1.0, 0.5), "no"),  # smaller where f overfits
        ((1.0, 0.5), (1.5, 0.4), "undecided"),  # better, but not larger
        ((1.0, 0.5), (6.0, 8.0), "undecided"),  # larger, not resolved
    ],
)
def test_the_plan_s_answer(default, overfit, answer):
    a = Regime("tiny", [_comparison("max_prob", *default)], None, _fit(0.78, 0.78))
    b = Regime("tiny-overfit", [_comparison("max_prob", *overfit)], None, _fit(0.8, 0.74))
    frame = regimes_frame(a, b)
    assert list(frame["answer"]) == [answer]
    assert np.isnan(frame["default_no_rims"].iloc[0])  # no counterfactual given


def test_the_regimes_figure_shows_both_fits_and_every_row():
    from segqual_lite.viz import plot_regimes

    rows = ("max_prob", "lce")
    a = Regime(
        "tiny",
        [_comparison(r, 1.0, 0.5) for r in rows],
        [_comparison(r, 0.5, 0.5) for r in rows],
        _fit(0.78, 0.78),
    )
    b = Regime("tiny-overfit", [_comparison(r, 3.0, 1.0) for r in rows], None, _fit(0.8, 0.74))
    fits = {"tiny": fit_summary(a.fit), "tiny-overfit": fit_summary(b.fit)}
    fig = plot_regimes(fits, regimes_frame(a, b))
    left, right = fig.axes[:2]
    assert [t.get_text() for t in right.get_yticklabels()] == ["Max Probability", "LCE"]
    assert any("gap +0.060" in t.get_text() for t in left.get_legend().get_texts())
    assert fig.get_size_inches()[0] <= 7.0


def test_a_regime_loads_from_a_reference_with_its_fit(tmp_path):
    from helpers import prediction_records

    from segqual_lite.config import get_profile
    from segqual_lite.reference import pack_reference
    from segqual_lite.regimes import load_regime
    from segqual_lite.rows import METHODS, control_of
    from segqual_lite.tables import csv_text, predictions_frame

    rng = np.random.default_rng(0)
    records = []
    for seed in range(3):
        true = rng.uniform(0.3, 1.0, 60)
        for row in (*METHODS, *map(control_of, METHODS)):
            pred = np.clip(true + 0.1 * rng.standard_normal(60), 0, 1)
            records += prediction_records(row, seed, true, pred)
    results = tmp_path / "results"
    results.mkdir()
    (results / "predictions.csv").write_text(csv_text(predictions_frame(records)))
    tiny = get_profile("tiny")
    without_fit = pack_reference(results, tmp_path / "a", tiny, (0, 1, 2), "cmd", 1.0)
    assert load_regime(tiny, without_fit) is None  # a reference that records no fit
    ref = pack_reference(results, tmp_path / "b", tiny, (0, 1, 2), "cmd", 1.0, fit=_fit(0.8, 0.7))
    regime = load_regime(tiny, ref)
    assert regime.name == "tiny" and regime.counterfactual is None
    assert {(c.row, c.metric) for c in regime.comparisons} == {
        (r, m) for r in METHODS for m in ("rmse", "auroc", "detection_error")
    }
    assert fit_summary(regime.fit)["gap"] == pytest.approx(0.1)


def _two_regimes(overfit_gains):
    rows = ("max_prob", "lce")
    metrics = ("rmse", "auroc")
    a = Regime(
        "tiny",
        [_comparison(r, 1.0, 0.5, m) for r in rows for m in metrics],
        None,
        _fit(0.78, 0.78),
    )
    b = Regime(
        "tiny-overfit",
        [
            _comparison(r, g, 0.5, m)
            for r, g in zip(rows, overfit_gains, strict=True)
            for m in metrics
        ],
        None,
        _fit(0.8, 0.74),
    )
    return {r.name: fit_summary(r.fit) for r in (a, b)}, regimes_frame(a, b)


def test_the_regimes_prose_says_what_the_frame_answers():
    from segqual_lite.regimes import regimes_conclusion, regimes_markdown, regimes_table

    fits, frame = _two_regimes((6.0, 1.2))  # max_prob larger where f overfits; lce not
    text = regimes_markdown(fits, frame)
    assert "a gap of +0.060 [+0.060, +0.060]" in text
    # the aim is for the overfit regime's own gap, not its difference from the default's
    assert "`tiny-overfit`'s own gap, 0.060, reaches the plan's aim of 0.05" in text
    assert "*yes* for 2, *no* for 0 and *undecided* for 2" in text
    assert "AUROC: *yes* for Max Probability; *undecided* for LCE" in text
    assert "cannot tell" not in text  # only said when no pair is decided
    assert "larger in `tiny-overfit` for 4 of the 4 pairs" in text  # +5.0 and +0.2
    assert "4 of its comparisons are resolved better, against 4 in `tiny`" in text
    assert "*yes* for 2, *no* for 0 and *undecided* for 2 of the 4" in regimes_conclusion(
        fits, frame
    )
    table = regimes_table(frame, names=tuple(fits))
    assert list(table.columns) == ["row", "gain in", "tiny", "tiny-overfit", "difference", "answer"]
    assert table.loc[0, "tiny-overfit"] == "+6.000\n[+5.500,\u00a0+6.500]"  # RMSE: 3 decimals
    assert table.loc[1, "difference"].startswith("+5.0\n")  # AUROC: points, 1 decimal


def test_the_regimes_prose_says_when_nothing_is_decided():
    from segqual_lite.regimes import regimes_conclusion, regimes_markdown

    fits, frame = _two_regimes((1.2, 0.8))
    text = regimes_markdown(fits, frame)
    assert "*undecided* for 4" in text and "cannot tell these gains apart" in text
    fits["tiny-overfit"]["gap"] = 0.02
    assert "short of the plan's aim of 0.05" in regimes_markdown(fits, frame)
    said = regimes_conclusion(fits, frame)
    assert "short of the plan's aim" in said and "neither confirm nor refute" in said


@pytest.mark.parametrize(
    ("synthetic", "real", "answer"),
    [
        ((1.0, 0.5), (6.0, 0.5), "larger"),
        ((6.0, 0.5), (1.0, 0.5), "smaller"),
        ((1.0, 0.5), (6.0, 8.0), "undecided"),
    ],
)
def test_synthetic_and_real_data_are_compared_by_the_plan_s_rule(synthetic, real, answer):
    """PH2 against the synthetic lesions: larger, smaller or undecided by the difference
    alone, and the prose names each data set, its verdicts and f's fit on each."""
    from segqual_lite.regimes import data_sets_frame, data_sets_markdown, regimes_table

    def regime(name, gain, fit):
        rows = [_comparison("max_prob", *gain, metric=m) for m in ("rmse", "auroc")]
        return Regime(name, rows, None, fit)

    a = regime("tiny", synthetic, _fit(0.78, 0.78))
    b = regime("ph2", real, _fit(0.80, 0.81))
    frame = data_sets_frame(a, b)
    assert list(frame["answer"]) == [answer, answer]
    table = regimes_table(frame, names=("synthetic", "PH2"), outcomes=True)
    assert table["PH2"].iloc[0].endswith("\nbetter" if real[1] < real[0] else "\nunresolved")
    fits = {r.name: fit_summary(r.fit) for r in (a, b)}
    text = data_sets_markdown(a, b, fits, frame, ("synthetic lesions", "PH2"))
    assert "On synthetic lesions (`tiny`, 3 seeds) the paper's finding holds for Max" in text
    assert f"*{answer}* for 2 of the 2 row and metric pairs" in text
    assert "mean test Jaccard is 0.790 on synthetic lesions and 0.820 on PH2" in text
    partly = Regime(
        "ph2", [_comparison("lce", 0.0, 1.0, "rmse"), _comparison("lce", 5.0, 1.0)], None, b.fit
    )
    text = data_sets_markdown(a, partly, fits, frame, ("synthetic lesions", "PH2"))
    assert (
        "holds for none of its 1 rows; resolved better without the finding holding: LCE (AUROC)"
        in text
    )
