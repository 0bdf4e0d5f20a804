"""The grid on an existing scheduler: ``reproduce --executor slurm|local`` (submitit).

The grid's jobs (:func:`~segqual_lite.scheduler.grid_jobs`: U-Nets, maps, quality
networks, RCA) are gathered into **units**, one scheduler job each
(:func:`grid_units`): per seed, one unit per U-Net the rows read (the plain U-Net with
every row on its masks and RCA, HCNN's, LCE's, and with ``--beyond`` the cross-fitted
fold U-Nets), so that a seed's three or four networks train side by side; the rows
that need every seed (the deep ensemble) form one unit that starts after the units it
needs. A unit does its jobs with the code of the sequential run
(:func:`~segqual_lite.scheduler.run_jobs`' job function), skipping those whose
artifact is in the store, then writes the per-image predictions of its rows
(:func:`~segqual_lite.results.predict_rows`) into the artifact store. The process
that submitted the units waits, printing a line per job as it is submitted, finishes
or fails (with its log file), and merges the units' predictions in the order of the
sequential run, so the tables are the sequential run's.

A unit is done when its predictions are in the store (their file name hashes the paths
of every artifact they come from, so other data or settings make other files): a rerun
submits only the units that are not done, and a unit's job only trains what is missing.

Every process must see the same artifact store (``$SEGQUAL_HOME``, made absolute and
passed to the jobs) and data folder: a shared file system on a cluster. submitit writes
each job's pickles and logs to ``<results>/jobs/`` (``<job id>_0_log.out`` and ``.err``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import Profile, fix_threads, home, pick_device
from .cost import job_seconds, slurm_minutes
from .results import predict_rows
from .rows import get_method, get_row
from .scheduler import _artifact, _run_job, row_jobs
from .store import digest, write_text
from .tables import csv_text, predictions_frame, read_predictions

__all__ = [
    "EXECUTORS",
    "Scheduler",
    "Unit",
    "GridJobsFailed",
    "grid_units",
    "unit_minutes",
    "run_units",
]

EXECUTORS = ("slurm", "local")


@dataclass(frozen=True)
class Scheduler:
    """Where and with what each unit runs. ``kind``: ``"slurm"`` or ``"local"`` (the
    units as processes of this machine, for a test or a workstation); ``time_min``
    (None: each job's estimate, :func:`unit_minutes`), ``mem_gb``, ``gpus``, ``cpus``
    and ``partition`` (None: the cluster's default) are asked for each job; ``poll_s``:
    how often the jobs' states are read."""

    kind: str = "slurm"
    partition: str | None = None
    gpus: int = 1
    time_min: int | None = None
    mem_gb: int = 32
    cpus: int = 4
    poll_s: float | None = None  # default: 30 s on SLURM, 0.5 s locally

    def __post_init__(self):
        if self.kind not in EXECUTORS:
            raise ValueError(f"unknown executor {self.kind!r}: choose one of {EXECUTORS}")

    def predictions(
        self,
        profile: Profile,
        rows: tuple[str, ...],
        seeds: tuple[int, ...],
        root: Path,
        out: Path,
        train_split: str = "train",
    ) -> pd.DataFrame:
        """:func:`run_units` on this scheduler (what
        :func:`~segqual_lite.experiment.run_grid` calls with ``scheduler=``)."""
        return run_units(profile, rows, seeds, root, out, self, train_split)


@dataclass(frozen=True)
class Unit:
    """One scheduler job: ``jobs`` (of :func:`~segqual_lite.scheduler.grid_jobs`, in an
    order in which each comes after the jobs it needs), the ``(row, seed)`` predictions
    it writes, the units it waits for (``needs``) and every job its predictions come
    from (``sources``, its own and other units')."""

    name: str
    jobs: tuple[tuple, ...]
    predictions: tuple[tuple[str, int], ...]
    needs: frozenset[str]
    sources: tuple[tuple, ...]


class GridJobsFailed(RuntimeError):
    """Some units failed; the message names each with its log file."""


def _group(seed: int, unet: str, crossfit: bool) -> str:
    return f"seed{seed}-{unet}" + ("-crossfit" if crossfit else "")


def _home_unit(job: tuple) -> str:
    """The unit that does ``job``: its seed's unit of the U-Net it comes from; the maps
    (and the g) of a method made of every seed's U-Nets, a unit of their own."""
    kind, _, *args = job
    if kind == "f":
        unet, seed, fold = args
        return _group(seed, unet, fold is not None)
    if kind == "maps":
        method, seed, _, crossfit = args
        m = get_method(method)
        return m.name if m.all_seeds else _group(seed, m.unet, crossfit)
    if kind == "g":
        row, seed = args
        return _row_unit(row, seed)
    return _group(args[0], get_method("max_prob").unet, False)  # RCA: the plain U-Net's


def _row_unit(row: str, seed: int) -> str:
    """The unit that writes the predictions of ``row`` for ``seed``."""
    r, m = get_row(row), get_method(get_row(row).method)
    return m.name if m.all_seeds else _group(seed, m.unet, r.crossfit)


def grid_units(
    profile: Profile,
    rows: tuple[str, ...],
    seeds: tuple[int, ...],
    root: Path,
    train_split: str = "train",
) -> dict[str, Unit]:
    """The grid of ``rows`` x ``seeds`` as units (module docstring), by name."""
    needs: dict[tuple, frozenset[tuple]] = {}
    members: dict[str, dict[tuple, None]] = {}
    predictions: dict[str, list[tuple[str, int]]] = {}
    sources: dict[str, dict[tuple, None]] = {}
    for seed in seeds:
        for row in rows:
            jobs = row_jobs(profile, row, seed, root, train_split)
            needs |= jobs
            unit = _row_unit(row, seed)
            predictions.setdefault(unit, []).append((row, seed))
            sources.setdefault(unit, {}).update(dict.fromkeys(jobs))
            for job in jobs:
                members.setdefault(_home_unit(job), {})[job] = None
    units = {}
    for name, jobs in members.items():
        ordered, placed = [], set()
        while len(ordered) < len(jobs):  # each job after those of its needs in this unit
            for job in jobs:
                inside = {n for n in needs[job] if _home_unit(n) == name}
                if job not in placed and inside <= placed:
                    ordered.append(job)
                    placed.add(job)
        # The units whose jobs this one's jobs need, or its predictions come from.
        waits = {_home_unit(n) for job in jobs for n in needs[job]}
        waits |= {_home_unit(job) for job in sources.get(name, {})}
        units[name] = Unit(
            name,
            tuple(ordered),
            tuple(predictions.get(name, ())),
            frozenset(waits - {name}),
            tuple(sources.get(name, {})),
        )
    return units


def unit_minutes(profile: Profile, unit: Unit, gpus: int = 1) -> int:
    """The time limit asked for ``unit``, in minutes: the cost model's estimate of its
    jobs (:func:`segqual_lite.cost.job_seconds`, on a GPU when the job has one) with a
    margin (:func:`segqual_lite.cost.slurm_minutes`)."""
    device = "cuda" if gpus else "cpu"
    return slurm_minutes(sum(job_seconds(job, profile, device) for job in unit.jobs))


def unit_predictions_path(profile: Profile, unit: Unit, train_split: str = "train") -> Path:
    """Where a unit's predictions are kept in the store: named by the unit and a hash of
    the artifacts they come from and the rows and seeds they cover."""
    key = {
        "artifacts": sorted(
            str(_artifact(job, profile, train_split).relative_to(home())) for job in unit.sources
        ),
        "predictions": [list(p) for p in unit.predictions],
    }
    return home() / "grid" / profile.name / f"{unit.name}-{digest(key)}.csv"


def run_unit(
    profile: Profile, unit: Unit, root: Path, train_split: str, env: dict[str, str]
) -> str:
    """A unit's job (in the scheduler's process): its jobs, each unless its artifact is
    in the store, then its predictions. Returns where they were written."""
    os.environ.update(env)
    fix_threads()
    for job in unit.jobs:
        if not _artifact(job, profile, train_split).exists():
            print(f"{unit.name}: {job[0]} {job[2:]}", flush=True)
            _run_job(job, profile, train_split)
    device = pick_device()
    frames = [
        predict_rows(profile, (row,), (seed,), root, device, False, train_split)
        for row, seed in unit.predictions
    ]
    path = unit_predictions_path(profile, unit, train_split)
    write_text(path, csv_text(pd.concat(frames) if frames else predictions_frame([])))
    return str(path)


def _executor(scheduler: Scheduler, folder: Path):
    try:
        import submitit
    except ImportError:  # an optional dependency: pip install "segqual-lite[cluster]"
        raise ImportError(
            "--executor needs submitit: pip install submitit (or segqual-lite[cluster])"
        ) from None
    executor = submitit.AutoExecutor(folder=folder, cluster=scheduler.kind)
    executor.update_parameters(
        gpus_per_node=scheduler.gpus,
        cpus_per_task=scheduler.cpus,
        mem_gb=scheduler.mem_gb,
        slurm_partition=scheduler.partition,
    )
    return executor


def _reason(error: Exception, limit: int = 400) -> str:
    """The exception at the end of a failed job's trace, on one line."""
    parts = str(error).split("----------------------\n")  # submitit's frame of the trace
    lines = [x for x in (parts[1] if len(parts) > 2 else str(error)).splitlines() if x.strip()]
    frames = [i for i, x in enumerate(lines) if x.startswith("  File ")]
    after = frames[-1] + 1 if frames else 0  # the exception follows the last frame's code
    start = next((i for i in range(after, len(lines)) if not lines[i][0].isspace()), after)
    text = " ".join(x.strip() for x in lines[start:])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _say(line: str) -> None:
    print(line, flush=True)  # a line per job, also when the output goes to a log file


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def run_units(
    profile: Profile,
    rows: tuple[str, ...],
    seeds: tuple[int, ...],
    root: Path,
    out: Path,
    scheduler: Scheduler,
    train_split: str = "train",
) -> pd.DataFrame:
    """Submit the units of the grid that are not done, each once the units it needs are,
    wait for them, and return every (row, seed)'s predictions in the order of
    :func:`~segqual_lite.results.predict_rows`. Raises :class:`GridJobsFailed`, naming
    each failed unit's log file, when any failed (the units that do not need it still
    run, so a rerun submits only the failed ones and those after them)."""
    root = Path(root).resolve()
    units = grid_units(profile, rows, seeds, root, train_split)
    paths = {name: unit_predictions_path(profile, u, train_split) for name, u in units.items()}
    done = {name for name, path in paths.items() if path.exists()}
    pending = {name: u for name, u in units.items() if name not in done}
    where = "SLURM" if scheduler.kind == "slurm" else "this machine"
    _say(
        f"grid on {where}: {len(units)} jobs, {len(done)} done already"
        + (f", {len(pending)} to run; logs under {out / 'jobs'}" if pending else "")
    )
    env = {k: v for k, v in os.environ.items() if k.startswith("SEGQUAL_")}
    env["SEGQUAL_HOME"] = str(home())  # absolute: jobs may start in another folder
    if scheduler.kind == "local":
        env["LOKY_MAX_CPU_COUNT"] = "1"  # RCA's forests: the jobs share this machine's cores
    executor = _executor(scheduler, Path(out).resolve() / "jobs") if pending else None
    # Locally, no more jobs at once than cores; a cluster's scheduler queues them itself.
    limit = (os.cpu_count() or 1) if scheduler.kind == "local" else len(units)
    poll = scheduler.poll_s or (30.0 if scheduler.kind == "slurm" else 0.5)
    running: dict[str, tuple] = {}
    failed: dict[str, str] = {}
    while pending or running:
        changed = True
        while changed:  # a unit skipped may make another skipped
            changed = False
            for name, unit in list(pending.items()):
                if unit.needs & failed.keys():
                    needed = ", ".join(sorted(unit.needs & failed.keys()))
                    failed[name] = f"not run: it needs {needed}"
                    _say(f"[skipped] {name}: {failed[name]}")
                elif unit.needs <= done and len(running) < limit:
                    minutes = scheduler.time_min or unit_minutes(profile, unit, scheduler.gpus)
                    executor.update_parameters(name=f"segqual-{name}", timeout_min=minutes)
                    job = executor.submit(run_unit, profile, unit, root, train_split, env)
                    running[name] = (job, time.monotonic())
                    _say(f"[submitted] {name}: job {job.job_id}, log {job.paths.stdout}")
                else:
                    continue
                del pending[name]
                changed = True
        if not running:
            if pending:
                raise RuntimeError(f"units wait for units that do not exist: {list(pending)}")
            break
        time.sleep(poll)
        for name, (job, start) in list(running.items()):
            if not job.done():
                continue
            del running[name]
            error = job.exception()
            took = _minutes(time.monotonic() - start)
            if error is None and paths[name].exists():
                done.add(name)
                _say(f"[done {len(done)}/{len(units)}] {name}: job {job.job_id}, {took}")
            else:
                why = _reason(error) if error else "no predictions written"
                failed[name] = f"job {job.job_id} failed ({why}); log: {job.paths.stderr}"
                _say(f"[FAILED] {name}: {failed[name]}")
    if failed:
        lines = "\n".join(f"  - {name}: {why}" for name, why in failed.items())
        raise GridJobsFailed(
            f"{len(failed)} of {len(units)} grid jobs did not finish:\n{lines}\n"
            "Fix the cause and run the same command again: finished jobs are not rerun."
        )
    by_unit = {name: read_predictions(paths[name]) for name in units if units[name].predictions}
    frames = []
    for seed in seeds:  # the order of predict_rows
        for row in rows:
            part = by_unit[_row_unit(row, seed)]
            frames.append(part[(part["method"] == row) & (part["seed"] == seed)])
    return predictions_frame(pd.concat(frames))
