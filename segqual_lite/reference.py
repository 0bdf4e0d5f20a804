"""The reference run: many seeds of the same code, shipped with the book, on which the
verdicts of chapters 10 to 12 rest (``book/analysis_plan.md`` fixes its comparisons).

A build trains 3 seeds, which show the spread but decide little. The reference holds
N seeds of the same profile, made by ``make reference`` (``python -m segqual_lite
reference``, the grid and its counterfactual through ``reproduce``), in
``results/reference/<profile>/``:

* ``predictions.csv.gz``: the per-image predictions (the columns of ``predictions.csv``)
  of every row of Table 1 and every control, for every seed;
* ``counterfactual/predictions.csv.gz``: the same for the counterfactual's rows, on the
  data without ambiguous rims;
* ``table1.md``: Table 1 over the N seeds;
* ``fit.csv`` (when packed with it): per seed and split, the plain U-Net's mean Jaccard
  and failure share on its training and test images;
* ``run.json``: the provenance: commit, the artifact store's code versions, the profile,
  torch, the CPU's capability, threads, device, wall time and the exact command.

:func:`load_reference` refuses a **stale** reference (code versions or profile other than
the code's) with the command that regenerates it; :func:`check_build` compares a build's
seeds with the reference's: equal to its same seeds in the same environment; in another
(other floats, so other training trajectories: each seed a new draw), each row's and
metric's mean over the build's seeds inside the prediction interval that the reference's
seeds give for that many new seeds (:func:`prediction_interval`), jointly at
1 - :data:`FAMILY_ALPHA`.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from .config import Profile
from .provenance import data_record, environment
from .store import CODE_VERSIONS, claim_folder, write_bytes, write_text
from .tables import (
    METRICS,
    csv_text,
    format_table_md,
    metric_name,
    per_seed_arrays,
    read_predictions,
    seed_metrics,
    table_from_predictions,
)

__all__ = [
    "REFERENCE_DIR",
    "REFERENCE_ENV",
    "REGENERATE",
    "PLANNED_SEEDS",
    "FAMILY_ALPHA",
    "prediction_interval",
    "data_record",
    "seed_table",
    "Reference",
    "StaleReference",
    "BuildCheck",
    "environment",
    "reference_folder",
    "pack_reference",
    "gzip_csv",
    "current_commit",
    "load_reference",
    "check_build",
]

REFERENCE_DIR = Path("results") / "reference"  # in the repository
REFERENCE_ENV = "SEGQUAL_REFERENCE"  # a folder of references elsewhere (one per profile)
REGENERATE = "make reference"  # the documented command (Makefile)
# Another environment (torch, CPU capability, threads): how often a healthy build may fail
# the check at most, over all its rows and metrics together (Bonferroni: each of the K
# intervals at 1 - FAMILY_ALPHA / K). Its simulated rate: segqual_lite.power.
FAMILY_ALPHA = 0.01
# The seeds of each profile's reference, fixed by book/analysis_plan.md (N = 20 on tiny,
# 16 on tiny-overfit).
PLANNED_SEEDS = {"tiny": "0-19", "tiny-overfit": "0-15", "ph2": "0-19"}
PREDICTIONS = "predictions.csv.gz"
COUNTERFACTUAL = "counterfactual"
FIT = "fit.csv"  # f's fit on its training and test images, per seed


class StaleReference(RuntimeError):
    """The reference was made by other code or another profile than the code's."""


@dataclass
class Reference:
    """A loaded reference run (module docstring)."""

    folder: Path
    run: dict
    predictions: pd.DataFrame
    counterfactual: pd.DataFrame | None = None
    fit: pd.DataFrame | None = None  # f's fit per seed and split (fit.csv), when recorded

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.run["seeds"])

    @property
    def environment(self) -> dict:
        return self.run["environment"]


def _repository() -> Path:
    return Path(__file__).resolve().parents[1]


def reference_folder(profile_name: str) -> Path | None:
    """The reference folder of ``profile_name``: under ``$SEGQUAL_REFERENCE`` when set,
    else ``results/reference/<profile>`` of the repository this package was installed
    from, of the current folder or of its parent (a chapter runs in ``notebooks/``), else
    the copy installed with the package (``segqual_lite/references/<profile>``, as on
    Colab); None when there is none (a profile without a reference)."""
    bases = [Path(os.environ[REFERENCE_ENV])] if os.environ.get(REFERENCE_ENV) else []
    bases += [d / REFERENCE_DIR for d in (_repository(), Path.cwd(), Path.cwd().parent)]
    bases.append(Path(__file__).resolve().parent / "references")
    for base in bases:
        if (base / profile_name / "run.json").is_file():
            return base / profile_name
    return None


def gzip_csv(frame: pd.DataFrame) -> bytes:
    """CSV text, gzipped without a time stamp: the same predictions give the same bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as out:
        out.write(csv_text(frame).encode())
    return buffer.getvalue()


def current_commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_repository(), capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "segqual_lite"],
            cwd=_repository(),
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    if found.returncode:
        return "unknown"
    return found.stdout.strip() + (" (package modified)" if dirty.stdout.strip() else "")


def pack_reference(
    results: str | Path,
    out: str | Path,
    profile: Profile,
    seeds: tuple[int, ...],
    command: str,
    wall_s: float | None,
    device: str | None = None,
    fit: pd.DataFrame | None = None,
    data: dict | None = None,
) -> Path:
    """Write the reference of ``profile`` into ``out`` from the results folder of a run
    of ``reproduce --counterfactual --seeds ...`` (its ``predictions.csv`` and
    ``counterfactual/predictions.csv``), with the provenance (module docstring);
    ``wall_s`` None when the results were run elsewhere and only packed here; ``fit``, f's
    fit per seed and split (:func:`segqual_lite.segment.fit_frame`), as ``fit.csv``;
    ``data``, what identifies the data read
    (:func:`~segqual_lite.provenance.data_record`), in ``run.json``."""
    results = Path(results)
    out = claim_folder(out, "a reference", legacy=("run.json",))
    predictions = read_predictions(results / "predictions.csv")
    missing = sorted(set(seeds) - set(predictions["seed"]))
    if missing:
        raise ValueError(f"{results / 'predictions.csv'} lacks seeds {missing}: run them first")
    write_bytes(out / PREDICTIONS, gzip_csv(predictions))
    table = table_from_predictions(predictions)
    write_text(out / "table1.md", format_table_md(table, profile.name))
    counterfactual = results / COUNTERFACTUAL / "predictions.csv"
    if counterfactual.is_file():
        write_bytes(out / COUNTERFACTUAL / PREDICTIONS, gzip_csv(read_predictions(counterfactual)))
    if fit is not None:
        write_text(out / FIT, csv_text(fit))
    run = {
        "profile": profile.key(),
        "seeds": list(seeds),
        "rows": list(dict.fromkeys(predictions["method"])),
        "counterfactual_rows": (
            list(dict.fromkeys(read_predictions(counterfactual)["method"]))
            if counterfactual.is_file()
            else []
        ),
        "code_versions": dict(CODE_VERSIONS),
        "commit": current_commit(),
        "environment": environment(device),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "wall_s": None if wall_s is None else round(wall_s, 1),  # None: packed, not run
        "command": command,
    }
    if data is not None:
        run["data"] = data
    write_text(out / "run.json", json.dumps(run, indent=1) + "\n")
    return out


def load_reference(profile: Profile, folder: str | Path | None = None) -> Reference | None:
    """The reference of ``profile`` (from ``folder``, else :func:`reference_folder`), or
    None when there is none. A reference made by other code versions of the artifact
    store or another profile raises :class:`StaleReference`, naming the difference and
    the command that regenerates it: stale evidence is never shown."""
    folder = Path(folder) if folder else reference_folder(profile.name)
    if folder is None:
        return None
    run = json.loads((folder / "run.json").read_text())
    problems = [
        f"code version of {kind!r} is {run['code_versions'].get(kind)} there, {version} here"
        for kind, version in CODE_VERSIONS.items()
        if run["code_versions"].get(kind) != version
    ]
    problems += [
        f"profile field {name!r} is {run['profile'].get(name)!r} there, {value!r} here"
        for name, value in profile.key().items()
        if name != "seeds" and _json(run["profile"].get(name)) != _json(value)
    ]
    if problems:
        raise StaleReference(
            f"the reference in {folder} is stale: {'; '.join(problems)}. Regenerate it with "
            f"`{REGENERATE}` (or `PROFILE={profile.name} {REGENERATE}`), then commit it"
        )
    counterfactual = folder / COUNTERFACTUAL / PREDICTIONS
    return Reference(
        folder,
        run,
        read_predictions(folder / PREDICTIONS),
        read_predictions(counterfactual) if counterfactual.is_file() else None,
        pd.read_csv(folder / FIT) if (folder / FIT).is_file() else None,
    )


def _json(value):
    return json.loads(json.dumps(value))


def seed_table(predictions) -> pd.DataFrame:
    """The five metrics (fractions) per row and seed: index ``(method, seed)``."""
    records = [
        {"method": method, "seed": seed, **seed_metrics(method, seed, *arrays)}
        for method, by_seed in per_seed_arrays(predictions).items()
        for seed, arrays in by_seed.items()
    ]
    return pd.DataFrame(records).set_index(["method", "seed"])[list(METRICS)]


def prediction_interval(values, m: int, alpha: float, axis: int = 0):
    """Where the mean of ``m`` new seeds falls with probability ``1 - alpha``, from the
    ``n`` seeds' ``values`` along ``axis`` (non-finite ones left out): ``mean +- t(n-1,
    1 - alpha/2) * s * sqrt(1/n + 1/m)``, exact for normal per-seed values (coverage by
    simulation: :func:`segqual_lite.power.simulate_build_check`). Returns ``(low,
    high)``, floats for one set of values, arrays for many."""
    v = np.asarray(values, float)
    n = np.isfinite(v).sum(axis=axis)
    mean = np.nanmean(v, axis=axis)
    half = student_t.ppf(1 - alpha / 2, n - 1) * np.nanstd(v, axis=axis, ddof=1)
    half = half * np.sqrt(1 / n + 1 / m)
    return mean - half, mean + half


# the environment's fields as the chapter names them
_SAID = {"cpu_capability": "CPU instructions", "float_fingerprint": "float fingerprint"}


@dataclass
class BuildCheck:
    """A build's seeds against the reference's same seeds (:func:`check_build`)."""

    seeds: tuple[int, ...]
    same_environment: bool
    differing: dict = field(default_factory=dict)  # environment field: (reference, build)
    max_difference: float = 0.0  # largest |predicted J| difference over shared images
    intervals: int = 0  # rows x metrics checked against a prediction interval (elsewhere)
    reference_seeds: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """One line for the chapter: equal, or (on another CPU) inside the spread."""
        seeds = ", ".join(map(str, self.seeds))
        if self.same_environment:
            if self.problems:
                return f"This build's seeds {seeds} do NOT equal the reference's: " + "; ".join(
                    self.problems
                )
            return (
                f"This build's seeds {seeds} equal the reference's, image for image (same "
                "code, torch, CPU instructions and threads)."
            )
        differs = ", ".join(
            f"{_SAID.get(k, k)} {b} here, not recorded there"
            if a is None
            else f"{_SAID.get(k, k)} {a} there, {b} here"
            for k, (a, b) in self.differing.items()
        )
        said = (
            f"This machine computes other floating-point results than the reference's "
            f"({differs}), so its seeds {seeds} are new draws from the seed distribution, "
            "not copies of the reference's same seeds. "
        )
        joint = f"{100 * (1 - FAMILY_ALPHA):.0f}%"
        if self.problems:
            return said + (
                f"Their mean lies OUTSIDE the spread of the reference's "
                f"{self.reference_seeds} seeds (prediction intervals, jointly {joint}): "
                + "; ".join(self.problems)
            )
        return said + (
            f"For each of the {self.intervals} rows and metrics their mean lies inside the "
            f"spread the reference's {self.reference_seeds} seeds predict for "
            f"{len(self.seeds)} new seeds (prediction intervals, jointly {joint})."
        )


def check_build(
    reference: Reference, predictions, environment_now: dict | None = None
) -> BuildCheck:
    """Check the per-image ``predictions`` of a build against the reference, on the rows
    both hold. In the same environment (:func:`~segqual_lite.provenance.environment`)
    the predictions of the seeds both hold must be equal. In another, each row's and
    metric's mean over the build's ``m`` seeds must lie in the
    :func:`prediction_interval` of the reference's seeds for ``m`` new seeds, each at
    ``1 - FAMILY_ALPHA / K`` for the ``K`` rows and metrics. The problems found are
    listed in the result."""
    env = environment_now or environment()
    ref_env = reference.environment
    differing = {k: (ref_env.get(k), env[k]) for k in env if ref_env.get(k) != env[k]}
    build = read_predictions(predictions) if isinstance(predictions, str | Path) else predictions
    keys = ["method", "seed", "image_id"]
    merged = build.merge(reference.predictions, on=keys, suffixes=("", "_reference"))
    seeds = tuple(sorted(set(merged["seed"])))
    result = BuildCheck(seeds, not differing, differing)
    if merged.empty:
        result.problems.append("no seed and row in common with the reference")
        return result
    for column in ("true_jaccard", "predicted_jaccard"):
        gap = np.abs(merged[column] - merged[f"{column}_reference"])
        result.max_difference = max(result.max_difference, float(gap.max()))
    if result.same_environment:
        unequal = merged[
            (merged["predicted_jaccard"] != merged["predicted_jaccard_reference"])
            | (merged["true_jaccard"] != merged["true_jaccard_reference"])
        ]
        if len(unequal):
            first = unequal.iloc[0]
            result.problems.append(
                f"{len(unequal)} of {len(merged)} predictions differ in the same environment, "
                f"e.g. {first['method']} seed {first['seed']} image {first['image_id']}"
            )
        return result
    rows = list(dict.fromkeys(merged["method"]))
    ours = seed_table(merged[[*keys, "true_jaccard", "predicted_jaccard"]])
    theirs = seed_table(reference.predictions[reference.predictions["method"].isin(rows)])
    result.reference_seeds = len(reference.seeds)
    result.intervals = len(rows) * len(METRICS)
    alpha = FAMILY_ALPHA / result.intervals
    for row in rows:
        for metric in METRICS:
            mean = float(ours.loc[row, metric].mean())
            if not np.isfinite(mean):
                continue
            low, high = prediction_interval(theirs.loc[row, metric], len(seeds), alpha)
            if not low <= mean <= high:
                result.problems.append(
                    f"{row} {metric_name(metric)} {mean:.3f}, expected {low:.3f} to {high:.3f}"
                )
    return result
