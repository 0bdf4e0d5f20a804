import csv

import numpy as np
import pytest
import torch

from segqual_lite import experiment
from segqual_lite.config import get_profile
from segqual_lite.data import make_synthetic_isic
from segqual_lite.models import QualityCNN
from segqual_lite.quality import ROWS, QualityDataset, SegmentationSet, in_channels
from segqual_lite.rca import choose_references, rca_scores


def toy_set(n=3, size=16):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    masks[:, 4:12, 4:12] = 1
    maps = torch.rand(n, size, size, generator=g)
    return SegmentationSet(
        [f"ISIC_{i:07d}" for i in range(n)], images, masks, masks, maps, np.ones(n)
    )


# ---- g's inputs -----------------------------------------------------------------------
@pytest.mark.parametrize("row", ROWS)
def test_quality_inputs_per_row(row):
    seg = toy_set()
    ds = QualityDataset(row, seg, scale=0.5)
    x, target = ds[1]
    assert x.shape == (in_channels(row), 16, 16) and x.dtype == torch.float32
    image = seg.images[1].float() / 255
    if row == "qualitynet":
        torch.testing.assert_close(x, image * seg.masks[1].float())
    else:
        torch.testing.assert_close(x[:3], image)
        torch.testing.assert_close(x[3], seg.masks[1].float())
    if in_channels(row) == 5:
        torch.testing.assert_close(x[4], (seg.maps[1] / 0.5).clamp(0, 1))
        assert 0 <= x[4].min() and x[4].max() <= 1
    assert target == 1.0
    g = QualityCNN(in_channels(row), widths=(4, 8))
    out = g(ds.inputs(slice(0, 3)))
    assert out.shape == (3,) and ((out > 0) & (out < 1)).all()


def test_in_channels():
    assert [in_channels(r) for r in ROWS] == [3, 4, 5, 5, 5, 5]
    with pytest.raises(ValueError, match="unknown row"):
        in_channels("rca")


def test_augmented_inputs_keep_channels_aligned():
    seg = toy_set(n=1)
    seg.maps[0] = seg.masks[0].float() * 0.25  # map equal to a scaled mask
    ds = QualityDataset("max_prob", seg, scale=0.5, augment=True)
    torch.manual_seed(0)
    for _ in range(10):
        x, _ = ds[0]
        torch.testing.assert_close(x[4], x[3] * 0.5)


# ---- RCA -------------------------------------------------------------------------------
def test_rca_scores_a_perfect_prediction_above_a_poor_one():
    # Dark square lesions on light skin: a reverse classifier trained on the right mask
    # segments the references well; one trained on a wrong mask does not.
    rng = np.random.default_rng(0)
    n, size = 6, 24
    images = np.full((n, 3, size, size), 200, dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(n):
        r, c = rng.integers(2, 12, 2)
        masks[i, r : r + 10, c : c + 10] = 1
        images[i][:, masks[i] == 1] = 60
    images = torch.from_numpy(images + rng.integers(0, 10, images.shape).astype(np.uint8))
    masks = torch.from_numpy(masks)
    test_images = images[:1].repeat(3, 1, 1, 1)
    perfect = masks[0]
    poor = torch.zeros_like(perfect)
    poor[:12, :] = 1  # half the image, unrelated to the lesion
    empty = torch.zeros_like(perfect)
    refs = choose_references(5, 4, seed=0) + 1
    scores, best = rca_scores(
        test_images, torch.stack([perfect, poor, empty]), images[refs], masks[refs]
    )
    assert scores[0] > 0.8 and scores[0] > scores[1] + 0.3
    assert scores[2] == 0 and best[2] == -1  # degenerate mask
    again, _ = rca_scores(
        test_images, torch.stack([perfect, poor, empty]), images[refs], masks[refs]
    )
    assert np.array_equal(scores, again)  # deterministic


# ---- the grid --------------------------------------------------------------------------
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
    make_synthetic_isic(root, n_train=24, n_val=4, n_test=24, size=32, seed=7, hard_cases=easy)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGQUAL_HOME", str(base / "home"))
        first = experiment.run_grid(GRID, data_root=root, out=base / "out", progress=False)
        files = {p: p.stat().st_mtime_ns for p in (base / "home").rglob("*") if p.is_file()}
        # A second run must train nothing: make any training fail loudly.
        mp.setattr(experiment, "fit_quality", _no_training(experiment.fit_quality))
        second = experiment.run_grid(GRID, data_root=root, out=base / "out2", progress=False)
        after = {p: p.stat().st_mtime_ns for p in (base / "home").rglob("*") if p.is_file()}
    return first, second, files, after


@pytest.fixture(scope="module")
def beyond_run(grid_run):
    """Chapter 11's rows on the same data and artifact store, after the grid."""
    from segqual_lite import beyond

    first, *_ = grid_run
    base = first.out.parent
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGQUAL_HOME", str(base / "home"))
        return beyond.run_beyond(GRID, data_root=base / "data", out=base / "beyond", progress=False)


def _no_training(fit_quality):
    import segqual_lite.training as training

    def guarded(*args, **kwargs):
        original = training.fit_checkpointed

        def refuse(folder, *a, **k):
            assert (folder / "final.pt").exists(), f"second run would train {folder.name}"
            return original(folder, *a, **k)

        training.fit_checkpointed = refuse
        import segqual_lite.quality as quality

        quality.fit_checkpointed = refuse
        try:
            return fit_quality(*args, **kwargs)
        finally:
            training.fit_checkpointed = original
            quality.fit_checkpointed = original

    return guarded


def test_grid_writes_every_file(grid_run):
    first, *_ = grid_run
    for name in ("predictions.csv", "table1.csv", "table1.md", "figure2.png", "figure3.png"):
        assert (first.out / name).is_file(), name
    with open(first.out / "table1.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == [
        "method",
        "metric",
        "mean",
        "std",
        "n_seeds",
        "paper_mean",
        "paper_std",
    ]
    assert {r["method"] for r in table} == set(experiment.TABLE_ROWS)
    assert len(table) == len(experiment.TABLE_ROWS) * 5
    assert all(r["n_seeds"] == "2" for r in table)
    rmse_rca = next(r for r in table if r["method"] == "rca" and r["metric"] == "rmse")
    assert float(rmse_rca["paper_mean"]) == 0.438
    md = (first.out / "table1.md").read_text()
    assert "Max Probability" in md and "(0.168 ± 0.014)" in md


def test_table_is_recomputable_from_predictions_csv(grid_run):
    first, *_ = grid_run
    predictions = experiment.read_predictions(first.out / "predictions.csv")
    assert len(predictions) == len(experiment.TABLE_ROWS) * 2 * 24
    recomputed = experiment.table_from_predictions(predictions)
    with open(first.out / "table1.csv", newline="") as f:
        written = list(csv.DictReader(f))
    assert len(recomputed) == len(written)
    for a, b in zip(recomputed, written, strict=True):
        assert (a["method"], a["metric"]) == (b["method"], b["metric"])
        assert a["mean"] == float(b["mean"])  # exactly: the CSV keeps full precision
        assert a["std"] == float(b["std"])
    # Percentages for all but RMSE; both classes present, so every metric is defined.
    assert all(np.isfinite(r["mean"]) for r in recomputed)
    auroc = next(r for r in recomputed if r["metric"] == "auroc")
    assert 0 <= auroc["mean"] <= 100


def test_second_run_reuses_everything(grid_run):
    first, second, files, after = grid_run
    assert files == after  # nothing written or rewritten under the artifact store
    assert first.table == second.table


def test_single_class_seed_gives_nan_with_a_warning():
    rows = [
        {
            "method": "lce",
            "seed": 0,
            "image_id": f"ISIC_{i:07d}",
            "true_jaccard": 0.9,
            "predicted_jaccard": 0.8,
        }
        for i in range(4)
    ]
    with pytest.warns(UserWarning, match="all 4 images pass"):
        table = experiment.table_from_predictions(rows)
    values = {r["metric"]: r["mean"] for r in table}
    assert values["rmse"] == pytest.approx(0.1)
    assert np.isnan(values["auroc"])


def test_subsets_merge_into_the_full_table(grid_run, tmp_path, capsys):
    from segqual_lite.cli import main as cli_main

    first, *_ = grid_run
    rows = experiment.read_predictions(first.out / "predictions.csv")
    for name, keep in (("a", lambda r: r["seed"] == 0), ("b", lambda r: r["seed"] == 1)):
        (tmp_path / name).mkdir()
        part = experiment.GridResult([r for r in rows if keep(r)], [], None)
        part.table = experiment.table_from_predictions(part.predictions)
        experiment.write_results(part, tmp_path / name, GRID.name)
    assert (
        cli_main(["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")])
        == 0
    )
    merged = experiment.read_predictions(tmp_path / "m" / "predictions.csv")
    assert sorted(map(str, merged)) == sorted(map(str, rows))
    assert (tmp_path / "m" / "table1.md").read_text().splitlines()[2:] == (
        first.out / "table1.md"
    ).read_text().splitlines()[2:]
    # Conflicting values for the same image are refused, naming the folders.
    conflict = [dict(r, predicted_jaccard=0.5) if r["seed"] == 0 else r for r in rows[:5]]
    (tmp_path / "c").mkdir()
    experiment.write_results(experiment.GridResult(conflict, [], None), tmp_path / "c", "")
    assert (
        cli_main(["merge", str(tmp_path / "a"), str(tmp_path / "c"), "--out", str(tmp_path / "x")])
        == 2
    )
    assert "differs between" in capsys.readouterr().err


# ---- beyond the paper (chapter 11) ---------------------------------------------------------
def test_beyond_csv_holds_every_row_and_metric(beyond_run):
    from segqual_lite.beyond import BEYOND_METRICS, REFERENCE_ROWS
    from segqual_lite.quality import BEYOND_ROWS

    for name in ("beyond.csv", "beyond.md", "beyond_predictions.csv", "risk_coverage.png"):
        assert (beyond_run.out / name).is_file(), name
    with open(beyond_run.out / "beyond.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["method", "metric", "mean", "std", "n_seeds"]
    methods = {r["method"] for r in table}
    assert methods == {*experiment.TABLE_ROWS, *BEYOND_ROWS, *REFERENCE_ROWS}
    for method in (*experiment.TABLE_ROWS, *BEYOND_ROWS):
        got = {r["metric"] for r in table if r["method"] == method}
        assert got == set(BEYOND_METRICS), method
    for method in REFERENCE_ROWS:
        assert {r["metric"] for r in table if r["method"] == method} == {
            "aurc",
            "automation_at_0.8",
        }
    assert all(r["n_seeds"] == "2" for r in table)


def test_beyond_table_recomputes_and_agrees_with_table1(beyond_run, grid_run):
    from segqual_lite.beyond import beyond_table

    first, *_ = grid_run
    predictions = experiment.read_predictions(beyond_run.out / "beyond_predictions.csv")
    with open(beyond_run.out / "beyond.csv", newline="") as f:
        written = list(csv.DictReader(f))
    recomputed = beyond_table(predictions)
    assert [(r["method"], r["metric"]) for r in recomputed] == [
        (r["method"], r["metric"]) for r in written
    ]
    assert all(a["mean"] == float(b["mean"]) for a, b in zip(recomputed, written, strict=True))
    # Table 1's rows are the very same predictions, so their five metrics match table1.csv.
    cell = {(r["method"], r["metric"]): r["mean"] for r in recomputed}
    for r in first.table:
        assert cell[(r["method"], r["metric"])] == r["mean"]
    # The oracle order is the best possible, the random order is flat at the mean Jaccard.
    for method in {r["method"] for r in recomputed} - {"oracle", "random"}:
        if method in ("rca", "qualitynet", "no_uncertainty", "max_prob", "max_prob_crossfit"):
            assert cell[("oracle", "aurc")] <= cell[(method, "aurc")] + 1e-12
    by_seed = experiment.per_seed_arrays(predictions)["max_prob"]
    expected = np.mean([1 - true.mean() for true, _ in by_seed.values()])
    assert cell[("random", "aurc")] == pytest.approx(expected)


def test_crossfit_rows_share_the_test_inputs_but_not_the_training_data(beyond_run):
    rows = experiment.per_seed_arrays(beyond_run.predictions)
    for seed in GRID.seeds:
        # Same f on the test split: same true Jaccard; a different g: other predictions.
        assert np.array_equal(rows["max_prob"][seed][0], rows["max_prob_crossfit"][seed][0])
        assert not np.array_equal(rows["max_prob"][seed][1], rows["max_prob_crossfit"][seed][1])
        assert np.array_equal(rows["mc_dropout"][seed][0], rows["mc_dropout_crossfit"][seed][0])
    # The ensemble uses the U-Nets of every seed: its masks are the same for both seeds.
    assert np.array_equal(rows["ensemble"][0][0], rows["ensemble"][1][0])


def test_beyond_subsets_merge_like_the_full_run(beyond_run, tmp_path, capsys):
    from segqual_lite.beyond import write_beyond
    from segqual_lite.cli import main as cli_main

    rows = beyond_run.predictions
    for seed in GRID.seeds:
        part = [r for r in rows if r["seed"] == seed]
        table_rows = [r for r in part if r["method"] in experiment.TABLE_ROWS]
        result = experiment.GridResult(
            table_rows, experiment.table_from_predictions(table_rows), None
        )
        experiment.write_results(result, tmp_path / f"s{seed}", GRID.name)
        write_beyond(part, tmp_path / f"s{seed}", GRID.name)
    folders = [str(tmp_path / f"s{seed}") for seed in GRID.seeds]
    assert cli_main(["merge", *folders, "--out", str(tmp_path / "m")]) == 0
    assert "Deep ensemble" in capsys.readouterr().out
    assert (tmp_path / "m" / "beyond.csv").read_text() == (
        beyond_run.out / "beyond.csv"
    ).read_text()
    # A folder without chapter 11's predictions: Table 1 is merged, beyond.csv is not.
    (tmp_path / "s1" / "beyond_predictions.csv").unlink()
    with pytest.warns(UserWarning, match="beyond.csv not merged"):
        experiment.merge_results(folders, tmp_path / "m2")
    assert (tmp_path / "m2" / "table1.csv").is_file()
    assert not (tmp_path / "m2" / "beyond.csv").exists()
