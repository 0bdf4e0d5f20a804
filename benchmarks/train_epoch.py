"""Seconds per training epoch of f and g through ``fit_checkpointed``, before and after
issue 15's exact speed-ups, at the tiny profile's shapes.

    SEGQUAL_THREADS=1 python benchmarks/train_epoch.py [--profile tiny] [--epochs 2]
        [--repeats 5]

Contenders, interleaved (the order rotates every repeat): the loop as it is, and the
loop with the previous data path (a DataLoader that calls ``__getitem__`` once per image,
with per-image torchvision v2 transforms, then collates) and the previous optimiser
(PyTorch's default Adam, a per-parameter loop on the CPU). Each run trains a fresh
network for ``--epochs`` epochs from seed 0, checkpoints and f's validation pass
included, on synthetic data of the profile's size (f: the plain U-Net; g: 5 input
channels). Prints the median seconds per epoch, the ratio after / before (and the range
of the ratios of the rounds: the spread that other load on the machine causes), whether both
give the same weights bit for bit, and the data path alone (one pass over the loader).
The thread count is ``$SEGQUAL_THREADS`` (default 1, the book's setting).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from segqual_lite import training
from segqual_lite.config import fix_threads, get_profile, pick_device, seed_everything
from segqual_lite.data import ISIC2017, make_synthetic_isic
from segqual_lite.metrics import jaccard
from segqual_lite.models import QualityCNN
from segqual_lite.quality import QualityDataset, quality_loss
from segqual_lite.segment import SegmentationSet
from segqual_lite.uncertainty import predict_images, segmentation_loss


def previous_loader(dataset, batch_size, generator, pin_memory):
    """The data path until issue 15: one __getitem__ per image, then collate."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=generator, pin_memory=pin_memory
    )


def previous_adam(params, lr):
    """The optimiser until issue 15: PyTorch's default (a per-parameter loop on the CPU)."""
    return torch.optim.Adam(params, lr=lr)


def run(fit, folder: Path, previous: bool):
    """Train with the loop as it is, or with the previous data path and optimiser."""
    now = training._shuffled_batches, training._adam
    if previous:
        training._shuffled_batches, training._adam = previous_loader, previous_adam
    try:
        return fit(folder)
    finally:
        training._shuffled_batches, training._adam = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads = fix_threads()
    device = pick_device()
    p = get_profile(args.profile)
    print(
        f"device={device} threads={threads} torch={torch.__version__} profile={p.name}: "
        f"{p.n_train} images at {p.image_size} px, batch {p.batch_size}, "
        f"U-Net width {p.unet_width}, g widths {p.quality_widths}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_synthetic_isic(tmp / "data", p.n_train, p.n_val, 0, size=p.image_size, seed=0)
        train = ISIC2017(tmp / "data", "train", p.image_size, augment=True)
        val = ISIC2017(tmp / "data", "val", p.image_size)
        g = torch.Generator().manual_seed(0)
        n = len(train)
        seg = SegmentationSet(
            train.ids,
            train.images,
            train.masks,
            train.masks,
            torch.rand(n, p.image_size, p.image_size, generator=g),
            np.random.default_rng(0).random(n),
        )
        quality_data = QualityDataset("max_prob", seg, 0.5, augment=True)

        def after_epoch(model, state):
            pred = predict_images(model, val.images, "max_prob", device=device)
            return {"val_jaccard": float(jaccard(pred.mask, val.masks).mean())}

        def common(folder, desc):
            return dict(
                folder=folder,
                key={},
                epochs=args.epochs,
                seed=0,
                lr=p.lr,
                batch_size=p.batch_size,
                device=device,
                progress=False,
                desc=desc,
            )

        fits = {
            "f": lambda folder: training.fit_checkpointed(
                make_model=lambda: training.build_unet(p, "max_prob"),
                dataset=train,
                loss_fn=lambda o, t, s: segmentation_loss("max_prob", o, t, s),
                after_epoch=after_epoch,
                **common(folder, "f[bench]"),
            ),
            "g": lambda folder: training.fit_checkpointed(
                make_model=lambda: QualityCNN(5, p.quality_widths),
                dataset=quality_data,
                loss_fn=quality_loss,
                **common(folder, "g[bench]"),
            ),
        }
        datasets = {"f": train, "g": quality_data}
        contenders = [(net, previous) for net in fits for previous in (True, False)]
        times = {c: [] for c in contenders}
        data_times = {c: [] for c in contenders}
        weights = {}
        for r in range(args.repeats + 1):  # the first round warms up, untimed
            for net, previous in contenders[r % 4 :] + contenders[: r % 4]:
                folder = tmp / "runs" / f"{net}-{previous}-{r}"
                start = time.perf_counter()
                trained = run(fits[net], folder, previous)
                if r:
                    times[net, previous].append((time.perf_counter() - start) / args.epochs)
                weights[net, previous] = trained.model.state_dict()
                make = previous_loader if previous else training._shuffled_batches
                loader = make(datasets[net], p.batch_size, torch.Generator().manual_seed(0), False)
                start = time.perf_counter()
                for _ in loader:
                    pass
                if r:
                    data_times[net, previous].append(time.perf_counter() - start)
        print(f"median of {args.repeats} runs of {args.epochs} epochs, seconds per epoch:")
        for net in fits:
            before = statistics.median(times[net, True])
            after = statistics.median(times[net, False])
            a, b = weights[net, True], weights[net, False]
            same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            data_before = statistics.median(data_times[net, True])
            data_after = statistics.median(data_times[net, False])
            ratios = sorted(a / b for a, b in zip(times[net, False], times[net, True], strict=True))
            print(
                f"  {net}: before {before:.3f} s  after {after:.3f} s  ratio {after / before:.3f}"
                f" (per round {ratios[0]:.3f} .. {ratios[-1]:.3f})"
                f"  | data path alone {data_before:.3f} -> {data_after:.3f} s"
                f"  | same weights bit for bit: {same}"
            )


if __name__ == "__main__":
    seed_everything(0)
    main()
