import itertools

import numpy as np
import pytest
import torch

from segqual_lite import metrics as M


# ---- Jaccard ---------------------------------------------------------------------------
def test_jaccard_hand_computed():
    pred = np.zeros((3, 4, 4), bool)
    true = np.zeros((3, 4, 4), bool)
    pred[0, :2, :2] = True  # 4 px
    true[0, :2, :3] = True  # 6 px, overlap 4 -> 4/6
    pred[1, 0, 0] = True  # disjoint with an empty truth -> 0
    # image 2: both empty -> 1
    np.testing.assert_allclose(M.jaccard(pred, true), [4 / 6, 0.0, 1.0])


def test_jaccard_accepts_torch_and_single_image():
    a = torch.tensor([[1, 1], [0, 0]])
    b = torch.tensor([[1, 0], [0, 0]])
    assert float(M.jaccard(a, b)) == pytest.approx(0.5)
    assert M.jaccard(a[None], b[None]).shape == (1,)


def test_jaccard_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        M.jaccard(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))


# ---- Brute-force references, written from the definitions -------------------------------
def brute_detection_error(true_j, score, thr=0.7):
    passed = true_j >= thr
    candidates = np.concatenate([np.unique(score), [np.inf, -np.inf]])
    best = 1.0
    for delta in candidates:  # flag pass when score >= delta
        p_pass_missed = np.mean(score[passed] < delta)
        p_fail_accepted = np.mean(score[~passed] >= delta)
        best = min(best, 0.5 * p_pass_missed + 0.5 * p_fail_accepted)
    return best


def brute_auroc(true_j, score, thr=0.7):
    pos, neg = score[true_j >= thr], score[true_j < thr]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def brute_average_precision(labels, score):
    """sum_k (R_k - R_{k-1}) P_k over the distinct thresholds, highest first."""
    ap, prev_recall = 0.0, 0.0
    for delta in sorted(np.unique(score), reverse=True):
        flagged = score >= delta
        tp = np.sum(flagged & (labels == 1))
        precision, recall = tp / flagged.sum(), tp / labels.sum()
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def test_hand_computed_case():
    true_j = np.array([0.9, 0.8, 0.75, 0.5, 0.3])  # 3 pass, 2 fail
    score = np.array([0.85, 0.6, 0.7, 0.65, 0.2])
    assert M.rmse(true_j, score) == pytest.approx(
        np.sqrt((0.05**2 + 0.2**2 + 0.05**2 + 0.15**2 + 0.1**2) / 5)
    )
    # Ranking: 0.85 P, 0.7 P, 0.65 F, 0.6 P, 0.2 F -> pairs won: 0.85>both, 0.7>both, 0.6>0.2 only.
    assert M.auroc(true_j, score) == pytest.approx(5 / 6)
    # Best threshold 0.7: misses one of three passes, accepts no failure -> 0.5 * 1/3.
    assert M.detection_error(true_j, score) == pytest.approx(1 / 6)
    # Pass AP: precision 1 at recall 1/3 and 2/3, 3/4 at recall 1.
    assert M.aupr_pass(true_j, score) == pytest.approx((1 + 1 + 0.75) / 3)
    # Fail AP on -score: 0.2 F (P=1), 0.6 P, 0.65 F (P=2/3).
    assert M.aupr_fail(true_j, score) == pytest.approx((1 + 2 / 3) / 2)


def test_threshold_is_inclusive():
    true_j = np.array([0.7, 0.69])  # 0.7 passes
    assert M.auroc(true_j, np.array([0.9, 0.1])) == 1.0
    assert M.auroc(true_j, np.array([0.1, 0.9])) == 0.0


@pytest.mark.parametrize("seed", range(12))
def test_against_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 40))
    true_j = rng.uniform(0.3, 1.0, n)
    true_j[:2] = [0.95, 0.4]  # both classes present
    score = np.round(rng.uniform(0, 1, n), 1)  # coarse rounding makes many ties
    assert M.detection_error(true_j, score) == pytest.approx(brute_detection_error(true_j, score))
    assert M.auroc(true_j, score) == pytest.approx(brute_auroc(true_j, score))
    passed = (true_j >= 0.7).astype(int)
    assert M.aupr_pass(true_j, score) == pytest.approx(brute_average_precision(passed, score))
    assert M.aupr_fail(true_j, score) == pytest.approx(brute_average_precision(1 - passed, -score))


def test_perfect_and_reversed_predictors():
    true_j = np.array([0.95, 0.9, 0.8, 0.6, 0.4, 0.1])
    perfect = M.summarize(true_j, true_j)
    assert perfect == {
        "rmse": 0.0,
        "detection_error": 0.0,
        "auroc": 1.0,
        "aupr_pass": 1.0,
        "aupr_fail": 1.0,
    }
    reversed_ = M.summarize(true_j, 1 - true_j)
    assert reversed_["auroc"] == 0.0 and reversed_["detection_error"] == 0.5


def test_summarize_keys_match_metric_order():
    true_j = np.array([0.9, 0.2, 0.8])
    assert tuple(M.summarize(true_j, np.array([0.5, 0.5, 0.5]))) == M.METRICS


@pytest.mark.parametrize("true_j", [np.array([0.8, 0.9, 0.7]), np.array([0.1, 0.2, 0.69])])
def test_single_class_raises_clear_error(true_j):
    with pytest.raises(ValueError, match="need both passing and failing"):
        M.summarize(true_j, np.array([0.5, 0.6, 0.7]))
    assert M.rmse(true_j, true_j) == 0.0  # RMSE does not need both classes


def test_bad_shapes_and_values():
    with pytest.raises(ValueError, match="3 true but 2 predicted"):
        M.rmse(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        M.rmse(np.array([0.5, np.nan]), np.ones(2))
    with pytest.raises(ValueError, match="1-D"):
        M.auroc(np.ones((2, 2)), np.ones((2, 2)))


def test_aupr_conventions_differ_and_agree_where_they_should():
    true_j = np.array([0.9, 0.8, 0.75, 0.5, 0.3, 0.72, 0.2, 0.95])
    score = np.array([0.85, 0.6, 0.7, 0.65, 0.2, 0.4, 0.5, 0.9])
    conv = M.aupr_conventions(true_j, score)
    assert conv["average_precision"] == pytest.approx(M.aupr_pass(true_j, score))
    assert conv["trapezoid"] != pytest.approx(conv["average_precision"])
    fail = M.aupr_conventions(true_j, score, positive="fail")
    assert fail["average_precision"] == pytest.approx(M.aupr_fail(true_j, score))
    perfect = M.aupr_conventions(true_j, true_j)
    assert perfect["average_precision"] == pytest.approx(1.0)
    assert perfect["balanced_trapezoid"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive"):
        M.aupr_conventions(true_j, score, positive="both")


# ---- Risk-coverage ------------------------------------------------------------------------
def brute_risk_coverage(true_j, score):
    """Average, over every acceptance order that respects the scores (ties in any order),
    of the mean true Jaccard of the first k accepted cases."""
    curves = [
        np.cumsum(true_j[list(order)]) / np.arange(1, len(true_j) + 1)
        for order in itertools.permutations(range(len(true_j)))
        if all(score[a] >= score[b] for a, b in itertools.pairwise(order))
    ]
    return np.mean(curves, axis=0)


@pytest.mark.parametrize("case", range(6))
def test_risk_coverage_matches_brute_force_with_ties(case):
    rng = np.random.default_rng(case)
    true_j = rng.uniform(0, 1, 7)
    score = rng.integers(0, 3, 7).astype(float)  # few distinct values: many ties
    coverage, accepted = M.risk_coverage(true_j, score)
    np.testing.assert_allclose(coverage, np.arange(1, 8) / 7)
    expected = brute_risk_coverage(true_j, score)
    np.testing.assert_allclose(accepted, expected)
    assert M.aurc(true_j, score) == pytest.approx(np.mean(1 - expected))
    ok = np.flatnonzero(expected >= 0.5)
    assert M.automation_rate(true_j, score, 0.5) == pytest.approx(
        (ok[-1] + 1) / 7 if ok.size else 0.0
    )


def test_risk_coverage_hand_computed_and_reference_orders():
    true_j = np.array([0.9, 0.5, 0.8, 0.2])
    score = np.array([0.7, 0.6, 0.9, 0.1])  # accepts 0.8, 0.9, 0.5, 0.2
    _, accepted = M.risk_coverage(true_j, score)
    np.testing.assert_allclose(accepted, [0.8, 0.85, 2.2 / 3, 0.6])
    assert M.automation_rate(true_j, score, 0.8) == 0.5
    assert M.automation_rate(true_j, score, 0.95) == 0.0
    # oracle: sorted by the truth, the lowest possible AURC; random: a flat curve
    oracle, random = M.aurc(true_j, true_j), M.aurc(true_j, np.zeros(4))
    assert random == pytest.approx(1 - true_j.mean())
    assert oracle <= M.aurc(true_j, score) <= M.aurc(true_j, -true_j)
    assert oracle < random


# ---- Failure detection as measured now: AUGRC, E-AURC, NAURC (chapter 12) ---------------
def score_orders(score):
    """Every acceptance order that respects the scores (ties in any order)."""
    return [
        list(order)
        for order in itertools.permutations(range(len(score)))
        if all(score[a] >= score[b] for a, b in itertools.pairwise(order))
    ]


def brute_augrc(loss, score):
    """Expected trapezoidal area, over the score-respecting orders, of the curve that
    accepts one case at a time: (k/N, sum of the first k losses / N), from (0, 0)."""
    n = len(loss)
    areas = []
    for order in score_orders(score):
        risk = np.concatenate([[0.0], np.cumsum(loss[order]) / n])
        areas.append(np.sum((risk[1:] + risk[:-1]) / 2) / n)
    return np.mean(areas)


def brute_augrc_by_thresholds(loss, score):
    """Trapezoid through the points of thresholds delta: accept every case with score >=
    delta (tied scores enter together), from delta = +inf down."""
    points = [(0.0, 0.0)]
    for delta in sorted(np.unique(score), reverse=True):
        accepted = score >= delta
        points.append((accepted.mean(), np.sum(loss * accepted) / len(loss)))
    cov, risk = np.array(points).T
    return np.sum((risk[1:] + risk[:-1]) / 2 * np.diff(cov))


def order_aurc(loss, order):
    return np.mean(np.cumsum(loss[order]) / np.arange(1, len(loss) + 1))


@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("threshold", [0.7, None])
def test_augrc_and_excess_aurc_match_brute_force_with_ties(case, threshold):
    rng = np.random.default_rng(100 + case)
    true_j = rng.choice([0.2, 0.5, 0.69, 0.7, 0.8, 0.95], 7)
    true_j[:2] = [0.3, 0.9]  # both classes in every case
    score = rng.integers(0, 3, 7).astype(float)  # few distinct values: many ties
    loss = 1 - true_j if threshold is None else (true_j < threshold).astype(float)

    expected = brute_augrc(loss, score)
    assert brute_augrc_by_thresholds(loss, score) == pytest.approx(expected)
    assert M.augrc(true_j, score, threshold) == pytest.approx(expected)

    orders = score_orders(score)
    aurc = np.mean([order_aurc(loss, o) for o in orders])
    every_order = [order_aurc(loss, list(o)) for o in itertools.permutations(range(7))]
    optimum, random = min(every_order), np.mean(every_order)
    assert M.aurc(true_j, score, threshold) == pytest.approx(aurc)
    assert M.excess_aurc(true_j, score, threshold) == pytest.approx(aurc - optimum)
    assert M.normalized_aurc(true_j, score, threshold) == pytest.approx(
        (aurc - optimum) / (random - optimum)
    )


def test_generalized_risk_coverage_hand_computed():
    true_j = np.array([0.9, 0.5, 0.8, 0.2, 0.6])  # failures: 0.5, 0.2, 0.6
    score = np.array([0.7, 0.7, 0.9, 0.1, 0.7])  # 0.8 first, then three tied, then 0.2
    coverage, risk = M.generalized_risk_coverage(true_j, score)
    np.testing.assert_allclose(coverage, [0, 0.2, 0.8, 1.0])
    np.testing.assert_allclose(risk, [0, 0, 0.4, 0.6])  # accepted AND failed, over all 5
    area = 0.5 * 0.6 * (0 + 0.4) + 0.5 * 0.2 * (0.4 + 0.6)
    assert M.augrc(true_j, score) == pytest.approx(area)


def test_augrc_known_values():
    true_j = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.72, 0.6, 0.5, 0.4, 0.1])
    r = 0.4  # four failures out of ten
    assert M.augrc(true_j, true_j) == pytest.approx(r**2 / 2)  # failures last
    assert M.augrc(true_j, np.zeros(10)) == pytest.approx(r / 2)  # one tie group: random
    assert M.augrc(true_j, -true_j) == pytest.approx(r - r**2 / 2)  # failures first
    # Over all random orders (a constant score), the expectation is the same r / 2.
    rng = np.random.default_rng(0)
    small = rng.permutation(true_j)[:6]
    loss = (small < 0.7).astype(float)
    every = [brute_augrc(loss[list(o)], -np.arange(6.0)) for o in itertools.permutations(range(6))]
    assert np.mean(every) == pytest.approx(loss.mean() / 2)
    # All failures: every ranking gives 1/2, E-AURC 0, NAURC undefined.
    failing = np.array([0.1, 0.3, 0.5, 0.6])
    for score in (failing, -failing, np.zeros(4)):
        assert M.augrc(failing, score) == pytest.approx(0.5)
        assert M.excess_aurc(failing, score) == pytest.approx(0.0)
        with pytest.raises(ValueError, match="same loss.*NAURC is undefined"):
            M.normalized_aurc(failing, score)


def test_excess_and_normalized_aurc_known_values():
    true_j = np.array([0.95, 0.9, 0.8, 0.75, 0.6, 0.5, 0.4, 0.1])
    assert M.excess_aurc(true_j, true_j) == pytest.approx(0.0)
    assert M.normalized_aurc(true_j, true_j) == pytest.approx(0.0)
    assert M.normalized_aurc(true_j, np.zeros(8)) == pytest.approx(1.0)  # random ranking
    assert M.normalized_aurc(true_j, -true_j) > 1.0  # worse than random
    # The optimal binary AURC by hand: 4 passes then 4 failures -> mean of 0,0,0,0,1/5,...
    optimum = np.mean([0, 0, 0, 0, 1 / 5, 2 / 6, 3 / 7, 4 / 8])
    assert M.aurc(true_j, true_j, threshold=0.7) == pytest.approx(optimum)
    # threshold=None keeps the module's AURC: risk 1 - J.
    score = np.array([0.3, 0.9, 0.5, 0.8, 0.1, 0.7, 0.2, 0.6])
    assert M.excess_aurc(true_j, score, None) == pytest.approx(
        M.aurc(true_j, score) - M.aurc(true_j, true_j)
    )


def test_selective_risk_is_the_curve_that_aurc_averages():
    rng = np.random.default_rng(3)
    true = rng.uniform(0.3, 1, 50)
    pred = np.round(true + 0.2 * rng.standard_normal(50), 1)  # with ties
    for threshold in (None, 0.7):
        coverage, risk = M.selective_risk_coverage(true, pred, threshold)
        assert coverage[-1] == 1 and len(risk) == 50
        assert np.mean(risk) == pytest.approx(M.aurc(true, pred, threshold), abs=1e-12)
    # the last point accepts everything: the failure rate
    assert risk[-1] == pytest.approx(np.mean(true < 0.7))


def test_detection_error_is_read_at_its_best_cut_not_at_0_7():
    """Failures predicted just above 0.7 are all missed at g's own cut, yet ranked below
    every pass: detection error (best cut) is 0 while the error at 0.7 is one half."""
    from segqual_lite.metrics import balanced_error, detection_error, detection_threshold

    true = np.array([0.9, 0.85, 0.95, 0.5, 0.4])
    pred = np.array([0.9, 0.88, 0.92, 0.75, 0.74])
    assert detection_error(true, pred) == 0.0
    assert balanced_error(true, pred, 0.7) == 0.5
    cut = detection_threshold(true, pred)
    assert 0.75 < cut <= 0.88 and balanced_error(true, pred, cut) == 0.0
