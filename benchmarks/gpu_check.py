"""GPU check at paper scale: training steps with mixed precision and MC-dropout.

    python benchmarks/gpu_check.py [--steps 50] [--size 224] [--batch 16]

For each method's U-Net at the paper profile's width: ``--steps`` training steps (Adam,
automatic mixed precision, channels_last) on random 224 px batches, reporting img/s and
peak GPU memory; then MC-dropout with T = 20 through ``predict`` on one batch. Meant for
a CUDA machine; ``--device cpu --size 64 --steps 2`` smoke-tests it anywhere.
"""

from __future__ import annotations

import argparse
import time

import torch

from segqual_lite.config import get_profile, pick_device, seed_everything
from segqual_lite.training import build_unet
from segqual_lite.uncertainty import LCE_LAMBDA0, predict, segmentation_loss


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_step(model, optimizer, scaler, x, y, method, use_amp, samples, state):
    """One Adam step under autocast (``state`` carries LCE's lambda)."""
    with torch.autocast(x.device.type, dtype=torch.float16, enabled=use_amp):
        out = model(x)
    loss, _ = segmentation_loss(method, out, y, state, samples)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = pick_device(args.device)
    paper = get_profile("paper")
    use_amp = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if use_amp else "cpu"
    print(f"device={device} ({name}) torch={torch.__version__} width={paper.unet_width}")
    for method in ("max_prob", "hcnn", "lce"):
        seed_everything(0)
        model = build_unet(paper, method).to(device).to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=paper.lr)
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        x = torch.rand(args.batch, 3, args.size, args.size, device=device)
        x = x.contiguous(memory_format=torch.channels_last)
        y = (torch.rand(args.batch, args.size, args.size, device=device) > 0.5).long()
        carried = {"lam": torch.tensor(LCE_LAMBDA0, device=device)}
        if use_amp:
            torch.cuda.reset_peak_memory_stats(device)

        step_args = (model, optimizer, scaler, x, y, method, use_amp, paper.hcnn_train_samples)
        for _ in range(3):  # warm-up (cuDNN autotuning, allocator)
            train_step(*step_args, carried)
        sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            train_step(*step_args, carried)
        sync(device)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if use_amp else float("nan")
        print(
            f"train {method:8s}: {args.steps * args.batch / seconds:8.1f} img/s, "
            f"peak memory {peak:.2f} GiB ({args.steps} steps, batch {args.batch}, "
            f"{args.size}px, hcnn samples {paper.hcnn_train_samples})"
        )
    model = build_unet(paper, "mc_dropout").to(device).to(memory_format=torch.channels_last)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    predict(model, x, "mc_dropout", paper.mc_samples)  # warm-up
    sync(device)
    start = time.perf_counter()
    predict(model, x, "mc_dropout", paper.mc_samples)
    sync(device)
    print(
        f"MC-dropout T={paper.mc_samples} on a batch of {args.batch}: "
        f"{time.perf_counter() - start:.3f} s"
    )


if __name__ == "__main__":
    main()
