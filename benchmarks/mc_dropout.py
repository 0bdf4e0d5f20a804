"""MC-dropout through ``predict`` (prefix computed once) against T naive full passes.

    python benchmarks/mc_dropout.py [--size 64] [--width 8] [--samples 20] [--repeats 5]

Prints the median time of each, their ratio (goal: predict <= 0.75 of naive on 2 CPU
cores) and the largest difference between their outputs for the same seed.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from segqual_lite.config import get_profile, pick_device, seed_everything
from segqual_lite.training import build_unet
from segqual_lite.uncertainty import entropy, eval_with_dropout, predict


def naive_mc_dropout(model, x, samples):
    """T full forward passes with only the dropout modules in train mode."""
    with torch.inference_mode(), eval_with_dropout(model, dropout_on=True):
        mean = torch.stack([model(x).softmax(1) for _ in range(samples)]).mean(0)
    return mean, entropy(mean)


def timed_together(fns: dict, device, repeats):
    """Median seconds of each function, the repeats interleaved so that drifts of the
    machine (frequency, other load) hit every contender alike; outputs of the last run."""
    times = {name: [] for name in fns}
    outputs = {}
    for r in range(repeats):
        names = list(fns)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seed_everything(0)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            outputs[name] = fns[name]()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = pick_device()
    seed_everything(0)
    profile = get_profile("tiny").with_(image_size=args.size, unet_width=args.width)
    default = build_unet(profile, "mc_dropout").to(device).eval()  # PyTorch's default layout
    trained = copy.deepcopy(default).to(memory_format=torch.channels_last)  # as fit_* leaves it
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    T = args.samples
    print(
        f"device={device} threads={torch.get_num_threads()} T={T} batch={args.batch} "
        f"{args.size}px width {args.width}"
    )
    x_cl = x.contiguous(memory_format=torch.channels_last)
    times, out = timed_together(
        {
            "predict": lambda: predict(trained, x, "mc_dropout", T),
            "naive_cl": lambda: naive_mc_dropout(trained, x_cl, T),
            "naive_default": lambda: naive_mc_dropout(default, x, T),
        },
        device,
        args.repeats + 1,
    )
    t_fast, t_cl, t_default = times["predict"], times["naive_cl"], times["naive_default"]
    fast, (cl_probs, cl_h), (default_probs, _) = (
        out["predict"],
        out["naive_cl"],
        out["naive_default"],
    )
    print(f"predict (prefix once, channels_last): {t_fast * 1000:8.1f} ms")
    print(
        f"naive {T} passes, channels_last:       {t_cl * 1000:8.1f} ms  ratio {t_fast / t_cl:.2f}"
    )
    print(
        f"naive {T} passes, default layout:      {t_default * 1000:8.1f} ms  "
        f"ratio {t_fast / t_default:.2f}"
    )
    diff = max(
        (fast.probs - cl_probs).abs().max().item(), (fast.uncertainty - cl_h).abs().max().item()
    )
    print(f"same seed, predict vs naive channels_last: max |difference| {diff:.2e}")
    diff = (fast.probs - default_probs).abs().max().item()
    print(f"same seed, predict vs naive default layout: max |difference| {diff:.2e}")


if __name__ == "__main__":
    main()
