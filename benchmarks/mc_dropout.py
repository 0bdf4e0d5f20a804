"""MC-dropout through ``predict`` against T naive full passes, on the same memory layout.

    SEGQUAL_THREADS=1 python benchmarks/mc_dropout.py [--size 64] [--width 8] [--batch 64]
        [--samples T] [--repeats 7]

``predict`` runs the prefix before the first dropout once and the rest T times with
BatchNorm folded into the convolutions and the prefix skips' share of the decoder
convolutions computed once (``UNet.sampler``). Contenders, interleaved: ``predict``;
the previous path (prefix once, then the rest through the modules); T naive full passes
in channels_last (the layout of trained models: the fair reference) and in PyTorch's
default layout. Prints the median time of each, the ratios to the naive loop on the
same layout (goal: <= 0.6 on one CPU thread) and to the previous path, and the largest
difference between the outputs for the same seed (the same dropout masks are drawn).
The thread count is ``$SEGQUAL_THREADS`` (default 1, the book's setting).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from segqual_lite import rows
from segqual_lite.config import fix_threads, get_profile, pick_device, seed_everything
from segqual_lite.training import build_unet
from segqual_lite.uncertainty import entropy, eval_with_dropout, predict


def naive_mc_dropout(model, x, samples):
    """T full forward passes with only the dropout modules in train mode."""
    with torch.inference_mode(), eval_with_dropout(model, dropout_on=True):
        mean = torch.stack([model(x).softmax(1) for _ in range(samples)]).mean(0)
    return mean, entropy(mean)


def prefix_once_mc_dropout(model, x, samples):
    """The previous ``predict`` path: the prefix once, the rest through the modules."""
    with torch.inference_mode(), eval_with_dropout(model, dropout_on=True):
        skips, h = model.prefix(x)
        total = None
        for _ in range(samples):
            p = model.forward_from_prefix(skips, h).softmax(1)
            total = p if total is None else total.add_(p)
        mean = total / samples
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
    parser.add_argument("--batch", type=int, default=64)  # predict_images, as segment uses it
    parser.add_argument("--samples", type=int, default=None, help="default: the profile's T")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    fix_threads()
    device = pick_device()
    seed_everything(0)
    profile = get_profile("tiny").with_(image_size=args.size, unet_width=args.width)
    default = build_unet(profile, "mc_dropout").to(device).eval()  # PyTorch's default layout
    trained = copy.deepcopy(default).to(memory_format=torch.channels_last)  # as fit_* leaves it
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    T = args.samples or rows.samples(profile, "mc_dropout")
    print(
        f"device={device} threads={torch.get_num_threads()} T={T} batch={args.batch} "
        f"{args.size}px width {args.width}"
    )
    x_cl = x.contiguous(memory_format=torch.channels_last)
    times, out = timed_together(
        {
            "predict": lambda: predict(trained, x, "mc_dropout", T),
            "prefix_once": lambda: prefix_once_mc_dropout(trained, x_cl, T),
            "naive_cl": lambda: naive_mc_dropout(trained, x_cl, T),
            "naive_default": lambda: naive_mc_dropout(default, x, T),
        },
        device,
        args.repeats + 1,
    )
    t_new, t_old = times["predict"], times["prefix_once"]
    t_cl, t_default = times["naive_cl"], times["naive_default"]
    print(f"predict (prefix once, folded rest), channels_last: {t_new * 1000:8.1f} ms")
    print(f"previous path (prefix once, modules), channels_last: {t_old * 1000:8.1f} ms")
    print(f"naive {T} passes, channels_last:                     {t_cl * 1000:8.1f} ms")
    print(f"naive {T} passes, default layout:                    {t_default * 1000:8.1f} ms")
    print(f"ratio predict / naive, same layout (channels_last): {t_new / t_cl:.3f}")
    print(f"ratio previous path / naive, same layout:           {t_old / t_cl:.3f}")
    print(f"ratio predict / previous path:                      {t_new / t_old:.3f}")
    print(f"ratio predict / naive default layout:               {t_new / t_default:.3f}")
    fast = out["predict"]
    for name in ("naive_cl", "prefix_once", "naive_default"):
        probs, h = out[name]
        diff = max(
            (fast.probs - probs).abs().max().item(), (fast.uncertainty - h).abs().max().item()
        )
        print(f"same seed, predict vs {name}: max |difference| {diff:.2e}")


if __name__ == "__main__":
    main()
