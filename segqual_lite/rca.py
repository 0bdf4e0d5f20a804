"""Reverse classification accuracy (RCA), the baseline of chapter 09.

Valindria et al. (2017) and Robinson et al. (2017) judge a segmentation without ground
truth: train a *reverse classifier* on the single pair (test image, predicted mask),
apply it to K reference images whose ground truth is known, and take the best Jaccard
index it reaches there as the predicted quality. If the predicted mask is good, a
classifier trained on it should segment at least one similar reference image well.

Here the reverse classifier is a scikit-learn random forest on per-pixel colour and
texture features (the originals registered atlases, which has no meaning for
dermoscopy, one reason the paper's RCA is near chance). The score is uncalibrated and
reported raw; empty or full predicted masks, on which no classifier can be trained,
score 0. :func:`rca_cached` stores the scores of a seed's test masks in the artifact store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.ensemble import RandomForestClassifier
from torch.nn import functional as F

from .config import Profile
from .metrics import jaccard
from .segment import SegmentationSet, decoded_split
from .store import artifact_folder, artifact_key, save_array
from .timing import phase
from .training import training_key

__all__ = [
    "pixel_features",
    "choose_references",
    "reverse_classify",
    "rca_scores",
    "rca_cached",
    "rca_path",
]

FEATURE_SCALES = (5, 11)


def pixel_features(images: torch.Tensor) -> np.ndarray:
    """Per-pixel features of uint8 images [N, 3, H, W] -> float32 [N, H, W, 12]:
    RGB, and the local mean at two scales and the local standard deviation (texture)."""
    x = images.float() / 255
    parts = [x]
    for k in FEATURE_SCALES:
        parts.append(F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False))
    k = FEATURE_SCALES[0]
    mean = parts[1]
    sq = F.avg_pool2d(x * x, k, stride=1, padding=k // 2, count_include_pad=False)
    parts.append((sq - mean * mean).clamp(min=0).sqrt())
    return torch.cat(parts, dim=1).permute(0, 2, 3, 1).contiguous().numpy()


def choose_references(n_train: int, k: int, seed: int = 0) -> np.ndarray:
    """K distinct training indices, fixed by ``seed`` (the same for every test image)."""
    if k > n_train:
        raise ValueError(f"asked for {k} RCA reference images but the training split has {n_train}")
    return np.sort(np.random.default_rng(seed).choice(n_train, size=k, replace=False))


def reverse_classify(
    features: np.ndarray,
    pred_mask: np.ndarray,
    reference_features: np.ndarray,
    n_pixels: int = 2000,
    seed: int = 0,
) -> np.ndarray | None:
    """Train the reverse classifier on one image's pixels labelled by its predicted mask
    and segment the references: returns masks [K, H, W], or None when the predicted mask
    is empty or full (nothing to learn)."""
    labels = np.asarray(pred_mask).astype(bool).ravel()
    if labels.all() or not labels.any():
        return None
    rng = np.random.default_rng(seed)
    feats = features.reshape(-1, features.shape[-1])
    chosen = []
    for cls in (False, True):  # balanced: up to n_pixels / 2 of each class
        idx = np.flatnonzero(labels == cls)
        chosen.append(rng.choice(idx, size=min(len(idx), n_pixels // 2), replace=False))
    chosen = np.concatenate(chosen)
    forest = RandomForestClassifier(
        n_estimators=20, max_depth=10, min_samples_leaf=3, random_state=seed, n_jobs=1
    )
    forest.fit(feats[chosen], labels[chosen])
    k, h, w, f = reference_features.shape
    return forest.predict(reference_features.reshape(-1, f)).reshape(k, h, w)


def _best_reference(features, mask, ref_features, ref_masks, seed) -> tuple[float, int]:
    predicted = reverse_classify(features, mask, ref_features, seed=seed)
    if predicted is None:
        return 0.0, -1
    j = jaccard(predicted, ref_masks)
    return float(j.max()), int(np.argmax(j))


def rca_scores(
    images: torch.Tensor,
    pred_masks: torch.Tensor,
    reference_images: torch.Tensor,
    reference_masks: torch.Tensor,
    seed: int = 0,
    n_jobs: int = -1,
) -> tuple[np.ndarray, np.ndarray]:
    """RCA's predicted quality for every (image, predicted mask) pair.

    Returns ``(scores [N], best_reference [N])``: the largest Jaccard index that the
    reverse classifier reaches on a reference image, and which reference that was
    (-1 for degenerate masks, which score 0). Images are scored in ``n_jobs`` processes
    (all cores by default); image i's forest is seeded with ``seed + i``, so the result
    does not depend on ``n_jobs``.
    """
    with phase("rca", f"{len(images)} images, {len(reference_images)} references"):
        ref_features = pixel_features(reference_images)
        ref_masks = reference_masks.numpy()
        features = pixel_features(images)
        masks = pred_masks.numpy()
        out = Parallel(n_jobs=n_jobs)(
            delayed(_best_reference)(features[i], masks[i], ref_features, ref_masks, seed + i)
            for i in range(len(images))
        )
    scores = np.array([s for s, _ in out], dtype=np.float64)
    best = np.array([b for _, b in out], dtype=np.int64)
    return scores, best


def rca_path(profile: Profile, seed: int, root: Path) -> Path:
    """Where :func:`rca_cached` keeps the scores of ``seed``."""
    key = artifact_key(
        "rca", f=training_key(profile, "max_prob", seed, root), references=profile.rca_references
    )
    return artifact_folder(profile, f"seed{seed}", key) / "scores.npy"


def rca_cached(
    profile: Profile, seed: int, root: Path, test: SegmentationSet, n_jobs: int = -1
) -> np.ndarray:
    """RCA scores (:func:`rca_scores`, in ``n_jobs`` processes) for the plain U-Net's
    test masks ``test`` of ``seed``, with the profile's references from the training
    split (all of them when it holds fewer, as a small folder of your own may); cached
    like a model. The scores do not depend on ``n_jobs``."""
    path = rca_path(profile, seed, root)
    if path.exists():
        return np.load(path)
    train = decoded_split(root, "train", profile.image_size)
    refs = choose_references(len(train), min(profile.rca_references, len(train)))
    scores, _ = rca_scores(
        test.images, test.masks, train.images[refs], train.masks[refs], seed, n_jobs
    )
    save_array(scores, path)
    return scores
