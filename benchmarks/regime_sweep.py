"""Does an uncertainty map help g? A sweep over variants of the tiny profile.

For each variant (changes to the profile and to the synthetic data's hard cases) and
seed, trains f and g for the rows No Uncertainty, Max Probability, MC-dropout and LCE and
the controls of the last two, then prints, per variant: f's mean Jaccard and share of
failures on its training and test images, and each uncertainty row against its control
(improvement, positive = row better, with the 95% t interval of
:mod:`segqual_lite.stats`) on RMSE (a fraction), AUROC and detection error (points).

    python benchmarks/regime_sweep.py --seeds 0 1 2 3 4 --workers 8 [--variants NAME ...]
    python benchmarks/regime_sweep.py --f-only --variants tiny fit100 ...

``--f-only`` trains the plain U-Net f alone and prints, per variant, its mean Jaccard and
failure share on its training and test images and the train-test gap: a property of f,
by which a regime is chosen without looking at any comparison of rows (the analysis
plan's rule for the second regime of the reference).

Each (variant, seed) runs in its own process with one CPU thread (or on the GPU);
results are cached under ``$SEGQUAL_HOME`` like the book's.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

VARIANTS = {
    "tiny": ({}, {}),  # the book's regime: default hard cases, ambiguous rim included
    "bf16": (dict(cpu_precision="bfloat16"), {}),  # f trained in bfloat16 mixed precision
    "norim": ({}, {"ambiguous_rim": 0.0}),  # the counterfactual: no ambiguous extents
    "tiny-12-8": (dict(epochs_f=12, epochs_g=8), {}),  # the regime before f 14, g 10
    "rim30": ({}, {"ambiguous_rim": 0.3}),
    "rim50": ({}, {"ambiguous_rim": 0.5}),
    "fit100": (dict(n_train=100, epochs_f=40, epochs_g=30), {"ambiguous_rim": 0.0}),
    "fit100-rim30": (dict(n_train=100, epochs_f=40, epochs_g=30), {"ambiguous_rim": 0.3}),
    "wide60-rim30": (
        dict(n_train=60, epochs_f=120, epochs_g=50, unet_width=16),
        {"ambiguous_rim": 0.3},
    ),
    "wide150-rim30": (
        dict(n_train=150, epochs_f=60, epochs_g=20, unet_width=16),
        {"ambiguous_rim": 0.3},
    ),
    "rim30-nolazy": ({}, {"ambiguous_rim": 0.3, "lazy_mask": 0.0}),
    # cheaper books: half the images (f and g see each image as often), or fewer epochs
    "n150": (dict(n_train=150, n_test=150), {}),
    "e7g5-t150": (dict(epochs_f=7, epochs_g=5, n_test=150), {}),
    "b8-e7g5": (dict(batch_size=8, epochs_f=7, epochs_g=5), {}),  # as many steps as tiny
    # f fitting its training images better than new ones, at about tiny's cost: fewer
    # training images seen for more epochs (about as many steps of f and of g as tiny)
    "n150-e28": (dict(n_train=150, epochs_f=28, epochs_g=20), {}),
    "n100-e42": (dict(n_train=100, epochs_f=42, epochs_g=30), {}),
    "n60-e70": (dict(n_train=60, epochs_f=70, epochs_g=50), {}),
    # ... and, as none of those three fits its training images better (gap < 0.01),
    # fewer images still, or twice the width
    "n30-e140": (dict(n_train=30, epochs_f=140, epochs_g=100), {}),
    "w16-n60-e70": (dict(n_train=60, epochs_f=70, epochs_g=50, unet_width=16), {}),
    "w16-n30-e140": (dict(n_train=30, epochs_f=140, epochs_g=100, unet_width=16), {}),
}
ROWS = (
    "no_uncertainty",
    "max_prob",
    "mc_dropout",
    "lce",
    "no_uncertainty_mc_dropout",
    "no_uncertainty_lce",
)


def variant(name: str, base: Path):
    from segqual_lite.config import get_profile
    from segqual_lite.data import make_synthetic_isic

    changes, shares = VARIANTS[name]
    profile = get_profile("tiny").with_(name=f"sweep-{name}", **changes)
    root = base / "data" / name
    if not (root / "SYNTHETIC_CASES.csv").exists():
        make_synthetic_isic(
            root, profile.n_train, profile.n_val, profile.n_test, profile.image_size, 0, shares
        )
    return profile, root


def fit_one(job):
    """f alone: the plain U-Net's Jaccard on its training and test images."""
    name, seed, base = job
    os.environ.setdefault("SEGQUAL_THREADS", "1")
    from segqual_lite.config import fix_threads, pick_device
    from segqual_lite.segment import segment_split

    fix_threads()
    profile, root = variant(name, base)
    start = time.perf_counter()
    fit = {
        split: segment_split(profile, "max_prob", seed, root, split, pick_device(), False).jaccard
        for split in ("train", "test")
    }
    return name, seed, None, fit, time.perf_counter() - start


def run_one(job):
    name, seed, base = job
    os.environ.setdefault("SEGQUAL_THREADS", "1")
    from segqual_lite.config import fix_threads, pick_device
    from segqual_lite.results import predict_rows
    from segqual_lite.segment import segment_split

    fix_threads()
    profile, root = variant(name, base)
    device = pick_device()
    start = time.perf_counter()
    predictions = predict_rows(profile, ROWS, (seed,), root, device, progress=False)
    fit = {
        split: segment_split(profile, "max_prob", seed, root, split, device, False).jaccard
        for split in ("train", "test")
    }
    return name, seed, predictions, fit, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="sweep")
    parser.add_argument("--f-only", action="store_true", help="train f alone: its fit only")
    args = parser.parse_args()
    from segqual_lite.stats import compare

    base = Path(args.out).resolve()
    for name in args.variants:  # data first, once per variant
        variant(name, base)
    jobs = [(name, seed, base) for name in args.variants for seed in args.seeds]
    results: dict[str, list] = {name: [] for name in args.variants}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, seed, predictions, fit, seconds in pool.map(
            fit_one if args.f_only else run_one, jobs
        ):
            results[name].append((predictions, fit))
            print(f"[{name} seed {seed}: {seconds:.0f} s]", flush=True)
    lines, everything = [], []
    for name, runs in results.items():
        line = {"variant": name, "seeds": len(runs)}
        for split in ("train", "test"):
            j = np.concatenate([fit[split] for _, fit in runs])
            line[f"J {split}"] = f"{j.mean():.3f}"
            line[f"fail {split}"] = f"{np.mean(j < 0.7):.0%}"
        gaps = [fit["train"].mean() - fit["test"].mean() for _, fit in runs]
        line["gap"] = f"{np.mean(gaps):+.3f} (seeds {min(gaps):+.3f} to {max(gaps):+.3f})"
        if args.f_only:
            lines.append(line)
            continue
        predictions = pd.concat([p for p, _ in runs], ignore_index=True)
        for row, control in (
            ("max_prob", "no_uncertainty"),
            ("mc_dropout", "no_uncertainty_mc_dropout"),
            ("lce", "no_uncertainty_lce"),
        ):
            for metric, fmt in (
                ("rmse", "{:+.3f}"),
                ("auroc", "{:+.1f}"),
                ("detection_error", "{:+.1f}"),
            ):
                c = compare(predictions, row, control, metric, n_boot=1000)
                cell = f"{fmt.format(c.estimate)} [{fmt.format(c.low)}, {fmt.format(c.high)}]"
                line[f"{row} {metric}"] = cell
        lines.append(line)
        everything.append(predictions.assign(variant=name))
    table = pd.DataFrame(lines)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False))
    table.to_csv(base / ("fit.csv" if args.f_only else "sweep.csv"), index=False)
    if everything:
        pd.concat(everything).to_csv(base / "sweep_predictions.csv", index=False)


if __name__ == "__main__":
    main()
