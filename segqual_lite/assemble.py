"""Assembling a reference run (``book/analysis_plan.md``) after the fact: from parts
run by seeds (``reference --from-parts``), and with f's fit added to a reference made
without it (``reference --fit-only``). Both keep the provenance of what they add."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd

from .config import Profile
from .reference import (
    COUNTERFACTUAL,
    FIT,
    PREDICTIONS,
    current_commit,
    environment,
    gzip_csv,
    load_reference,
)
from .store import claim_folder, write_bytes, write_text
from .tables import csv_text, format_table_md, read_predictions, table_from_predictions

__all__ = ["combine_parts", "add_fit"]


def combine_parts(parts: list[str | Path], out: str | Path, profile: Profile) -> Path:
    """One reference in ``out`` from references of the same profile and code made in
    parts by seeds (``reference --seeds 0-7 --out P1``, then ``8-15``): predictions,
    counterfactual and fit concatenated by seed, and a ``run.json`` whose ``parts`` keep
    each part's provenance. Parts that share a seed, or come from other code or another
    profile (:func:`load_reference`), are refused."""
    loaded = [load_reference(profile, part) for part in parts]
    seeds = [s for ref in loaded for s in ref.seeds]
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ValueError(f"parts {', '.join(map(str, parts))} share seeds {twice}")
    out = claim_folder(out, "a reference", legacy=("run.json",))

    def joined(frames):
        frames = [f for f in frames if f is not None]
        return pd.concat(frames, ignore_index=True).sort_values("seed", kind="stable")

    predictions = joined(r.predictions for r in loaded)
    write_bytes(out / PREDICTIONS, gzip_csv(predictions))
    if all(r.counterfactual is not None for r in loaded):
        write_bytes(
            out / COUNTERFACTUAL / PREDICTIONS, gzip_csv(joined(r.counterfactual for r in loaded))
        )
    if all(r.fit is not None for r in loaded):
        write_text(out / FIT, csv_text(joined(r.fit for r in loaded)))
    table = table_from_predictions(predictions)
    write_text(out / "table1.md", format_table_md(table, profile.name))
    first, kept = loaded[0].run, ("seeds", "commit", "environment", "machine", "wall_s", "command")
    run = {
        **{k: first[k] for k in ("profile", "rows", "counterfactual_rows", "code_versions")},
        "seeds": sorted(seeds),
        "environment": first["environment"],
        "wall_s": sum(r.run["wall_s"] or 0 for r in loaded) or None,
        "parts": [{k: r.run[k] for k in kept} for r in loaded],
    }
    write_text(out / "run.json", json.dumps(run, indent=1) + "\n")
    return out


def add_fit(folder: str | Path, fit: pd.DataFrame, argv: list[str]) -> None:
    """Add f's fit (``fit.csv``) to the reference in ``folder`` made without it, and
    record in its ``run.json`` the command and commit that computed it."""
    folder = Path(folder)
    run = json.loads((folder / "run.json").read_text())
    if set(fit["seed"]) != set(run["seeds"]):
        raise ValueError(f"the fit's seeds differ from the reference's in {folder}")
    # The same f as the reference's: its test Jaccard per seed equals the reference's.
    predictions = read_predictions(folder / PREDICTIONS)
    ref = predictions[predictions["method"] == fit["method"].iloc[0]]
    ref = ref.groupby("seed")["true_jaccard"].mean()
    test = fit[fit["split"] == "test"].set_index("seed")["mean_jaccard"]
    off = (test - ref.reindex(test.index)).abs()
    if not (off < 1e-6).all():
        raise ValueError(
            f"the fit's f is not the reference's in {folder}: test Jaccard differs by up to "
            f"{off.max():.3f} (seeds {sorted(off[off >= 1e-6].index)}); run it with the "
            "reference's code, torch, CPU and threads"
        )
    write_text(folder / FIT, csv_text(fit))
    run["fit"] = {
        "command": shlex.join(["python", "-m", "segqual_lite", *argv]),
        "commit": current_commit(),
        "environment": environment(),
    }
    write_text(folder / "run.json", json.dumps(run, indent=1) + "\n")
