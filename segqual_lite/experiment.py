"""The grid: every row for every seed of a profile, its tables, figures and files
(chapters 10 and 11; ``python -m segqual_lite reproduce``).

For each seed, the grid trains (or loads) the U-Nets, runs them over the training and
test splits, trains (or loads) g for each row, scores RCA, and collects every test
image's true and predicted Jaccard index. It writes, into the results folder:

* ``predictions.csv``: ``method, seed, image_id, true_jaccard, predicted_jaccard`` for
  the rows of Table 1;
* ``table1.csv`` and ``table1.md``: Table 1 (:func:`~segqual_lite.tables.table_from_predictions`),
  the paper's numbers beside;
* ``figure2.png`` and ``figure3.png``;
* ``run.json``: what the run was made with (profile, seeds, device, torch version and
  CPU threads, which change the numbers);

and, when the rows of chapters 11 and 12 (:data:`~segqual_lite.rows.EXTENDED_ROWS`) were run
(``beyond=True``, ``reproduce --beyond``):

* ``beyond_predictions.csv``: the per-image predictions of every row, Table 1's included;
* ``beyond.csv`` and ``beyond.md``: :func:`~segqual_lite.tables.beyond_table`;
* ``risk_coverage.png``;
* ``conformal.csv`` and ``shift.csv``: chapter 12's conformal intervals and shift test
  (:mod:`segqual_lite.deployment`).

Every number of the tables is recomputable from the predictions files.

:func:`run_counterfactual` (``reproduce --counterfactual``) runs the comparison of each
uncertainty row with its control again on the same synthetic data without ambiguous
rims (:data:`COUNTERFACTUAL_DATA`, :data:`COUNTERFACTUAL_ROWS`), into the
``counterfactual`` folder inside the results folder (chapter 10); :func:`merge_results`
merges those folders too.

``workers=N`` (``reproduce --workers N``) first does the grid's work in N processes
(:func:`run_jobs`): jobs that each make one artifact (a U-Net, a split's masks and maps,
a g, RCA's scores; :func:`grid_jobs`), each started once the jobs it needs are done.
Every job is seeded by what it computes, not by where it runs, so the numbers equal
those of one process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from tqdm.auto import tqdm

from .config import Profile, fix_threads, pick_device, progress_enabled, results_dir
from .data import prepare_data
from .deployment import (
    CONFORMAL_ROWS,
    SHIFT_ROWS,
    conformal_results,
    shift_job,
    shift_path,
    shift_results,
)
from .quality import fit_quality, predicted_quality, quality_folder
from .rca import rca_cached, rca_path
from .rows import (
    CONTROL_ROWS,
    EXTENDED_ROWS,
    METHOD_REGISTRY,
    METHODS,
    SCORE_ROWS,
    TABLE_ROWS,
    control_of,
    get_method,
    get_row,
    samples,
)
from .scores import score_jaccard
from .segment import SegmentationSet, segment_split, segmentation_path
from .store import save_figure, write_text
from .tables import (
    beyond_table,
    csv_text,
    format_table_md,
    predictions_frame,
    read_predictions,
    table_from_predictions,
)
from .training import fit_segmentation, segmentation_model_folder
from .viz import plot_figure2, plot_figure3, plot_risk_coverage

__all__ = [
    "GridResult",
    "run_grid",
    "run_counterfactual",
    "COUNTERFACTUAL_DATA",
    "COUNTERFACTUAL_ROWS",
    "COUNTERFACTUAL_FOLDER",
    "grid_jobs",
    "row_jobs",
    "counterfactual_jobs",
    "run_jobs",
    "predict_rows",
    "write_results",
    "merge_predictions",
    "merge_results",
]


@dataclass
class GridResult:
    predictions: pd.DataFrame  # one row per (method, seed, test image), every row run
    table: pd.DataFrame  # Table 1 in long format
    beyond: pd.DataFrame | None  # chapter 11's table, when its rows were run
    out: Path | None


def run_grid(
    profile: Profile,
    rows: tuple[str, ...] = (*TABLE_ROWS, *CONTROL_ROWS),
    seeds: tuple[int, ...] | None = None,
    data_root: str | Path | None = None,
    out: str | Path | None = None,
    device: torch.device | None = None,
    progress: bool | None = None,
    train_split: str = "train",
    beyond: bool = False,
    workers: int = 1,
    scheduler=None,
) -> GridResult:
    """Run (or load) every row for every seed and write the results (module docstring).

    ``rows`` and ``seeds`` choose a subset of the grid (by default Table 1's rows and the
    controls of the uncertainty rows, :data:`~segqual_lite.rows.CONTROL_ROWS`);
    ``beyond=True`` adds chapter 11's rows. ``out=None`` writes to
    :func:`~segqual_lite.config.results_dir`. Cached models and predictions are reused,
    so a second call trains nothing. The CPU thread count is fixed first
    (:func:`~segqual_lite.config.fix_threads`); ``workers > 1`` does the work in that
    many processes first (:func:`run_jobs`), with the same numbers; ``scheduler``, a
    :class:`segqual_lite.cluster.Scheduler` (``reproduce --executor``), does it in
    scheduler jobs and returns the predictions, with the same numbers.
    """
    rows = tuple(dict.fromkeys((*rows, *(EXTENDED_ROWS if beyond else ()))))
    seeds = tuple(profile.seeds if seeds is None else seeds)
    threads = fix_threads()
    device = device or pick_device()
    progress = progress_enabled() if progress is None else progress
    root = Path(data_root) if data_root else prepare_data(profile)
    out = Path(out) if out else results_dir(profile)
    if scheduler is not None:
        predictions = scheduler.predictions(profile, rows, seeds, root, out, train_split)
    else:
        if workers > 1:
            jobs = grid_jobs(profile, rows, seeds, root, train_split)
            run_jobs(profile, jobs, workers, train_split)
        predictions = predict_rows(profile, rows, seeds, root, device, progress, train_split)
    figures = {"figure3": plot_figure3(predictions, seed=seeds[0])}
    maps = [m for m in METHODS if m in rows]
    if maps:
        sets = {
            m: segment_split(profile, m, seeds[0], root, "test", device, progress) for m in maps
        }
        figures["figure2"] = plot_figure2(sets)
    if set(rows) & set(EXTENDED_ROWS):
        figures["risk_coverage"] = plot_risk_coverage(predictions, seed=seeds[0])
    table, beyond_tab = write_results(predictions, out, profile.name, figures)
    if set(rows) & set(SCORE_ROWS) and train_split == "train":  # chapter 12's deployment
        conformal = conformal_results(profile, seeds, root, device)
        if len(conformal):
            write_text(out / "conformal.csv", csv_text(conformal))
        write_text(out / "shift.csv", csv_text(shift_results(profile, seeds, root, device)))
    run = {
        "profile": profile.key(),
        "seeds": list(seeds),
        "rows": list(rows),
        "device": str(device),
        "torch": torch.__version__,
        "cpu_threads": threads,
    }
    write_text(out / "run.json", json.dumps(run, indent=1) + "\n")
    return GridResult(predictions, table, beyond_tab, out)


# Chapter 10's counterfactual: the mechanism the synthetic data build in (lesions whose
# extent is ambiguous, chapter 01) removed, and the rows whose comparisons with their
# controls it repeats: every uncertainty row (the analysis plan fixes all four).
COUNTERFACTUAL_DATA = {"ambiguous_rim": 0.0}
COUNTERFACTUAL_ROWS = METHODS
COUNTERFACTUAL_FOLDER = "counterfactual"  # beside the results, under --out


def _counterfactual_grid(
    profile: Profile, rows: tuple[str, ...] = COUNTERFACTUAL_ROWS
) -> tuple[tuple[str, ...], Path]:
    """The counterfactual's rows (each row's control with it) and its data, made if
    needed."""
    grid = tuple(dict.fromkeys(r for row in rows for r in (control_of(row), row)))
    return grid, prepare_data(profile, hard_cases=COUNTERFACTUAL_DATA)


def run_counterfactual(
    profile: Profile,
    rows: tuple[str, ...] = COUNTERFACTUAL_ROWS,
    seeds: tuple[int, ...] | None = None,
    out: str | Path | None = None,
    workers: int = 1,
    device: torch.device | None = None,
    progress: bool | None = None,
    scheduler=None,
) -> GridResult:
    """:func:`run_grid` for ``rows`` and their controls on ``profile``'s synthetic data
    made without ambiguous rims (every other image the same), for ``seeds`` (default the
    profile's), written to ``out`` (default ``results_dir(profile) / "counterfactual"``;
    ``reproduce --out DIR`` gives ``DIR/counterfactual``). Cached like the grid."""
    grid, root = _counterfactual_grid(profile, rows)
    return run_grid(
        profile,
        rows=grid,
        seeds=seeds,
        data_root=root,
        out=out or results_dir(profile) / COUNTERFACTUAL_FOLDER,
        device=device,
        progress=progress,
        workers=workers,
        scheduler=scheduler,
    )


def counterfactual_jobs(
    profile: Profile,
    rows: tuple[str, ...] = COUNTERFACTUAL_ROWS,
    seeds: tuple[int, ...] | None = None,
) -> dict[tuple, frozenset[tuple]]:
    """The jobs (:func:`grid_jobs`) of :func:`run_counterfactual`, to run with others."""
    grid, root = _counterfactual_grid(profile, rows)
    return grid_jobs(profile, grid, tuple(seeds or profile.seeds), root)


def grid_jobs(
    profile: Profile,
    rows: tuple[str, ...],
    seeds: tuple[int, ...],
    root: Path,
    train_split: str = "train",
) -> dict[tuple, frozenset[tuple]]:
    """The work behind :func:`predict_rows` as jobs, each mapped to the jobs it needs
    first: f's U-Nets ``("f", root, unet, seed, fold)``, f's masks and maps ``("maps",
    root, method, seed, split, crossfit)``, g ``("g", root, row, seed)`` and RCA
    ``("rca", root, seed)``. A job names the artifact it makes, so jobs that make the same
    artifact are one; the jobs of several grids (other data, other rows) merge with ``|``.
    """
    jobs: dict[tuple, frozenset[tuple]] = {}
    for seed in seeds:
        for row in rows:
            jobs |= row_jobs(profile, row, seed, root, train_split)
        if set(rows) & set(SCORE_ROWS) and train_split == "train":
            jobs |= deployment_jobs(profile, seed, root)
    return jobs


def deployment_jobs(profile: Profile, seed: int, root: Path) -> dict[tuple, frozenset[tuple]]:
    """Chapter 12's jobs of one seed (:mod:`segqual_lite.deployment`): the validation
    maps that calibrate the conformal intervals, and the shift test ``("shift", root,
    seed)`` after the U-Nets and g it reruns."""
    jobs: dict[tuple, frozenset[tuple]] = {}
    for row in SHIFT_ROWS:
        jobs |= row_jobs(profile, row, seed, root)
    jobs[("shift", root, seed)] = frozenset(job for job in jobs if job[0] in ("g", "maps"))
    for method in dict.fromkeys(get_row(row).method for row in CONFORMAL_ROWS):
        unet = ("f", root, get_method(method).unet, seed, None)
        jobs.setdefault(unet, frozenset())
        jobs[("maps", root, method, seed, "val", False)] = frozenset({unet})
    return jobs


def row_jobs(
    profile: Profile, row: str, seed: int, root: Path, train_split: str = "train"
) -> dict[tuple, frozenset[tuple]]:
    """The jobs of :func:`grid_jobs` that one row's predictions for one seed need: its
    test maps, what scores them (its g, or RCA) and what those need."""
    root = Path(root)

    def unet(method, seed, fold=None):
        return ("f", root, get_method(method).unet, seed, fold)

    def maps(method, seed, split, crossfit=False):
        m = get_method(method)
        seed = profile.seeds[0] if m.all_seeds else seed  # one predictor for every seed
        job = ("maps", root, method, seed, split, crossfit)
        if m.all_seeds:
            needs = {unet(method, s) for s in profile.seeds}
        elif crossfit:
            needs = {
                unet(method, seed, (k, profile.crossfit_folds))
                for k in range(profile.crossfit_folds)
            }
        else:
            needs = {unet(method, seed)}
        return job, needs

    r = get_row(row)
    test, needs = maps(r.method, seed, "test")
    wanted = {test: needs}
    if r.inputs:
        train, needs = maps(r.method, seed, train_split, r.crossfit)
        wanted[train] = needs
        # g's job also makes its test predictions (_run_job): after the test maps
        wanted[("g", root, row, seed)] = {train, test}
    elif r.score:  # a training-free score, mapped to a Jaccard on the training split
        train, needs = maps(r.method, seed, train_split)
        wanted[train] = needs
    else:
        wanted[("rca", root, seed)] = {test}
    jobs: dict[tuple, frozenset[tuple]] = {}
    for job, needs in wanted.items():
        for need in needs:
            jobs.setdefault(need, frozenset())  # the U-Nets need nothing
        jobs[job] = frozenset(needs)
    return jobs


def _cost(job: tuple, profile: Profile) -> float:
    """A job's relative cost, to start long ones first (the U-Nets unlock the rest)."""
    kind = job[0]
    if kind == "f":
        return 10 * {"hcnn": 3, "lce": 2.5}.get(job[2], 2) / (2 if job[4] else 1)
    if kind == "maps":
        m = get_method(job[2])
        views = len(profile.seeds) if m.all_seeds else 8 if job[2] == "tta" else 1
        return 0.1 * views * (samples(profile, job[2]) or 1) if m.unet != "hcnn" else 0.2
    return 3 if kind in ("rca", "shift") else 1


def _reader(unet: str) -> str:
    """A method that reads the U-Net ``unet`` (any one: they train the same network)."""
    return next(m.name for m in METHOD_REGISTRY.values() if m.unet == unet)


def _run_job(job: tuple, profile: Profile, train_split: str) -> None:
    """Do one job of :func:`grid_jobs` in this process (its artifact lands in the store)."""
    device = pick_device()
    kind, root, *args = job
    if kind == "f":
        unet, seed, fold = args
        fit_segmentation(profile, _reader(unet), seed, root, device, False, fold=fold)
    elif kind == "maps":
        method, seed, split, crossfit = args
        segment_split(profile, method, seed, root, split, device, False, crossfit)
    elif kind == "g":
        row, seed = args
        fit_quality(profile, row, seed, root, train_split, device, False)
        # and its test predictions, so that predict_rows only loads
        predicted_quality(profile, row, seed, root, "test", train_split, device, False)
    elif kind == "shift":
        shift_job(profile, args[0], root, device)
    else:
        (seed,) = args
        # In this process: the grid's workers already keep every core busy (a pool here
        # would be sequential anyway, see _start_worker).
        test = segment_split(profile, "max_prob", seed, root, "test")
        rca_cached(profile, seed, root, test, n_jobs=1)


def _artifact(job: tuple, profile: Profile, train_split: str) -> Path:
    """The file that a job of :func:`grid_jobs` makes; the job is done when it exists."""
    kind, root, *args = job
    if kind == "f":
        unet, seed, fold = args
        return segmentation_model_folder(profile, _reader(unet), seed, root, fold) / "final.pt"
    if kind == "maps":
        method, seed, split, crossfit = args
        return segmentation_path(profile, method, seed, root, split, crossfit)
    if kind == "g":
        row, seed = args
        return quality_folder(profile, row, seed, root, train_split) / "final.pt"
    if kind == "shift":
        return shift_path(profile, args[0], root)
    return rca_path(profile, args[0], root)


def _start_worker() -> None:
    fix_threads()
    os.environ["LOKY_MAX_CPU_COUNT"] = "1"  # any joblib pool: one process per worker


def _ready() -> None:
    """A task that does nothing: unpickling it imports this module and so the package,
    torch and the rest, which is what a new worker spends its first seconds on."""


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` single-threaded processes for :func:`run_jobs`, started now: each
    imports the package while the caller goes on (making the data takes about as long
    as a worker's imports, 4-6 s on the ``tiny`` profile). The caller shuts it down."""
    context = multiprocessing.get_context("spawn")  # no torch state copied by fork
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker)
    for _ in range(workers):
        pool.submit(_ready)
    return pool


def run_jobs(
    profile: Profile,
    jobs: dict[tuple, frozenset[tuple]],
    workers: int,
    train_split: str = "train",
    pool: ProcessPoolExecutor | None = None,
) -> None:
    """Do ``jobs`` (:func:`grid_jobs`) in ``workers`` single-threaded processes, each job
    once all it needs is done, the costliest ready jobs first, and none whose artifact
    is in the store already; :func:`predict_rows` afterwards only loads. A failing job
    stops the run with its error; what finished is kept in the store. ``pool``, from
    :func:`worker_pool`, is used (and left open) instead of starting one."""
    done = {job for job in jobs if _artifact(job, profile, train_split).exists()}
    pending, running = {job: needs for job, needs in jobs.items() if job not in done}, {}
    if not pending:
        return  # everything is in the store already: no workers to start
    run = functools.partial(_run_job, profile=profile, train_split=train_split)
    bar = tqdm(total=len(pending), desc="grid jobs", disable=not progress_enabled())
    with contextlib.nullcontext(pool) if pool else worker_pool(workers) as pool:
        while pending or running:
            ready = [job for job, needs in pending.items() if needs <= done]
            ready.sort(key=lambda job: _cost(job, profile), reverse=True)
            for job in ready[: max(0, workers - len(running))]:  # keep the queue short
                running[pool.submit(run, job)] = job
                del pending[job]
            if not running:
                raise RuntimeError(f"jobs wait for jobs that do not exist: {list(pending)[:3]}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()  # a job's error stops the run here
                done.add(running.pop(future))
                bar.update()
    bar.close()


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
    closed; returns ``(Table 1, chapter 11's table or None)``."""
    out = Path(out)
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
