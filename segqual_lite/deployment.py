"""Two questions a quality control system meets in use (chapter 12).

* **How sure is a predicted Jaccard?** :func:`conformal_results` turns g's prediction
  into a split conformal interval (:mod:`segqual_lite.conformal`) calibrated on the
  **validation split**: neither f nor g was trained on it, so g's residuals there are
  exchangeable with its residuals on the test split, which is what the coverage
  guarantee needs. g's own training images would not do: f fits them better than new
  ones (the paper's section 4.2), so g's residuals there are optimistic. The cost:
  the validation split is small (the ``tiny`` profile's 60 images), so the interval's
  quantile is itself noisy, and images used for calibration are not used for training.
  Each row gets the plain form (``|J - Ĵ|``) and a form normalised by an uncertainty
  score: the image mean of the map of the method whose masks the row judges.
* **Does it survive shifted images?** :func:`shift_results` degrades the test images
  (:func:`segqual_lite.data.corrupt`: blur, noise, contrast loss, JPEG compression at
  :data:`SHIFT_SEVERITIES`) and reruns f and the quality estimators of
  :data:`~segqual_lite.rows.SHIFT_ROWS` on them, neither retrained: f's mean Jaccard and
  each estimator's AUROC and AUGRC per corruption and severity. Cached per seed, a job
  of the grid (:func:`shift_job`).

Both return long DataFrames (one line per row, seed and setting) that
``reproduce --beyond`` saves as ``conformal.csv`` and ``shift.csv`` beside ``beyond.csv``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import Profile, pick_device
from .conformal import calibrate, conformal_intervals, min_calibration, summarize_intervals
from .data import CORRUPTION_LEVELS, CORRUPTIONS, corrupt
from .metrics import FAILURE_THRESHOLD, augrc, auroc, jaccard, rmse
from .quality import fit_quality, predict_quality, predicted_quality, quality_key
from .rows import QUALITY_ROWS, SHIFT_ROWS, get_row, label, samples
from .scores import image_mean, score_jaccard
from .segment import SegmentationSet, decoded_split, segment_split, segmentation_key
from .store import artifact_folder, artifact_key, write_text
from .tables import csv_text
from .timing import phase
from .training import fit_segmentation
from .uncertainty import predict_images

__all__ = [
    "CONFORMAL_ROWS",
    "CONFORMAL_ALPHA",
    "SHIFT_ROWS",
    "SHIFT_SEVERITIES",
    "conformal_results",
    "conformal_summary",
    "shift_path",
    "shift_job",
    "shift_results",
]

# Table 1's rows with g (RCA has no calibrated scale to interval around).
CONFORMAL_ROWS = QUALITY_ROWS
CONFORMAL_ALPHA = 0.1  # 90% nominal coverage
SHIFT_SEVERITIES = (2, 4)  # of ImageNet-C's 1-5; 0, the clean test split, is added


def conformal_results(
    profile: Profile,
    seeds: tuple[int, ...],
    root: Path,
    device: torch.device | None = None,
    rows: tuple[str, ...] = CONFORMAL_ROWS,
    alpha: float = CONFORMAL_ALPHA,
) -> pd.DataFrame:
    """For each row and seed, g calibrated on the validation split and judged on the
    test split, plain and normalised (module docstring): ``row, seed, form, n_calibration,
    quantile`` and the numbers of :func:`~segqual_lite.conformal.summarize_intervals`
    (fractions)."""
    device = device or pick_device()
    n_val, needed = len(decoded_split(root, "val", profile.image_size)), min_calibration(alpha)
    if n_val < needed:
        warnings.warn(
            f"no conformal intervals: the validation split of {root} holds {n_val} images, "
            f"and {1 - alpha:.0%} coverage needs at least {needed}; make a larger "
            "validation split (n_val) or raise alpha",
            stacklevel=2,
        )
        return pd.DataFrame()
    records = []
    for seed in seeds:
        for row in rows:
            method = get_row(row).method
            val, test = (
                segment_split(profile, method, seed, root, split, device, False)
                for split in ("val", "test")
            )
            pred_val, pred_test = (
                predicted_quality(profile, row, seed, root, split, device=device, progress=False)
                for split in ("val", "test")
            )
            for form, sigma_val, sigma_test in (
                ("absolute", None, None),
                ("normalised", image_mean(val.maps), image_mean(test.maps)),
            ):
                cal = calibrate(val.jaccard, pred_val, alpha, sigma_val)
                lower, upper = conformal_intervals(cal, pred_test, sigma_test)
                records.append(
                    {
                        "row": row,
                        "seed": seed,
                        "form": form,
                        "n_calibration": cal.n,
                        "quantile": cal.quantile,
                        **summarize_intervals(test.jaccard, lower, upper),
                    }
                )
    return pd.DataFrame(records)


def conformal_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`conformal_results` as a table to read: one line per row and form, each
    number the mean ± std over seeds in % (the width in points of the Jaccard index);
    the failures among the accepted over the seeds that accepted any image ("–" when
    none did)."""
    numbers = {
        "coverage": "coverage",
        "mean_width": "width",
        "automation_rate": "accepted",
        "accepted_failures": "failures among accepted",
    }
    frame = frame.copy()  # a share of the accepted is undefined where none was accepted
    frame.loc[frame["automation_rate"] == 0, "accepted_failures"] = np.nan
    summary = frame.groupby(["row", "form"], sort=False)[list(numbers)].agg(["mean", "std"])
    lines = []
    for (row, form), r in summary.iterrows():
        line = {"row": label(row), "residuals": form}
        for column, name in numbers.items():
            mean, std = 100 * r[column, "mean"], 100 * np.nan_to_num(r[column, "std"])
            # never broken across lines; – where no seed defines it
            line[name] = f"{mean:.1f}\u00a0±\u00a0{std:.1f}" if np.isfinite(mean) else "–"
        lines.append(line)
    return pd.DataFrame(lines)


def _shift_key(profile: Profile, seed: int, root: Path) -> dict:
    rows = {
        row: quality_key(profile, row, seed, root, "train")
        for row in SHIFT_ROWS
        if get_row(row).inputs
    }
    methods = sorted({get_row(row).method for row in SHIFT_ROWS})
    return artifact_key(
        "shift",
        g=rows,
        f={m: segmentation_key(profile, m, seed, root) for m in methods},
        corruptions={k: CORRUPTION_LEVELS[k] for k in CORRUPTIONS},
        severities=list(SHIFT_SEVERITIES),
    )


def shift_path(profile: Profile, seed: int, root: Path) -> Path:
    """Where :func:`shift_job` keeps one seed's results (``shift.csv``)."""
    return artifact_folder(profile, f"seed{seed}", _shift_key(profile, seed, root)) / "shift.csv"


def _shifted_set(
    profile: Profile, method: str, seed: int, root: Path, clean: SegmentationSet, images, device
) -> SegmentationSet:
    """f's masks and maps of ``method`` on the corrupted ``images`` (uint8)."""
    model = fit_segmentation(profile, method, seed, root, device, False).model
    pred = predict_images(model, images, method, samples=samples(profile, method))
    masks = pred.mask.to(torch.uint8)
    return SegmentationSet(
        ids=clean.ids,
        images=images,
        true_masks=clean.true_masks,
        masks=masks,
        maps=pred.uncertainty.float(),
        jaccard=jaccard(masks, clean.true_masks),
        extras=pred.extras,
    )


def shift_job(
    profile: Profile, seed: int, root: Path, device: torch.device | None = None
) -> pd.DataFrame:
    """One seed of :func:`shift_results`, computed once and cached: for the clean test
    split and each corruption and severity, f's mean Jaccard and failure share, and each
    row of :data:`SHIFT_ROWS` judged on its method's masks (AUROC in %, AUGRC and RMSE
    as fractions; AUROC is NaN when no image, or every image, fails)."""
    path = shift_path(profile, seed, root)
    if path.exists():
        return pd.read_csv(path)
    device = device or pick_device()
    methods = sorted({get_row(row).method for row in SHIFT_ROWS})
    clean = {m: segment_split(profile, m, seed, root, "test", device, False) for m in methods}
    train = {  # what the training-free rows' scores are mapped to a Jaccard on
        r.method: segment_split(profile, r.method, seed, root, "train", device, False)
        for r in map(get_row, SHIFT_ROWS)
        if r.score
    }
    quality = {
        row: fit_quality(profile, row, seed, root, device=device, progress=False)
        for row in SHIFT_ROWS
        if get_row(row).inputs
    }
    x = next(iter(clean.values())).images.float() / 255
    settings = [("none", 0)] + [(k, s) for k in CORRUPTIONS for s in SHIFT_SEVERITIES]
    records = []
    with phase("shift", f"seed {seed}, {len(settings)} settings, {len(x)} images"):
        for kind, severity in settings:
            if severity:  # saved as 8-bit images, as a corrupted file would be
                images = corrupt(x, kind, severity, seed=seed).mul(255).round().to(torch.uint8)
                sets = {
                    m: _shifted_set(profile, m, seed, root, clean[m], images, device)
                    for m in methods
                }
            else:  # the clean test split: the grid's own masks, maps and predictions
                sets = clean
            for row in SHIFT_ROWS:
                r = get_row(row)
                seg = sets[r.method]
                if r.score:
                    pred = score_jaccard(r.score, train[r.method], seg)
                elif not severity:
                    pred = predicted_quality(profile, row, seed, root, device=device)
                else:
                    g, scale = quality[row]
                    pred = predict_quality(g.model, row, seg, scale)
                failed = seg.jaccard < FAILURE_THRESHOLD
                both = 0 < failed.mean() < 1  # AUROC needs passes and failures
                records.append(
                    {
                        "seed": seed,
                        "corruption": kind,
                        "severity": severity,
                        "row": row,
                        "mean_jaccard": float(seg.jaccard.mean()),
                        "failure_share": float(failed.mean()),
                        "auroc": 100 * auroc(seg.jaccard, pred) if both else np.nan,
                        "augrc": augrc(seg.jaccard, pred),
                        "rmse": rmse(seg.jaccard, pred),
                    }
                )
    frame = pd.DataFrame(records)
    write_text(path, csv_text(frame))
    return frame


def shift_results(
    profile: Profile, seeds: tuple[int, ...], root: Path, device: torch.device | None = None
) -> pd.DataFrame:
    """:func:`shift_job` for every seed, in one frame."""
    return pd.concat([shift_job(profile, s, root, device) for s in seeds], ignore_index=True)
