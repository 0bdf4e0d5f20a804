import re

import pytest

from segqual_lite.cli import build_parser, main


def test_reproduce_knows_every_row_and_refuses_others(capsys):
    args = build_parser().parse_args(["reproduce", "--rows", "rca", "tta", "--beyond"])
    assert args.rows == ["rca", "tta"] and args.beyond
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "--rows", "max-prob"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'max-prob'" in capsys.readouterr().err


def test_merge_of_missing_folders_names_the_file(tmp_path, capsys):
    assert main(["merge", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")]) == 2
    assert "predictions.csv is missing" in capsys.readouterr().err


def test_reproduce_checks_an_isic_folder_given_with_data(monkeypatch, tmp_path):
    """--data DIR on a real-data profile goes through prepare_data (used as it is when
    complete, downloaded into when not), like the default folder."""
    from segqual_lite import cli

    seen = []

    class Stop(Exception):
        pass

    def prepare(profile, root=None):
        seen.append((profile.name, root))
        raise Stop

    monkeypatch.setattr(cli, "prepare_data", prepare)
    with pytest.raises(Stop):
        cli.main(["reproduce", "--profile", "colab", "--data", str(tmp_path)])
    assert seen == [("colab", str(tmp_path))]


def test_reproduce_runs_the_grid_sequentially_unless_an_executor_is_named(monkeypatch, tmp_path):
    from segqual_lite import cli
    from segqual_lite.cluster import Scheduler

    seen = {}

    class Stop(Exception):
        pass

    def run_grid(profile, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(cli, "run_grid", run_grid)
    with pytest.raises(Stop):
        cli.main(["reproduce", "--data", str(tmp_path)])
    assert seen["scheduler"] is None
    with pytest.raises(Stop):
        cli.main(
            ["reproduce", "--data", str(tmp_path), "--executor", "slurm", "--partition", "gpu"]
            + ["--time", "90", "--mem", "64"]
        )
    assert seen["scheduler"] == Scheduler("slurm", "gpu", gpus=1, time_min=90, mem_gb=64, cpus=4)


# ---- seeds and --out (reproduce) ------------------------------------------------------------
SMALL = [
    *("--set", "image_size=32", "--set", "unet_width=4", "--set", "unet_depth=3"),
    *("--set", "quality_widths=4,8", "--set", "n_train=16", "--set", "n_val=4"),
    *("--set", "n_test=12", "--set", "epochs_f=1", "--set", "epochs_g=1"),
    *("--set", "mc_samples=2", "--set", "hcnn_samples=2", "--set", "hcnn_train_samples=2"),
]


def _capture_run_grid(monkeypatch):
    from segqual_lite import cli

    seen = {}

    class Stop(Exception):
        pass

    def run_grid(profile, **kwargs):
        seen.update(kwargs, profile=profile)
        raise Stop

    monkeypatch.setattr(cli, "run_grid", run_grid)
    return seen, Stop


@pytest.mark.parametrize(
    ("given", "seeds"),
    [
        (["--set", "seeds=0-3"], (0, 1, 2, 3)),
        (["--seeds", "0-3"], (0, 1, 2, 3)),
        (["--seeds", "0,2,5-7"], (0, 2, 5, 6, 7)),
        (["--seeds", "4", "1"], (4, 1)),
    ],
)
def test_reproduce_takes_seed_ranges_and_lists(monkeypatch, tmp_path, given, seeds):
    seen, stop = _capture_run_grid(monkeypatch)
    with pytest.raises(stop):
        main(["reproduce", "--data", str(tmp_path), *given])
    ran = seen["seeds"] if "--seeds" in given else seen["profile"].seeds
    assert tuple(ran) == seeds
    if "--set" in given:
        assert seen["profile"].name == "tiny+seeds=0-3"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["--seeds", "5-2"], "the range 5-2 runs backwards"),
        (["--seeds", "-1"], "'-1' is neither a seed nor a range"),
        (["--seeds", "0,1,1"], "seed 1 is given twice"),
        (["--set", "seeds=3-1"], "the range 3-1 runs backwards"),
        (["--set", "seeds=0,x"], "'x' is neither a seed nor a range"),
    ],
)
def test_bad_seeds_exit_2_before_any_work(monkeypatch, capsys, given, message):
    """Refused before the data are made or a worker starts: both would raise here."""
    from segqual_lite import cli

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the seeds were checked")

    monkeypatch.setattr(cli, "prepare_data", no_work)
    monkeypatch.setattr(cli, "worker_pool", no_work)
    assert main(["reproduce", "--workers", "2", *given]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*images (fail|pass)")
def test_the_counterfactual_and_every_file_go_under_out(monkeypatch, tmp_path):
    """reproduce --counterfactual --out DIR writes nothing outside DIR (the cache of
    models and maps aside, in $SEGQUAL_HOME), and merge merges the counterfactuals."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SEGQUAL_HOME", str(home))
    monkeypatch.delenv("SEGQUAL_RESULTS", raising=False)
    monkeypatch.setenv("SEGQUAL_PROGRESS", "0")
    for seeds, out in (("0", "a"), ("1", "b")):
        args = ["reproduce", *SMALL, "--rows", "no_uncertainty", "max_prob", "--seeds", seeds]
        assert main([*args, "--counterfactual", "--out", out]) == 0
    outside = [p for p in work.rglob("*") if p.is_file() and p.parts[len(work.parts)] not in "ab"]
    assert outside == []
    for out in ("a", "b"):
        assert (work / out / "counterfactual" / "predictions.csv").is_file()
    assert main(["merge", "a", "b", "--out", "m"]) == 0
    from segqual_lite.experiment import COUNTERFACTUAL_ROWS, control_of
    from segqual_lite.tables import read_predictions

    merged = read_predictions(work / "m" / "counterfactual" / "predictions.csv")
    assert set(merged["seed"]) == {0, 1}
    compared = {r for row in COUNTERFACTUAL_ROWS for r in (row, control_of(row))}
    assert set(merged["method"]) == compared


@pytest.mark.parametrize("profile", ["tiny", "paper"])
def test_a_dry_run_prints_the_jobs_and_times_and_does_nothing(
    monkeypatch, capsys, tmp_path, profile
):
    """reproduce --dry-run: the jobs by kind with their worker-seconds and the wall time,
    offline, with no data made, no worker started and nothing written."""
    from segqual_lite import cli

    def no_work(*args, **kwargs):
        raise AssertionError("a dry run started work")

    monkeypatch.setattr(cli, "prepare_data", no_work)
    monkeypatch.setattr(cli, "worker_pool", no_work)
    monkeypatch.setattr(cli, "run_grid", no_work)
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    args = ["reproduce", "--profile", profile, "--seeds", "0-1", "--beyond", "--workers", "2"]
    assert main([*args, "--dry-run", "--counterfactual"]) == 0
    out = capsys.readouterr().out
    for kind in ("f trainings", "masks and maps", "g trainings", "RCA", "shift tests"):
        assert re.search(rf"{kind}\s+\d+\s+\d+ worker-s", out), out
    total = re.search(r"total\s+(\d+)\s+(\d+) worker-s", out)
    assert total and int(total[1]) > 0 and int(total[2]) > 0
    assert "wall time on this device (cpu) with 2 workers: about" in out
    assert ("the counterfactual" in out) == (profile == "tiny")  # paper's data are real
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_for_slurm_gives_each_job_its_time(capsys):
    """With --executor slurm, each scheduler job's --time from the model (GPU rates);
    --time given by hand wins."""
    assert main(["reproduce", "--profile", "paper", "--executor", "slurm", "--dry-run"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if ": --time " in x]
    assert len(lines) == 5 * 3  # a job per seed and U-Net (plain, HCNN, LCE)
    times = [int(x.rsplit(" ", 1)[1]) for x in lines]
    assert all(10 < t < 360 for t in times), times
    args = ["reproduce", "--profile", "paper", "--executor", "slurm", "--time", "90"]
    assert main([*args, "--dry-run"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if ": --time " in x]
    assert len(lines) == 15 and all(x.endswith("--time 90") for x in lines)
