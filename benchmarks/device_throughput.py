"""Measure the throughput table of the cost model (segqual_lite/throughput.json).

    python benchmarks/device_throughput.py [--epochs 2] [--write]

Runs every kind of job of the ``tiny`` grid (Table 1's rows, the controls, chapter 11's
and 12's) for one seed, with ``--epochs`` epochs of f and g, one job at a time in this
process on one CPU thread (as the grid's workers run), timing each; prints each kind's
rate (work per second, the work as :func:`segqual_lite.cost.job_work` counts it) and,
with ``--write``, stores them as the table's ``cpu`` entry. The per-job overhead is the
mean time a job takes when its artifact is already made (reading its inputs).

On a CUDA machine it measures the ``cuda`` entry the same way. Without one, the ``cuda``
entry is written from the figures measured on one H200 GPU (``benchmarks/gpu_check.py``,
224 px, width 32, batch 16, mixed precision: f trains at 1490 / 1130 / 1320 images per
second for the plain / HCNN / LCE U-Net; one seed of the tiny grid with chapter 11's
rows took 74 s there): f's rates from those, the other kinds assumed at the plain
U-Net's rate, RCA (scikit-learn, on the CPU) at the CPU's.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict

from segqual_lite import cost
from segqual_lite.config import fix_threads, get_profile, pick_device
from segqual_lite.data import prepare_data
from segqual_lite.rows import CONTROL_ROWS, EXTENDED_ROWS, TABLE_ROWS
from segqual_lite.scheduler import _run_job, grid_jobs

# Measured on one H200 GPU at 224 px, width 32 (book/reproduce.md, "Expected run times").
H200_TRAIN_IMG_S = {"plain": 1490.0, "hcnn": 1130.0, "lce": 1320.0}
H200_OVERHEAD_S = 2.0  # a CUDA job's start, loads and saves (74 s for ~40 small jobs)


def _order(jobs: dict) -> list:
    done, order = set(), []
    while len(order) < len(jobs):
        for job, needs in jobs.items():
            if job not in done and needs <= done:
                order.append(job)
                done.add(job)
    return order


def measure(epochs: int) -> dict:
    fix_threads()
    device = pick_device()
    profile = get_profile("tiny").with_(seeds=(0,), epochs_f=epochs, epochs_g=epochs)
    with tempfile.TemporaryDirectory() as home:
        os.environ["SEGQUAL_HOME"] = home
        root = prepare_data(profile)
        jobs = grid_jobs(profile, (*TABLE_ROWS, *CONTROL_ROWS, *EXTENDED_ROWS), (0,), root)
        work, seconds, again = defaultdict(float), defaultdict(float), []
        for job in _order(jobs):
            start = time.perf_counter()
            _run_job(job, profile, "train")
            took = time.perf_counter() - start
            key, flops = cost.job_work(job, profile)
            work[key] += flops
            seconds[key] += took
            start = time.perf_counter()
            _run_job(job, profile, "train")  # done already: only its inputs are read
            again.append(time.perf_counter() - start)
    overhead = sum(again) / len(again)
    rates = {k: work[k] / max(seconds[k] - overhead, 1e-3) for k in sorted(work)}
    for key in sorted(rates):
        print(f"{key:22s} {seconds[key]:7.1f} s   {rates[key] / 1e9:8.2f} G/s")
    print(f"overhead per job {overhead:.2f} s; device {device}")
    return {
        "device": str(device),
        "source": f"benchmarks/device_throughput.py --epochs {epochs}, one thread",
        "overhead_s": round(overhead, 3),
        "rates": {k: float(f"{v:.4g}") for k, v in rates.items()},
    }


def h200_entry(cpu: dict) -> dict:
    p = get_profile("paper")
    rates = {
        f"f:{unet}": 3 * img_s * cost.unet_flops(p.image_size, p.unet_width, p.unet_depth, unet)
        for unet, img_s in H200_TRAIN_IMG_S.items()
    }
    for key in cpu["rates"]:
        rates.setdefault(key, rates["f:plain"])
    rates["rca"] = cpu["rates"]["rca"]
    return {
        "device": "NVIDIA H200",
        "source": "f measured (benchmarks/gpu_check.py); maps, g and shift assumed at the "
        "plain U-Net's training rate; RCA on the CPU",
        "overhead_s": H200_OVERHEAD_S,
        "rates": {k: float(f"{v:.4g}") for k, v in rates.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="store the table in the package")
    args = parser.parse_args()
    entry = measure(args.epochs)
    table = json.loads(cost.THROUGHPUT_FILE.read_text()) if cost.THROUGHPUT_FILE.exists() else {}
    kind = "cuda" if entry["device"].startswith("cuda") else "cpu"
    table[kind] = entry
    measured_here = table.get("cuda", {}).get("source", "").startswith("benchmarks/device")
    if kind == "cpu" and not measured_here:
        table["cuda"] = h200_entry(entry)
    if args.write:
        cost.THROUGHPUT_FILE.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {cost.THROUGHPUT_FILE}")


if __name__ == "__main__":
    main()
