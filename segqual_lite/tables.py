"""Pure tables: per-image predictions -> Table 1 and chapter 11's table -> CSV and
Markdown (chapters 10 and 11).

Predictions are a :class:`pandas.DataFrame` with the columns of :data:`PREDICTION_FIELDS`
(one row per method, seed and test image); tables are DataFrames in long format, one
row per (method, metric):

* Table 1 (:func:`table_from_predictions`): ``method, metric, mean, std, n_seeds,
  paper_mean, paper_std`` for the five metrics of the paper; the controls of the
  uncertainty rows (:data:`~segqual_lite.rows.CONTROL_ROWS`) follow the paper's rows,
  without the paper's numbers;
* chapter 11's table (:func:`beyond_table`): ``method, metric, mean, std, n_seeds`` for
  those five and four of risk-coverage (``aurc``, ``automation_at_0.8``, and chapter
  12's ``augrc`` and ``naurc`` of failures, J < 0.7), plus the oracle and random orders
  of the plain U-Net's masks, which carry only the last four.

Units are the paper's: RMSE and AURC fractions, the rest percentages; the std is over
seeds (sample std, ddof = 1; 0 for a single seed). CSV text keeps every float's shortest
exact representation, so a table recomputes exactly from ``predictions.csv``.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import (
    AUTOMATION_TARGET,
    METRICS,
    RISK_METRICS,
    augrc,
    aurc,
    automation_rate,
    normalized_aurc,
    rmse,
    summarize,
)
from .rows import (
    CONTROL_ROWS,
    EXTENDED_ROWS,
    PAPER_TABLE1,
    REFERENCE_ROWS,
    ROW_REGISTRY,
    TABLE_ROWS,
    label,
)

__all__ = [
    "PREDICTION_FIELDS",
    "TABLE_FIELDS",
    "BEYOND_FIELDS",
    "BEYOND_METRICS",
    "METRIC_LABELS",
    "LOWER_IS_BETTER",
    "predictions_frame",
    "read_predictions",
    "per_seed_arrays",
    "seed_metrics",
    "risk_metrics",
    "mean_std",
    "in_paper_units",
    "table_from_predictions",
    "beyond_table",
    "table_caption",
    "wide_table",
    "display_table",
    "display_frame",
    "format_table_md",
    "csv_text",
    "signed",
    "metric_name",
]

PREDICTION_FIELDS = ["method", "seed", "image_id", "true_jaccard", "predicted_jaccard"]
TABLE_FIELDS = ["method", "metric", "mean", "std", "n_seeds", "paper_mean", "paper_std"]
BEYOND_FIELDS = ["method", "metric", "mean", "std", "n_seeds"]
BEYOND_METRICS = (*METRICS, *RISK_METRICS)
METRIC_LABELS = {
    "rmse": "RMSE ↓",
    "detection_error": "Detection error ↓",
    "auroc": "AUROC ↑",
    "aupr_pass": "AUPR-Pass ↑",
    "aupr_fail": "AUPR-Fail ↑",
    "aurc": "AURC ↓",
    "automation_at_0.8": "Automated at 0.8 ↑",
    "augrc": "AUGRC ↓",
    "naurc": "NAURC ↓",
}
LOWER_IS_BETTER = ("rmse", "detection_error", "aurc", "augrc", "naurc")
_FRACTIONS = ("rmse", "aurc", "augrc", "naurc")  # the other metrics are printed in %


def predictions_frame(predictions) -> pd.DataFrame:
    """Per-image predictions (a DataFrame or a list of dicts) as a DataFrame with the
    columns of :data:`PREDICTION_FIELDS` and their types."""
    frame = pd.DataFrame(predictions, columns=PREDICTION_FIELDS)
    return frame.astype(
        {"seed": "int64", "true_jaccard": "float64", "predicted_jaccard": "float64"}
    ).reset_index(drop=True)


def read_predictions(path: str | Path) -> pd.DataFrame:
    """``predictions.csv`` (or ``beyond_predictions.csv``) with numbers parsed exactly."""
    # pandas 3 parses floats exactly by default (round trip of ``repr``); tested.
    frame = pd.read_csv(path, dtype={"method": str, "image_id": str})
    return predictions_frame(frame)


def per_seed_arrays(predictions) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """``{method: {seed: (true Jaccard [N], predicted Jaccard [N])}}``, methods in order
    of appearance, seeds sorted, images in the order of ``predictions``."""
    frame = predictions_frame(predictions)
    grouped: dict = {}
    for (method, seed), part in frame.groupby(["method", "seed"], sort=False):
        grouped.setdefault(method, {})[int(seed)] = (
            part["true_jaccard"].to_numpy(dtype=float),
            part["predicted_jaccard"].to_numpy(dtype=float),
        )
    return {method: dict(sorted(by_seed.items())) for method, by_seed in grouped.items()}


def seed_metrics(method: str, seed: int, true: np.ndarray, pred: np.ndarray) -> dict:
    """The five metrics of one row and seed as fractions; when the test set holds only
    one class, only RMSE is defined and the others are NaN (with a warning)."""
    try:
        return summarize(true, pred)
    except ValueError as err:
        warnings.warn(f"{method}, seed {seed}: {err}", stacklevel=3)
        return {m: rmse(true, pred) if m == "rmse" else np.nan for m in METRICS}


def risk_metrics(true_j, pred_j) -> dict[str, float]:
    """``aurc`` of ``1 - J`` (a fraction), ``automation_at_0.8`` (a fraction here, % in
    tables), and of failures (J < 0.7) ``augrc`` and ``naurc`` (fractions; NAURC is NaN
    when every case passes or every case fails)."""
    try:
        naurc = normalized_aurc(true_j, pred_j)
    except ValueError:
        naurc = np.nan
    return {
        "aurc": aurc(true_j, pred_j),
        "automation_at_0.8": automation_rate(true_j, pred_j, AUTOMATION_TARGET),
        "augrc": augrc(true_j, pred_j),
        "naurc": naurc,
    }


def mean_std(values) -> tuple[float, float]:
    """Mean and sample std (ddof = 1; 0 for a single value) over seeds."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def in_paper_units(metric: str, value: float) -> float:
    """RMSE and AURC stay fractions; the other metrics become percentages."""
    return value if metric in _FRACTIONS else 100 * value


def _in_order(arrays: dict, order) -> list[str]:
    """The methods of ``arrays``: those of ``order`` first, in that order, then the rest
    sorted."""
    first = [m for m in order if m in arrays]
    return first + sorted(set(arrays) - set(first))


def _long_table(per_row: dict[str, list[dict]], metrics) -> list[dict]:
    """Mean and std over seeds of every metric of every row, in paper units."""
    records = []
    for method, per_seed in per_row.items():
        for metric in metrics:
            if metric not in per_seed[0]:
                continue
            mean, std = mean_std([in_paper_units(metric, s[metric]) for s in per_seed])
            records.append(
                {
                    "method": method,
                    "metric": metric,
                    "mean": mean,
                    "std": std,
                    "n_seeds": len(per_seed),
                }
            )
    return records


def table_from_predictions(predictions) -> pd.DataFrame:
    """Table 1 in long format from per-image predictions (module docstring); the paper's
    numbers beside (NaN for rows the paper does not have)."""
    arrays = per_seed_arrays(predictions)
    per_row = {
        m: [seed_metrics(m, s, *arrays[m][s]) for s in arrays[m]]
        for m in _in_order(arrays, (*TABLE_ROWS, *CONTROL_ROWS))
    }
    records = _long_table(per_row, METRICS)
    for r in records:
        paper = PAPER_TABLE1.get(r["method"], [(np.nan, np.nan)] * len(METRICS))
        r["paper_mean"], r["paper_std"] = paper[METRICS.index(r["metric"])]
    return pd.DataFrame(records, columns=TABLE_FIELDS)


def beyond_table(predictions) -> pd.DataFrame:
    """Chapter 11's table in long format from per-image predictions (module docstring)."""
    arrays = per_seed_arrays(predictions)
    per_row = {
        m: [
            {**seed_metrics(m, s, true, pred), **risk_metrics(true, pred)}
            for s, (true, pred) in arrays[m].items()
        ]
        for m in _in_order(arrays, (*TABLE_ROWS, *CONTROL_ROWS, *EXTENDED_ROWS))
    }
    source = ROW_REGISTRY[REFERENCE_ROWS[0]].method  # the rows whose masks they order
    if source in arrays:
        truths = [true for true, _ in arrays[source].values()]
        per_row["oracle"] = [risk_metrics(t, t) for t in truths]
        per_row["random"] = [risk_metrics(t, np.zeros_like(t)) for t in truths]
    return pd.DataFrame(_long_table(per_row, BEYOND_METRICS), columns=BEYOND_FIELDS)


def table_caption(
    table: pd.DataFrame, profile_name: str = "", title: str = "Table 1", data: str = ""
) -> str:
    """The caption of a long-format table: profile, the data (``data``, e.g.
    :func:`~segqual_lite.config.data_name`), split, units, what the brackets hold."""
    metrics = [m for m in BEYOND_METRICS if m in set(table["metric"])]
    with_paper = "paper_mean" in table.columns
    where = f"{profile_name} profile, " if profile_name else ""
    where += f"{data}, " if data else ""
    paper = ", the paper's value in brackets" if with_paper else ""
    if with_paper and not np.isfinite(table["paper_mean"]).all():
        paper += ", rows without one are this book's"
    fractions = [METRIC_LABELS[m].split()[0] for m in metrics if m in _FRACTIONS]
    units = " and ".join(
        [", ".join(fractions[:-1]), fractions[-1]] if len(fractions) > 1 else fractions
    )
    units += " fractions" if len(fractions) > 1 else " a fraction"
    return f"{title} ({where}test split; mean ± std over seeds{paper}; {units}, the rest %)"


def wide_table(table: pd.DataFrame, paper_sep: str = " ") -> pd.DataFrame:
    """A long-format table as one line per method and one column per metric, each cell
    ``mean ± std`` and, where the table has the paper's numbers, ``(paper mean ± std)``
    after ``paper_sep``: what the Markdown files hold and (by :func:`display_table`) the
    chapters show."""
    metrics = [m for m in BEYOND_METRICS if m in set(table["metric"])]
    with_paper = "paper_mean" in table.columns
    cell = {(r["method"], r["metric"]): r for r in table.to_dict("records")}
    lines = []
    for method in dict.fromkeys(table["method"]):
        line = {"method": label(method)}
        line["seeds"] = next(r["n_seeds"] for k, r in cell.items() if k[0] == method)
        for metric in metrics:
            r = cell.get((method, metric))
            fmt = "{:.3f}" if metric in _FRACTIONS else "{:.1f}"
            text = f"{fmt.format(r['mean'])} ± {fmt.format(r['std'])}" if r else ""
            if r and with_paper and np.isfinite(r["paper_mean"]):
                text += f"{paper_sep}({fmt.format(r['paper_mean'])} ± {fmt.format(r['paper_std'])})"
            line[METRIC_LABELS[metric]] = text
        lines.append(line)
    return pd.DataFrame(lines).set_index("method")


def display_table(table: pd.DataFrame):
    """:func:`wide_table` as the chapters show it: an HTML table (a pandas ``Styler``)
    whose cells give the paper's numbers on a line of their own and never break inside
    ``mean ± std``, in a smaller font, so that the columns fit the page."""
    wide = wide_table(table, paper_sep="\n")
    styled = display_frame(wide, index=True)
    return styled.format(lambda v: v.replace(" ± ", "\u00a0±\u00a0") if isinstance(v, str) else v)


def display_frame(frame: pd.DataFrame, index: bool = False):
    """Any table of text cells as the chapters show it: an HTML table in a smaller font
    whose cells break lines only where they hold a newline (chapters 10 to 12's
    comparison tables put an interval on a line of its own); the index hidden unless
    ``index``."""
    styled = frame.style.hide(axis="index", names=True) if index else frame.style.hide()
    styles = [
        {"selector": "", "props": "font-size: 0.85em"},
        {"selector": "td", "props": "white-space: pre-line; text-align: right"},
    ]
    if not index:  # the first column names the line
        styles.append({"selector": "td:first-child", "props": "text-align: left"})
    return styled.set_table_attributes('class="dataframe"').set_table_styles(styles)


def format_table_md(table: pd.DataFrame, profile_name: str = "", title: str = "Table 1") -> str:
    """A long-format table as Markdown: its caption (:func:`table_caption`), then
    :func:`wide_table` as a pipe table."""
    wide = wide_table(table)
    lines = [
        table_caption(table, profile_name, title),
        "",
        "| method | " + " | ".join(wide.columns) + " |",
        "|---|" + "---|" * len(wide.columns),
    ]
    for method, row in wide.iterrows():
        lines.append(f"| {method} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _csv_cell(value):
    # repr: the shortest text that reads back to the same float, so tables recompute exactly
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text, floats written exactly."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in frame.itertuples(index=False):
        writer.writerow([_csv_cell(v) for v in row])
    return buf.getvalue()


def signed(value: float, fmt: str = "{:+.1f}") -> str:
    """``value`` with its sign in ``fmt``; one that rounds to zero reads ``+0.0``
    rather than ``-0.0``, which would suggest a direction the number does not have."""
    text = fmt.format(value)
    return text.replace("-", "+", 1) if text.startswith("-") and float(text) == 0 else text


def metric_name(metric: str) -> str:
    """A metric's name in prose: "RMSE", "detection error", "AUROC" (no code names)."""
    text = METRIC_LABELS.get(metric, metric).rstrip(" ↑↓")
    return text[0].lower() + text[1:] if text[1:2].islower() else text
