"""The quality network g: its training data, its rows of Table 1, training and
prediction (chapter 07).

g regresses the Jaccard index of a segmentation (eq. 3 of the paper):
``v_hat = g(x, y_hat, z)``. Each row of Table 1 feeds it differently:

==================  =====================================  ==========
row                 input                                  channels
==================  =====================================  ==========
``qualitynet``      x * y_hat (Huang et al. 2016)          3
``no_uncertainty``  x, y_hat                               4
``max_prob`` ...    x, y_hat, z (z from that method's f)   5
==================  =====================================  ==========

The baseline rows use the plain U-Net's deterministic mask. g learns from f's
predictions on f's own *training* images (the paper's choice, ``train_split="train"``);
another split can be chosen. Every map z is scaled to [0, 1] so that rows are comparable:
by its largest possible value for the bounded maps (0.5 for 1 - max p, ln 2 for the
entropies, 1 for 1 - c) and, for HCNN's unbounded sigma, by its 99th percentile on g's
training images (values above are clipped to 1).

Beyond the paper (:data:`BEYOND_ROWS`, chapter 11), with the same g and the same test
inputs as their paper rows:

* ``max_prob_crossfit`` and ``mc_dropout_crossfit``: g learns from *out-of-fold* maps on
  the training images: each image is segmented by one of ``profile.crossfit_folds``
  plain U-Nets that did not train on it (:func:`segment_split` with ``crossfit=True``);
* ``ensemble``: the mean softmax of the plain U-Nets of all the profile's seeds;
* ``tta``: the plain U-Net's mean softmax over the eight flips and quarter turns.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torchvision import tv_tensors

from .config import Profile, pick_device
from .data import ISIC2017, SPLITS, dihedral_augmentation
from .metrics import jaccard
from .models import QualityCNN
from .training import (
    cache_folder,
    crossfit_folds,
    fit_checkpointed,
    fit_segmentation,
    predict_images,
    progress_enabled,
    training_key,
)
from .uncertainty import METHODS

__all__ = [
    "ROWS",
    "BEYOND_ROWS",
    "CROSSFIT_ROWS",
    "SOURCE_METHOD",
    "SegmentationSet",
    "QualityDataset",
    "in_channels",
    "map_scale",
    "segment_split",
    "fit_quality",
    "predict_quality",
]

ROWS = ("qualitynet", "no_uncertainty", "max_prob", "mc_dropout", "hcnn", "lce")
CROSSFIT_ROWS = ("max_prob_crossfit", "mc_dropout_crossfit")
BEYOND_ROWS = (*CROSSFIT_ROWS, "ensemble", "tta")
# The method of f whose mask (and map) feeds each row.
SOURCE_METHOD = {
    "qualitynet": "max_prob",
    "no_uncertainty": "max_prob",
    "max_prob": "max_prob",
    "mc_dropout": "mc_dropout",
    "hcnn": "hcnn",
    "lce": "lce",
    "max_prob_crossfit": "max_prob",
    "mc_dropout_crossfit": "mc_dropout",
    "ensemble": "ensemble",
    "tta": "tta",
}
SEGMENTERS = (*METHODS, "ensemble", "tta")
MAP_MAXIMUM = {
    "max_prob": 0.5,
    "mc_dropout": math.log(2),
    "lce": 1.0,
    "ensemble": math.log(2),
    "tta": math.log(2),
}
QUALITY_CODE_VERSION = 1


def in_channels(row: str) -> int:
    """Input channels of g for ``row``: 3 (x * y_hat), 4 (x, y_hat) or 5 (x, y_hat, z)."""
    if row not in SOURCE_METHOD:
        raise ValueError(f"unknown row {row!r}: choose one of {(*ROWS, *BEYOND_ROWS)}")
    return {"qualitynet": 3, "no_uncertainty": 4}.get(row, 5)


@dataclass
class SegmentationSet:
    """f's output on one split: what g learns from or is tested on."""

    ids: list[str]
    images: torch.Tensor  # uint8 [N, 3, H, W]
    true_masks: torch.Tensor  # uint8 [N, H, W]
    masks: torch.Tensor  # uint8 [N, H, W], predicted
    maps: torch.Tensor  # float32 [N, H, W], raw uncertainty (high = unsure)
    jaccard: np.ndarray  # float64 [N], true Jaccard of each predicted mask


def _samples(profile: Profile, method: str) -> int | None:
    """T for the sampled maps (MC-dropout, HCNN); None for the others."""
    return {"mc_dropout": profile.mc_samples, "hcnn": profile.hcnn_samples}.get(method)


def _unet_method(method: str) -> str:
    """The method whose U-Net ``method`` reads: ensemble and TTA use the plain one."""
    return "max_prob" if method in ("ensemble", "tta") else method


def source_key(
    profile: Profile, method: str, seed: int, data_root: str | Path, crossfit: bool = False
) -> dict:
    """Everything that determines the masks and maps of ``method`` (the cache key)."""
    if method not in SEGMENTERS:
        raise ValueError(f"unknown method {method!r}: choose one of {SEGMENTERS}")
    if method == "ensemble":
        f = [training_key(profile, "max_prob", s, data_root) for s in profile.seeds]
    elif crossfit:
        folds = profile.crossfit_folds
        f = [training_key(profile, method, seed, data_root, (k, folds)) for k in range(folds)]
    else:
        f = training_key(profile, _unet_method(method), seed, data_root)
    return {"f": f, "method": method, "samples": _samples(profile, method), "crossfit": crossfit}


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
    key = {**source_key(profile, method, seed, data_root, crossfit), "split": split}
    # The ensemble is the same for every seed: one cache entry.
    name = f"{method}-{split}" if method == "ensemble" else f"{method}-seed{seed}-{split}"
    name += "-crossfit" if crossfit else ""
    path = cache_folder("pred", profile, name, key) / "outputs.pt"
    ds = _decoded_split(str(Path(data_root).resolve()), split, profile.image_size)
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=False)
    else:
        rng_seed = seed * 10 + SPLITS.index(split)  # reproducible sampled maps
        masks, maps = _segment(
            profile, method, seed, data_root, ds.images, device, progress, crossfit, rng_seed
        )
        saved = {"masks": masks, "maps": maps}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(saved, tmp)
        tmp.replace(path)
    return SegmentationSet(
        ids=ds.ids,
        images=ds.images,
        true_masks=ds.masks,
        masks=saved["masks"],
        maps=saved["maps"],
        jaccard=jaccard(saved["masks"], ds.masks),
    )


def _segment(profile, method, seed, data_root, images, device, progress, crossfit, rng_seed):
    """Train or load the U-Net(s) ``method`` needs, then segment ``images`` with torch's
    generator seeded by ``rng_seed`` (after the models exist, so that sampled maps do
    not depend on whether a model was trained or loaded). Returns
    ``(masks uint8 [N, H, W], maps float32 [N, H, W])``."""
    samples, unet_method = _samples(profile, method), _unet_method(method)

    def unet(s, fold=None):
        f = fit_segmentation(profile, unet_method, s, data_root, device, progress, fold=fold)
        return f.model

    if method == "ensemble":  # one predictor made of every seed's U-Net
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
    for model, part in zip(models, parts, strict=True):
        pred = predict_images(model, images[part], method, samples=samples)
        masks[part], maps[part] = pred.mask.to(torch.uint8), pred.uncertainty.float()
    return masks, maps


@functools.lru_cache(maxsize=4)
def _decoded_split(root: str, split: str, size: int) -> ISIC2017:
    """Decode a split once per process: the grid asks for the same split many times."""
    return ISIC2017(root, split, size)


def map_scale(method: str, train_maps: torch.Tensor) -> float:
    """The divisor that brings ``method``'s map to [0, 1] (see the module docstring)."""
    if method in MAP_MAXIMUM:
        return MAP_MAXIMUM[method]
    sample = train_maps.flatten()[:: max(1, train_maps.numel() // 1_000_000)]
    return max(float(torch.quantile(sample.float(), 0.99)), 1e-6)


class QualityDataset(torch.utils.data.Dataset):
    """``(input, true Jaccard)`` pairs for one row; inputs assembled on the fly from
    uint8 images and masks (memory stays small at paper scale)."""

    def __init__(self, row: str, seg: SegmentationSet, scale: float, augment: bool = False):
        self.row, self.seg, self.scale = row, seg, scale
        self.channels = in_channels(row)
        self.targets = torch.as_tensor(seg.jaccard, dtype=torch.float32)
        self.augment = dihedral_augmentation() if augment else None

    def __len__(self) -> int:
        return len(self.targets)

    def inputs(self, index) -> torch.Tensor:
        """The input of g for ``index`` (an int or a slice), float32 [(B,) C, H, W]."""
        image = self.seg.images[index].float() / 255
        mask = self.seg.masks[index].float().unsqueeze(-3)
        if self.row == "qualitynet":
            return image * mask
        parts = [image, mask]
        if self.channels == 5:
            parts.append((self.seg.maps[index].float() / self.scale).clamp(0, 1).unsqueeze(-3))
        return torch.cat(parts, dim=-3)

    def __getitem__(self, index: int):
        x = self.inputs(index)
        if self.augment is not None:
            x = self.augment(tv_tensors.Image(x)).as_subclass(torch.Tensor)
        return x, self.targets[index]


def quality_key(profile: Profile, row: str, seed: int, data_root, train_split: str) -> dict:
    method = SOURCE_METHOD[row]
    return {
        "code": QUALITY_CODE_VERSION,
        "row": row,
        "seed": seed,
        "train_split": train_split,
        "source": source_key(profile, method, seed, data_root, row in CROSSFIT_ROWS),
        **{k: getattr(profile, k) for k in ("quality_widths", "epochs_g", "batch_size", "lr")},
    }


def fit_quality(
    profile: Profile,
    row: str,
    seed: int,
    data_root: str | Path,
    train_split: str = "train",
    device: torch.device | None = None,
    progress: bool | None = None,
    stop_after_epoch: int | None = None,
):
    """Train (or load) g for ``row`` and ``seed`` on f's predictions on ``train_split``
    (out-of-fold predictions for the :data:`CROSSFIT_ROWS`).

    MSE on the Jaccard index, Adam at the profile's learning rate, the profile's batch
    size and ``epochs_g``, random flips and 90-degree rotations. Returns
    ``(TrainedModel, scale)`` where ``scale`` normalises this row's map (1.0 without one).
    """
    device = device or pick_device()
    method = SOURCE_METHOD[row]
    crossfit = row in CROSSFIT_ROWS
    train = segment_split(profile, method, seed, data_root, train_split, device, progress, crossfit)
    scale = map_scale(method, train.maps) if in_channels(row) == 5 else 1.0
    key = quality_key(profile, row, seed, data_root, train_split)
    folder = cache_folder("g", profile, f"{row}-seed{seed}", key)
    dataset = QualityDataset(row, train, scale, augment=True)

    def run_epoch(model, optimizer, scaler, loader, state, use_amp):
        loss_sum, seen = torch.zeros((), device=device), 0
        for x, target in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            target = target.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                predicted = model(x)
            loss = F.mse_loss(predicted.float(), target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach() * len(x)
            seen += len(x)
        return {"loss": loss_sum.item() / seen}

    trained = fit_checkpointed(
        folder,
        key,
        make_model=lambda: QualityCNN(in_channels(row), profile.quality_widths),
        dataset=dataset,
        batch_size=profile.batch_size,
        run_epoch=run_epoch,
        epochs=profile.epochs_g,
        seed=seed,
        lr=profile.lr,
        device=device,
        progress=progress_enabled() if progress is None else progress,
        desc=f"g[{row}] seed {seed}",
        stop_after_epoch=stop_after_epoch,
    )
    return trained, scale


@torch.inference_mode()
def predict_quality(
    model: QualityCNN, row: str, seg: SegmentationSet, scale: float, batch_size: int = 64
) -> np.ndarray:
    """g's predicted Jaccard index for every image of ``seg`` (float64 [N])."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    dataset = QualityDataset(row, seg, scale)
    out = []
    for start in range(0, len(dataset), batch_size):
        x = dataset.inputs(slice(start, start + batch_size)).to(device)
        out.append(model(x.contiguous(memory_format=torch.channels_last)).float().cpu())
    model.train(was_training)
    return torch.cat(out).double().numpy()
