"""Fitting the U-Net f for each uncertainty method (chapter 02; losses in 03-06).

* Adam, learning rate, batch size, epochs and augmentation come from the profile.
* After every epoch: the validation Jaccard index is recorded and a checkpoint (weights,
  optimiser, random states, LCE's lambda, history) is written atomically; an
  interrupted run resumes from it and ends with the same weights as an uninterrupted
  one on the CPU.
* Finished models are cached under ``<home>/models/<profile>/`` by a key of everything
  that produced them (profile settings, method variant, seed, data), so later chapters
  load them instead of training again.
* Models are kept in the channels_last layout (about 2x faster convolutions on CPUs,
  and what tensor cores want); :func:`~segqual_lite.uncertainty.predict` matches it.
* On CUDA: automatic mixed precision and no host-device sync inside the epoch (losses
  are summed on the device; LCE's lambda stays a tensor).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .config import Profile, home, pick_device, seed_everything
from .data import ISIC2017
from .metrics import jaccard
from .models import UNet
from .uncertainty import (
    HEAD_OF,
    LCE_BUDGET,
    LCE_LAMBDA0,
    METHODS,
    Prediction,
    hcnn_loss,
    lce_loss,
    predict,
    predict_ensemble,
    predict_tta,
    update_lambda,
)

__all__ = [
    "VARIANT_OF",
    "TrainedModel",
    "build_unet",
    "crossfit_folds",
    "training_key",
    "cache_folder",
    "fit_checkpointed",
    "fit_segmentation",
    "predict_images",
    "progress_enabled",
]

# max_prob and mc_dropout read different maps off the same plain U-Net.
VARIANT_OF = {"max_prob": "plain", "mc_dropout": "plain", "hcnn": "hcnn", "lce": "lce"}
TRAINING_CODE_VERSION = 2  # bump when the training loop changes what it produces


def progress_enabled() -> bool:
    """Progress bars unless ``SEGQUAL_PROGRESS=0`` (the book build sets it: bars would
    only litter the rendered pages)."""
    return os.environ.get("SEGQUAL_PROGRESS", "1") != "0"


def build_unet(profile: Profile, method: str) -> UNet:
    """The U-Net of ``profile`` with the head that ``method`` trains."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {METHODS}")
    return UNet(width=profile.unet_width, depth=profile.unet_depth, head=HEAD_OF[method])


def crossfit_folds(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold number (0 .. folds - 1) of each of ``n`` training images for cross-fitting
    (chapter 11): a seeded random permutation dealt out like cards, so fold sizes differ
    by at most one."""
    if not 2 <= folds <= n:
        raise ValueError(f"cross-fitting needs 2 <= folds <= {n} images, got folds={folds}")
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return fold


def training_key(
    profile: Profile,
    method: str,
    seed: int,
    data_root: str | Path,
    fold: tuple[int, int] | None = None,
) -> dict:
    """Everything that determines a trained f: the cache key."""
    variant = VARIANT_OF[method]
    key = {
        "code": TRAINING_CODE_VERSION,
        "variant": variant,
        "seed": seed,
        "data": Path(data_root).resolve().name,
        **{
            k: getattr(profile, k)
            for k in ("image_size", "unet_width", "unet_depth", "epochs_f", "batch_size", "lr")
        },
    }
    if variant == "hcnn":
        key["hcnn_train_samples"] = profile.hcnn_train_samples
    if variant == "lce":
        key["lce"] = {"lambda0": LCE_LAMBDA0, "budget": LCE_BUDGET, "hints": "per-image"}
    if fold is not None:
        key["fold"] = list(fold)
    return key


@dataclass
class TrainedModel:
    model: UNet
    history: list[dict]
    path: Path
    finished: bool = True


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _random_states(loader_gen: torch.Generator) -> dict:
    states = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (restoring the legacy global)
        "python": random.getstate(),
        "loader": loader_gen.get_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_random_states(states: dict, loader_gen: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])  # noqa: NPY002
    random.setstate(states["python"])
    loader_gen.set_state(states["loader"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _validation_jaccard(model, images: torch.Tensor, masks: torch.Tensor, device) -> float:
    pred = predict_images(model, images, "max_prob", device=device)
    return float(jaccard(pred.mask, masks).mean())


def cache_folder(kind: str, profile: Profile, name: str, key: dict) -> Path:
    """``<home>/models/<profile>/<kind>-<name>-<hash of key>``: one folder per artifact,
    named by everything that produced it."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return home() / "models" / profile.name / f"{kind}-{name}-{digest}"


def fit_checkpointed(
    folder: Path,
    key: dict,
    make_model: Callable[[], nn.Module],
    dataset: torch.utils.data.Dataset | None,
    batch_size: int,
    run_epoch: Callable[..., dict],
    epochs: int,
    seed: int,
    lr: float,
    device: torch.device,
    progress: bool,
    desc: str,
    state: dict | None = None,
    stop_after_epoch: int | None = None,
) -> TrainedModel:
    """The loop shared by f and g: load-if-cached, resume, checkpoint every epoch.

    Batches of ``dataset`` are shuffled by a generator seeded with ``seed`` (and restored on
    resume). ``run_epoch(model, optimizer, scaler, loader, state, use_amp)`` trains one epoch and
    returns its history record; ``state`` holds tensors carried from step to step (LCE's
    lambda) and is checkpointed with the weights, the optimiser and every random state.
    """
    final, checkpoint = folder / "final.pt", folder / "checkpoint.pt"
    if final.exists():
        saved = torch.load(final, map_location="cpu", weights_only=False)
        model = make_model()
        model.load_state_dict(saved["model"])
        return TrainedModel(
            model.to(device).to(memory_format=torch.channels_last), saved["history"], folder
        )

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").write_text(json.dumps(key, indent=1, sort_keys=True))
    seed_everything(seed)
    model = make_model().to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loader_gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=loader_gen, pin_memory=use_amp
    )
    state = {k: v.to(device) for k, v in (state or {}).items()}
    history, start_epoch = [], 0
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        state = {k: v.to(device) for k, v in saved["state"].items()}
        history, start_epoch = saved["history"], saved["epoch"] + 1
        _restore_random_states(saved["random"], loader_gen)

    bar = tqdm(
        range(start_epoch, epochs),
        desc=desc,
        initial=start_epoch,
        total=epochs,
        disable=not progress,
        leave=False,
    )
    for epoch in bar:
        model.train()
        record = {"epoch": epoch + 1, **run_epoch(model, optimizer, scaler, loader, state, use_amp)}
        history.append(record)
        bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "epoch"})
        _atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "state": state,
                "history": history,
                "epoch": epoch,
                "random": _random_states(loader_gen),
            },
            checkpoint,
        )
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch < epochs:
            bar.close()
            return TrainedModel(model, history, folder, finished=False)
    bar.close()
    _atomic_save({"model": model.state_dict(), "history": history, "key": key}, final)
    checkpoint.unlink(missing_ok=True)
    return TrainedModel(model, history, folder)


def fit_segmentation(
    profile: Profile,
    method: str,
    seed: int,
    data_root: str | Path,
    device: torch.device | None = None,
    progress: bool | None = None,
    stop_after_epoch: int | None = None,
    fold: tuple[int, int] | None = None,
) -> TrainedModel:
    """Train (or load) the U-Net f that ``method`` needs, for one seed.

    Returns a :class:`TrainedModel` whose ``history`` holds, per epoch, the mean training
    loss, the validation Jaccard index and, for LCE, the confidence penalty and lambda.
    ``stop_after_epoch`` ends the call early after that epoch's checkpoint (as if the
    session had been cut off); calling again resumes. ``fold=(k, K)`` trains on the
    training images outside fold k of :func:`crossfit_folds` ``(n, K, seed)``, for
    cross-fitting (chapter 11).
    """
    device = device or pick_device()
    key = training_key(profile, method, seed, data_root, fold)
    variant = key["variant"]
    name = f"{variant}-seed{seed}" + (f"-fold{fold[0] + 1}of{fold[1]}" if fold else "")
    folder = cache_folder("f", profile, name, key)
    if (folder / "final.pt").exists():
        train = val = None  # loading only: no need to decode the data
    else:
        train = ISIC2017(data_root, "train", profile.image_size, augment=True)
        val = ISIC2017(data_root, "val", profile.image_size)
        if fold is not None:
            outside = np.flatnonzero(crossfit_folds(len(train), fold[1], seed) != fold[0])
            train = torch.utils.data.Subset(train, outside.tolist())

    def run_epoch(model, optimizer, scaler, loader, state, use_amp):
        loss_sum = torch.zeros((), device=device)
        penalty_sum = torch.zeros((), device=device)
        seen = 0
        for images, masks in loader:
            images = images.to(device, non_blocking=True).to(memory_format=torch.channels_last)
            masks = masks.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                output = model(images)
            if variant == "plain":
                loss = F.cross_entropy(output.float(), masks)
            elif variant == "hcnn":
                loss = hcnn_loss(*output, masks, samples=profile.hcnn_train_samples)
            else:
                loss, penalty = lce_loss(*output, masks, state["lam"])
                state["lam"] = update_lambda(state["lam"], penalty)
                penalty_sum += penalty.detach() * len(images)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach() * len(images)
            seen += len(images)
        record = {
            "loss": loss_sum.item() / seen,
            "val_jaccard": _validation_jaccard(model, val.images, val.masks, device),
        }
        if variant == "lce":
            record["penalty"] = penalty_sum.item() / seen
            record["lambda"] = state["lam"].item()
        return record

    return fit_checkpointed(
        folder,
        key,
        make_model=lambda: build_unet(profile, method),
        dataset=train,
        batch_size=profile.batch_size,
        run_epoch=run_epoch,
        epochs=profile.epochs_f,
        seed=seed,
        lr=profile.lr,
        device=device,
        progress=progress_enabled() if progress is None else progress,
        desc=f"f[{name}]",
        state={"lam": torch.tensor(LCE_LAMBDA0)} if variant == "lce" else None,
        stop_after_epoch=stop_after_epoch,
    )


def predict_images(
    model: UNet | list[UNet],
    images: torch.Tensor,
    method: str,
    samples: int | None = None,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> Prediction:
    """:func:`~segqual_lite.uncertainty.predict` over uint8 images ``[N, 3, H, W]`` in
    batches; results are gathered on the CPU. ``method`` may also be ``"tta"``
    (:func:`~segqual_lite.uncertainty.predict_tta`) or ``"ensemble"``
    (:func:`~segqual_lite.uncertainty.predict_ensemble`; ``model`` is then a list)."""
    models = model if isinstance(model, list) else [model]
    device = device or next(models[0].parameters()).device
    if method == "ensemble":
        fn = lambda x: predict_ensemble(models, x)  # noqa: E731
    elif method == "tta":
        fn = lambda x: predict_tta(model, x)  # noqa: E731
    else:
        fn = lambda x: predict(model, x, method, samples)  # noqa: E731
    parts = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device).float().div_(255)
        p = fn(x)
        parts.append(
            Prediction(
                p.probs.cpu(),
                p.mask.cpu(),
                p.uncertainty.cpu(),
                {k: v.cpu() for k, v in p.extras.items()},
            )
        )
    return Prediction(
        torch.cat([p.probs for p in parts]),
        torch.cat([p.mask for p in parts]),
        torch.cat([p.uncertainty for p in parts]),
        {k: torch.cat([p.extras[k] for p in parts]) for k in parts[0].extras},
    )
