import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segqual_lite import cluster, deployment, experiment, quality, results, scheduler, training
from segqual_lite.cli import main as cli_main
from segqual_lite.cluster import Scheduler, grid_units
from segqual_lite.config import get_profile
from segqual_lite.data import make_synthetic_isic
from segqual_lite.deployment import (
    CONFORMAL_ROWS,
    SHIFT_ROWS,
    SHIFT_SEVERITIES,
    conformal_summary,
)
from segqual_lite.metrics import RISK_METRICS
from segqual_lite.rows import (
    BEYOND_ROWS,
    CONTROL_ROWS,
    EXTENDED_ROWS,
    REFERENCE_ROWS,
    TABLE_ROWS,
    get_row,
)
from segqual_lite.scores import image_score
from segqual_lite.segment import segment_split
from segqual_lite.tables import (
    BEYOND_METRICS,
    beyond_table,
    per_seed_arrays,
    read_predictions,
    table_from_predictions,
)

GRID_ROWS = (*TABLE_ROWS, *CONTROL_ROWS)
GRID = get_profile("tiny").with_(
    name="testgrid",
    image_size=32,
    unet_width=4,
    unet_depth=3,
    quality_widths=(4, 8),
    epochs_f=12,
    lr=3e-3,
    epochs_g=2,
    seeds=(0, 1),
    batch_size=8,
    mc_samples=3,
    hcnn_samples=4,
    hcnn_train_samples=2,
    rca_references=4,
)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("grid")
    root = base / "data"
    # Easy lesions, so that a briefly trained f gives both passing and failing masks.
    easy = {"low_contrast": 0.0, "multi_blob": 0.0, "border_cut": 0.0, "lazy_mask": 0.3}
    make_synthetic_isic(root, n_train=24, n_val=9, n_test=24, size=32, seed=7, hard_cases=easy)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGQUAL_HOME", str(base / "home"))
        first = experiment.run_grid(GRID, data_root=root, out=base / "out", progress=False)
        files = {p: p.stat().st_mtime_ns for p in (base / "home").rglob("*") if p.is_file()}
        # A second run must train nothing: make any training fail loudly.
        real_fit = training.fit_checkpointed

        def refuse(folder, *args, **kwargs):
            assert (folder / "final.pt").exists(), f"second run would train {folder.name}"
            return real_fit(folder, *args, **kwargs)

        mp.setattr(training, "fit_checkpointed", refuse)  # f
        mp.setattr(quality, "fit_checkpointed", refuse)  # g
        second = experiment.run_grid(GRID, data_root=root, out=base / "out2", progress=False)
        after = {p: p.stat().st_mtime_ns for p in (base / "home").rglob("*") if p.is_file()}
    return first, second, files, after


@pytest.fixture(scope="module")
def beyond_run(grid_run):
    """Chapter 11's rows on the same data and artifact store, after the grid."""
    first, *_ = grid_run
    base = first.out.parent
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGQUAL_HOME", str(base / "home"))
        return experiment.run_grid(
            GRID, data_root=base / "data", out=base / "beyond", progress=False, beyond=True
        )


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_grid_writes_every_file(grid_run):
    first, *_ = grid_run
    for name in ("predictions.csv", "table1.csv", "table1.md", "figure2.png", "figure3.png"):
        assert (first.out / name).is_file(), name
    assert not (first.out / "beyond.csv").exists() and first.beyond is None
    table = _read_csv(first.out / "table1.csv")
    assert list(table[0]) == [
        "method",
        "metric",
        "mean",
        "std",
        "n_seeds",
        "paper_mean",
        "paper_std",
    ]
    assert {r["method"] for r in table} == set(GRID_ROWS)  # the controls follow Table 1
    assert len(table) == len(GRID_ROWS) * 5
    assert all(r["n_seeds"] == "2" for r in table)
    rmse_rca = next(r for r in table if r["method"] == "rca" and r["metric"] == "rmse")
    assert float(rmse_rca["paper_mean"]) == 0.438
    md = (first.out / "table1.md").read_text()
    assert "Max Probability" in md and "(0.168 ± 0.014)" in md
    assert "No Uncertainty, LCE's masks" in md and "rows without one are this book's" in md
    run = json.loads((first.out / "run.json").read_text())
    assert run["cpu_threads"] == 1 and run["seeds"] == [0, 1] and run["rows"] == list(GRID_ROWS)


def test_table_is_recomputable_from_predictions_csv(grid_run):
    first, *_ = grid_run
    predictions = read_predictions(first.out / "predictions.csv")
    assert len(predictions) == len(GRID_ROWS) * 2 * 24
    assert predictions.equals(first.predictions)  # the CSV keeps full precision
    recomputed = table_from_predictions(predictions)
    written = _read_csv(first.out / "table1.csv")
    assert len(recomputed) == len(written)
    for a, b in zip(recomputed.to_dict("records"), written, strict=True):
        assert (a["method"], a["metric"]) == (b["method"], b["metric"])
        assert a["mean"] == float(b["mean"])  # exactly
        assert a["std"] == float(b["std"])
    # Percentages for all but RMSE; both classes present, so every metric is defined.
    assert np.isfinite(recomputed["mean"]).all()
    auroc = recomputed.query("metric == 'auroc'")["mean"]
    assert ((0 <= auroc) & (auroc <= 100)).all()


def test_second_run_reuses_everything(grid_run):
    first, second, files, after = grid_run
    assert files == after  # nothing written or rewritten under the artifact store
    assert first.table.equals(second.table)
    assert (first.out / "predictions.csv").read_bytes() == (
        second.out / "predictions.csv"
    ).read_bytes()


def test_subsets_merge_into_the_full_table(grid_run, tmp_path, capsys):
    first, *_ = grid_run
    rows = read_predictions(first.out / "predictions.csv")
    for seed in GRID.seeds:
        results.write_results(rows[rows["seed"] == seed], tmp_path / f"s{seed}", GRID.name)
    folders = [str(tmp_path / f"s{seed}") for seed in GRID.seeds]
    assert cli_main(["merge", *folders, "--out", str(tmp_path / "m")]) == 0
    merged = read_predictions(tmp_path / "m" / "predictions.csv")
    assert merged.equals(rows)
    assert (tmp_path / "m" / "table1.csv").read_text() == (first.out / "table1.csv").read_text()
    # Conflicting values for the same image are refused, naming the folders.
    conflict = rows[rows["seed"] == 0].head(5).assign(predicted_jaccard=0.5)
    results.write_results(conflict, tmp_path / "c", "")
    assert cli_main(["merge", folders[0], str(tmp_path / "c"), "--out", str(tmp_path / "x")]) == 2
    assert "differs between" in capsys.readouterr().err


def test_unknown_rows_are_refused_with_the_known_ones(grid_run):
    first, *_ = grid_run
    with pytest.raises(ValueError, match="unknown row.*max_prob"):
        experiment.run_grid(GRID, rows=("max_probability",), data_root=first.out.parent / "data")


# ---- beyond the paper (chapter 11) ---------------------------------------------------------
def test_beyond_csv_holds_every_row_and_metric(beyond_run):
    for name in ("beyond.csv", "beyond.md", "beyond_predictions.csv", "risk_coverage.png"):
        assert (beyond_run.out / name).is_file(), name
    table = _read_csv(beyond_run.out / "beyond.csv")
    assert list(table[0]) == ["method", "metric", "mean", "std", "n_seeds"]
    methods = {r["method"] for r in table}
    assert methods == {*GRID_ROWS, *EXTENDED_ROWS, *REFERENCE_ROWS}
    for method in (*GRID_ROWS, *EXTENDED_ROWS):
        got = {r["metric"] for r in table if r["method"] == method}
        assert got == set(BEYOND_METRICS), method
    for method in REFERENCE_ROWS:
        assert {r["metric"] for r in table if r["method"] == method} == set(RISK_METRICS)
    assert all(r["n_seeds"] == "2" for r in table)
    # predictions.csv keeps Table 1's rows only, exactly as the run without them wrote it.
    assert set(read_predictions(beyond_run.out / "predictions.csv")["method"]) == set(GRID_ROWS)


def test_beyond_table_recomputes_and_agrees_with_table1(beyond_run, grid_run):
    first, *_ = grid_run
    predictions = read_predictions(beyond_run.out / "beyond_predictions.csv")
    written = _read_csv(beyond_run.out / "beyond.csv")
    recomputed = beyond_table(predictions)
    assert list(zip(recomputed["method"], recomputed["metric"], strict=True)) == [
        (r["method"], r["metric"]) for r in written
    ]
    assert list(recomputed["mean"]) == [float(r["mean"]) for r in written]
    # Table 1's rows are the very same predictions, so their five metrics match table1.csv.
    cell = {(r["method"], r["metric"]): r["mean"] for r in recomputed.to_dict("records")}
    for r in first.table.to_dict("records"):
        assert cell[(r["method"], r["metric"])] == r["mean"]
    # The oracle order is the best possible, the random order is flat at the mean Jaccard.
    for method in ("rca", "qualitynet", "no_uncertainty", "max_prob", "max_prob_crossfit"):
        assert cell[("oracle", "aurc")] <= cell[(method, "aurc")] + 1e-12
    by_seed = per_seed_arrays(predictions)["max_prob"]
    expected = np.mean([1 - true.mean() for true, _ in by_seed.values()])
    assert cell[("random", "aurc")] == pytest.approx(expected)


# ---- chapter 12: training-free scores, conformal intervals, shift test -------------------
def test_score_rows_rank_as_their_scores_and_fit_on_the_training_split(beyond_run):
    base = beyond_run.out.parent
    rows = per_seed_arrays(beyond_run.predictions)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGQUAL_HOME", str(base / "home"))
        for row in ("max_prob_boundary_mean", "mc_dropout_agreement", "tta_agreement"):
            r = get_row(row)
            test = segment_split(GRID, r.method, 0, base / "data", "test")
            true, pred = rows[row][0]
            assert np.array_equal(true, test.jaccard)  # the method's own masks
            score = image_score(r.score, test.maps, test.masks, test.extras)
            # The monotone fit keeps the score's order: every pair ordered alike, ties kept.
            a, b = np.subtract.outer(score, score), np.subtract.outer(pred, pred)
            assert np.array_equal(np.sign(a), np.sign(b)), row
            assert pred.min() >= 0 and pred.max() <= 1 + 1e-6


def test_conformal_and_shift_files_hold_every_row_seed_and_setting(beyond_run):
    conformal = pd.read_csv(beyond_run.out / "conformal.csv")
    assert set(conformal["row"]) == set(CONFORMAL_ROWS)
    assert len(conformal) == len(CONFORMAL_ROWS) * len(GRID.seeds) * 2  # plain, normalised
    assert conformal[["coverage", "automation_rate"]].stack().between(0, 1).all()
    assert (conformal["n_calibration"] == 9).all()  # the validation split
    summary = conformal_summary(conformal)
    assert len(summary) == len(CONFORMAL_ROWS) * 2 and "±" in summary["coverage"].iloc[0]
    first = conformal[(conformal["row"] == "qualitynet") & (conformal["form"] == "absolute")]
    assert summary["coverage"].iloc[0].startswith(f"{100 * first['coverage'].mean():.1f}")
    shift = pd.read_csv(beyond_run.out / "shift.csv")
    settings = 1 + 4 * len(SHIFT_SEVERITIES)
    assert len(shift) == settings * len(SHIFT_ROWS) * len(GRID.seeds)
    clean = shift[shift["severity"] == 0].set_index(["seed", "row"])
    # Severity 0 reruns f and g on the clean test images: the grid's own numbers.
    rows = per_seed_arrays(beyond_run.predictions)
    for seed in GRID.seeds:
        for row in SHIFT_ROWS:
            true, _ = rows[row][seed]
            assert clean.loc[(seed, row), "mean_jaccard"] == pytest.approx(true.mean())
            if not get_row(row).score:  # g's own predictions on the clean images
                assert clean.loc[(seed, row), "rmse"] == pytest.approx(
                    np.sqrt(np.mean((rows[row][seed][1] - true) ** 2))
                )
    # Cached: a second call reads the same file.
    again = deployment.shift_results(GRID, GRID.seeds, beyond_run.out.parent / "data")
    assert again.equals(shift) or np.allclose(
        again.select_dtypes("number"), shift.select_dtypes("number"), equal_nan=True
    )


def test_crossfit_rows_share_the_test_inputs_but_not_the_training_data(beyond_run):
    rows = per_seed_arrays(beyond_run.predictions)
    for seed in GRID.seeds:
        # Same f on the test split: same true Jaccard; a different g: other predictions.
        assert np.array_equal(rows["max_prob"][seed][0], rows["max_prob_crossfit"][seed][0])
        assert not np.array_equal(rows["max_prob"][seed][1], rows["max_prob_crossfit"][seed][1])
        assert np.array_equal(rows["mc_dropout"][seed][0], rows["mc_dropout_crossfit"][seed][0])
    # The ensemble uses the U-Nets of every seed: its masks are the same for both seeds.
    assert np.array_equal(rows["ensemble"][0][0], rows["ensemble"][1][0])


def test_beyond_subsets_merge_like_the_full_run(beyond_run, tmp_path, capsys):
    rows = beyond_run.predictions
    for seed in GRID.seeds:
        results.write_results(rows[rows["seed"] == seed], tmp_path / f"s{seed}", GRID.name)
    folders = [str(tmp_path / f"s{seed}") for seed in GRID.seeds]
    assert cli_main(["merge", *folders, "--out", str(tmp_path / "m")]) == 0
    assert "Deep ensemble" in capsys.readouterr().out
    for name in ("beyond.csv", "beyond_predictions.csv", "predictions.csv", "table1.csv"):
        assert (tmp_path / "m" / name).read_text() == (beyond_run.out / name).read_text(), name
    # A folder without chapter 11's predictions: Table 1 is merged, beyond.csv is not.
    (tmp_path / "s1" / "beyond_predictions.csv").unlink()
    with pytest.warns(UserWarning, match="beyond.csv not merged"):
        results.merge_results(folders, tmp_path / "m2")
    assert (tmp_path / "m2" / "table1.csv").is_file()
    assert not (tmp_path / "m2" / "beyond.csv").exists()


def test_written_figures_are_closed_not_left_for_the_notebook_to_show(grid_run, tmp_path):
    import matplotlib.pyplot as plt

    first, *_ = grid_run
    fig = plt.figure()
    results.write_results(first.predictions, tmp_path, GRID.name, {"figure3": fig})
    assert (tmp_path / "figure3.png").is_file()
    assert not plt.fignum_exists(fig.number)


def test_parallel_workers_give_the_numbers_of_one_process(beyond_run, tmp_path, monkeypatch):
    """The grid done by two worker processes, in a fresh store, predicts exactly what the
    one-process run predicted (every job seeded by what it computes), and the main process
    only loads."""
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "home"))
    real_fit = training.fit_checkpointed

    def refuse(folder, *args, **kwargs):  # the workers (other processes) are not patched
        assert (folder / "final.pt").exists(), f"the main process would train {folder.name}"
        return real_fit(folder, *args, **kwargs)

    monkeypatch.setattr(training, "fit_checkpointed", refuse)
    monkeypatch.setattr(quality, "fit_checkpointed", refuse)
    root = beyond_run.out.parent / "data"
    parallel = experiment.run_grid(
        GRID, data_root=root, out=tmp_path / "out", progress=False, beyond=True, workers=2
    )
    assert (parallel.predictions == beyond_run.predictions).all().all()
    jobs = scheduler.grid_jobs(GRID, (*GRID_ROWS, *BEYOND_ROWS), GRID.seeds, root)
    assert {job[0] for job in jobs} == {"f", "maps", "g", "rca"}
    assert all(need in jobs for needs in jobs.values() for need in needs)
    assert all(not needs for job, needs in jobs.items() if job[0] == "f")
    networks = list((tmp_path / "home").rglob("final.pt"))  # every f and every g, once
    assert len(networks) == sum(job[0] in ("f", "g") for job in jobs)
    assert all(scheduler._artifact(job, GRID, "train").exists() for job in jobs)
    monkeypatch.setattr(scheduler, "ProcessPoolExecutor", None)  # done jobs start no worker
    scheduler.run_jobs(GRID, jobs, workers=2)


def test_jobs_that_wait_for_missing_jobs_are_refused():
    jobs = {
        ("g", "data", "max_prob", 0): frozenset({("maps", "data", "max_prob", 0, "train", False)})
    }
    with pytest.raises(RuntimeError, match="jobs wait for jobs that do not exist"):
        scheduler.run_jobs(GRID, jobs, workers=2)


def test_the_counterfactual_runs_the_rows_and_their_controls_on_data_without_rims(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path))
    monkeypatch.setenv("SEGQUAL_RESULTS", str(tmp_path / "results"))
    small = GRID.with_(n_train=16, n_val=4, n_test=12, seeds=(0,), epochs_f=1, epochs_g=1)
    result = experiment.run_counterfactual(small, rows=("max_prob",), progress=False)
    assert set(result.predictions["method"]) == {"max_prob", "no_uncertainty"}
    assert result.out == tmp_path / "results" / "counterfactual"
    data = {p.name for p in (tmp_path / "data").iterdir()}
    assert len(data) == 1 and "synthetic-" in next(iter(data))  # only the rim-free folder


# ---- the grid as scheduler jobs (reproduce --executor) -------------------------------------
LOCAL = Scheduler("local", gpus=0, time_min=10)


def test_grid_units_group_jobs_by_seed_and_unet_and_the_ensemble_waits(beyond_run):
    root = beyond_run.out.parent / "data"
    rows = (*GRID_ROWS, *BEYOND_ROWS)
    units = grid_units(GRID, rows, GRID.seeds, root)
    assert sorted(units) == [
        "ensemble",
        *(f"seed{s}-{u}" for s in (0, 1) for u in ("hcnn", "lce", "plain", "plain-crossfit")),
    ]
    assert units["ensemble"].needs == {"seed0-plain", "seed1-plain"}
    assert units["seed1-plain-crossfit"].needs == {"seed1-plain"}  # its test masks
    assert not units["seed0-hcnn"].needs
    assert units["ensemble"].predictions == (("ensemble", 0), ("ensemble", 1))
    # Every job of the grid is done by exactly one unit, after the jobs it needs.
    jobs = scheduler.grid_jobs(GRID, rows, GRID.seeds, root)
    done = [job for unit in units.values() for job in unit.jobs]
    assert sorted(map(repr, done)) == sorted(map(repr, jobs))
    for unit in units.values():
        for i, job in enumerate(unit.jobs):
            assert not set(jobs[job]) & set(unit.jobs[i:])
    predicted = [p for unit in units.values() for p in unit.predictions]
    assert sorted(predicted) == sorted((r, s) for r in rows for s in GRID.seeds)


def test_the_local_executor_gives_the_sequential_table(beyond_run, tmp_path, monkeypatch, capsys):
    """The grid as scheduler jobs (submitit's local executor: a process per job) in a
    fresh store: the tables equal those of the sequential run for the same rows, the
    ensemble's job is submitted after the plain U-Nets' of both seeds, and a rerun
    submits nothing."""
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "home"))
    rows = ("rca", "no_uncertainty", "max_prob", "ensemble")  # in the sequential run's order
    root = beyond_run.out.parent / "data"
    out = tmp_path / "local"
    experiment.run_grid(GRID, rows, data_root=root, out=out, progress=False, scheduler=LOCAL)
    sequential = beyond_run.predictions[beyond_run.predictions["method"].isin(rows)]
    results.write_results(sequential, tmp_path / "sequential", GRID.name)
    for name in ("predictions.csv", "table1.csv", "beyond_predictions.csv", "beyond.csv"):
        assert (out / name).read_text() == (tmp_path / "sequential" / name).read_text(), name
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("grid on this machine: 3 jobs, 0 done already, 3 to run")

    def line_of(event, unit):
        return next(i for i, x in enumerate(lines) if x.startswith(event) and f"] {unit}:" in x)

    plain_done = max(line_of("[done", "seed0-plain"), line_of("[done", "seed1-plain"))
    assert line_of("[submitted]", "ensemble") > plain_done
    assert len(list((out / "jobs").glob("*_log.err"))) == 3  # submitit's logs

    monkeypatch.setattr(cluster, "_executor", None)  # a rerun submits nothing
    again = experiment.run_grid(
        GRID, rows, data_root=root, out=tmp_path / "again", progress=False, scheduler=LOCAL
    )
    assert capsys.readouterr().out.startswith("grid on this machine: 3 jobs, 3 done already\n")
    assert (tmp_path / "again" / "beyond.csv").read_text() == (out / "beyond.csv").read_text()
    assert again.predictions.equals(read_predictions(out / "beyond_predictions.csv"))


def test_a_failed_job_is_reported_with_its_log_and_what_needs_it_is_not_run(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "home"))
    empty = tmp_path / "data"
    empty.mkdir()  # no split folders: every U-Net's job fails reading them
    with pytest.raises(cluster.GridJobsFailed) as err:
        experiment.run_grid(
            GRID,
            ("max_prob", "ensemble"),
            data_root=empty,
            out=tmp_path / "out",
            progress=False,
            scheduler=LOCAL,
        )
    message = str(err.value)
    assert message.startswith("3 of 3 grid jobs did not finish")
    assert "  - ensemble: not run: it needs seed" in message  # the first of them to fail
    for seed in GRID.seeds:
        line = next(x for x in message.splitlines() if x.startswith(f"  - seed{seed}-plain:"))
        assert "missing folder" in line
        log = Path(line.rsplit("log: ", 1)[1])
        assert log.is_file() and "missing folder" in log.read_text()
    assert "[FAILED] seed0-plain" in capsys.readouterr().out
