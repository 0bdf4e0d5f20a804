"""Beyond the paper (chapter 11): cross-fitted training data for g, risk-coverage, and two
more uncertainty maps, a deep ensemble and test-time augmentation.

:func:`run_beyond` adds the rows of :data:`~segqual_lite.quality.BEYOND_ROWS` to the grid
of Table 1 (same seeds, same g, same test images) and scores every row with the five
metrics of Table 1 and two of risk-coverage (:mod:`segqual_lite.metrics`):

* ``aurc``: the area under the risk-coverage curve, risk = 1 - Jaccard (a fraction,
  lower is better);
* ``automation_at_0.8``: the largest share of test cases (in %) that can be accepted
  automatically, highest predicted quality first, while the accepted cases keep a mean
  Jaccard of at least 0.8.

Two reference rows carry only these two metrics: ``oracle`` (cases accepted in the order
of their true Jaccard, the best any g could do) and ``random`` (in random order, what g
must beat), both for the plain U-Net's deterministic test masks, the masks that RCA,
QualityNet, No Uncertainty, Max Probability and its cross-fitted twin judge (the other
rows judge their own U-Net's masks; the figure draws each row's own references).
It writes, into the results folder:

* ``beyond_predictions.csv``: per-image predictions of every row, Table 1's included;
* ``beyond.csv``: long format ``method, metric, mean, std, n_seeds``, units as in
  ``table1.csv`` (RMSE and AURC fractions, the rest percentages);
* ``beyond.md``: the same as a readable table;
* ``risk_coverage.png``: the curves of the first seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import Profile, pick_device
from .data import prepare_data
from .experiment import (
    PREDICTION_FIELDS,
    ROW_LABELS,
    TABLE_ROWS,
    csv_text,
    mean_std,
    per_seed_arrays,
    predict_rows,
    results_dir,
    save_figure_atomic,
    seed_metrics,
    write_text_atomic,
)
from .metrics import AUTOMATION_TARGET, METRICS, RISK_METRICS, aurc, automation_rate
from .quality import BEYOND_ROWS
from .training import progress_enabled

__all__ = [
    "BEYOND_LABELS",
    "BEYOND_METRICS",
    "REFERENCE_ROWS",
    "BeyondResult",
    "risk_metrics",
    "beyond_table",
    "format_beyond_md",
    "run_beyond",
    "write_beyond",
]

BEYOND_METRICS = (*METRICS, *RISK_METRICS)
REFERENCE_ROWS = ("oracle", "random")
BEYOND_LABELS = {
    **ROW_LABELS,
    "max_prob_crossfit": "Max Probability, cross-fitted",
    "mc_dropout_crossfit": "MC-dropout, cross-fitted",
    "ensemble": "Deep ensemble",
    "tta": "TTA",
    "oracle": "Oracle order",
    "random": "Random order",
}
BEYOND_FIELDS = ["method", "metric", "mean", "std", "n_seeds"]
# The row whose test masks (the plain U-Net's) the reference orders are computed for.
REFERENCE_SOURCE = "max_prob"


def risk_metrics(true_j, pred_j) -> dict[str, float]:
    """``aurc`` (a fraction) and ``automation_at_0.8`` (a fraction here, % in tables)."""
    return {
        "aurc": aurc(true_j, pred_j),
        "automation_at_0.8": automation_rate(true_j, pred_j, AUTOMATION_TARGET),
    }


def _units(metric: str, value: float) -> float:
    return value if metric in ("rmse", "aurc") else 100 * value


def beyond_table(predictions: list[dict]) -> list[dict]:
    """``beyond.csv`` in long format from per-image predictions (module docstring)."""
    arrays = per_seed_arrays(predictions)
    order = [m for m in (*TABLE_ROWS, *BEYOND_ROWS) if m in arrays]
    order += sorted(set(arrays) - set(order))
    per_row = {
        m: [
            {**seed_metrics(m, s, true, pred), **risk_metrics(true, pred)}
            for s, (true, pred) in arrays[m].items()
        ]
        for m in order
    }
    if REFERENCE_SOURCE in arrays:
        truths = [true for true, _ in arrays[REFERENCE_SOURCE].values()]
        per_row["oracle"] = [risk_metrics(t, t) for t in truths]
        per_row["random"] = [risk_metrics(t, np.zeros_like(t)) for t in truths]
    table = []
    for method, per_seed in per_row.items():
        for metric in BEYOND_METRICS:
            if metric not in per_seed[0]:
                continue
            mean, std = mean_std([_units(metric, s[metric]) for s in per_seed])
            n = len(per_seed)
            table.append(
                {"method": method, "metric": metric, "mean": mean, "std": std, "n_seeds": n}
            )
    return table


def format_beyond_md(table: list[dict], profile_name: str = "") -> str:
    """``beyond.csv`` as Markdown, one row per method, ``mean ± std`` per cell."""
    methods = list(dict.fromkeys(r["method"] for r in table))
    cell = {(r["method"], r["metric"]): r for r in table}
    lines = [
        f"Beyond Table 1 ({profile_name + ' profile, ' if profile_name else ''}test split; "
        "mean ± std over seeds; RMSE and AURC fractions, the rest %)",
        "",
        "| method | seeds | " + " | ".join(BEYOND_METRICS) + " |",
        "|---|---|" + "---|" * len(BEYOND_METRICS),
    ]
    for m in methods:
        cells = []
        for metric in BEYOND_METRICS:
            r = cell.get((m, metric))
            fmt = "{:.3f}" if metric in ("rmse", "aurc") else "{:.1f}"
            cells.append(f"{fmt.format(r['mean'])} ± {fmt.format(r['std'])}" if r else "")
        n = next(r["n_seeds"] for r in table if r["method"] == m)
        lines.append(f"| {BEYOND_LABELS.get(m, m)} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class BeyondResult:
    predictions: list[dict]  # every row, Table 1's included
    table: list[dict]  # long format, see beyond_table
    out: Path


def run_beyond(
    profile: Profile,
    seeds: tuple[int, ...] | None = None,
    data_root: str | Path | None = None,
    out: str | Path | None = None,
    device: torch.device | None = None,
    progress: bool | None = None,
) -> BeyondResult:
    """Run (or load) Table 1's rows and :data:`~segqual_lite.quality.BEYOND_ROWS` for
    every seed, and write ``beyond_predictions.csv``, ``beyond.csv``, ``beyond.md`` and
    ``risk_coverage.png`` (module docstring). Cached models are reused: after
    :func:`~segqual_lite.experiment.run_grid`, only the new rows cost time."""
    seeds = tuple(profile.seeds if seeds is None else seeds)
    device = device or pick_device()
    progress = progress_enabled() if progress is None else progress
    root = Path(data_root) if data_root else prepare_data(profile)
    rows = (*TABLE_ROWS, *BEYOND_ROWS)
    predictions = predict_rows(profile, rows, seeds, root, device, progress)
    out = Path(out) if out else results_dir(profile)
    table = write_beyond(predictions, out, profile.name, seed=seeds[0])
    return BeyondResult(predictions, table, out)


def write_beyond(
    predictions: list[dict], out: str | Path, profile_name: str = "", seed: int | None = None
) -> list[dict]:
    """Write ``beyond_predictions.csv``, ``beyond.csv``, ``beyond.md`` and
    ``risk_coverage.png`` (of ``seed``, the first by default) into ``out``; returns the
    table."""
    from .viz import plot_risk_coverage  # matplotlib only when writing figures

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = beyond_table(predictions)
    write_text_atomic(out / "beyond_predictions.csv", csv_text(predictions, PREDICTION_FIELDS))
    write_text_atomic(out / "beyond.csv", csv_text(table, BEYOND_FIELDS))
    write_text_atomic(out / "beyond.md", format_beyond_md(table, profile_name))
    save_figure_atomic(plot_risk_coverage(predictions, seed=seed), out / "risk_coverage.png")
    return table
