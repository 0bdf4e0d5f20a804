"""Does pinning the CPU kernels make machines with other vector instructions agree?

    python benchmarks/kernel_pinning.py [--steps 50]

Trains the tiny profile's U-Net for ``--steps`` Adam steps on fixed random batches (one
thread, seeded), in a fresh process per setting: as the machine is, then with ATen's
kernels pinned to AVX2 (``ATEN_CPU_CAPABILITY=avx2``), oneDNN's to AVX2
(``ONEDNN_MAX_CPU_ISA=AVX2``) and MKL's to its AVX2 code path (``MKL_CBWR=AVX2``), twice.
Prints, per setting, the CPU capability torch reports, a hash of the trained weights
and the largest weight difference from the unpinned run. Equal hashes of the pinned
setting on an AVX2 and an AVX512 machine would mean pinning makes them agree; run it on
both and compare the lines. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
SETTINGS = {"as is": {}, "pinned to AVX2": PINNED, "pinned to AVX2, again": PINNED}


def train(steps: int) -> None:
    """In the child process: train, print the capability, hash and weights as JSON."""
    import torch

    from segqual_lite.provenance import fingerprint_weights

    flat = fingerprint_weights(steps, threads=1)
    print(
        json.dumps(
            {
                "capability": torch.backends.cpu.get_cpu_capability(),
                "hash": hashlib.sha256(flat.numpy().tobytes()).hexdigest()[:16],
                "weights": flat.tolist(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        train(args.steps)
        return
    import numpy as np

    first = None
    for name, env in SETTINGS.items():
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--steps", str(args.steps)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        run = json.loads(out.strip().splitlines()[-1])
        weights = np.array(run["weights"])
        first = weights if first is None else first
        gap = float(np.abs(weights - first).max())
        print(
            f"{name:24s} capability {run['capability']:8s} weights {run['hash']}"
            f"  max diff {gap:.2e}"
        )


if __name__ == "__main__":
    main()
