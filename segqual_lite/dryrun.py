"""``reproduce --dry-run``: the jobs a command would run, by kind, with their estimated
worker-seconds (:mod:`segqual_lite.cost`) and the wall time on this device; with an
executor, each scheduler job's ``--time``. It reads, trains and downloads nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

from .cluster import grid_units, unit_minutes
from .config import Profile, pick_device
from .cost import THROUGHPUT, device_key, grid_cost
from .experiment import counterfactual_rows
from .rows import EXTENDED_ROWS
from .scheduler import grid_jobs

__all__ = ["dry_run"]


def _span(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.1f} min"


def dry_run(
    profile: Profile,
    rows: tuple[str, ...],
    seeds: tuple[int, ...],
    beyond: bool = False,
    counterfactual: bool = False,
    workers: int = 1,
    executor: str | None = None,
    gpus: int = 0,
    time_min: int | None = None,
    on: str | None = None,
) -> str:
    """The dry run's report (module docstring) for ``reproduce`` with these arguments:
    ``workers`` local processes, or an ``executor`` whose jobs have ``gpus`` GPUs and
    ``time_min`` minutes (None: each job's estimate). ``on``: estimate for that kind of
    device (``"cpu"`` or ``"cuda"``) instead of this machine's or the executor's."""
    grids = [("", (*rows, *(EXTENDED_ROWS if beyond else ())), Path("<data>"))]
    if counterfactual:
        grids.append(("counterfactual ", counterfactual_rows(), Path("<data without rims>")))
    jobs: dict[tuple, frozenset[tuple]] = {}
    for _, grid_rows, root in grids:
        jobs |= grid_jobs(profile, grid_rows, seeds, root)
    device = ("cuda" if gpus else "cpu") if executor == "slurm" else pick_device()
    device = on or device
    workers = workers if not executor else 1
    plan = grid_cost(profile, jobs, workers, device)
    key = device_key(device)
    entry = THROUGHPUT[key]
    lines = [
        f"dry run of reproduce --profile {profile.name}: {len(seeds)} seeds, "
        f"{len(grids[0][1])} rows"
        + (" and the counterfactual" if counterfactual else "")
        + "; nothing is read, trained or downloaded",
        *textwrap.wrap(f"estimated on {key} ({entry['device']}; {entry['source']})", 76),
        f"  {'jobs':<16} {'count':>6} {'estimate':>16}",
    ]
    for kind, (count, seconds) in plan["kinds"].items():
        lines.append(f"  {kind:<16} {count:>6} {seconds:>10.0f} worker-s")
    lines.append(f"  {'total':<16} {len(jobs):>6} {plan['worker_seconds']:>10.0f} worker-s")
    if not executor:
        where = "this device" if on is None else "a device"
        lines.append(
            f"wall time on {where} ({key}) with {workers} worker"
            f"{'s' if workers > 1 else ''}: about {_span(plan['wall_seconds'])}"
        )
        return "\n".join(lines)
    lines.append(f"{executor} jobs (one per seed and U-Net), with the --time each asks for:")
    for prefix, grid_rows, root in grids:
        for name, unit in sorted(grid_units(profile, grid_rows, seeds, root).items()):
            minutes = time_min or unit_minutes(profile, unit, gpus)
            estimate = sum(plan["seconds"][job] for job in unit.jobs)
            lines.append(
                f"  {prefix + name:<40} {len(unit.jobs):>3} jobs, about "
                f"{_span(estimate):>9}: --time {minutes}"
            )
    return "\n".join(lines)
