"""HCNN's test-time sampler (eq. 7) against its previous form, on the logits a trained
U-Net returns (channels_last).

    SEGQUAL_THREADS=1 python benchmarks/hcnn_sampling.py [--size 64] [--batch 64]
        [--samples 100] [--repeats 9]

Both draw T logit samples vectorised, 25 at a time, and take a sigmoid of the noisy logit
difference. The previous form broadcast the strided slice of channels_last logits and
allocated the scaled noise and the noisy logits; ``hcnn_mean_softmax`` makes its inputs
dense and works in place on the draws. Prints the median time of each (interleaved),
their ratio and whether the outputs are equal for the same seed (they should be, bit for
bit). The thread count is ``$SEGQUAL_THREADS`` (default 1).
"""

from __future__ import annotations

import argparse
import math

import torch
from mc_dropout import timed_together  # a sibling script: benchmarks/ is on sys.path

from segqual_lite.config import fix_threads, seed_everything
from segqual_lite.uncertainty import hcnn_mean_softmax


def previous_hcnn_mean_softmax(logits, sigma, samples, chunk=25):
    """The sampler before it worked in place (two classes)."""
    values = logits[:, 1:2] - logits[:, 0:1]
    scale = math.sqrt(2) * sigma
    total = torch.zeros_like(values)
    for start in range(0, samples, chunk):
        eps = torch.randn((min(chunk, samples - start), *values.shape), dtype=values.dtype)
        total += torch.sigmoid(values + scale * eps).sum(0)
    p1 = total / samples
    return torch.cat([1 - p1, p1], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    fix_threads()
    device = torch.device("cpu")
    seed_everything(0)
    shape = (args.batch, 2, args.size, args.size)
    logits = (torch.randn(shape) * 3).contiguous(memory_format=torch.channels_last)
    sigma = torch.rand(args.batch, 1, args.size, args.size).contiguous(
        memory_format=torch.channels_last
    )
    T = args.samples
    print(f"threads={torch.get_num_threads()} T={T} batch={args.batch} {args.size}px")
    with torch.inference_mode():
        times, out = timed_together(
            {
                "hcnn_mean_softmax": lambda: hcnn_mean_softmax(logits, sigma, T),
                "previous": lambda: previous_hcnn_mean_softmax(logits, sigma, T),
            },
            device,
            args.repeats + 1,
        )
    new, old = times["hcnn_mean_softmax"], times["previous"]
    print(f"hcnn_mean_softmax: {new * 1000:8.1f} ms")
    print(f"previous form:     {old * 1000:8.1f} ms")
    print(f"ratio new / previous: {new / old:.3f}")
    print(f"same seed, equal outputs: {torch.equal(out['hcnn_mean_softmax'], out['previous'])}")


if __name__ == "__main__":
    main()
