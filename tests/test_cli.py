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
