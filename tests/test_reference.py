"""The reference run: packing with provenance, refusing stale evidence, checking a build."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from helpers import prediction_records

from segqual_lite.config import get_profile
from segqual_lite.power import simulate_build_check
from segqual_lite.reference import (
    FAMILY_ALPHA,
    PLANNED_SEEDS,
    REGENERATE,
    StaleReference,
    check_build,
    environment,
    load_reference,
    pack_reference,
    prediction_interval,
    reference_folder,
)
from segqual_lite.rows import CONTROL_ROWS, TABLE_ROWS
from segqual_lite.seeds import parse_seeds
from segqual_lite.tables import (
    METRICS,
    csv_text,
    format_table_md,
    predictions_frame,
    table_from_predictions,
)

TINY = get_profile("tiny")


def _predictions(seeds, shift=0.0, n=40):
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        true = rng.uniform(0.3, 1.0, n)
        for method in ("no_uncertainty", "max_prob"):
            pred = np.clip(true + 0.1 * rng.standard_normal(n) + shift, 0, 1)
            rows += prediction_records(method, seed, true, pred)
    return predictions_frame(rows)


@pytest.fixture
def packed(tmp_path):
    results = tmp_path / "results"
    (results / "counterfactual").mkdir(parents=True)
    (results / "predictions.csv").write_text(csv_text(_predictions(range(5))))
    (results / "counterfactual" / "predictions.csv").write_text(csv_text(_predictions([0, 1])))
    out = pack_reference(results, tmp_path / "ref" / "tiny", TINY, tuple(range(5)), "cmd", 1.0)
    return out


def test_a_packed_reference_loads_with_its_provenance_byte_stable(packed, tmp_path):
    reference = load_reference(TINY, packed)
    assert reference.seeds == (0, 1, 2, 3, 4)
    assert reference.run["command"] == "cmd" and reference.run["environment"] == environment()
    assert set(reference.run) >= {"commit", "code_versions", "profile", "wall_s", "python"}
    pd.testing.assert_frame_equal(reference.predictions, _predictions(range(5)))
    assert set(reference.counterfactual["seed"]) == {0, 1}
    first = (packed / "predictions.csv.gz").read_bytes()
    pack_reference(tmp_path / "results", packed, TINY, tuple(range(5)), "cmd", 2.0)
    assert (packed / "predictions.csv.gz").read_bytes() == first  # no time stamp inside
    assert gzip.decompress(first).decode().startswith("method,seed,image_id")


def test_a_reference_missing_seeds_is_refused(tmp_path):
    (tmp_path / "predictions.csv").write_text(csv_text(_predictions([0])))
    with pytest.raises(ValueError, match=r"lacks seeds \[1\]"):
        pack_reference(tmp_path, tmp_path / "out", TINY, (0, 1), "cmd", 1.0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("code_versions", {"f": -1}, "code version of 'f' is -1 there"),
        ("profile", {"epochs_f": 99}, "profile field 'epochs_f' is 99 there"),
    ],
)
def test_a_stale_reference_fails_and_names_the_command(packed, field, value, message):
    run = json.loads((packed / "run.json").read_text())
    run[field] = {**run[field], **value}
    (packed / "run.json").write_text(json.dumps(run))
    with pytest.raises(StaleReference, match=message) as err:
        load_reference(TINY, packed)
    assert REGENERATE in str(err.value)


def test_the_reference_is_found_through_the_environment(packed, monkeypatch):
    monkeypatch.setenv("SEGQUAL_REFERENCE", str(packed.parent))
    assert reference_folder("tiny") == packed
    assert reference_folder("no-such-profile") is None


def test_a_build_equals_the_reference_in_the_same_environment(packed):
    reference = load_reference(TINY, packed)
    build = _predictions(range(3))
    check = check_build(reference, build)
    assert check.ok and check.same_environment and check.seeds == (0, 1, 2)
    assert "equal the reference's" in check.line()
    build.loc[5, "predicted_jaccard"] += 1e-9  # one image, one bit of difference
    check = check_build(reference, build)
    assert not check.ok and "1 of 240 predictions differ" in check.problems[0]


def test_a_cpu_with_the_same_instructions_but_other_floats_is_another_environment(packed):
    """Two CPUs can both report AVX512 and still train other U-Nets: the environment
    carries a fingerprint of the kernels' floats, and a reference without one (packed
    before it was recorded) is not taken for this machine."""
    import torch

    from segqual_lite.provenance import fingerprint_weights, float_fingerprint

    reference = load_reference(TINY, packed)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    print_ = fingerprint_weights(3)
    assert torch.equal(state, torch.random.get_rng_state()) and threads == torch.get_num_threads()
    assert torch.equal(print_, fingerprint_weights(3))  # the same seed, the same floats
    assert float_fingerprint() == environment()["float_fingerprint"]
    other = {**environment(), "float_fingerprint": "0123456789abcdef"}
    check = check_build(reference, _predictions(range(3)), other)
    assert not check.same_environment and "new draws" in check.line()
    reference.run["environment"].pop("float_fingerprint")
    check = check_build(reference, _predictions(range(3)))
    assert not check.same_environment
    assert "float fingerprint " + float_fingerprint() + " here, not recorded there" in check.line()


def _new_draws(seeds, **kwargs):
    """A build's seeds on another CPU: fresh draws, labelled as the reference's seeds."""
    build = _predictions([1000 + s for s in seeds], **kwargs)
    return build.assign(seed=build["seed"] - 1000)


def test_another_environment_is_held_to_the_reference_s_spread(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "predictions.csv").write_text(csv_text(_predictions(range(20))))
    reference = load_reference(
        TINY, pack_reference(results, tmp_path / "ref", TINY, tuple(range(20)), "cmd", 1.0)
    )
    elsewhere = {**environment(), "cpu_capability": "AVX2"}
    healthy = check_build(reference, _new_draws(range(3)), elsewhere)
    assert healthy.ok and not healthy.same_environment and healthy.intervals == 2 * 5
    line = healthy.line()
    assert "AVX2 here" in line and "new draws" in line and "inside the spread" in line
    assert "reference's 20 seeds predict for 3 new seeds" in line
    shifted = check_build(reference, _new_draws(range(3), shift=0.2), elsewhere)
    assert not shifted.ok and any(p.startswith("max_prob RMSE") for p in shifted.problems)
    assert "OUTSIDE the spread" in shifted.line()
    broken = _new_draws(range(3))  # a broken row: the same prediction for every lesion
    broken.loc[broken["method"] == "max_prob", "predicted_jaccard"] = 0.8
    check = check_build(reference, broken, elsewhere)
    assert not check.ok and all(p.startswith("max_prob") for p in check.problems)
    assert any("AUROC" in p for p in check.problems)


def test_the_prediction_interval_covers_as_simulated():
    """For normal per-seed values the interval of n seeds covers the mean of m new ones at
    its level; Bonferroni over K keeps a healthy build's failures under FAMILY_ALPHA."""
    rng = np.random.default_rng(0)
    n, m, trials = 20, 3, 4000
    covered = sum(
        prediction_interval(x[:n], m, 0.1)[0]
        <= x[n:].mean()
        <= prediction_interval(x[:n], m, 0.1)[1]
        for x in rng.normal(0.7, 0.05, size=(trials, n + m))
    )
    assert abs(covered / trials - 0.9) < 0.015  # 3 standard errors
    seeds = pd.MultiIndex.from_product([["a", "b"], range(n)], names=["method", "seed"])
    table = pd.DataFrame(rng.normal(size=(2 * n, 5)), index=seeds, columns=list(METRICS))
    rates = simulate_build_check(table, n_sim=4000)
    assert rates["intervals"] == 10 and rates["normal_false_failure"] < FAMILY_ALPHA + 0.005
    caught = simulate_build_check(
        table.assign(auroc=table["auroc"] + 10 * (table.index.get_level_values(0) == "b")),
        broken={"b": "a"},
        n_sim=500,
    )
    assert caught["caught"] == 1.0  # b takes a's values, ten spreads away: always caught


def test_the_command_line_packs_a_finished_results_folder(packed, tmp_path):
    from segqual_lite.cli import main

    out = tmp_path / "cli-ref"
    results = tmp_path / "results"
    assert (
        main(["reference", "--from-results", str(results), "--seeds", "0-4", "--out", str(out)])
        == 0
    )
    run = json.loads((out / "run.json").read_text())
    assert run["seeds"] == [0, 1, 2, 3, 4] and run["wall_s"] is None
    assert run["command"].startswith("python -m segqual_lite reference --from-results")
    assert (
        main(["reference", "--from-results", str(results), "--seeds", "0-7", "--out", str(out)])
        == 2
    )


def _part(tmp_path, seeds, name):
    results = tmp_path / f"results-{name}"
    (results / "counterfactual").mkdir(parents=True)
    (results / "predictions.csv").write_text(csv_text(_predictions(seeds)))
    (results / "counterfactual" / "predictions.csv").write_text(csv_text(_predictions(seeds)))
    fit = pd.DataFrame(
        [
            {"method": "max_prob", "seed": s, "split": split, "mean_jaccard": 0.8,
             "failure_share": 0.2, "n_images": 40}
            for s in seeds
            for split in ("train", "test")
        ]
    )  # fmt: skip
    return pack_reference(results, tmp_path / name, TINY, tuple(seeds), f"cmd {name}", 3.0, fit=fit)


def test_a_reference_run_in_parts_by_seeds_combines_into_one(tmp_path):
    """Parts of the same code and profile combine into the reference a single run would
    have given (the same predictions), keeping each part's provenance; overlapping
    seeds are refused."""
    from segqual_lite.assemble import combine_parts

    parts = [_part(tmp_path, [3, 4], "b"), _part(tmp_path, [0, 1, 2], "a")]
    out = combine_parts(parts, tmp_path / "whole", TINY)
    whole = load_reference(TINY, out)
    assert whole.seeds == (0, 1, 2, 3, 4) and whole.run["wall_s"] == 6.0
    assert [p["command"] for p in whole.run["parts"]] == ["cmd b", "cmd a"]
    single = _predictions(range(5)).sort_values("seed", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(whole.predictions, single)
    assert sorted(set(whole.fit["seed"])) == [0, 1, 2, 3, 4]
    assert sorted(set(whole.counterfactual["seed"])) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"share seeds \[3, 4\]"):
        combine_parts([*parts, _part(tmp_path, [3, 4], "c")], tmp_path / "x", TINY)


def test_a_fit_is_added_only_when_its_f_is_the_reference_s(packed):
    """reference --fit-only retrains f; a fit whose test Jaccard differs from the
    reference's (another f: other threads, torch or CPU) is refused, naming the seeds."""
    from segqual_lite.assemble import add_fit

    ref = load_reference(TINY, packed)
    test = ref.predictions[ref.predictions["method"] == "max_prob"]
    means = test.groupby("seed")["true_jaccard"].mean()
    fit = pd.DataFrame(
        [
            {"method": "max_prob", "seed": s, "split": split, "mean_jaccard": m + d,
             "failure_share": 0.2, "n_images": 40}
            for s, m in means.items()
            for split, d in (("train", 0.05), ("test", 0.0))
        ]
    )  # fmt: skip
    add_fit(packed, fit, ["reference", "--fit-only"])
    again = load_reference(TINY, packed)
    assert again.fit is not None and again.run["fit"]["command"].endswith("--fit-only")
    fit.loc[(fit["seed"] == 3) & (fit["split"] == "test"), "mean_jaccard"] += 0.01
    with pytest.raises(ValueError, match=r"not the reference's.*seeds \[3\]"):
        add_fit(packed, fit, ["reference", "--fit-only"])


@pytest.mark.parametrize("name", sorted(PLANNED_SEEDS))
def test_every_shipped_reference_holds_its_plan(name):
    """Each planned reference is shipped, current, and holds what its plan fixed: the
    planned seeds in Table 1's rows and controls, the counterfactual (synthetic data;
    PH2's rims cannot be removed) or the data's fingerprint (PH2), f's fit, and a Table 1
    recomputed from its predictions."""
    profile = get_profile(name)
    assert reference_folder(name) is not None, f"results/reference/{name} is not shipped"
    reference = load_reference(profile)  # raises when stale
    planned = sorted(parse_seeds(PLANNED_SEEDS[name]))
    assert set(reference.predictions["method"]) >= set(TABLE_ROWS) | set(CONTROL_ROWS)
    for row, by_row in reference.predictions.groupby("method"):
        assert sorted(by_row["seed"].unique()) == planned, row
    if profile.data == "synthetic":
        assert sorted(reference.counterfactual["seed"].unique()) == planned
    else:
        assert reference.counterfactual is None
        assert reference.run["data"]["name"] == "PH2" and reference.run["data"]["fingerprint"]
    assert sorted(reference.fit["seed"].unique()) == planned
    table = table_from_predictions(reference.predictions)
    assert format_table_md(table, name) == (reference.folder / "table1.md").read_text()
