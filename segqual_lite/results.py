"""The grid's results: every row's per-image predictions (:func:`predict_rows`), the
files written from them (:func:`write_results`: ``predictions.csv``, Table 1, the
figures; see :mod:`segqual_lite.experiment`), and the merging of results run in parts
(:func:`merge_results`). Every number of the tables is recomputable from the predictions
files."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from tqdm.auto import tqdm

from .config import Profile
from .quality import predicted_quality
from .rca import rca_cached
from .rows import CONTROL_ROWS, EXTENDED_ROWS, TABLE_ROWS, get_row
from .scores import score_jaccard
from .segment import SegmentationSet, segment_split
from .store import claim_folder, save_figure, write_text
from .tables import (
    beyond_table,
    csv_text,
    format_table_md,
    predictions_frame,
    read_predictions,
    table_from_predictions,
)
from .viz import plot_figure3, plot_risk_coverage

__all__ = [
    "GridResult",
    "COUNTERFACTUAL_FOLDER",
    "predict_rows",
    "write_results",
    "merge_predictions",
    "merge_results",
]

RESULTS_LEGACY = ("run.json", "table1.csv")  # in a results folder of an earlier version
COUNTERFACTUAL_FOLDER = "counterfactual"  # beside the results, under --out


@dataclass
class GridResult:
    predictions: pd.DataFrame  # one row per (method, seed, test image), every row run
    table: pd.DataFrame  # Table 1 in long format
    beyond: pd.DataFrame | None  # chapter 11's table, when its rows were run
    out: Path | None


def predict_rows(
    profile: Profile,
    rows: tuple[str, ...],
    seeds: tuple[int, ...],
    root: Path,
    device: torch.device,
    progress: bool,
    train_split: str = "train",
) -> pd.DataFrame:
    """Per-image predictions (:data:`~segqual_lite.tables.PREDICTION_FIELDS`) of every
    row for every seed, seed by seed; models, maps and g's predictions
    (:func:`~segqual_lite.quality.predicted_quality`) are made or loaded from the
    cache."""
    runnable = (*TABLE_ROWS, *CONTROL_ROWS, *EXTENDED_ROWS)
    unknown = set(rows) - set(runnable)
    if unknown:
        raise ValueError(f"unknown row(s) {sorted(unknown)}: choose from {runnable}")
    records = []
    sets: dict[tuple, SegmentationSet] = {}  # a seed's masks and maps, each read once

    def split_of(method: str, seed: int, split: str) -> SegmentationSet:
        if (method, seed, split) not in sets:
            if sets and next(iter(sets))[1] != seed:
                sets.clear()  # seed by seed: keep one seed's in memory
            sets[method, seed, split] = segment_split(
                profile, method, seed, root, split, device, progress
            )
        return sets[method, seed, split]

    jobs = [(seed, row) for seed in seeds for row in rows]
    for seed, row in tqdm(jobs, desc=f"grid ({profile.name})", disable=not progress):
        method = get_row(row).method
        test = split_of(method, seed, "test")
        if row == "rca":
            scores = rca_cached(profile, seed, root, test)
        elif get_row(row).score:
            train = split_of(method, seed, train_split)
            scores = score_jaccard(get_row(row).score, train, test)
        else:
            scores = predicted_quality(
                profile, row, seed, root, "test", train_split, device, progress
            )
        records += [
            {
                "method": row,
                "seed": seed,
                "image_id": image_id,
                "true_jaccard": float(true),
                "predicted_jaccard": float(pred),
            }
            for image_id, true, pred in zip(test.ids, test.jaccard, scores, strict=True)
        ]
    return predictions_frame(records)


def write_results(
    predictions: pd.DataFrame, out: str | Path, profile_name: str = "", figures: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Write the files of the module docstring for ``predictions`` into ``out`` (the
    chapter 11 files only when its rows are present) and the ``figures``, which are then
    closed; returns ``(Table 1, chapter 11's table or None)``. ``out`` must be new, empty
    or a results folder (:func:`~segqual_lite.store.claim_folder`): no file of yours is
    replaced."""
    out = claim_folder(out, "results", legacy=RESULTS_LEGACY)
    predictions = predictions_frame(predictions)
    in_table1 = predictions[~predictions["method"].isin(EXTENDED_ROWS)]
    table = table_from_predictions(in_table1)
    write_text(out / "predictions.csv", csv_text(in_table1))
    write_text(out / "table1.csv", csv_text(table))
    write_text(out / "table1.md", format_table_md(table, profile_name))
    beyond = None
    if predictions["method"].isin(EXTENDED_ROWS).any():
        beyond = beyond_table(predictions)
        write_text(out / "beyond_predictions.csv", csv_text(predictions))
        write_text(out / "beyond.csv", csv_text(beyond))
        write_text(out / "beyond.md", format_table_md(beyond, profile_name, "Beyond Table 1"))
    for name, fig in (figures or {}).items():
        save_figure(fig, out / f"{name}.png")
        plt.close(fig)  # saved, not shown: the chapters show each figure once, captioned
    return table, beyond


def merge_predictions(folders: list[str | Path], filename: str = "predictions.csv") -> pd.DataFrame:
    """The per-image predictions in ``filename`` of every folder, merged. The same
    (method, seed, image) may appear in several folders only with the same values;
    anything else is an error naming both folders."""
    merged: dict[tuple, tuple[dict, Path]] = {}
    for folder in map(Path, folders):
        path = folder / filename
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `reproduce --out {folder}` first")
        for row in read_predictions(path).to_dict("records"):
            key = (row["method"], row["seed"], row["image_id"])
            if key in merged and merged[key][0] != row:
                raise ValueError(
                    f"{key} differs between {merged[key][1]} and {folder}: "
                    "were they run with the same profile and data?"
                )
            merged[key] = (row, folder)
    return predictions_frame([row for row, _ in merged.values()])


def merge_results(folders: list[str | Path], out: str | Path, profile_name: str = "") -> GridResult:
    """Merge the predictions of finished subsets of the grid (rows or seeds run on
    different machines) into one set of results in ``out`` (see
    :func:`merge_predictions`). When every folder holds chapter 11's
    ``beyond_predictions.csv`` (``reproduce --beyond``), those are merged and
    ``beyond.csv`` is written too; chapter 12's ``conformal.csv`` and ``shift.csv`` are
    concatenated from the folders that hold them, ordered by seed; the counterfactuals
    (``<folder>/counterfactual``) of the folders that hold one are merged into
    ``<out>/counterfactual`` the same way."""
    folders = [Path(f) for f in folders]
    with_beyond = [f for f in folders if (f / "beyond_predictions.csv").is_file()]
    if with_beyond and len(with_beyond) < len(folders):
        missing = sorted(str(f) for f in set(folders) - set(with_beyond))
        warnings.warn(
            f"beyond.csv not merged: no beyond_predictions.csv in {', '.join(missing)} "
            "(run `reproduce --beyond` there)",
            stacklevel=2,
        )
    filename = "beyond_predictions.csv" if len(with_beyond) == len(folders) else "predictions.csv"
    predictions = merge_predictions(folders, filename)
    figures = {"figure3": plot_figure3(predictions)}
    if predictions["method"].isin(EXTENDED_ROWS).any():
        figures["risk_coverage"] = plot_risk_coverage(predictions)
    table, beyond = write_results(predictions, out, profile_name, figures)
    for name in ("conformal.csv", "shift.csv"):  # chapter 12's, one line per seed and setting
        parts = [pd.read_csv(f / name) for f in folders if (f / name).is_file()]
        if parts:
            merged = pd.concat(parts, ignore_index=True).drop_duplicates()
            write_text(Path(out) / name, csv_text(merged.sort_values("seed", kind="stable")))
    # The counterfactuals (reproduce --counterfactual) of the folders that hold one.
    counterfactuals = [f / COUNTERFACTUAL_FOLDER for f in folders]
    counterfactuals = [f for f in counterfactuals if (f / "predictions.csv").is_file()]
    if counterfactuals:
        merge_results(counterfactuals, Path(out) / COUNTERFACTUAL_FOLDER, profile_name)
    return GridResult(predictions, table, beyond, Path(out))
