"""What a run's numbers depend on beyond the code, recorded beside them (``run.json``) and
compared by :func:`segqual_lite.reference.check_build`: the environment (torch, the CPU's
vector instructions, threads, device, GPU, and a fingerprint of the floats this machine's
kernels compute) and, for real data, what identifies the data read."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch

from .config import Profile, pick_device, torch_threads

__all__ = ["environment", "float_fingerprint", "fingerprint_weights", "data_record"]


def environment(device: str | None = None) -> dict:
    """What decides floating-point results beyond the code: torch's version, the CPU's
    vector instructions, the CPU threads per process, the device (default: the one
    :func:`~segqual_lite.config.pick_device` picks, as the runs do) and the
    :func:`float_fingerprint` of this machine's kernels (two CPUs that report the same
    vector instructions may still compute other floats)."""
    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch_threads(),
        "device": device or pick_device().type,
        "float_fingerprint": float_fingerprint(),
        "gpu": torch.cuda.get_device_name() if (device or pick_device().type) == "cuda" else None,
    }


@functools.lru_cache(maxsize=4)
def float_fingerprint(steps: int = 10, threads: int | None = None) -> str:
    """A hash of :func:`fingerprint_weights`: equal on two machines whose kernels give the
    same floats for the book's convolutions, different otherwise. About a second, once
    per process."""
    flat = fingerprint_weights(steps, threads)
    return hashlib.sha256(flat.numpy().tobytes()).hexdigest()[:16]


def fingerprint_weights(steps: int, threads: int | None = None) -> torch.Tensor:
    """The weights (flat) of the tiny profile's U-Net after ``steps`` seeded Adam steps on
    fixed random batches, on the CPU with the runs' ``threads``
    (:func:`~segqual_lite.config.torch_threads`). Changes neither the global random
    state nor the thread count."""
    from .config import get_profile
    from .models import UNet

    profile = get_profile("tiny")
    size = profile.image_size
    before = torch.get_num_threads()
    torch.set_num_threads(threads or torch_threads())
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = UNet(width=profile.unet_width, depth=profile.unet_depth)
            opt = torch.optim.Adam(net.parameters(), lr=profile.lr)
            g = torch.Generator().manual_seed(0)
            for _ in range(steps):
                x = torch.rand(profile.batch_size, 3, size, size, generator=g)
                y = (torch.rand(profile.batch_size, size, size, generator=g) > 0.5).long()
                loss = torch.nn.functional.cross_entropy(net(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(before)
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def data_record(profile: Profile, root: str | Path) -> dict | None:
    """What identifies the real data a reference read, for its ``run.json``: on PH2 the
    database's name, citation, lesions per split and content fingerprint
    (:func:`~segqual_lite.data.ph2.ph2_fingerprint`); None for synthetic data (its
    settings are in the profile and the code versions)."""
    if profile.data != "ph2":
        return None
    from .data.layout import SPLITS
    from .data.ph2 import PH2_CITATION, ph2_fingerprint

    return {
        "name": "PH2",
        "citation": PH2_CITATION,
        "lesions": {s: getattr(profile, f"n_{s}") for s in SPLITS},
        "fingerprint": ph2_fingerprint(root),
    }
