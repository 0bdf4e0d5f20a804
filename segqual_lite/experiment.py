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
``counterfactual`` folder inside the results folder (chapter 10);
:func:`~segqual_lite.results.merge_results` merges those folders too.

``workers=N`` (``reproduce --workers N``) first does the grid's work in N processes
(:func:`~segqual_lite.scheduler.run_jobs`): jobs that each make one artifact (a U-Net, a
split's masks and maps, a g, RCA's scores; :func:`~segqual_lite.scheduler.grid_jobs`),
each started once the jobs it needs are done.
Every job is seeded by what it computes, not by where it runs, so the numbers equal
those of one process.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import Profile, fix_threads, pick_device, progress_enabled, results_dir
from .data import prepare_data
from .deployment import conformal_results, shift_results
from .results import (
    COUNTERFACTUAL_FOLDER,
    RESULTS_LEGACY,
    GridResult,
    predict_rows,
    write_results,
)
from .rows import CONTROL_ROWS, EXTENDED_ROWS, METHODS, SCORE_ROWS, TABLE_ROWS, control_of
from .scheduler import grid_jobs, run_jobs
from .segment import segment_split
from .store import claim_folder, write_text
from .tables import csv_text
from .viz import plot_figure2, plot_figure3, plot_risk_coverage

__all__ = [
    "run_grid",
    "run_counterfactual",
    "counterfactual_jobs",
    "counterfactual_rows",
    "COUNTERFACTUAL_DATA",
    "COUNTERFACTUAL_ROWS",
]


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
    many processes first (:func:`~segqual_lite.scheduler.run_jobs`), with the same
    numbers; ``scheduler``, a :class:`segqual_lite.cluster.Scheduler` (``reproduce
    --executor``), does it in scheduler jobs and returns the predictions, with the same
    numbers.
    """
    rows = tuple(dict.fromkeys((*rows, *(EXTENDED_ROWS if beyond else ()))))
    seeds = tuple(profile.seeds if seeds is None else seeds)
    threads = fix_threads()
    device = device or pick_device()
    progress = progress_enabled() if progress is None else progress
    root = Path(data_root) if data_root else prepare_data(profile)
    out = claim_folder(out or results_dir(profile), "results", legacy=RESULTS_LEGACY)
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


def counterfactual_rows(rows: tuple[str, ...] = COUNTERFACTUAL_ROWS) -> tuple[str, ...]:
    """The rows the counterfactual runs: each of ``rows`` with its control."""
    return tuple(dict.fromkeys(r for row in rows for r in (control_of(row), row)))


def _counterfactual_grid(
    profile: Profile, rows: tuple[str, ...] = COUNTERFACTUAL_ROWS
) -> tuple[tuple[str, ...], Path]:
    """The counterfactual's rows and its data, made if needed."""
    return counterfactual_rows(rows), prepare_data(profile, hard_cases=COUNTERFACTUAL_DATA)


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
    """The jobs (:func:`~segqual_lite.scheduler.grid_jobs`) of :func:`run_counterfactual`,
    to run with others."""
    grid, root = _counterfactual_grid(profile, rows)
    return grid_jobs(profile, grid, tuple(seeds or profile.seeds), root)
