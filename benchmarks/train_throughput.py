"""Training throughput of the U-Net f, and the share of epoch time spent in the model.

    python benchmarks/train_throughput.py [--sizes 64 224] [--width 8] [--steps 20]

For each image size: images per second for forward + loss + backward + Adam on random
batches (model compute only), in float32 and, on a CPU, in bfloat16 mixed precision (the
``tiny`` profile's ``cpu_precision``; forward under ``torch.autocast``) with the ratio of
the two, then one real epoch through ``fit_checkpointed``'s data
path (whole batches, batched dihedral augmentation) on synthetic data, and the share of
that epoch spent in model compute. The thread count is ``$SEGQUAL_THREADS`` (default 1,
the book's setting). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from segqual_lite.config import fix_threads, get_profile, pick_device, seed_everything
from segqual_lite.data import ISIC2017, make_synthetic_isic
from segqual_lite.training import _shuffled_batches, build_unet
from segqual_lite.uncertainty import LCE_LAMBDA0, segmentation_loss


def step_fn(model, method, optimizer, samples, autocast_dtype=None):
    state = {"lam": torch.tensor(LCE_LAMBDA0)}
    device_type = next(model.parameters()).device.type

    def step(x, y):
        with torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            output = model(x)
        loss, _ = segmentation_loss(method, output, y, state, samples)
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
    fix_threads()
    device = pick_device()
    profile = get_profile("tiny")
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__}")
    for size in args.sizes:
        for method in args.methods:
            rates = {}
            for dtype in (None, torch.bfloat16) if device.type == "cpu" else (None,):
                seed_everything(0)
                p = profile.with_(image_size=size, unet_width=args.width)
                model = build_unet(p, method).to(device).to(memory_format=torch.channels_last)
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
                step = step_fn(model, method, optimizer, p.hcnn_train_samples, dtype)
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
                rates["bfloat16" if dtype else "float32"] = args.batch / statistics.median(times)
            line = ", ".join(f"{k} {v:7.1f} img/s" for k, v in rates.items())
            if len(rates) == 2:
                line += f", bfloat16 / float32 speed {rates['bfloat16'] / rates['float32']:.2f}x"
            print(f"{size:4d}px  {method:9s} width {args.width}: {line}")

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
