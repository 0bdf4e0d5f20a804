import numpy as np
import pytest
from helpers import prediction_records

from segqual_lite import metrics
from segqual_lite.stats import compare, comparisons_frame, resampled_metric


def _case(n=200, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    true = rng.uniform(0.3, 1.0, n)
    pred = np.clip(true + 0.15 * rng.standard_normal(n), 0, 1)
    if ties:
        pred = np.round(pred, 1)  # many equal scores
    return true, pred


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("metric", ["rmse", "auroc", "detection_error", "augrc"])
def test_resampled_metrics_equal_the_reference_ones(metric, ties):
    true, pred = _case(ties=ties)
    idx = np.random.default_rng(1).integers(0, len(true), size=(20, len(true)))
    fast = resampled_metric(metric, true, pred, idx)
    slow = [getattr(metrics, metric)(true[i], pred[i]) for i in idx]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_a_single_class_resample_is_nan():
    true = np.array([0.9, 0.95, 0.2])
    assert np.isnan(resampled_metric("auroc", true, true, np.array([[0, 1, 1]])))[0]


def _predictions(shift_by_seed, n=150, control_noise=0.2):
    """Row ``g`` predicts better than ``control`` by a known amount per seed."""
    rows = []
    for seed, shift in shift_by_seed.items():
        rng = np.random.default_rng(seed)
        true = rng.uniform(0.3, 1.0, n)
        noise = rng.standard_normal(n)
        for method, scale in (("control", control_noise), ("g", control_noise - shift)):
            pred = true + scale * noise
            rows += prediction_records(method, seed, true, pred)
    return rows


def test_identical_rows_give_a_zero_interval():
    rows = _predictions({0: 0.0, 1: 0.0, 2: 0.0})
    for metric in ("rmse", "auroc", "detection_error"):
        c = compare(rows, "g", "control", metric, n_boot=300)
        assert (c.low, c.estimate, c.high) == (0.0, 0.0, 0.0)
        assert c.outcome == "unresolved"


def test_a_known_improvement_is_recovered_with_its_unit():
    rows = _predictions({0: 0.05, 1: 0.05, 2: 0.05})
    c = compare(rows, "g", "control", "rmse", n_boot=500)
    # RMSE of true + s * noise is s * rms(noise): the improvement is 0.05 * rms(noise).
    assert c.estimate == pytest.approx(0.05, rel=0.15)
    assert c.low > 0 and c.outcome == "better" and c.unit == "a fraction of J"
    assert "better than control on rmse" in c.verdict() and "3 seeds and 150 test images" in (
        c.verdict()
    )
    worse = compare(rows, "control", "g", "rmse", n_boot=500)
    assert worse.outcome == "worse" and worse.estimate == pytest.approx(-c.estimate)


def test_seed_to_seed_spread_widens_the_interval():
    steady = compare(_predictions({0: 0.03, 1: 0.03, 2: 0.03}), "g", "control", "rmse", 500)
    spread = compare(_predictions({0: -0.03, 1: 0.03, 2: 0.09}), "g", "control", "rmse", 500)
    assert steady.estimate == pytest.approx(spread.estimate, abs=0.01)
    assert spread.high - spread.low > 2 * (steady.high - steady.low)


def test_the_bootstrap_is_seeded_and_tabulated():
    rows = _predictions({0: 0.02, 1: 0.04})
    a = compare(rows, "g", "control", "auroc", n_boot=200)
    b = compare(rows, "g", "control", "auroc", n_boot=200)
    assert (a.low, a.high) == (b.low, b.high)
    frame = comparisons_frame([a])
    assert frame.loc[0, "unit"] == "points of %" and frame.loc[0, "metric"] == "auroc"
    with pytest.raises(ValueError, match="no seed holds both"):
        compare(rows, "g", "nothing", "rmse")


def test_a_metric_undefined_on_a_seed_is_reported_as_such(recwarn):
    """When every test image of a seed fails (a run of one epoch), AUROC has no value:
    the comparison says so instead of calling it unresolved; RMSE is still compared."""
    rows = _predictions({0: 0.02, 1: 0.04})
    for r in rows:
        if r["seed"] == 0:
            r["true_jaccard"] *= 0.6  # below 0.7: every image of seed 0 fails
    auroc = compare(rows, "g", "control", "auroc", n_boot=50)
    assert auroc.outcome == "undefined"
    assert auroc.verdict() == (
        "g cannot be compared with control on auroc: it is undefined when all test images "
        "of a seed pass or all fail"
    )
    assert compare(rows, "g", "control", "rmse", n_boot=50).outcome != "undefined"


def test_augrc_comparison_counts_lower_as_better_in_fractions_of_the_images():
    true, pred = _case(n=120)
    records = prediction_records("max_prob", 0, true, pred)
    records += prediction_records("no_uncertainty", 0, true, np.zeros_like(pred))  # random
    c = compare(records, "max_prob", "no_uncertainty", "augrc", n_boot=200)
    assert c.estimate == pytest.approx(
        metrics.augrc(true, np.zeros_like(pred)) - metrics.augrc(true, pred)
    )
    assert c.estimate > 0 and c.unit == "a fraction of the test images"
    assert "+0.0" in c.verdict()  # four decimals
