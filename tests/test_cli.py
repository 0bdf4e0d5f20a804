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
