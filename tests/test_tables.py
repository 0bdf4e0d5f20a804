import numpy as np
import pytest
from helpers import prediction_records

from segqual_lite.rows import TABLE_ROWS
from segqual_lite.tables import (
    BEYOND_FIELDS,
    PREDICTION_FIELDS,
    TABLE_FIELDS,
    beyond_table,
    csv_text,
    display_table,
    format_table_md,
    per_seed_arrays,
    predictions_frame,
    read_predictions,
    table_caption,
    table_from_predictions,
    wide_table,
)


def toy_predictions(methods=("no_uncertainty", "max_prob"), seeds=(1, 0), n=8):
    """Seeds deliberately out of order; predicted = true + a method-dependent shift."""
    rng = np.random.default_rng(0)
    true = rng.uniform(0.3, 1.0, size=n)
    true[:3] = [0.2, 0.5, 0.65]  # some failures
    rows = []
    for seed in seeds:
        for k, method in enumerate(methods):
            pred = np.clip(true + 0.1 * (k + 1) * rng.standard_normal(n) + 0.01 * seed, 0, 1)
            rows += prediction_records(method, seed, true, pred)
    return rows


def test_per_seed_arrays_keep_image_order_and_sort_seeds():
    arrays = per_seed_arrays(toy_predictions())
    assert list(arrays) == ["no_uncertainty", "max_prob"]  # order of appearance
    assert list(arrays["max_prob"]) == [0, 1]
    true, pred = arrays["max_prob"][0]
    assert true[:3].tolist() == [0.2, 0.5, 0.65] and len(pred) == 8


def test_table1_follows_the_paper_order_units_and_std_over_seeds():
    rows = toy_predictions(methods=("max_prob", "no_uncertainty", "custom"))
    table = table_from_predictions(rows)
    assert list(table.columns) == TABLE_FIELDS
    assert list(dict.fromkeys(table["method"])) == ["no_uncertainty", "max_prob", "custom"]
    cell = table.set_index(["method", "metric"])
    arrays = per_seed_arrays(rows)
    per_seed_rmse = [np.sqrt(np.mean((t - p) ** 2)) for t, p in arrays["max_prob"].values()]
    assert cell.loc[("max_prob", "rmse"), "mean"] == pytest.approx(np.mean(per_seed_rmse))
    assert cell.loc[("max_prob", "rmse"), "std"] == pytest.approx(np.std(per_seed_rmse, ddof=1))
    assert 1 < cell.loc[("max_prob", "auroc"), "mean"] <= 100  # percent
    assert cell.loc[("max_prob", "rmse"), "paper_mean"] == 0.168
    assert np.isnan(cell.loc[("custom", "rmse"), "paper_mean"])


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
        table = table_from_predictions(rows)
    values = dict(zip(table["metric"], table["mean"], strict=True))
    assert values["rmse"] == pytest.approx(0.1)
    assert np.isnan(values["auroc"])


def test_csv_text_round_trips_every_float_exactly(tmp_path):
    rows = predictions_frame(toy_predictions())
    rows.loc[0, "predicted_jaccard"] = 0.1 + 0.2  # 0.30000000000000004
    path = tmp_path / "predictions.csv"
    path.write_text(csv_text(rows))
    assert path.read_text().splitlines()[0] == ",".join(PREDICTION_FIELDS)
    assert "0.30000000000000004" in path.read_text()
    back = read_predictions(path)
    assert back.equals(rows)
    assert table_from_predictions(back).equals(table_from_predictions(rows))


def test_beyond_table_adds_risk_metrics_and_reference_orders():
    table = beyond_table(toy_predictions())
    assert list(table.columns) == BEYOND_FIELDS
    oracle = table[table["method"] == "oracle"].set_index("metric")["mean"]
    assert set(oracle.index) == {"aurc", "automation_at_0.8", "augrc", "naurc"}
    g = table[(table["method"] == "max_prob") & (table["metric"] == "aurc")]["mean"].item()
    assert oracle["aurc"] <= g
    # The oracle ranks perfectly: NAURC 0; a constant (random) order: NAURC 1.
    random = table[table["method"] == "random"].set_index("metric")["mean"]
    assert oracle["naurc"] == pytest.approx(0) and random["naurc"] == pytest.approx(1)
    assert oracle["augrc"] <= g + 1e-12 and random["augrc"] >= oracle["augrc"]


def test_markdown_has_one_line_per_method_and_the_paper_beside():
    table = table_from_predictions(toy_predictions())
    md = format_table_md(table, "tiny")
    lines = md.splitlines()
    assert lines[0].startswith("Table 1 (tiny profile, test split;")
    assert lines[2].startswith("| method | seeds | RMSE ↓")
    assert len(lines) == 4 + 2 and "(0.198 ± 0.011)" in lines[4]
    beyond = format_table_md(beyond_table(toy_predictions()), "tiny", "Beyond Table 1")
    assert "AURC ↓" in beyond and "Oracle order" in beyond and "(0." not in beyond


def test_every_table_row_has_the_papers_numbers():
    assert set(TABLE_ROWS) == set(table_from_predictions(toy_predictions(TABLE_ROWS))["method"])


def test_the_wide_table_is_what_the_markdown_shows():
    table = table_from_predictions(toy_predictions())
    wide = wide_table(table)
    assert list(wide.index) == ["No Uncertainty", "Max Probability"]
    assert list(wide.columns)[:2] == ["seeds", "RMSE ↓"]
    assert wide.loc["Max Probability", "RMSE ↓"].endswith("(0.168 ± 0.014)")
    md = format_table_md(table, "tiny").splitlines()
    assert md[0] == table_caption(table, "tiny")
    assert md[5] == "| Max Probability | " + " | ".join(map(str, wide.iloc[1])) + " |"


def test_the_displayed_table_puts_the_papers_numbers_on_their_own_line():
    table = table_from_predictions(toy_predictions())
    wide = wide_table(table)
    page = display_table(table).to_html()
    ours, paper = wide.loc["Max Probability", "RMSE ↓"].replace(" ± ", "\u00a0±\u00a0").split(" (")
    assert f">{ours}\n({paper}</td>" in page and "white-space: pre-line" in page
    assert page.count("<tr>") == 1 + len(wide)  # one header row: no row for the index name
    assert ">Max Probability</th>" in page and 'class="dataframe"' in page
