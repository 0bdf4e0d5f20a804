"""Training: one checkpointed loop, and the U-Net f for each method (chapter 02; losses
in 03-06; the quality network g in chapter 07).

* Adam, learning rate, batch size, epochs and augmentation come from the profile.
* After every epoch: the validation Jaccard index is recorded and a checkpoint (weights,
  optimiser, random states, LCE's lambda, history) is written atomically; an
  interrupted run resumes from it and ends with the same weights as an uninterrupted
  one on the CPU.
* Finished models are cached in the artifact store (:mod:`segqual_lite.store`) by a key
  of everything that produced them (profile settings, U-Net, seed, data), so later
  chapters load them instead of training again.
* f and g share one loop (:func:`fit_checkpointed`); each passes only its loss. It
  fetches each batch with one dataset call and uses Adam's multi-tensor update: both
  give the same weights bit for bit as per-image loading and the per-parameter loop.
* Models are kept in the channels_last layout (about 2x faster convolutions on CPUs,
  and what tensor cores want); :func:`~segqual_lite.uncertainty.predict` matches it.
* On CUDA: automatic mixed precision and no host-device sync inside the epoch (losses
  are summed on the device; LCE's lambda stays a tensor).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import Profile, pick_device, progress_enabled, seed_everything
from .data import ISIC2017
from .metrics import jaccard
from .models import UNet
from .rows import get_method
from .store import artifact_folder, artifact_key, data_identity, save_torch
from .timing import phase
from .uncertainty import (
    LCE_BUDGET,
    LCE_LAMBDA0,
    predict_images,
    segmentation_loss,
)

__all__ = [
    "TrainedModel",
    "build_unet",
    "crossfit_folds",
    "training_key",
    "fit_checkpointed",
    "fit_segmentation",
    "segmentation_model_folder",
]

# Loss per batch: (model output, target, state) -> (loss, extras to average per epoch).
LossFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


def build_unet(profile: Profile, method: str) -> UNet:
    """The U-Net of ``profile`` with the head that ``method`` trains."""
    return UNet(width=profile.unet_width, depth=profile.unet_depth, head=get_method(method).head)


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
    """Everything that determines the trained U-Net that ``method`` reads: its cache key."""
    unet = get_method(method).unet
    parts = {
        "unet": unet,
        "seed": seed,
        "data": data_identity(data_root),
        **{
            k: getattr(profile, k)
            for k in ("image_size", "unet_width", "unet_depth", "epochs_f", "batch_size", "lr")
        },
    }
    if unet == "hcnn":
        parts["hcnn_train_samples"] = profile.hcnn_train_samples
    if unet == "lce":
        parts["lce"] = {"lambda0": LCE_LAMBDA0, "budget": LCE_BUDGET, "hints": "per-image"}
    if fold is not None:
        parts["fold"] = list(fold)
    if profile.cpu_precision != "float32":  # the keys of float32 profiles stay as they were
        parts["cpu_precision"] = profile.cpu_precision
    return artifact_key("f", **parts)


@dataclass
class TrainedModel:
    model: nn.Module
    history: list[dict]
    path: Path
    finished: bool = True


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


def _shuffled_batches(
    dataset, batch_size: int, generator: torch.Generator, pin_memory: bool
) -> torch.utils.data.DataLoader:
    """Batches of ``dataset`` in the order of ``DataLoader(dataset, batch_size,
    shuffle=True, generator=generator)``, drawing the same numbers from ``generator``
    (the same sampler inside), but each batch fetched by one ``dataset[list of indices]``
    call instead of one call per image and a collate: the documented way to load whole
    batches. The datasets answer a list with the same tensors and the same random draws
    as item by item, so training gives the same weights bit for bit (tested); on one CPU
    thread the data path of a tiny-profile epoch drops from about 0.05 s to 0.02 s
    (``benchmarks/train_epoch.py``)."""
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(dataset, generator=generator), batch_size, drop_last=False
    )
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=sampler, generator=generator, pin_memory=pin_memory
    )


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam at ``lr`` with its multi-tensor ("foreach") update: on the CPU the same
    kernels in the same order as PyTorch's default per-parameter loop, so the same
    weights bit for bit, with one Python step per update instead of one per parameter
    (measured: 7.5 -> 4.0 ms per step for the tiny U-Net on one thread). The fused
    variant is faster still but rounds differently. On CUDA foreach is the default."""
    return torch.optim.Adam(params, lr=lr, foreach=True)


def _train_epoch(model, optimizer, scaler, loader, loss_fn: LossFn, state, device, amp_dtype):
    """One pass over ``loader``; returns the mean loss and the mean of each extra. The
    forward pass runs under autocast in ``amp_dtype`` (None: off)."""
    sums: dict[str, torch.Tensor] = {"loss": torch.zeros((), device=device)}
    seen = 0
    for x, target in loader:
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        target = target.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            output = model(x)
        loss, extras = loss_fn(output, target, state)
        for name, value in extras.items():
            sums.setdefault(name, torch.zeros((), device=device))
            sums[name] += value.detach() * len(x)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        sums["loss"] += loss.detach() * len(x)
        seen += len(x)
    return {name: total.item() / seen for name, total in sums.items()}


def fit_checkpointed(
    folder: Path,
    key: dict,
    make_model: Callable[[], nn.Module],
    dataset: torch.utils.data.Dataset | None,
    loss_fn: LossFn,
    epochs: int,
    seed: int,
    lr: float,
    batch_size: int,
    device: torch.device,
    progress: bool,
    desc: str,
    state: dict | None = None,
    after_epoch: Callable[[nn.Module, dict], dict] | None = None,
    stop_after_epoch: int | None = None,
    cpu_precision: str = "float32",
) -> TrainedModel:
    """The loop shared by f and g: load-if-cached, resume, checkpoint every epoch.

    Adam at ``lr``; batches of ``dataset`` shuffled by a generator seeded with ``seed``
    (and restored on resume), each fetched as ``dataset[list of indices]`` (see
    :func:`_shuffled_batches`); mixed precision: float16 with a gradient scaler on CUDA,
    bfloat16 on a CPU when ``cpu_precision="bfloat16"`` (f's knob, see
    :class:`~segqual_lite.config.Profile`), the loss in float32 either way (each
    ``loss_fn`` casts). ``loss_fn(output,
    target, state)`` returns ``(loss, extras)``, the extras averaged into the epoch's
    history record; ``after_epoch(model, state)`` adds to that record (f's validation
    Jaccard). ``state`` holds tensors carried from step to step (LCE's lambda) and is
    checkpointed with the weights, the optimiser and every random state.
    """
    final, checkpoint = folder / "final.pt", folder / "checkpoint.pt"
    # desc names the network and its role: "f[plain-seed0]", "g[max_prob] seed 0"
    with phase(("load " if final.exists() else "train ") + desc[0], desc):
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
        optimizer = _adam(model.parameters(), lr)
        use_amp = device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        amp_dtype = (
            torch.float16
            if use_amp
            else torch.bfloat16
            if device.type == "cpu" and cpu_precision == "bfloat16"
            else None
        )
        loader_gen = torch.Generator().manual_seed(seed)
        loader = _shuffled_batches(dataset, batch_size, loader_gen, pin_memory=use_amp)
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
            record = _train_epoch(
                model, optimizer, scaler, loader, loss_fn, state, device, amp_dtype
            )
            record = {
                "epoch": epoch + 1,
                **record,
                **(after_epoch(model, state) if after_epoch else {}),
            }
            history.append(record)
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "epoch"})
            save_torch(
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
        save_torch({"model": model.state_dict(), "history": history, "key": key}, final)
        checkpoint.unlink(missing_ok=True)
        return TrainedModel(model, history, folder)


def segmentation_model_folder(
    profile: Profile,
    method: str,
    seed: int,
    data_root: str | Path,
    fold: tuple[int, int] | None = None,
) -> Path:
    """Where :func:`fit_segmentation` keeps the U-Net (``final.pt`` once trained)."""
    key = training_key(profile, method, seed, data_root, fold)
    return artifact_folder(profile, _unet_name(key["unet"], seed, fold), key)


def _unet_name(unet: str, seed: int, fold: tuple[int, int] | None) -> str:
    return f"{unet}-seed{seed}" + (f"-fold{fold[0] + 1}of{fold[1]}" if fold else "")


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
    """Train (or load) the U-Net f that ``method`` reads, for one seed.

    Returns a :class:`TrainedModel` whose ``history`` holds, per epoch, the mean training
    loss, the validation Jaccard index and, for LCE, the confidence penalty and lambda.
    ``stop_after_epoch`` ends the call early after that epoch's checkpoint (as if the
    session had been cut off); calling again resumes. ``fold=(k, K)`` trains on the
    training images outside fold k of :func:`crossfit_folds` ``(n, K, seed)``, for
    cross-fitting (chapter 11).
    """
    device = device or pick_device()
    key = training_key(profile, method, seed, data_root, fold)
    unet = key["unet"]
    name = _unet_name(unet, seed, fold)
    folder = segmentation_model_folder(profile, method, seed, data_root, fold)
    if (folder / "final.pt").exists():
        train = val = None  # loading only: no need to decode the data
    else:
        train = ISIC2017(data_root, "train", profile.image_size, augment=True)
        val = ISIC2017(data_root, "val", profile.image_size)
        if fold is not None:
            outside = np.flatnonzero(crossfit_folds(len(train), fold[1], seed) != fold[0])
            train = torch.utils.data.Subset(train, outside.tolist())

    def loss_fn(output, target, state):
        return segmentation_loss(method, output, target, state, profile.hcnn_train_samples)

    def after_epoch(model, state):
        pred = predict_images(model, val.images, "max_prob", device=device)
        record = {"val_jaccard": float(jaccard(pred.mask, val.masks).mean())}
        if unet == "lce":
            record["lambda"] = state["lam"].item()
        return record

    return fit_checkpointed(
        folder,
        key,
        make_model=lambda: build_unet(profile, method),
        dataset=train,
        loss_fn=loss_fn,
        epochs=profile.epochs_f,
        seed=seed,
        lr=profile.lr,
        batch_size=profile.batch_size,
        device=device,
        progress=progress_enabled() if progress is None else progress,
        desc=f"f[{name}]",
        state={"lam": torch.tensor(LCE_LAMBDA0)} if unet == "lce" else None,
        after_epoch=after_epoch,
        stop_after_epoch=stop_after_epoch,
        cpu_precision=profile.cpu_precision,
    )
