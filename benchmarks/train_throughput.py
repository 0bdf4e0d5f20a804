"""Training throughput of the U-Net f, and the share of epoch time spent in the model.

    python benchmarks/train_throughput.py [--sizes 64 224] [--width 8] [--steps 20]

For each image size: images per second for forward + loss + backward + Adam on random
batches (model compute only), then one real epoch through ``fit_checkpointed``'s data
path (whole batches, batched dihedral augmentation) on synthetic data, and the share of
that epoch spent in model compute. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from segqual_lite.config import get_profile, pick_device, seed_everything
from segqual_lite.data import ISIC2017, make_synthetic_isic
from segqual_lite.training import _shuffled_batches, build_unet
from segqual_lite.uncertainty import LCE_LAMBDA0, segmentation_loss


def step_fn(model, method, optimizer, samples):
    state = {"lam": torch.tensor(LCE_LAMBDA0)}

    def step(x, y):
        loss, _ = segmentation_loss(method, model(x), y, state, samples)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=["max_prob", "hcnn", "lce"])
    args = parser.parse_args()
    device = pick_device()
    profile = get_profile("tiny")
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__}")
    for size in args.sizes:
        for method in args.methods:
            seed_everything(0)
            p = profile.with_(image_size=size, unet_width=args.width)
            model = build_unet(p, method).to(device).to(memory_format=torch.channels_last)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            step = step_fn(model, method, optimizer, p.hcnn_train_samples)
            x = torch.rand(args.batch, 3, size, size, device=device).to(
                memory_format=torch.channels_last
            )
            y = (torch.rand(args.batch, size, size, device=device) > 0.5).long()
            model.train()
            for _ in range(3):
                step(x, y)
            times = []
            for _ in range(args.steps):
                sync(device)
                t = time.perf_counter()
                step(x, y)
                sync(device)
                times.append(time.perf_counter() - t)
            per_batch = statistics.median(times)
            print(
                f"{size:4d}px  {method:9s} width {args.width}: {args.batch / per_batch:7.1f} img/s"
            )

        # One real epoch through the data path at this size, plain U-Net.
        n = 160 if size <= 96 else 48
        with tempfile.TemporaryDirectory() as tmp:
            make_synthetic_isic(tmp, n, 0, 0, size=size, seed=0)
            ds = ISIC2017(tmp, "train", size, augment=True)
            seed_everything(0)
            model = build_unet(profile.with_(unet_width=args.width), "max_prob").to(device)
            model = model.to(memory_format=torch.channels_last)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            step = step_fn(model, "max_prob", optimizer, 0)
            loader = _shuffled_batches(ds, args.batch, torch.Generator().manual_seed(0), False)
            compute = 0.0
            sync(device)
            start = time.perf_counter()
            for images, masks in loader:
                images = images.to(device).to(memory_format=torch.channels_last)
                masks = masks.to(device)
                sync(device)
                t = time.perf_counter()
                step(images, masks)
                sync(device)
                compute += time.perf_counter() - t
            total = time.perf_counter() - start
            print(
                f"{size:4d}px  epoch of {n} images: {n / total:6.1f} img/s, "
                f"model compute {compute / total:.1%} of the epoch"
            )


if __name__ == "__main__":
    main()
