"""Profiles, device choice and seeding (taught in every chapter's set-up cell).

One named profile selects everything that differs between a CI run and the paper: the
data, the image size, the network widths, the split sizes, the epochs, the seeds and the
sample counts. Chapters never hard-code any of these.
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .seeds import check_seeds, parse_seeds, seeds_text

__all__ = [
    "Profile",
    "PROFILES",
    "get_profile",
    "data_name",
    "parse_overrides",
    "overridden_name",
    "home",
    "pick_device",
    "progress_enabled",
    "results_dir",
    "seed_everything",
    "start_chapter",
    "torch_threads",
    "fix_threads",
]


@dataclass(frozen=True)
class Profile:
    """Every knob that changes cost, in one place.

    ``data`` is ``"synthetic"`` (lesions drawn by :func:`segqual_lite.data.make_synthetic_isic`
    with ``n_train/n_val/n_test`` images), ``"isic2017"`` (read from disk; the
    ``n_*`` fields are then the image/mask pairs its folder holds: the official
    2000/150/600 on ``colab`` and ``paper``), or the path of a folder of your own
    (``book/own_data.md``; its split counts are the folder's).
    ``crossfit_folds`` is the number of folds K of chapter 11's cross-fitting (K more
    plain U-Nets per seed, each trained on a fraction (K - 1) / K of the training images).
    ``cpu_precision`` is the precision of f's training on a CPU: ``"float32"`` (every
    profile), or ``"bfloat16"`` for mixed precision (the forward pass under
    ``torch.autocast`` in bfloat16; the loss, the weights and Adam in float32): faster
    on CPUs with bfloat16 instructions (``benchmarks/train_throughput.py`` prints the
    ratio), but other weights for the same seed (what that does to the comparisons:
    ``benchmarks/regime_sweep.py``, variant ``bf16``). g always trains in float32 on a
    CPU (in a 5-seed sweep with g in bfloat16 too, 2 of its 30 runs ranked failures far
    worse than any float32 run), and prediction is float32. On a CUDA device f and g
    train in float16 mixed precision.
    """

    name: str
    data: str
    image_size: int
    unet_width: int
    unet_depth: int
    quality_widths: tuple[int, ...]
    n_train: int
    n_val: int
    n_test: int
    epochs_f: int
    epochs_g: int
    seeds: tuple[int, ...]
    batch_size: int
    lr: float
    mc_samples: int
    hcnn_samples: int
    hcnn_train_samples: int
    rca_references: int
    crossfit_folds: int
    cpu_precision: str = "float32"

    def __post_init__(self):
        check_seeds(self.seeds)
        if self.cpu_precision not in CPU_PRECISIONS:
            raise ValueError(
                f"cpu_precision={self.cpu_precision!r}: choose one of {CPU_PRECISIONS}"
            )

    def with_(self, **changes) -> Profile:
        """A copy with some fields changed (exercises, quick experiments, a profile shrunk
        for a rehearsal). An unknown field or a value of the wrong type is refused with
        the list of fields and their types."""
        fields = {f.name: f.type for f in dataclasses.fields(self)}
        problems = [f"unknown field {name!r}" for name in changes if name not in fields]
        for name, value in changes.items():
            expected = _FIELD_TYPES.get(fields.get(name))
            if expected and not _is_a(value, expected):
                problems.append(f"{name}={value!r} is not {fields[name]}")
        if problems:
            raise ValueError(f"{'; '.join(problems)}. {_field_listing()}")
        return dataclasses.replace(self, **changes)

    def overridden(self, overrides: dict) -> Profile:
        """:meth:`with_` ``overrides`` under a name of their own
        (:func:`overridden_name`), so that results never overwrite this profile's; lists
        (as papermill and JSON give them) become tuples."""
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        if isinstance(overrides.get("seeds"), str | int):  # "0-15", "0,2,5-7", 3
            overrides["seeds"] = parse_seeds(overrides["seeds"])
        return self.with_(**{"name": overridden_name(self, overrides), **overrides})

    def key(self) -> dict:
        """The fields that identify the artifacts this profile produces."""
        return dataclasses.asdict(self)


CPU_PRECISIONS = ("float32", "bfloat16")  # Profile.cpu_precision
# The types of Profile's fields (annotations are strings, from __future__ annotations).
_FIELD_TYPES = {"str": str, "int": int, "float": (int, float), "tuple[int, ...]": tuple}


def _is_a(value, expected) -> bool:
    if expected is tuple:
        return isinstance(value, tuple) and all(_is_a(v, int) for v in value)
    if expected is int or expected == (int, float):
        return isinstance(value, expected) and not isinstance(value, bool)
    return isinstance(value, expected)


def _field_listing() -> str:
    fields = ", ".join(f"{f.name}: {f.type}" for f in dataclasses.fields(Profile))
    return f"The fields of a profile: {fields}"


def parse_overrides(settings: list[str]) -> dict:
    """``["epochs_f=1", "seeds=0,1", "lr=3e-4"]`` as profile field values, each read by
    its field's type (a tuple as comma-separated integers; the seeds also as ranges,
    :func:`~segqual_lite.seeds.parse_seeds`); refused like :meth:`Profile.with_` when a
    field is unknown or a value does not parse."""
    fields = {f.name: f.type for f in dataclasses.fields(Profile)}
    out = {}
    for setting in settings:
        name, sep, text = setting.partition("=")
        kind = fields.get(name.strip())
        if not sep or kind is None:
            raise ValueError(
                f"{setting!r} is not FIELD=VALUE with a field of a profile. {_field_listing()}"
            )
        if name.strip() == "seeds":
            out["seeds"] = parse_seeds(text)
            continue
        try:
            if kind == "tuple[int, ...]":
                value = tuple(int(v) for v in text.split(",") if v.strip())
            else:
                value = {"int": int, "float": float, "str": str}[kind](text)
        except ValueError:
            raise ValueError(f"{setting!r}: {text!r} is not {kind}. {_field_listing()}") from None
        out[name.strip()] = value
    return out


# Paper values: DeVries & Taylor (2018), section 4. The U-Net's width is not given in the
# paper; 32 filters in the first block is the common U-Net choice at 224 px.
PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        data="synthetic",
        image_size=64,
        unet_width=8,
        unet_depth=4,
        quality_widths=(8, 16, 32, 64),
        n_train=300,
        n_val=60,
        n_test=300,
        epochs_f=14,
        epochs_g=10,
        seeds=(0, 1, 2),
        batch_size=16,
        lr=1e-3,
        mc_samples=20,
        hcnn_samples=100,
        hcnn_train_samples=10,
        rca_references=20,
        crossfit_folds=2,
    ),
    "colab": Profile(
        name="colab",
        data="isic2017",
        image_size=128,
        unet_width=16,
        unet_depth=4,
        quality_widths=(32, 64, 128, 256),
        n_train=2000,
        n_val=150,
        n_test=600,
        epochs_f=40,
        epochs_g=20,
        seeds=(0, 1, 2),
        batch_size=16,
        lr=1e-3,
        mc_samples=20,
        hcnn_samples=100,
        hcnn_train_samples=25,
        rca_references=20,
        crossfit_folds=3,
    ),
    "paper": Profile(
        name="paper",
        data="isic2017",
        image_size=224,
        unet_width=32,
        unet_depth=4,
        quality_widths=(64, 128, 256, 512),
        n_train=2000,
        n_val=150,
        n_test=600,
        epochs_f=120,
        epochs_g=30,
        seeds=(0, 1, 2, 3, 4),
        batch_size=16,
        lr=1e-3,
        mc_samples=20,
        hcnn_samples=100,
        hcnn_train_samples=100,
        rca_references=20,
        crossfit_folds=5,
    ),
}
# A second synthetic regime (chapter 10, "When does the map help?"): f fits its training
# images better than new ones, as the paper's explanation of its result supposes. Chosen
# by f's train-test gap alone (``benchmarks/regime_sweep.py --f-only``: fewer training
# images, twice the width, as many steps of f as tiny), before any comparison was run.
PROFILES["tiny-overfit"] = dataclasses.replace(
    PROFILES["tiny"],
    name="tiny-overfit",
    unet_width=16,
    n_train=60,
    epochs_f=70,
    epochs_g=50,
)


# Real dermoscopy (chapter 10): the PH2 database (segqual_lite.data.ph2), 100 / 20 / 80
# lesions, at tiny's size and networks. epochs_f chosen from f's fit on PH2 and its CPU
# cost (book/analysis_plan.md), before any comparison was run; g takes as many steps per
# seed as on tiny.
_PH2 = dict(name="ph2", data="ph2", n_train=100, n_val=20, n_test=80, epochs_f=40, epochs_g=30)
PROFILES["ph2"] = dataclasses.replace(PROFILES["tiny"], **_PH2)


def data_name(profile: Profile) -> str:
    """Which data a profile's numbers come from, as a results page says it."""
    return _DATA_NAMES.get(profile.data, "your own folder")


_DATA_NAMES = {"synthetic": "synthetic lesions", "ph2": "PH2, real dermoscopy"}
_DATA_NAMES["isic2017"] = "ISIC 2017, real dermoscopy"


def get_profile(name: str) -> Profile:
    """Return the profile called ``name`` (``"tiny"``, ``"colab"`` or ``"paper"``)."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(repr(k) for k in PROFILES)
        raise ValueError(f"unknown profile {name!r}: choose one of {known}") from None


def home() -> Path:
    """Where data, models and predictions are stored: ``$SEGQUAL_HOME``, else
    ``./segqual_artifacts`` (``make book`` uses ``_build/artifacts``)."""
    return Path(os.environ.get("SEGQUAL_HOME", "segqual_artifacts")).resolve()


def results_dir(profile: Profile) -> Path:
    """Where tables, figures and per-image predictions go: ``$SEGQUAL_RESULTS`` if set,
    else ``_build/results/<profile>`` under the current folder (where ``make book`` leaves
    the tiny one)."""
    base = os.environ.get("SEGQUAL_RESULTS")
    return Path(base) if base else Path("_build") / "results" / profile.name


def progress_enabled() -> bool:
    """Progress bars unless ``SEGQUAL_PROGRESS=0`` (the book build sets it: bars would
    only litter the rendered pages)."""
    return os.environ.get("SEGQUAL_PROGRESS", "1") != "0"


def pick_device(prefer: str | None = None) -> torch.device:
    """The fastest available device: CUDA, then Apple MPS, then the CPU.

    ``prefer`` (or the environment variable ``SEGQUAL_DEVICE``) forces one, e.g. ``"cpu"``.
    """
    prefer = prefer or os.environ.get("SEGQUAL_DEVICE")
    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} requested but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def torch_threads() -> int:
    """The CPU threads torch uses for a run: ``$SEGQUAL_THREADS``, else 1.

    Fixed, because the thread count changes the order of floating-point sums: one and two
    threads train different models from the same seed. One, so that a run's numbers do
    not depend on the machine's cores; on the small CPU networks of the ``tiny`` profile
    two single-threaded processes also do more work than one with two threads, which is
    how the grid uses more cores (``reproduce --workers``). The count is recorded with
    the results (``run.json``).
    """
    value = os.environ.get("SEGQUAL_THREADS", "1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"SEGQUAL_THREADS must be a positive integer, got {value!r}")
    return int(value)


def fix_threads() -> int:
    """Set torch's CPU thread count to :func:`torch_threads` and return it."""
    threads = torch_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch generator seeded alike.

    The same seed gives the same numbers on the CPU. On CUDA, cuDNN's autotuner is left
    on for speed, so GPU runs agree only up to floating-point reordering.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (legacy global RNG, used by older code)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def describe(profile: Profile, device: torch.device) -> str:
    """Two lines for a chapter's set-up cell, each within the page's column: the
    profile and the data its numbers come from (:func:`data_name`), then the device,
    torch version and threads."""
    threads = torch.get_num_threads()
    data = data_name(profile)
    return (
        f"profile={profile.name} ({data}, {profile.image_size} px, "
        f"U-Net width {profile.unet_width})\n"
        f"device={device} | torch {torch.__version__} | "
        f"{threads} CPU thread{'s' if threads != 1 else ''}"
    )


class ChapterSetup(NamedTuple):
    profile: Profile
    device: torch.device
    seed: int


def overridden_name(profile: Profile, overrides: dict) -> str:
    """The name of ``profile`` with ``overrides``: ``tiny+epochs_f=1,seeds=0-1``."""
    if "name" in overrides:
        return overrides["name"]

    def text(k, v):
        if k == "seeds":
            return seeds_text(v)
        if k == "data" and v not in ("synthetic", "isic2017"):
            return Path(v).name  # a folder of your own, by its name (no path in names)
        return "-".join(map(str, v)) if isinstance(v, tuple) else v

    parts = [f"{k}={text(k, v)}" for k, v in sorted(overrides.items())]
    return f"{profile.name}+{','.join(parts)}"


def start_chapter(profile_name: str, overrides: dict | None = None) -> ChapterSetup:
    """Every chapter's set-up: the profile, the device, the CPU thread count
    (:func:`fix_threads`) and the first seed of the profile (seeded), reported in one
    line. ``overrides`` (the parameters cell's, for instructors) changes some fields of
    the profile (:meth:`Profile.with_`), under a name of its own so that its results do
    not overwrite the named profile's."""
    profile = get_profile(profile_name)
    if overrides:
        profile = profile.overridden(overrides)
    fix_threads()
    device = pick_device()
    seed = profile.seeds[0]
    seed_everything(seed)
    print(describe(profile, device) + f" | seed={seed}")
    return ChapterSetup(profile, device, seed)
