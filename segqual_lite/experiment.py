"""The grid of Table 1: every row for every seed of a profile, its tables and figures
(chapter 10; ``python -m segqual_lite reproduce``).

For each seed, the grid trains (or loads) the three U-Nets, runs them over the training
and test splits, trains (or loads) g for each row, scores RCA, and collects every test
image's true and predicted Jaccard index. It writes, into the results folder:

* ``predictions.csv``: ``method, seed, image_id, true_jaccard, predicted_jaccard``;
* ``table1.csv``: long format ``method, metric, mean, std, n_seeds, paper_mean,
  paper_std``, in the paper's units (RMSE a fraction, the rest percentages); the std is
  over seeds (sample std, ddof = 1; 0 for a single seed);
* ``table1.md``: the same as a readable table, the paper beside;
* ``figure2.png`` and ``figure3.png``.

Every number of the tables is recomputable from ``predictions.csv``
(:func:`table_from_predictions`).
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import Profile, pick_device
from .data import ISIC2017, prepare_data
from .metrics import METRICS, rmse, summarize
from .quality import (
    BEYOND_ROWS,
    ROWS,
    SOURCE_METHOD,
    fit_quality,
    predict_quality,
    segment_split,
)
from .rca import choose_references, rca_scores
from .training import cache_folder, progress_enabled, training_key

__all__ = [
    "TABLE_ROWS",
    "ROW_LABELS",
    "METRIC_LABELS",
    "PAPER_TABLE1",
    "GridResult",
    "results_dir",
    "run_grid",
    "predict_rows",
    "rca_cached",
    "table_from_predictions",
    "seed_metrics",
    "per_seed_arrays",
    "mean_std",
    "read_predictions",
    "write_results",
    "format_table_md",
    "compare_rows",
    "merge_predictions",
    "merge_results",
]

TABLE_ROWS = ("rca", *ROWS)
ROW_LABELS = {
    "rca": "RCA",
    "qualitynet": "QualityNet",
    "no_uncertainty": "No Uncertainty",
    "max_prob": "Max Probability",
    "mc_dropout": "MC-dropout",
    "hcnn": "HCNN",
    "lce": "LCE",
}
METRIC_LABELS = {
    "rmse": "RMSE ↓",
    "detection_error": "Detection error ↓",
    "auroc": "AUROC ↑",
    "aupr_pass": "AUPR-Pass ↑",
    "aupr_fail": "AUPR-Fail ↑",
}
# DeVries & Taylor (2018), Table 1: mean and std over 5 runs; RMSE a fraction, the rest %.
PAPER_TABLE1 = {
    "rca": [(0.438, 0.007), (43.8, 1.0), (53.7, 1.4), (74.4, 1.4), (30.7, 0.9)],
    "qualitynet": [(0.213, 0.009), (25.7, 2.7), (80.9, 3.1), (89.0, 2.3), (69.1, 4.7)],
    "no_uncertainty": [(0.198, 0.011), (27.3, 3.3), (79.8, 3.8), (88.5, 1.9), (66.4, 7.9)],
    "max_prob": [(0.168, 0.014), (18.4, 3.0), (88.4, 2.2), (93.2, 1.6), (80.5, 3.2)],
    "mc_dropout": [(0.163, 0.010), (18.8, 1.4), (88.1, 0.8), (93.5, 1.3), (78.1, 3.0)],
    "hcnn": [(0.196, 0.023), (21.3, 1.8), (85.5, 1.5), (91.6, 1.4), (76.2, 4.5)],
    "lce": [(0.167, 0.019), (19.3, 1.1), (88.3, 1.4), (93.6, 1.5), (79.1, 3.9)],
}


def results_dir(profile: Profile) -> Path:
    """``$SEGQUAL_RESULTS`` if set, else ``_build/results/<profile>`` under the current
    folder (where ``make book`` leaves the tiny one)."""
    base = os.environ.get("SEGQUAL_RESULTS")
    return Path(base) if base else Path("_build") / "results" / profile.name


def in_paper_units(metric: str, value: float) -> float:
    return value if metric == "rmse" else 100 * value


@dataclass
class GridResult:
    predictions: list[dict]  # one per (method, seed, test image)
    table: list[dict]  # long format, see table_from_predictions
    out: Path | None


def seed_metrics(method: str, seed: int, true: np.ndarray, pred: np.ndarray) -> dict:
    """The five metrics of one row and seed as fractions; when the test set holds only
    one class, only RMSE is defined and the others are NaN (with a warning)."""
    try:
        return summarize(true, pred)
    except ValueError as err:
        warnings.warn(f"{method}, seed {seed}: {err}", stacklevel=3)
        return {m: rmse(true, pred) if m == "rmse" else np.nan for m in METRICS}


def per_seed_arrays(predictions: list[dict]) -> dict:
    """``{method: {seed: (true Jaccard [N], predicted Jaccard [N])}}``."""
    grouped: dict = {}
    for p in predictions:
        grouped.setdefault(p["method"], {}).setdefault(int(p["seed"]), []).append(p)
    return {
        method: {
            seed: (
                np.array([float(r["true_jaccard"]) for r in rows]),
                np.array([float(r["predicted_jaccard"]) for r in rows]),
            )
            for seed, rows in sorted(by_seed.items())
        }
        for method, by_seed in grouped.items()
    }


def mean_std(values) -> tuple[float, float]:
    """Mean and sample std (ddof = 1; 0 for a single value) over seeds."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def table_from_predictions(predictions: list[dict]) -> list[dict]:
    """Table 1 in long format from per-image predictions (see the module docstring)."""
    arrays = per_seed_arrays(predictions)
    table = []
    for method in [m for m in TABLE_ROWS if m in arrays] + sorted(set(arrays) - set(TABLE_ROWS)):
        per_seed = [seed_metrics(method, s, *arrays[method][s]) for s in arrays[method]]
        for k, metric in enumerate(METRICS):
            mean, std = mean_std([in_paper_units(metric, s[metric]) for s in per_seed])
            paper = PAPER_TABLE1.get(method, [(float("nan"), float("nan"))] * 5)[k]
            table.append(
                {
                    "method": method,
                    "metric": metric,
                    "mean": mean,
                    "std": std,
                    "n_seeds": len(per_seed),
                    "paper_mean": paper[0],
                    "paper_std": paper[1],
                }
            )
    return table


LOWER_IS_BETTER = ("rmse", "detection_error", "aurc")


def compare_rows(
    table: list[dict], method: str, baseline: str, metric: str, labels: dict | None = None
) -> str:
    """One line saying whether ``method`` beats ``baseline`` on ``metric`` (means over
    seeds of a long-format table), by how much, and whether the difference is within or
    beyond one combined standard deviation over seeds (``hypot(std_a, std_b)``)."""
    labels = labels or ROW_LABELS
    cell = {(r["method"], r["metric"]): r for r in table}
    ours, base = cell[(method, metric)], cell[(baseline, metric)]
    diff = ours["mean"] - base["mean"]
    wins = diff < 0 if metric in LOWER_IS_BETTER else diff > 0
    size = "within" if abs(diff) <= np.hypot(ours["std"], base["std"]) else "beyond"
    return (
        f"{labels.get(method, method):15s} {'beats' if wins else 'does not beat'} "
        f"{labels.get(baseline, baseline)} on {metric} by {abs(diff):.3f} "
        f"({size} one combined std)"
    )


def format_table_md(table: list[dict], profile_name: str = "") -> str:
    """Table 1 as Markdown: ``mean ± std (paper mean ± std)`` per cell."""
    methods = list(dict.fromkeys(r["method"] for r in table))
    cell = {(r["method"], r["metric"]): r for r in table}
    n = {r["method"]: r["n_seeds"] for r in table}
    lines = [
        f"Table 1 ({profile_name + ' profile, ' if profile_name else ''}test split; "
        "mean ± std over seeds, the paper's value in brackets; RMSE a fraction, the rest %)",
        "",
        "| method | seeds | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for method in methods:
        cells = []
        for metric in METRICS:
            r = cell[(method, metric)]
            fmt = "{:.3f}" if metric == "rmse" else "{:.1f}"
            ours = f"{fmt.format(r['mean'])} ± {fmt.format(r['std'])}"
            paper = (
                f" ({fmt.format(r['paper_mean'])} ± {fmt.format(r['paper_std'])})"
                if np.isfinite(r["paper_mean"])
                else ""
            )
            cells.append(ours + paper)
        lines.append(
            f"| {ROW_LABELS.get(method, method)} | {n[method]} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader never
    sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def csv_text(rows: list[dict], fields: list[str]) -> str:
    """``rows`` as CSV text with columns ``fields``; floats written exactly (``repr``)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        # repr: the shortest text that reads back to the same float, so tables recompute exactly
        writer.writerow({k: (repr(r[k]) if isinstance(r[k], float) else r[k]) for k in fields})
    return buf.getvalue()


PREDICTION_FIELDS = ["method", "seed", "image_id", "true_jaccard", "predicted_jaccard"]
TABLE_FIELDS = ["method", "metric", "mean", "std", "n_seeds", "paper_mean", "paper_std"]


def read_predictions(path: str | Path) -> list[dict]:
    """Rows of ``predictions.csv`` with numbers parsed."""
    with open(path, newline="") as f:
        return [
            {
                "method": r["method"],
                "seed": int(r["seed"]),
                "image_id": r["image_id"],
                "true_jaccard": float(r["true_jaccard"]),
                "predicted_jaccard": float(r["predicted_jaccard"]),
            }
            for r in csv.DictReader(f)
        ]


def write_results(result: GridResult, out: Path, profile_name: str, figures: dict | None = None):
    """Write predictions.csv, table1.csv, table1.md and the figures into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "predictions.csv", csv_text(result.predictions, PREDICTION_FIELDS))
    write_text_atomic(out / "table1.csv", csv_text(result.table, TABLE_FIELDS))
    write_text_atomic(out / "table1.md", format_table_md(result.table, profile_name))
    for name, fig in (figures or {}).items():
        save_figure_atomic(fig, out / f"{name}.png")


def save_figure_atomic(fig, path: Path) -> None:
    """Save a matplotlib figure to ``path`` (110 dpi) through a temporary file."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def run_grid(
    profile: Profile,
    rows: tuple[str, ...] = TABLE_ROWS,
    seeds: tuple[int, ...] | None = None,
    data_root: str | Path | None = None,
    out: str | Path | None = None,
    device: torch.device | None = None,
    progress: bool | None = None,
    train_split: str = "train",
) -> GridResult:
    """Run (or load) every row for every seed and write the results (module docstring).

    ``rows`` and ``seeds`` choose a subset of the grid; ``out=None`` writes to
    :func:`results_dir`. Cached models and predictions are reused, so a second call
    trains nothing.
    """
    from .viz import plot_figure2, plot_figure3  # matplotlib only when writing figures

    unknown = set(rows) - set(TABLE_ROWS)
    if unknown:
        raise ValueError(f"unknown row(s) {sorted(unknown)}: choose from {TABLE_ROWS}")
    seeds = tuple(profile.seeds if seeds is None else seeds)
    device = device or pick_device()
    progress = progress_enabled() if progress is None else progress
    root = Path(data_root) if data_root else prepare_data(profile)
    predictions = predict_rows(profile, rows, seeds, root, device, progress, train_split)
    result = GridResult(predictions, table_from_predictions(predictions), None)
    out = Path(out) if out else results_dir(profile)
    figures = {"figure3": plot_figure3(predictions, seed=seeds[0])}
    maps = [m for m in ("max_prob", "mc_dropout", "hcnn", "lce") if m in rows]
    if maps:
        sets = {
            m: segment_split(profile, m, seeds[0], root, "test", device, progress) for m in maps
        }
        figures["figure2"] = plot_figure2(sets)
    write_results(result, out, profile.name, figures)
    result.out = out
    return result


def predict_rows(
    profile: Profile,
    rows: tuple[str, ...],
    seeds: tuple[int, ...],
    root: Path,
    device: torch.device,
    progress: bool,
    train_split: str = "train",
) -> list[dict]:
    """Per-image predictions ``{method, seed, image_id, true_jaccard,
    predicted_jaccard}`` of every row (Table 1's or chapter 11's) for every seed; models
    and maps are trained or loaded from the cache."""
    unknown = set(rows) - {*TABLE_ROWS, *BEYOND_ROWS}
    if unknown:
        raise ValueError(
            f"unknown row(s) {sorted(unknown)}: choose from {TABLE_ROWS + BEYOND_ROWS}"
        )
    predictions = []
    jobs = [(seed, row) for seed in seeds for row in rows]
    for seed, row in tqdm(jobs, desc=f"grid ({profile.name})", disable=not progress):
        if row == "rca":
            test = segment_split(profile, "max_prob", seed, root, "test", device, progress)
            scores = rca_cached(profile, seed, root, test)
        else:
            g, scale = fit_quality(profile, row, seed, root, train_split, device, progress)
            test = segment_split(profile, SOURCE_METHOD[row], seed, root, "test", device, progress)
            scores = predict_quality(g.model, row, test, scale)
        for image_id, true, pred in zip(test.ids, test.jaccard, scores, strict=True):
            predictions.append(
                {
                    "method": row,
                    "seed": seed,
                    "image_id": image_id,
                    "true_jaccard": float(true),
                    "predicted_jaccard": float(pred),
                }
            )
    return predictions


def rca_cached(profile: Profile, seed: int, root: Path, test) -> np.ndarray:
    """RCA scores (:func:`~segqual_lite.rca.rca_scores`) for the plain U-Net's test masks
    ``test`` of ``seed``, with the profile's references; cached like a model."""
    key = {
        "code": 1,
        "f": training_key(profile, "max_prob", seed, root),
        "references": profile.rca_references,
    }
    path = cache_folder("rca", profile, f"seed{seed}", key) / "scores.npy"
    if path.exists():
        return np.load(path)
    train = ISIC2017(root, "train", profile.image_size)
    refs = choose_references(len(train), profile.rca_references)
    scores, _ = rca_scores(test.images, test.masks, train.images[refs], train.masks[refs], seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("scores.tmp.npy")
    np.save(tmp, scores)
    os.replace(tmp, path)
    return scores


def merge_predictions(folders: list[str | Path], filename: str = "predictions.csv") -> list[dict]:
    """The per-image predictions in ``filename`` of every folder, merged. The same
    (method, seed, image) may appear in several folders only with the same values;
    anything else is an error naming both folders."""
    merged: dict[tuple, tuple[dict, Path]] = {}
    for folder in map(Path, folders):
        path = folder / filename
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `reproduce --out {folder}` first")
        for row in read_predictions(path):
            key = (row["method"], row["seed"], row["image_id"])
            if key in merged and merged[key][0] != row:
                raise ValueError(
                    f"{key} differs between {merged[key][1]} and {folder}: "
                    "were they run with the same profile and data?"
                )
            merged[key] = (row, folder)
    return [row for row, _ in merged.values()]


def merge_results(folders: list[str | Path], out: str | Path, profile_name: str = "") -> GridResult:
    """Merge the ``predictions.csv`` of finished subsets of the grid (rows or seeds run
    on different machines) into one set of results in ``out`` (see
    :func:`merge_predictions`). When every folder also holds chapter 11's
    ``beyond_predictions.csv`` (``reproduce --beyond``), those are merged too and
    ``beyond.csv`` is written."""
    from .viz import plot_figure3

    predictions = merge_predictions(folders)
    result = GridResult(predictions, table_from_predictions(predictions), Path(out))
    write_results(result, Path(out), profile_name, {"figure3": plot_figure3(predictions)})
    with_beyond = [Path(f) for f in folders if (Path(f) / "beyond_predictions.csv").is_file()]
    if with_beyond and len(with_beyond) < len(folders):
        missing = sorted(str(f) for f in set(map(Path, folders)) - set(with_beyond))
        warnings.warn(
            f"beyond.csv not merged: no beyond_predictions.csv in {', '.join(missing)} "
            "(run `reproduce --beyond` there)",
            stacklevel=2,
        )
    elif with_beyond:
        from .beyond import write_beyond

        write_beyond(merge_predictions(folders, "beyond_predictions.csv"), out, profile_name)
    return result
