"""The quality network g: its inputs, training and prediction (chapter 07).

g regresses the Jaccard index of a segmentation (eq. 3 of the paper):
``v_hat = g(x, y_hat, z)``. Each row of Table 1 feeds it differently:

==================  =====================================  ==========
row                 input                                  channels
==================  =====================================  ==========
``qualitynet``      x * y_hat (Huang et al. 2016)          3
``no_uncertainty``  x, y_hat                               4
``max_prob`` ...    x, y_hat, z (z from that method's f)   5
==================  =====================================  ==========

Which masks and maps each row reads, and how each map is scaled, is in the registry
(:mod:`segqual_lite.rows`); the controls of chapter 10 (:data:`~segqual_lite.rows.CONTROL_ROWS`)
give g x and y_hat on the masks of MC-dropout, HCNN or LCE. The baseline rows use the
plain U-Net's deterministic mask. g learns from f's predictions on f's own *training*
images (the paper's choice, ``train_split="train"``); another split can be chosen.
Every map z is scaled to [0, 1] so that rows are comparable: by its largest possible
value for the bounded maps with C classes (1 - 1/C for 1 - max p, ln C for the
entropies, 1 for 1 - c; with the book's two classes 0.5, ln 2 and 1) and, for HCNN's
unbounded sigma, by its 99th percentile on g's training images (values above are
clipped to 1).

Beyond the paper (:data:`~segqual_lite.rows.BEYOND_ROWS`, chapter 11), with the same g and
the same test inputs as their paper rows:

* ``max_prob_crossfit`` and ``mc_dropout_crossfit``: g learns from *out-of-fold* maps on
  the training images: each image is segmented by one of ``profile.crossfit_folds``
  plain U-Nets that did not train on it
  (:func:`~segqual_lite.segment.segment_split` with ``crossfit=True``);
* ``ensemble``: the mean softmax of the plain U-Nets of all the profile's seeds;
* ``tta``: the plain U-Net's mean softmax over the eight flips and quarter turns.

:func:`predicted_quality` keeps g's predictions on a split in the artifact store, so
that the chapters that read the grid again load them instead of running g.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .config import Profile, pick_device, progress_enabled
from .data import dihedral_augmentation_batch, take_rows
from .models import QualityCNN
from .rows import BEYOND_ROWS, CROSSFIT_ROWS, QUALITY_ROWS, get_row, in_channels, map_maximum
from .segment import SegmentationSet, segment_split, segmentation_key
from .store import artifact_folder, artifact_key, save_array
from .timing import phase
from .training import TrainedModel, fit_checkpointed

__all__ = [
    "ROWS",
    "BEYOND_ROWS",
    "CROSSFIT_ROWS",
    "QualityDataset",
    "in_channels",
    "map_scale",
    "quality_key",
    "quality_loss",
    "fit_quality",
    "quality_folder",
    "predict_quality",
    "predicted_path",
    "predicted_quality",
]

ROWS = QUALITY_ROWS  # Table 1's rows with a quality network


def map_scale(method: str, train_maps: torch.Tensor, num_classes: int = 2) -> float:
    """The divisor that brings ``method``'s map to [0, 1] (see the module docstring)."""
    maximum = map_maximum(method, num_classes)
    if maximum is not None:
        return maximum
    sample = train_maps.flatten()[:: max(1, train_maps.numel() // 1_000_000)]
    return max(float(torch.quantile(sample.float(), 0.99)), 1e-6)


class QualityDataset(torch.utils.data.Dataset):
    """``(input, true Jaccard)`` pairs for one row; inputs assembled on the fly from
    uint8 images and masks (memory stays small at paper scale). A list of indices gives
    the whole batch at once, equal to stacking the items one by one, random draws
    included (:func:`~segqual_lite.data.dihedral_augmentation_batch`)."""

    def __init__(self, row: str, seg: SegmentationSet, scale: float, augment: bool = False):
        self.row, self.seg, self.scale = row, seg, scale
        self.channels = in_channels(row)
        self.targets = torch.as_tensor(seg.jaccard, dtype=torch.float32)
        self.augment = None
        if augment:  # torchvision's v2 pipeline, only when augmenting
            from .data import dihedral_augmentation

            self.augment = dihedral_augmentation()

    def __len__(self) -> int:
        return len(self.targets)

    def inputs(self, index) -> torch.Tensor:
        """The input of g for ``index`` (an int, a slice or a list), float32 [(B,) C, H, W]."""
        image = take_rows(self.seg.images, index).float() / 255
        mask = take_rows(self.seg.masks, index).float().unsqueeze(-3)
        if self.channels == 3:  # QualityNet: x * y_hat
            return image * mask
        parts = [image, mask]
        if self.channels == 5:
            parts.append(
                (take_rows(self.seg.maps, index).float() / self.scale).clamp(0, 1).unsqueeze(-3)
            )
        return torch.cat(parts, dim=-3)

    def __getitem__(self, index: int | list[int]):
        x = self.inputs(index)
        if self.augment is not None:
            if isinstance(index, list):
                (x,) = dihedral_augmentation_batch(x)
            else:
                from torchvision import tv_tensors

                x = self.augment(tv_tensors.Image(x)).as_subclass(torch.Tensor)
        return x, self.targets[index]


def quality_key(profile: Profile, row: str, seed: int, data_root, train_split: str) -> dict:
    """Everything that determines g for ``row`` and ``seed``: its cache key."""
    r = get_row(row)
    return artifact_key(
        "g",
        row=row,
        seed=seed,
        train_split=train_split,
        source=segmentation_key(profile, r.method, seed, data_root, r.crossfit),
        **{k: getattr(profile, k) for k in ("quality_widths", "epochs_g", "batch_size", "lr")},
    )


def quality_folder(profile: Profile, row: str, seed: int, data_root, train_split: str) -> Path:
    """Where :func:`fit_quality` keeps g (``final.pt`` once trained)."""
    key = quality_key(profile, row, seed, data_root, train_split)
    return artifact_folder(profile, f"{row}-seed{seed}", key)


def quality_loss(predicted: torch.Tensor, target: torch.Tensor, state=None):
    """g's loss: the mean squared error of the predicted Jaccard index (eq. 3)."""
    return F.mse_loss(predicted.float(), target), {}


def fit_quality(
    profile: Profile,
    row: str,
    seed: int,
    data_root: str | Path,
    train_split: str = "train",
    device: torch.device | None = None,
    progress: bool | None = None,
    stop_after_epoch: int | None = None,
) -> tuple[TrainedModel, float]:
    """Train (or load) g for ``row`` and ``seed`` on f's predictions on ``train_split``
    (out-of-fold predictions for the :data:`CROSSFIT_ROWS`).

    MSE on the Jaccard index, Adam at the profile's learning rate, the profile's batch
    size and ``epochs_g``, random flips and 90-degree rotations. Returns
    ``(TrainedModel, scale)`` where ``scale`` normalises this row's map (1.0 without one).
    """
    device = device or pick_device()
    r = get_row(row)
    channels = in_channels(row)
    train = segment_split(
        profile, r.method, seed, data_root, train_split, device, progress, r.crossfit
    )
    scale = map_scale(r.method, train.maps) if channels == 5 else 1.0
    key = quality_key(profile, row, seed, data_root, train_split)
    trained = fit_checkpointed(
        quality_folder(profile, row, seed, data_root, train_split),
        key,
        make_model=lambda: QualityCNN(channels, profile.quality_widths),
        dataset=QualityDataset(row, train, scale, augment=True),
        loss_fn=quality_loss,
        epochs=profile.epochs_g,
        seed=seed,
        lr=profile.lr,
        batch_size=profile.batch_size,
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
    with phase("g predict", row):
        for start in range(0, len(dataset), batch_size):
            x = dataset.inputs(slice(start, start + batch_size)).to(device)
            out.append(model(x.contiguous(memory_format=torch.channels_last)).float().cpu())
    model.train(was_training)
    return torch.cat(out).double().numpy()


def predicted_path(
    profile: Profile,
    row: str,
    seed: int,
    data_root: str | Path,
    split: str = "test",
    train_split: str = "train",
    batch_size: int = 64,
) -> Path:
    """Where :func:`predicted_quality` keeps g's predictions on ``split``
    (``predicted.npy``). Its key names g (:func:`quality_key`: its training maps, hence
    the scale of its map, and its settings), the masks and maps it reads (f's on
    ``split``) and the batch size of :func:`predict_quality`."""
    key = artifact_key(
        "predicted_jaccard",
        g=quality_key(profile, row, seed, data_root, train_split),
        inputs={**segmentation_key(profile, get_row(row).method, seed, data_root), "split": split},
        batch_size=batch_size,
    )
    return artifact_folder(profile, f"{row}-seed{seed}-{split}", key) / "predicted.npy"


def predicted_quality(
    profile: Profile,
    row: str,
    seed: int,
    data_root: str | Path,
    split: str = "test",
    train_split: str = "train",
    device: torch.device | None = None,
    progress: bool | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """g's predicted Jaccard index (float64 [N]) for every image of ``split``, segmented
    by ``row``'s f (:func:`~segqual_lite.segment.segment_split`), with g trained or loaded
    by :func:`fit_quality` on ``train_split``; cached like a model (a second call loads
    the array that :func:`predict_quality` returned, bit for bit)."""
    path = predicted_path(profile, row, seed, data_root, split, train_split, batch_size)
    if path.exists():
        with phase("load g predict", row):
            return np.load(path)
    seg = segment_split(profile, get_row(row).method, seed, data_root, split, device, progress)
    g, scale = fit_quality(profile, row, seed, data_root, train_split, device, progress)
    predicted = predict_quality(g.model, row, seg, scale, batch_size)
    save_array(predicted, path)
    return predicted
