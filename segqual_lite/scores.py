"""Training-free image scores: one number per segmentation, no quality network (chapter 12).

The paper trains a network g to turn an uncertainty map into a predicted Jaccard. The
benchmarks since then (Kahl et al., "ValUES", ICLR 2024; Zenk et al., "Comparative
benchmarking of failure detection methods in medical image segmentation", MedIA 2025)
ask how far a fixed rule gets without g:

* **aggregation** of a per-pixel uncertainty map: its mean over the image
  (:func:`image_mean`), over the predicted foreground (:func:`foreground_mean`), or
  away from a band along the predicted boundary (:func:`boundary_excluded_mean`);
* **agreement** of K segmentations of the same image (MC-dropout samples, ensemble
  members, test-time augmentation views): the mean Jaccard over all pairs
  (:func:`~segqual_lite.metrics.pairwise_jaccard`, in :mod:`~segqual_lite.metrics` for
  the uncertainty methods to use; Zenk et al.'s pairwise Dice with Jaccard in its place);
* the split of the predictive entropy of T softmax samples into **expected entropy**
  and **mutual information** (:func:`expected_entropy`, :func:`mutual_information`).

**Direction, decided once.** An aggregate of an uncertainty map is an *uncertainty*
(high = unsure), like the maps of :mod:`segqual_lite.uncertainty`; an agreement is a
*quality estimate* (high = predicted better), like the Jaccard that g predicts. The
metrics of :mod:`segqual_lite.metrics` take quality estimates:
:func:`quality_from_uncertainty` is the one conversion. Ranking metrics (AUROC, AURC,
AUGRC) see only the order; RMSE needs a predicted Jaccard, which :func:`fit_monotone`
learns from the training split.

Scores are returned as float64 numpy arrays of shape ``[B]``, as
:func:`segqual_lite.metrics.jaccard` returns Jaccard values.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from sklearn.isotonic import IsotonicRegression

from .metrics import _as_numpy, _check_pair, pairwise_jaccard
from .uncertainty import entropy

__all__ = [
    "image_mean",
    "foreground_mean",
    "boundary_band",
    "boundary_excluded_mean",
    "pairwise_jaccard",
    "predictive_entropy",
    "expected_entropy",
    "mutual_information",
    "quality_from_uncertainty",
    "fit_monotone",
    "monotone_jaccard",
    "band_width",
    "image_score",
    "score_jaccard",
]


def _map_and_mask(uncertainty, mask=None) -> tuple[np.ndarray, np.ndarray | None]:
    u = _as_numpy(uncertainty).astype(np.float64)
    if u.ndim != 3:
        raise ValueError(f"uncertainty maps must be [B, H, W], got shape {u.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError("uncertainty maps contain NaN or inf")
    if mask is None:
        return u, None
    m = _as_numpy(mask).astype(bool)
    if m.shape != u.shape:
        raise ValueError(
            f"mask shape {m.shape} differs from the uncertainty maps' {u.shape}: "
            "pass the predicted masks [B, H, W] of the same images"
        )
    return u, m


def _region_mean(u: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean of ``u`` over ``region`` per image; the image mean where the region is empty."""
    count = region.sum(axis=(1, 2))
    total = np.where(region, u, 0.0).sum(axis=(1, 2))
    return np.where(count > 0, total / np.maximum(count, 1), u.mean(axis=(1, 2)))


def image_mean(uncertainty) -> np.ndarray:
    """Mean of each uncertainty map ``[B, H, W]`` over its image: an uncertainty score
    (high = unsure). The plainest aggregation of ValUES (Kahl et al. 2024); chapter 12."""
    u, _ = _map_and_mask(uncertainty)
    return u.mean(axis=(1, 2))


def foreground_mean(uncertainty, mask) -> np.ndarray:
    """Mean of each uncertainty map over its predicted foreground (``mask`` non-zero):
    an uncertainty score that ignores the confident background, whose area would
    otherwise dilute it (Kahl et al. 2024; Zenk et al. 2025). Chapter 12.

    An image with an empty predicted foreground gets its image mean
    (:func:`image_mean`): the score stays defined and on the map's scale.
    """
    u, m = _map_and_mask(uncertainty, mask)
    return _region_mean(u, m)


def boundary_band(mask, width: int) -> np.ndarray:
    """The pixels within ``width`` pixels of the predicted boundary, bool ``[B, H, W]``.

    A pixel is in the band when its (2·width + 1)² square neighbourhood, inside the
    image, holds both predicted classes: ``width`` pixels on each side of the edge.
    The image frame is no boundary. ``width=0`` gives an empty band.
    """
    m = _as_numpy(mask).astype(bool)
    if m.ndim != 3:
        raise ValueError(f"masks must be [B, H, W], got shape {m.shape}")
    if int(width) != width or width < 0:
        raise ValueError(f"width must be a whole number of pixels >= 0, got {width!r}")
    width = int(width)
    if width == 0:
        return np.zeros_like(m)
    square = np.ones((1, 2 * width + 1, 2 * width + 1), dtype=bool)  # never across images
    near_foreground = ndimage.binary_dilation(m, structure=square)
    near_background = ndimage.binary_dilation(~m, structure=square)
    return near_foreground & near_background


def boundary_excluded_mean(uncertainty, mask, width: int) -> np.ndarray:
    """Mean of each uncertainty map outside the band of :func:`boundary_band`: an
    uncertainty score without the rim of unsure pixels that every segmentation has
    along its edge, however good it is. Chapter 12.

    An image whose band covers it entirely gets its image mean (:func:`image_mean`).
    """
    u, m = _map_and_mask(uncertainty, mask)
    return _region_mean(u, ~boundary_band(m, width))


def _samples(probs: torch.Tensor) -> torch.Tensor:
    if not isinstance(probs, torch.Tensor) or probs.ndim != 5:
        shape = tuple(probs.shape) if hasattr(probs, "shape") else type(probs).__name__
        raise ValueError(
            f"softmax samples must be a torch tensor [T, B, C, H, W], got {shape}: "
            "stack the T samples along a new first dimension"
        )
    return probs


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean of T softmax samples ``[T, B, C, H, W]``, a map ``[B, H, W]``:
    eq. (6) of the paper applied to eq. (5)'s mean. Chapter 12."""
    return entropy(_samples(probs).mean(0), dim=1)


def expected_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean over the T samples of each sample's entropy, ``[B, H, W]``: the part of the
    predictive entropy that every sample shares (aleatoric; Depeweg et al. 2018, as
    decomposed in ValUES, Kahl et al. 2024). Chapter 12."""
    return entropy(_samples(probs), dim=2).mean(0)


def mutual_information(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy minus expected entropy, ``[B, H, W]``: the mutual information
    between the prediction and the sampled weights (Houlsby et al. 2011, BALD), the part
    due to the samples' disagreement (epistemic). Non-negative by Jensen's inequality
    (clamped at 0 against rounding), 0 where all samples agree. Chapter 12."""
    return (predictive_entropy(probs) - expected_entropy(probs)).clamp_min(0)


def quality_from_uncertainty(score) -> np.ndarray:
    """An uncertainty score as a quality estimate for :mod:`segqual_lite.metrics`: its
    negation (high uncertainty = predicted worse). Only its order is meaningful."""
    return -_as_numpy(score).astype(np.float64)


def fit_monotone(score, true_j) -> IsotonicRegression:
    """Fit a non-decreasing map from a quality estimate to the Jaccard index on the
    training split: scikit-learn's isotonic regression, outputs in [0, 1], scores
    outside the training range clipped to its ends. Its ``predict(test_score)`` is a
    predicted Jaccard with an RMSE, for rows without a quality network (chapter 12).

    ``score`` must be a quality estimate (higher = better): convert an uncertainty with
    :func:`quality_from_uncertainty` first.
    """
    t, s = _check_pair(true_j, score)
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    return model.fit(s, t)


def monotone_jaccard(fit: IsotonicRegression, score) -> np.ndarray:
    """The Jaccard that ``fit`` (:func:`fit_monotone`) predicts for each quality estimate
    in ``score``, kept in the score's order: the isotonic fit is a step function that
    would tie cases with different scores, so each prediction gets ``1e-9`` times the
    score's dense rank over the number of cases, a strictly increasing map. The ranking
    metrics of the row then see the score's own order (equal scores stay tied) and its
    RMSE moves by less than ``1e-9``. Chapter 12."""
    s = _as_numpy(score).astype(np.float64)
    rank = np.unique(s, return_inverse=True)[1] + 1
    return fit.predict(s) + 1e-9 * rank / s.size


def band_width(image_size: int) -> int:
    """The border band excluded by :func:`boundary_excluded_mean` in the rows of
    chapter 12: 1/32 of the image side (2 pixels at the ``tiny`` profile's 64)."""
    return max(1, round(image_size / 32))


def image_score(aggregation: str, maps, masks, extras: dict) -> np.ndarray:
    """One quality estimate per image (high = predicted better) by ``aggregation`` (a
    key of :data:`segqual_lite.rows.AGGREGATIONS`) of a method's output: its uncertainty
    ``maps`` and predicted ``masks`` ``[N, H, W]`` and its ``extras`` (MC-dropout's
    expected entropy and mutual information maps, the ``agreement`` of the masks a
    method averages; :mod:`segqual_lite.uncertainty`). Chapter 12."""
    if aggregation == "agreement":
        if "agreement" not in extras:
            raise ValueError("this method averages no masks: it has no agreement score")
        return _as_numpy(extras["agreement"]).astype(np.float64)
    if aggregation in ("expected_entropy", "mutual_information"):
        if aggregation not in extras:
            raise ValueError(f"no {aggregation} map: only MC-dropout's output has one")
        return quality_from_uncertainty(image_mean(extras[aggregation]))
    if aggregation == "image_mean":
        return quality_from_uncertainty(image_mean(maps))
    if aggregation == "foreground_mean":
        return quality_from_uncertainty(foreground_mean(maps, masks))
    if aggregation == "boundary_mean":
        width = band_width(maps.shape[-1])
        return quality_from_uncertainty(boundary_excluded_mean(maps, masks, width))
    raise ValueError(
        f"unknown aggregation {aggregation!r}: choose image_mean, foreground_mean, "
        "boundary_mean, agreement, expected_entropy or mutual_information"
    )


def score_jaccard(aggregation: str, train, test) -> np.ndarray:
    """A training-free row's predicted Jaccard on ``test``: the image score
    ``aggregation`` (:func:`image_score`) mapped to a Jaccard by :func:`fit_monotone` on
    ``train`` and :func:`monotone_jaccard`. ``train`` and ``test`` are a method's
    :class:`~segqual_lite.segment.SegmentationSet` of the two splits. Chapter 12."""
    fit = fit_monotone(
        image_score(aggregation, train.maps, train.masks, train.extras), train.jaccard
    )
    return monotone_jaccard(fit, image_score(aggregation, test.maps, test.masks, test.extras))
