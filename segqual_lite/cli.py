"""Command line: ``python -m segqual_lite`` (the engine the notebooks call, without Jupyter).

    python -m segqual_lite data synth --out DIR [--n-train N --n-val N --n-test N --size S --seed S]
    python -m segqual_lite data check DIR
    python -m segqual_lite data download DIR [--mirror URL] [--profile colab|paper|ph2] [--set ...]
    python -m segqual_lite reproduce --profile tiny|colab|paper|... [--data DIR] [--out DIR]
                                     [--rows ROW ...] [--seeds 0-15|0,2,5-7] [--beyond]
                                     [--counterfactual] [--workers N] [--set FIELD=VALUE]
                                     [--executor slurm|local [--partition P] [--gpus N]
                                      [--time MIN] [--mem GB] [--cpus N]]
    python -m segqual_lite merge DIR [DIR ...] --out DIR
    python -m segqual_lite reference [--profile tiny] [--seeds 0-19] [--workers N] [--out DIR]

Data faults exit with status 2 and a message naming each file, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import time
from pathlib import Path

from .assemble import add_fit, combine_parts
from .cluster import EXECUTORS, GridJobsFailed, Scheduler
from .config import PROFILES, fix_threads, get_profile, parse_overrides
from .data import (
    DataError,
    check_data,
    detect_layout,
    download_data,
    make_synthetic_folder,
    make_synthetic_isic,
    prepare_data,
)
from .data.layout import LAYOUT_NAMES
from .dryrun import dry_run
from .experiment import counterfactual_jobs, run_counterfactual, run_grid
from .reference import PLANNED_SEEDS, REFERENCE_DIR, data_record, pack_reference
from .results import COUNTERFACTUAL_FOLDER, merge_results
from .rows import CONTROL_ROWS, EXTENDED_ROWS, TABLE_ROWS
from .scheduler import grid_jobs, run_jobs, worker_pool
from .seeds import parse_seeds
from .segment import fit_frame
from .store import ForeignFolder

EXIT_DATA_ERROR = 2
EXIT_JOBS_FAILED = 1


def _cmd_synth(args) -> int:
    if args.layout == "folder":
        counts = make_synthetic_folder(args.out, args.n_train, args.n_val, args.n_test, args.seed)
        print(f"wrote synthetic lesions as a folder of your own to {args.out}: {counts}")
        return 0
    counts = make_synthetic_isic(
        args.out, args.n_train, args.n_val, args.n_test, size=args.size, seed=args.seed
    )
    print(f"wrote synthetic ISIC 2017 layout to {args.out}: {counts}")
    return 0


def _cmd_check(args) -> int:
    layout, counts = check_data(args.root)
    print(f"{args.root}: {LAYOUT_NAMES[layout]}")
    print(" ".join(f"{split}={n}" for split, n in counts.items()))
    return 0


def _profile(args):
    """The profile of ``--profile``, changed by ``--set``."""
    profile = get_profile(args.profile)
    return profile.overridden(parse_overrides(args.set)) if args.set else profile


def _cmd_download(args) -> int:
    counts = download_data(_profile(args), args.root, args.mirror, progress=not args.quiet)
    print(" ".join(f"{split}={n}" for split, n in counts.items()))
    return 0


def _cmd_reproduce(args) -> int:
    # Everything given is checked before any work (data, workers, progress bars).
    profile = _profile(args)
    rows = tuple(args.rows or (*TABLE_ROWS, *CONTROL_ROWS))
    seeds = parse_seeds(" ".join(args.seeds)) if args.seeds else profile.seeds
    own = profile.data not in ("synthetic", "isic2017") or bool(
        args.data and detect_layout(args.data) == "folder"
    )
    counterfactual = args.counterfactual and profile.data == "synthetic" and not own
    if args.counterfactual and not counterfactual:
        print(
            "no counterfactual: it needs the synthetic generator, and "
            + ("these data are a folder of your own" if own else f"{profile.name!r} reads ISIC")
        )
    if args.dry_run:
        gpus = args.gpus if args.executor else 0
        plan = (args.beyond, counterfactual, args.workers, args.executor, gpus, args.time, args.on)
        print(dry_run(profile, rows, seeds, *plan))
        return 0
    # Every file goes under --out when it is given: the counterfactual in a subfolder.
    counterfactual_out = Path(args.out) / COUNTERFACTUAL_FOLDER if args.out else None
    # The workers start (and import) while the data are made.
    local = args.workers > 1 and not args.executor
    with worker_pool(args.workers) if local else contextlib.nullcontext() as pool:
        # A folder given with --data is checked and read as it is, never changed.
        root = prepare_data(profile, args.data)
        scheduler = None
        if args.executor:
            scheduler = Scheduler(
                args.executor, args.partition, args.gpus, args.time, args.mem, args.cpus
            )
        elif local:  # the grid's and the counterfactual's jobs share the workers
            extended = EXTENDED_ROWS if args.beyond else ()
            jobs = grid_jobs(profile, (*rows, *extended), seeds, root)
            jobs |= counterfactual_jobs(profile, seeds=seeds) if counterfactual else {}
            run_jobs(profile, jobs, args.workers, pool=pool)
    result = run_grid(
        profile,
        rows=rows,
        seeds=seeds,
        data_root=root,
        out=args.out,
        beyond=args.beyond,
        scheduler=scheduler,
    )
    _print_tables(result)
    print(f"results in {result.out}")
    if counterfactual:
        out = run_counterfactual(
            profile, seeds=seeds, out=counterfactual_out, scheduler=scheduler
        ).out
        print(f"counterfactual (no ambiguous rims) in {out}")
    return 0


def _print_tables(result) -> None:
    print((result.out / "table1.md").read_text())
    if result.beyond is not None:
        print((result.out / "beyond.md").read_text())


def _cmd_merge(args) -> int:
    result = merge_results(args.folders, args.out, args.profile or "")
    _print_tables(result)
    print(f"merged {len(args.folders)} result folders into {result.out}")
    return 0


def _cmd_reference(args) -> int:
    """``reproduce --counterfactual`` for the planned seeds into a work folder, then the
    reference packed from it (:func:`segqual_lite.reference.pack_reference`); with
    ``--from-results``, packed from a finished (e.g. merged) results folder instead."""
    profile = _profile(args)
    seeds = parse_seeds(args.seeds or PLANNED_SEEDS[args.profile])
    work = Path(args.from_results or args.work or Path("_build") / "reference-work" / profile.name)
    out = Path(args.out or REFERENCE_DIR / profile.name)
    if args.from_parts:
        combine_parts(args.from_parts, out, profile)
        print(f"reference of {profile.name} combined from {len(args.from_parts)} parts in {out}")
        return 0
    if args.fit_only:
        fix_threads()  # as the run's workers: one thread, or other networks from a seed
        add_fit(out, fit_frame(profile, seeds, prepare_data(profile)), args.argv)
        print(f"f's fit on {len(seeds)} seeds added to {out}")
        return 0
    start = time.perf_counter()
    if not args.from_results:
        reproduce = ["reproduce", "--profile", args.profile]
        reproduce += ["--counterfactual"] if profile.data == "synthetic" else []
        reproduce += ["--seeds", " ".join(map(str, seeds)), "--workers", str(args.workers)]
        reproduce += [f"--set={s}" for s in args.set or []] + ["--out", str(work)]
        status = main(reproduce)
        if status:
            return status
    command = shlex.join(["python", "-m", "segqual_lite", *args.argv])
    wall = None if args.from_results else time.perf_counter() - start
    # f's fit on its training and test images, from the run's cached masks
    root = prepare_data(profile)
    fit = None if args.from_results else fit_frame(profile, seeds, root)
    data = data_record(profile, root)
    pack_reference(work, out, profile, seeds, command, wall, fit=fit, data=data)
    print(f"reference of {profile.name} ({len(seeds)} seeds) in {out}")
    return 0


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="change a field of the profile, e.g. --set epochs_f=1 --set seeds=0-3 "
        "(results go to a profile named after the changes)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m segqual_lite", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="synthesise, check or download ISIC 2017 data")
    data_cmds = data.add_subparsers(dest="data_command", required=True)

    synth = data_cmds.add_parser("synth", help="write synthetic lesions in the ISIC 2017 layout")
    synth.add_argument("--out", required=True, help="folder to write")
    synth.add_argument("--n-train", type=int, default=300)
    synth.add_argument("--n-val", type=int, default=60)
    synth.add_argument("--n-test", type=int, default=150)
    synth.add_argument("--size", type=int, default=64, help="image height in pixels")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--layout",
        choices=("isic2017", "folder"),
        default="isic2017",
        help="folder: <split>/images and <split>/masks, mixed sizes and formats (--size unused)",
    )
    synth.set_defaults(func=_cmd_synth)

    check = data_cmds.add_parser("check", help="verify a data folder; exit 2 on any fault")
    check.add_argument("root")
    check.set_defaults(func=_cmd_check)

    download = data_cmds.add_parser("download", help="fetch ISIC 2017 Part 1, or PH2")
    download.add_argument("root")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.add_argument(
        "--mirror",
        help="base URL of a mirror of the six ISIC zips (default: $SEGQUAL_ISIC_MIRROR, else "
        "the ISIC archive); with --profile ph2, the archive's URL ($SEGQUAL_PH2_MIRROR)",
    )
    download.add_argument(
        "--profile",
        default="colab",
        choices=["colab", "paper", "ph2"],
        help="colab or paper: ISIC 2017, the splits holding the profile's n_train, n_val, "
        "n_test (default colab: the official 2000 / 150 / 600); ph2: the PH2 database",
    )
    _add_set(download)
    download.set_defaults(func=_cmd_download)

    reproduce = commands.add_parser(
        "reproduce", help="train and evaluate the grid of Table 1; write tables and figures"
    )
    reproduce.add_argument("--profile", default="tiny", choices=list(PROFILES))
    reproduce.add_argument("--data", help="data folder (default: prepared for the profile)")
    reproduce.add_argument(
        "--out",
        help="results folder, every file of the run under it (default: "
        "_build/results/<profile>; the cache of models and maps stays in $SEGQUAL_HOME)",
    )
    reproduce.add_argument(
        "--rows",
        nargs="+",
        choices=[*TABLE_ROWS, *CONTROL_ROWS, *EXTENDED_ROWS],
        help="a subset of the rows (default: those of Table 1 and their controls)",
    )
    reproduce.add_argument(
        "--seeds",
        nargs="+",
        metavar="SEEDS",
        help="the seeds to run, as integers and ranges: 0-15, 0,2,5-7 or 0 1 2 "
        "(default: the profile's)",
    )
    reproduce.add_argument(
        "--beyond",
        action="store_true",
        help="also run chapter 11's rows (cross-fitting, ensemble, TTA) and write beyond.csv",
    )
    _add_set(reproduce)
    reproduce.add_argument(
        "--counterfactual",
        action="store_true",
        help="also run chapter 10's counterfactual: every uncertainty row and its control "
        "on the same synthetic data without ambiguous rims, into <out>/counterfactual "
        "(synthetic profiles only)",
    )
    reproduce.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes that train and segment side by side (same numbers; default 1)",
    )
    reproduce.add_argument(
        "--dry-run",
        action="store_true",
        help="print the jobs, their estimated worker-seconds and the wall time (and, with "
        "--executor, each job's --time); needs no data and runs nothing",
    )
    reproduce.add_argument(
        "--on",
        choices=("cpu", "cuda"),
        help="with --dry-run: estimate for this kind of device instead of this machine's",
    )
    cluster = reproduce.add_argument_group(
        "scheduler", "run the grid as scheduler jobs through submitit (default: in this process)"
    )
    cluster.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="slurm: one job per seed and U-Net (the ensemble's after them), then merged; "
        "local: the same jobs as processes of this machine. A rerun submits only "
        "unfinished jobs; logs go to <out>/jobs/",
    )
    defaults = Scheduler()
    cluster.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    cluster.add_argument(
        "--gpus", type=int, default=defaults.gpus, help="GPUs per job (default %(default)s)"
    )
    cluster.add_argument(
        "--time",
        type=int,
        default=defaults.time_min,
        help="time limit per job in minutes (default: the cost model's estimate of each "
        "job, twice, plus 10 minutes; see --dry-run)",
    )
    cluster.add_argument(
        "--mem",
        type=int,
        default=defaults.mem_gb,
        help="memory per job in GB (default %(default)s)",
    )
    cluster.add_argument(
        "--cpus", type=int, default=defaults.cpus, help="CPUs per job (default %(default)s)"
    )
    reproduce.set_defaults(func=_cmd_reproduce)

    merge = commands.add_parser(
        "merge", help="merge results of grid subsets (rows or seeds run apart) into one table"
    )
    merge.add_argument("folders", nargs="+", help="result folders holding predictions.csv")
    merge.add_argument("--out", required=True, help="folder for the merged results")
    merge.add_argument("--profile", help="profile name for the table's caption")
    merge.set_defaults(func=_cmd_merge)

    reference = commands.add_parser(
        "reference",
        help="the reference run of book/analysis_plan.md: reproduce --counterfactual for the "
        "planned seeds, packed with its provenance into results/reference/<profile>",
    )
    reference.add_argument("--profile", default="tiny", choices=sorted(PLANNED_SEEDS))
    reference.add_argument(
        "--seeds", help="the seeds (default: the plan's, 0-19 on tiny); a subset can be merged"
    )
    reference.add_argument("--workers", type=int, default=1, help="processes side by side")
    reference.add_argument("--out", help="reference folder (default: results/reference/<profile>)")
    reference.add_argument(
        "--work", help="the run's results folder (default: _build/reference-work/<profile>)"
    )
    reference.add_argument(
        "--from-results",
        metavar="DIR",
        help="pack a finished results folder instead of running (reproduce --counterfactual "
        "run by seeds elsewhere and merged with `merge`)",
    )
    reference.add_argument(
        "--from-parts",
        nargs="+",
        metavar="DIR",
        help="combine references made in parts by seeds (--seeds 0-7 --out P1, ...) into --out",
    )
    reference.add_argument(
        "--fit-only",
        action="store_true",
        help="add f's fit (fit.csv: train and test Jaccard per seed) to the reference in "
        "--out, training only what the cache lacks; the rest of the reference is kept",
    )
    _add_set(reference)
    reference.set_defaults(func=_cmd_reference)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_DATA_ERROR
    except GridJobsFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_JOBS_FAILED
    except (ValueError, FileNotFoundError, ForeignFolder) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_DATA_ERROR


if __name__ == "__main__":
    sys.exit(main())
