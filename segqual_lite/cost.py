"""What a grid will cost before it runs (``reproduce --dry-run``): each job's seconds on a
device, from the profile and a table of measured throughputs.

A job's work is counted in floating-point operations with :mod:`torch.utils.flop_counter`
on the profile's own networks (on the meta device: nothing is computed), so a new image
size or width scales the estimate correctly:

* a U-Net of f: ``epochs_f`` x (3 x its training images + its validation images) x
  the U-Net's forward FLOPs per image (a backward pass costs about two forwards);
* a split's masks and maps: images x passes (MC-dropout's T, the ensemble's members,
  TTA's 8 views) x the U-Net's forward FLOPs;
* a g: ``epochs_g`` x (3 x training + validation images) + the test images, x g's
  forward FLOPs; RCA: test images x references, scaled by pixels; the shift test: every
  setting's test images through the U-Nets and the g's it reruns.

The seconds are the work divided by the device's measured rate for that kind of job
(:data:`THROUGHPUT`, written by ``benchmarks/device_throughput.py``), plus a fixed
overhead per job. The wall time of N workers is simulated with the scheduler's own
policy (:func:`wall_seconds`: the costliest ready job first).
"""

from __future__ import annotations

import functools
import heapq
import json
import math
from collections import defaultdict
from pathlib import Path

import torch

from .config import Profile
from .data.corruptions import CORRUPTIONS
from .models import QualityCNN, UNet
from .rows import SHIFT_ROWS, UNET_HEADS, get_method, get_row, in_channels, samples

__all__ = [
    "THROUGHPUT_FILE",
    "THROUGHPUT",
    "KINDS",
    "device_key",
    "unet_flops",
    "quality_flops",
    "job_work",
    "job_seconds",
    "wall_seconds",
    "grid_cost",
    "slurm_minutes",
]

THROUGHPUT_FILE = Path(__file__).with_name("throughput.json")
THROUGHPUT: dict[str, dict] = (
    json.loads(THROUGHPUT_FILE.read_text()) if THROUGHPUT_FILE.exists() else {}
)
# The kinds of job, as the dry run names them.
KINDS = {
    "f": "f trainings",
    "maps": "masks and maps",
    "g": "g trainings",
    "rca": "RCA",
    "shift": "shift tests",
}
SHIFT_SETTINGS = 1 + 2 * len(CORRUPTIONS)  # the clean split and two severities of each


def device_key(device: torch.device | str) -> str:
    """The entry of :data:`THROUGHPUT` for ``device``: ``"cpu"`` (one thread, as the grid's
    workers run) or ``"cuda"``."""
    kind = torch.device(device).type
    if kind not in THROUGHPUT:
        raise ValueError(f"no throughput measured for {kind!r}: choose one of {tuple(THROUGHPUT)}")
    return kind


def _flops(net: torch.nn.Module, channels: int, size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        x = torch.empty(1, channels, size, size)
    with FlopCounterMode(display=False) as counter:
        net(x)
    return float(counter.get_total_flops())


@functools.lru_cache(maxsize=64)
def unet_flops(image_size: int, width: int, depth: int, unet: str = "plain") -> float:
    """Forward FLOPs of one image through the U-Net ``unet`` (a key of
    :data:`~segqual_lite.rows.UNET_HEADS`)."""
    with torch.device("meta"):
        net = UNet(width=width, depth=depth, head=UNET_HEADS[unet])
    return _flops(net, 3, image_size)


@functools.lru_cache(maxsize=64)
def quality_flops(image_size: int, widths: tuple[int, ...], channels: int) -> float:
    """Forward FLOPs of one image through g with ``channels`` input channels."""
    with torch.device("meta"):
        net = QualityCNN(channels, widths)
    return _flops(net, channels, image_size)


def _f(profile: Profile, unet: str) -> float:
    return unet_flops(profile.image_size, profile.unet_width, profile.unet_depth, unet)


def _g(profile: Profile, row: str) -> float:
    return quality_flops(profile.image_size, profile.quality_widths, in_channels(row))


def _split_size(profile: Profile, split: str) -> int:
    return {"train": profile.n_train, "val": profile.n_val, "test": profile.n_test}[split]


def job_work(job: tuple, profile: Profile) -> tuple[str, float]:
    """``(rate key, work)`` of a job of :func:`~segqual_lite.scheduler.grid_jobs`: the
    entry of a device's ``rates`` that does it and its FLOPs (RCA: image-references at
    64 px)."""
    kind, _, *args = job
    p = profile
    if kind == "f":
        unet, _, fold = args
        images = p.n_train * (fold[1] - 1) / fold[1] if fold else p.n_train
        return f"f:{unet}", p.epochs_f * (3 * images + p.n_val) * _f(p, unet)
    if kind == "maps":
        method, _, split, _ = args
        m = get_method(method)
        passes = len(p.seeds) if m.all_seeds else 8 if method == "tta" else 1
        if m.samples_field == "mc_samples":
            passes *= samples(p, method)
        return f"maps:{method}", _split_size(p, split) * passes * _f(p, m.unet)
    if kind == "g":
        row, _ = args
        images = p.epochs_g * (3 * p.n_train + p.n_val) + p.n_test
        return "g", images * _g(p, row)
    if kind == "rca":
        return "rca", p.n_test * p.rca_references * (p.image_size / 64) ** 2
    methods = {get_row(r).method for r in SHIFT_ROWS}
    per_image = sum(_f(p, get_method(m).unet) for m in methods)
    per_image += sum(_g(p, r) for r in SHIFT_ROWS if get_row(r).inputs)
    return "shift", SHIFT_SETTINGS * p.n_test * per_image


def job_seconds(job: tuple, profile: Profile, device: torch.device | str = "cpu") -> float:
    """The estimated seconds of one job on ``device`` (one worker)."""
    entry = THROUGHPUT[device_key(device)]
    key, work = job_work(job, profile)
    return work / entry["rates"][key] + entry["overhead_s"]


def wall_seconds(
    jobs: dict[tuple, frozenset[tuple]], seconds: dict[tuple, float], workers: int
) -> float:
    """The wall time of ``jobs`` (each mapped to the jobs it needs) in ``workers``
    processes, simulated with :func:`~segqual_lite.scheduler.run_jobs`' policy: whenever
    a worker is free, the costliest job whose needs are done starts."""
    done, running, now = set(), [], 0.0
    pending = dict(jobs)
    while pending or running:
        ready = sorted((j for j, n in pending.items() if n <= done), key=lambda j: -seconds[j])
        for job in ready[: workers - len(running)]:
            heapq.heappush(running, (now + seconds[job], id(job), job))
            del pending[job]
        if not running:
            raise ValueError(f"jobs wait for jobs that do not exist: {list(pending)[:3]}")
        now, _, job = heapq.heappop(running)
        done.add(job)
    return now


def grid_cost(
    profile: Profile,
    jobs: dict[tuple, frozenset[tuple]],
    workers: int = 1,
    device: torch.device | str = "cpu",
) -> dict:
    """The dry run's figures for ``jobs``: per kind of job its count and worker-seconds,
    the total worker-seconds and the simulated wall time with ``workers`` processes."""
    seconds = {job: job_seconds(job, profile, device) for job in jobs}
    kinds: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for job, s in seconds.items():
        kinds[KINDS[job[0]]][0] += 1
        kinds[KINDS[job[0]]][1] += s
    return {
        "device": device_key(device),
        "kinds": {k: (int(n), s) for k, (n, s) in kinds.items()},
        "worker_seconds": sum(seconds.values()),
        "wall_seconds": wall_seconds(jobs, seconds, workers) if jobs else 0.0,
        "workers": workers,
        "seconds": seconds,
    }


def slurm_minutes(seconds: float, margin: float = 2.0, floor_min: int = 10) -> int:
    """The ``--time`` to ask for a job the model gives ``seconds``: ``margin`` times the
    estimate plus ``floor_min`` minutes (queues, start-up, a slower node), whole minutes."""
    return int(math.ceil(margin * seconds / 60)) + floor_min
