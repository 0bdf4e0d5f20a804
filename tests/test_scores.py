import math

import numpy as np
import pytest
import torch

from segqual_lite import metrics as M
from segqual_lite import scores as S


# ---- Aggregating an uncertainty map -----------------------------------------------------
def test_image_and_foreground_means_hand_computed():
    u = np.zeros((2, 4, 4))
    u[0, :2, :2] = 0.8  # the foreground of image 0 is the top-left 2x2 square
    u[0, 3, 3] = 0.4
    u[1] = 0.25
    mask = np.zeros((2, 4, 4), bool)
    mask[0, :2, :2] = True  # image 1 predicts no foreground
    np.testing.assert_allclose(S.image_mean(u), [(4 * 0.8 + 0.4) / 16, 0.25])
    np.testing.assert_allclose(S.foreground_mean(u, mask), [0.8, 0.25])  # empty: image mean
    # torch input, on the same scale
    np.testing.assert_allclose(S.foreground_mean(torch.tensor(u), torch.tensor(mask)), [0.8, 0.25])


def test_aggregation_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[B, H, W\], got shape \(4, 4\)"):
        S.image_mean(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="mask shape .* differs"):
        S.foreground_mean(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        S.image_mean(np.full((1, 2, 2), np.nan))


def brute_band(mask, width):
    """A pixel is in the band when its square neighbourhood inside the image holds both
    classes."""
    b, h, w = mask.shape
    band = np.zeros_like(mask)
    for i, y, x in np.ndindex(b, h, w):
        window = mask[i, max(0, y - width) : y + width + 1, max(0, x - width) : x + width + 1]
        band[i, y, x] = window.any() and not window.all()
    return band


@pytest.mark.parametrize("width", [1, 2, 3])
def test_boundary_band_matches_its_definition(width):
    rng = np.random.default_rng(width)
    mask = np.zeros((3, 12, 12), bool)
    mask[0, 3:8, 2:9] = True
    mask[1, :5, :] = True  # touches the frame: the frame is no boundary
    mask[2] = rng.random((12, 12)) < 0.4
    band = S.boundary_band(mask, width)
    np.testing.assert_array_equal(band, brute_band(mask, width))
    assert not band[1, 0].any()  # the top row, far from the edge at rows 4-5


def test_boundary_band_edge_cases():
    full = np.ones((1, 6, 6), bool)
    assert not S.boundary_band(full, 2).any()
    assert not S.boundary_band(~full, 2).any()
    half = np.zeros((1, 6, 6), bool)
    half[0, :, :3] = True
    assert not S.boundary_band(half, 0).any()
    np.testing.assert_array_equal(S.boundary_band(half, 1)[0, 0], [0, 0, 1, 1, 0, 0])
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="width must be a whole number"):
            S.boundary_band(half, bad)


def test_boundary_excluded_mean_drops_the_rim():
    mask = np.zeros((2, 10, 10), bool)
    mask[0, 3:7, 3:7] = True
    mask[1, :, :5] = True
    band = S.boundary_band(mask, 1)
    u = np.where(band, 1.0, 0.1)  # unsure only along the edge
    np.testing.assert_allclose(S.boundary_excluded_mean(u, mask, 1), [0.1, 0.1])
    assert np.all(S.image_mean(u) > 0.1)
    # a band that covers the whole image: the image mean
    tiny = np.zeros((1, 3, 3), bool)
    tiny[0, 1, 1] = True
    v = np.arange(9.0).reshape(1, 3, 3)
    np.testing.assert_allclose(S.boundary_excluded_mean(v, tiny, 1), [4.0])
    np.testing.assert_allclose(S.boundary_excluded_mean(v, tiny, 0), [4.0])


# ---- Agreement of K segmentations -------------------------------------------------------
def test_pairwise_jaccard_hand_computed():
    masks = np.zeros((3, 2, 2, 4), bool)
    masks[0, 0, 0, :2] = True  # {a, b}
    masks[1, 0, 0, :3] = True  # {a, b, c}
    masks[2, 0, 0, 2:] = True  # {c, d}
    # image 1: three empty masks agree
    pairs = [2 / 3, 0 / 4, 1 / 4]
    np.testing.assert_allclose(S.pairwise_jaccard(masks), [np.mean(pairs), 1.0])
    np.testing.assert_allclose(S.pairwise_jaccard(torch.tensor(masks)), [np.mean(pairs), 1.0])
    same = np.repeat(masks[:1], 4, axis=0)
    np.testing.assert_allclose(S.pairwise_jaccard(same), [1.0, 1.0])


def test_pairwise_jaccard_needs_two_masks():
    with pytest.raises(ValueError, match="K >= 2"):
        S.pairwise_jaccard(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=r"\[K, B, H, W\]"):
        S.pairwise_jaccard(np.zeros((2, 4, 4)))


# ---- Expected entropy and mutual information --------------------------------------------
def test_entropy_decomposition():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 2, 3, 5, 5, generator=gen, dtype=torch.float64) * 2
    probs = logits.softmax(2)
    total = S.predictive_entropy(probs)
    expected = S.expected_entropy(probs)
    mi = S.mutual_information(probs)
    assert total.shape == expected.shape == mi.shape == (2, 5, 5)
    torch.testing.assert_close(total, expected + mi)
    assert torch.all(mi > 0)  # samples that differ everywhere
    assert torch.all(expected <= total + 1e-12)


def test_entropy_decomposition_extremes():
    one_hot = torch.zeros(2, 1, 2, 1, 1)
    one_hot[0, 0, 0] = 1.0  # sample 0 says class 0
    one_hot[1, 0, 1] = 1.0  # sample 1 says class 1
    assert float(S.expected_entropy(one_hot)) == 0.0  # each sample is sure
    assert float(S.mutual_information(one_hot)) == pytest.approx(math.log(2))
    equal = torch.tensor([0.3, 0.7]).view(1, 1, 2, 1, 1).expand(5, 3, 2, 4, 4)
    torch.testing.assert_close(S.mutual_information(equal), torch.zeros(3, 4, 4))
    h = -(0.3 * math.log(0.3) + 0.7 * math.log(0.7))
    torch.testing.assert_close(S.expected_entropy(equal), torch.full((3, 4, 4), h))
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        S.mutual_information(equal[0])


# ---- Direction and the monotone fit -----------------------------------------------------
def test_quality_from_uncertainty_turns_the_ranking():
    true_j = np.array([0.9, 0.8, 0.5, 0.3])
    uncertainty = np.array([0.1, 0.2, 0.6, 0.7])  # failures the most unsure
    assert M.auroc(true_j, S.quality_from_uncertainty(uncertainty)) == 1.0
    assert M.auroc(true_j, uncertainty) == 0.0


def test_fit_monotone_hand_computed():
    score = np.array([1.0, 2.0, 3.0, 4.0])
    true_j = np.array([0.2, 0.1, 0.5, 0.9])
    fit = S.fit_monotone(score, true_j)
    np.testing.assert_allclose(fit.predict(score), [0.15, 0.15, 0.5, 0.9])  # pooled
    np.testing.assert_allclose(fit.predict([-5.0, 2.5, 10.0]), [0.15, 0.325, 0.9])  # clipped
    with pytest.raises(ValueError, match="4 true but 3"):
        S.fit_monotone(score[:3], true_j)


def test_fit_monotone_gives_a_jaccard_with_a_small_rmse():
    rng = np.random.default_rng(0)
    true_j = rng.uniform(0, 1, 400)
    uncertainty = np.exp(-3 * true_j) + rng.normal(0, 0.02, 400)  # far from J's scale
    quality = S.quality_from_uncertainty(uncertainty)
    fit = S.fit_monotone(quality[:200], true_j[:200])
    predicted = fit.predict(quality[200:])
    assert np.all(np.diff(fit.predict(np.sort(quality))) >= 0)
    assert predicted.min() >= 0 and predicted.max() <= 1
    assert M.rmse(true_j[200:], predicted) < 0.1 < M.rmse(true_j[200:], quality[200:])


# ---- training-free rows (chapter 12) -----------------------------------------------------
def test_monotone_jaccard_keeps_the_scores_order_and_ties_and_moves_by_1e9_at_most():
    rng = np.random.default_rng(0)
    train_score = rng.uniform(size=200)
    train_j = np.clip(train_score + 0.2 * rng.standard_normal(200), 0, 1)
    fit = S.fit_monotone(train_score, train_j)
    test = np.round(rng.uniform(size=100), 2)  # with ties
    got = S.monotone_jaccard(fit, test)
    a, b = np.subtract.outer(test, test), np.subtract.outer(got, got)
    assert np.array_equal(np.sign(a), np.sign(b))  # same order, same ties
    assert np.abs(got - fit.predict(test)).max() <= 1e-9
    assert M.auroc(train_j[:100], got) == M.auroc(train_j[:100], test)


def test_image_score_dispatches_and_explains_what_is_missing():
    u = np.random.default_rng(1).uniform(size=(3, 64, 64))
    m = u > 0.5
    np.testing.assert_array_equal(S.image_score("image_mean", u, m, {}), -S.image_mean(u))
    np.testing.assert_array_equal(
        S.image_score("boundary_mean", u, m, {}), -S.boundary_excluded_mean(u, m, 2)
    )
    assert S.band_width(64) == 2 and S.band_width(16) == 1 and S.band_width(224) == 7
    agreement = {"agreement": torch.tensor([0.5, 1.0, 0.9])}
    np.testing.assert_allclose(S.image_score("agreement", u, m, agreement), [0.5, 1.0, 0.9])
    with pytest.raises(ValueError, match="no agreement score"):
        S.image_score("agreement", u, m, {})
    with pytest.raises(ValueError, match="only MC-dropout"):
        S.image_score("mutual_information", u, m, {})
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        S.image_score("median", u, m, {})
