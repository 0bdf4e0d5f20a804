"""Step 3 of the data flow: f's masks and maps on a split, cached (chapters 02-11).

:func:`segment_split` trains or loads the U-Net(s) a method reads, segments every image
of a split with it, and stores the masks and uncertainty maps in the artifact store.
Every chapter gets f's output here, so the maps a chapter shows are the maps g learns
from and is tested on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import Profile, pick_device
from .data import ISIC2017, SPLITS
from .metrics import FAILURE_THRESHOLD, jaccard
from .rows import get_method, samples
from .store import artifact_folder, artifact_key, save_torch
from .timing import phase
from .training import crossfit_folds, fit_segmentation, training_key
from .uncertainty import predict_images

__all__ = [
    "SegmentationSet",
    "segmentation_key",
    "segmentation_path",
    "segment_split",
    "decoded_split",
    "fit_frame",
]


@dataclass
class SegmentationSet:
    """f's output on one split: what g learns from or is tested on."""

    ids: list[str]
    images: torch.Tensor  # uint8 [N, 3, H, W]
    true_masks: torch.Tensor  # uint8 [N, H, W]
    masks: torch.Tensor  # uint8 [N, H, W], predicted
    maps: torch.Tensor  # float32 [N, H, W], raw uncertainty (high = unsure)
    jaccard: np.ndarray  # float64 [N], true Jaccard of each predicted mask
    # Further maps [N, H, W] of the method, e.g. HCNN's "entropy" of its sampled mean
    # softmax, and values [N], e.g. the "agreement" of MC-dropout's samples (chapter 12).
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


def segmentation_key(
    profile: Profile, method: str, seed: int, data_root: str | Path, crossfit: bool = False
) -> dict:
    """Everything that determines the masks and maps of ``method`` (without the split)."""
    m = get_method(method)
    if m.all_seeds:
        f = [training_key(profile, method, s, data_root) for s in profile.seeds]
    elif crossfit:
        folds = profile.crossfit_folds
        f = [training_key(profile, method, seed, data_root, (k, folds)) for k in range(folds)]
    else:
        f = training_key(profile, method, seed, data_root)
    return artifact_key(
        "segmentation", f=f, method=method, samples=samples(profile, method), crossfit=crossfit
    )


@functools.lru_cache(maxsize=4)
def _decoded(root: str, split: str, size: int) -> ISIC2017:
    return ISIC2017(root, split, size)


def decoded_split(data_root: str | Path, split: str, size: int) -> ISIC2017:
    """A split decoded and resized once per process (the grid asks for it many times)."""
    return _decoded(str(Path(data_root).resolve()), split, size)


def segmentation_path(
    profile: Profile,
    method: str,
    seed: int,
    data_root: str | Path,
    split: str,
    crossfit: bool = False,
) -> Path:
    """Where :func:`segment_split` keeps the masks and maps (``outputs.pt``)."""
    key = {**segmentation_key(profile, method, seed, data_root, crossfit), "split": split}
    # The ensemble is the same for every seed: one cache entry.
    name = f"{method}-{split}" if get_method(method).all_seeds else f"{method}-seed{seed}-{split}"
    name += "-crossfit" if crossfit else ""
    return artifact_folder(profile, name, key) / "outputs.pt"


def segment_split(
    profile: Profile,
    method: str,
    seed: int,
    data_root: str | Path,
    split: str,
    device: torch.device | None = None,
    progress: bool | None = None,
    crossfit: bool = False,
) -> SegmentationSet:
    """Run f (trained or loaded for ``method`` and ``seed``) over ``split``; cached.

    ``method`` is one of the paper's four or ``"ensemble"`` (the plain U-Nets of every
    seed of the profile) or ``"tta"``. MC-dropout and HCNN draw ``profile.mc_samples`` /
    ``profile.hcnn_samples`` samples from a generator seeded by (seed, split), so the
    maps are reproducible. ``crossfit=True`` (training split only) segments each training
    image with the fold model that did not train on it.
    """
    device = device or pick_device()
    if crossfit and split != "train":
        raise ValueError(f"crossfit=True predicts the training split, not {split!r}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {SPLITS}")
    path = segmentation_path(profile, method, seed, data_root, split, crossfit)
    ds = decoded_split(data_root, split, profile.image_size)
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=False)
    else:
        rng_seed = seed * 10 + SPLITS.index(split)  # reproducible sampled maps
        saved = _segment(
            profile, method, seed, data_root, ds.images, device, progress, crossfit, rng_seed
        )
        save_torch(saved, path)
    return SegmentationSet(
        ids=ds.ids,
        images=ds.images,
        true_masks=ds.masks,
        masks=saved["masks"],
        maps=saved["maps"],
        jaccard=jaccard(saved["masks"], ds.masks),
        extras=saved["extras"],
    )


def _segment(profile, method, seed, data_root, images, device, progress, crossfit, rng_seed):
    """Train or load the U-Net(s) ``method`` needs, then segment ``images`` with torch's
    generator seeded by ``rng_seed`` (after the models exist, so that sampled maps do
    not depend on whether a model was trained or loaded). Returns ``{"masks": uint8
    [N, H, W], "maps": float32 [N, H, W], "extras": {name: float32 [N, H, W] or [N]}}``."""

    def unet(s, fold=None):
        return fit_segmentation(profile, method, s, data_root, device, progress, fold=fold).model

    if get_method(method).all_seeds:  # one predictor made of every seed's U-Net
        models, parts = [[unet(s) for s in profile.seeds]], [slice(None)]
    elif not crossfit:
        models, parts = [unet(seed)], [slice(None)]
    else:
        folds = profile.crossfit_folds
        fold_of = torch.as_tensor(crossfit_folds(len(images), folds, seed))
        models = [unet(seed, (k, folds)) for k in range(folds)]
        parts = [fold_of == k for k in range(folds)]  # the images fold k's model never saw
    torch.manual_seed(rng_seed)
    masks = torch.zeros((len(images), *images.shape[-2:]), dtype=torch.uint8)
    maps = torch.zeros(masks.shape, dtype=torch.float32)
    extras: dict[str, torch.Tensor] = {}
    with phase("maps", f"{method} seed {seed}, {len(images)} images"):
        for model, part in zip(models, parts, strict=True):
            pred = predict_images(model, images[part], method, samples=samples(profile, method))
            masks[part], maps[part] = pred.mask.to(torch.uint8), pred.uncertainty.float()
            for name, value in pred.extras.items():
                shape = (len(images), *value.shape[1:])  # a map, or one value per image
                extras.setdefault(name, torch.zeros(shape, dtype=torch.float32))
                extras[name][part] = value
    return {"masks": masks, "maps": maps, "extras": extras}


def fit_frame(
    profile: Profile, seeds, root, method: str = "max_prob", device: torch.device | None = None
) -> pd.DataFrame:
    """How well f fits its training images against new ones (chapter 10, "When does the
    map help?"): per seed and split (``train``, ``test``), the mean Jaccard of
    ``method``'s masks and their failure share (Jaccard below
    :data:`~segqual_lite.metrics.FAILURE_THRESHOLD`). The training split's failure share
    is the share of failures among the examples g learns from on these masks."""
    records = []
    for seed in seeds:
        for split in ("train", "test"):
            j = segment_split(profile, method, seed, root, split, device, False).jaccard
            j = np.asarray(j, dtype=np.float64)
            records.append(
                {
                    "method": method,
                    "seed": seed,
                    "split": split,
                    "mean_jaccard": float(j.mean()),
                    "failure_share": float(np.mean(j < FAILURE_THRESHOLD)),
                    "n_images": len(j),
                }
            )
    return pd.DataFrame(records)
