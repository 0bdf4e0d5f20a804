"""The grid's work as a graph of jobs, and the scheduler that runs it in worker processes
(``reproduce --workers N``; :mod:`segqual_lite.cluster` runs the same jobs on SLURM).

A job makes one artifact of the store: a U-Net of f, a split's masks and maps, a g with
its test predictions, RCA's scores, or chapter 12's shift test (:func:`grid_jobs`). Each
starts once the jobs it needs are done, the costliest first, in single-threaded
processes (:func:`run_jobs`); a job whose artifact exists is not run. Every job is seeded
by what it computes, not by where it runs, so the numbers equal those of one process,
and :func:`segqual_lite.results.predict_rows` afterwards only loads.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from tqdm.auto import tqdm

from .config import Profile, fix_threads, pick_device, progress_enabled
from .deployment import CONFORMAL_ROWS, SHIFT_ROWS, shift_job, shift_path
from .quality import fit_quality, predicted_quality, quality_folder
from .rca import rca_cached, rca_path
from .rows import METHOD_REGISTRY, SCORE_ROWS, get_method, get_row, samples
from .segment import segment_split, segmentation_path
from .training import fit_segmentation, segmentation_model_folder

__all__ = ["grid_jobs", "row_jobs", "deployment_jobs", "pending_jobs", "run_jobs", "worker_pool"]


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


def pending_jobs(
    jobs: dict[tuple, frozenset[tuple]], profile: Profile, train_split: str = "train"
) -> dict[tuple, frozenset[tuple]]:
    """The jobs of ``jobs`` whose artifact is not in the store yet, each with the jobs it
    still waits for."""
    done = {job for job in jobs if _artifact(job, profile, train_split).exists()}
    return {job: needs - done for job, needs in jobs.items() if job not in done}


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
    pending, running = pending_jobs(jobs, profile, train_split), {}
    done = set(jobs) - set(pending)
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
