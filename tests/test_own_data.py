"""A folder of your own: data check, every bad input named, reproduce end to end, and
chapters 01 and 10 executed on it (book/own_data.md)."""

from pathlib import Path

import numpy as np
import pytest
from helpers import folder_bytes
from PIL import Image

from segqual_lite.cli import main
from segqual_lite.data import (
    ISIC2017,
    check_data,
    detect_layout,
    make_synthetic_folder,
    make_synthetic_isic,
)
from segqual_lite.store import OURS
from segqual_lite.tables import read_predictions

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path):
    """24/6/12 lesions in mixed sizes (48-96 px, square or 4:3) and formats (RGB JPEG,
    RGB PNG, grey PNG; masks 0/1 or 0/255)."""
    root = tmp_path / "own"
    make_synthetic_folder(root, 24, 6, 12, seed=3)
    (root / OURS).unlink()  # a folder of yours: no marker of the book's, a notes file
    (root / "NOTES.txt").write_text("where these lesions come from\n")
    return root


def test_the_layout_is_recognised_and_counted(folder, tmp_path, capsys):
    assert detect_layout(folder) == "folder"
    isic = tmp_path / "isic"
    make_synthetic_isic(isic, 2, 1, 1, size=16)
    assert detect_layout(isic) == "isic2017"
    assert check_data(folder) == ("folder", {"train": 24, "val": 6, "test": 12})
    sizes = {Image.open(p).size for p in (folder / "train" / "images").iterdir()}
    modes = {Image.open(p).mode for p in (folder / "train" / "images").iterdir()}
    assert len(sizes) > 2 and modes == {"RGB", "L"}
    assert main(["data", "check", str(folder)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{folder}: a folder of your own",
        "train=24 val=6 test=12",
    ]


def test_images_of_any_size_and_format_are_read_like_isic(folder):
    data = ISIC2017(folder, "test", 32)
    assert data.images.shape == (12, 3, 32, 32) and data.masks.shape == (12, 32, 32)
    assert set(np.unique(data.masks.numpy())) == {0, 1}  # 0/1 and 0/255 masks alike
    assert data.ids[0] == "lesion-test-000"


def _first(folder, split, kind):
    return sorted((folder / split / kind).iterdir())[0]


def _missing_mask(folder):
    path = _first(folder, "train", "masks")
    path.unlink()
    return path, "missing mask"


def _missing_image(folder):
    path = _first(folder, "val", "images")
    path.unlink()
    return folder / "val" / "masks" / f"{path.stem}.png", "has no image"


def _mask_of_another_size(folder):
    path = _first(folder, "test", "masks")
    Image.new("L", (7, 5)).save(path)
    return path, "size mismatch"


def _unreadable(folder):
    path = _first(folder, "train", "images")
    path.write_bytes(path.read_bytes()[:200])
    return path, "unreadable file"


def _empty_split(folder):
    for kind in ("images", "masks"):
        for path in (folder / "val" / kind).iterdir():
            path.unlink()
    return folder / "val" / "images", "split 'val' is empty"


def _not_binary(folder):
    path = _first(folder, "test", "masks")
    values = np.asarray(Image.open(path))
    labels = (values > 0).astype(np.uint8)
    labels[: labels.shape[0] // 2] *= 2  # two labels: 1 and 2
    Image.fromarray(labels).save(path)
    return path, "is not binary: read as 8-bit grey"


@pytest.mark.parametrize(
    "damage",
    [_missing_mask, _missing_image, _mask_of_another_size, _unreadable, _empty_split, _not_binary],
)
def test_each_bad_input_exits_2_naming_the_file_and_the_fix(folder, capsys, damage):
    path, problem = damage(folder)
    assert main(["data", "check", str(folder)]) == 2
    err = capsys.readouterr().err
    assert problem in err and str(path) in err, err
    assert "book/own_data.md" in err  # where the layout is explained


@pytest.mark.filterwarnings("ignore:.*images (fail|pass)")
def test_reproduce_runs_end_to_end_on_a_folder(folder, tmp_path, monkeypatch, capsys):
    """One epoch each, through --set data=DIR (the profile's fields set everything but the
    split counts, which are the folder's) and through --data DIR; the folder's bytes stay
    as they were."""
    before = folder_bytes(folder)
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "home"))
    fast = ["--set", "epochs_f=1", "--set", "epochs_g=1", "--seeds", "0"]
    rows = ["--rows", "no_uncertainty", "max_prob", "rca"]
    out = tmp_path / "out"
    args = ["reproduce", "--profile", "tiny", "--set", f"data={folder}", *fast, *rows]
    assert main([*args, "--out", str(out), "--counterfactual"]) == 0
    said = capsys.readouterr().out
    assert "no counterfactual: it needs the synthetic generator" in said
    predictions = read_predictions(out / "predictions.csv")
    assert set(predictions["image_id"]) == {f"lesion-test-{i:03d}" for i in range(12)}
    assert len(predictions) == 3 * 12 and not (out / "counterfactual").exists()
    again = tmp_path / "again"
    assert main(["reproduce", "--profile", "tiny", "--data", str(folder), *fast, *rows[:2],
                 "--out", str(again)]) == 0  # fmt: skip
    first = read_predictions(again / "predictions.csv")
    assert set(first["image_id"]) == set(predictions["image_id"])
    assert folder_bytes(folder) == before


@pytest.mark.book
@pytest.mark.parametrize("chapter", ["01_data", "10_results"])
def test_chapters_01_and_10_execute_on_a_folder(folder, tmp_path, monkeypatch, chapter):
    import papermill

    before = folder_bytes(folder)
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEGQUAL_PROGRESS", "0")
    monkeypatch.chdir(tmp_path)
    overrides = {"data": str(folder), "epochs_f": 1, "epochs_g": 1, "seeds": [0, 1]}
    out = tmp_path / f"{chapter}.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks" / f"{chapter}.ipynb"),
        str(out),
        parameters={"profile": "tiny", "overrides": overrides},
        kernel_name="segqual-lite",
        progress_bar=False,
        cwd=str(tmp_path),
    )
    text = out.read_text()
    said = {
        "01_data": "own folder {'train': 24, 'val': 6, 'test': 12}",  # name, layout, counts
        "10_results": "the counterfactual needs the synthetic generator",
    }
    assert said[chapter] in text
    assert folder_bytes(folder) == before


@pytest.mark.parametrize("layout", ["isic2017", "folder"])
def test_synth_into_a_folder_of_yours_exits_2_and_changes_nothing(folder, capsys, layout):
    before = folder_bytes(folder)
    assert main(["data", "synth", "--out", str(folder), "--layout", layout]) == 2
    err = capsys.readouterr().err
    assert f"{folder} is not empty" in err and "Name a new folder" in err
    assert folder_bytes(folder) == before


def test_a_folder_given_to_a_synthetic_profile_is_read_never_replaced(tmp_path, monkeypatch):
    """--data DIR with the tiny profile: an ISIC-layout folder of yours is read as it is,
    another non-empty folder is refused with the reason; neither changes."""
    from segqual_lite.config import get_profile
    from segqual_lite.data import DataError, prepare_data

    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "home"))
    isic = tmp_path / "isic"
    make_synthetic_isic(isic, 3, 1, 2, size=20, seed=1)
    (isic / OURS).unlink()
    before = folder_bytes(isic)
    assert prepare_data(get_profile("tiny"), isic) == isic
    assert folder_bytes(isic) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("chapter one")
    with pytest.raises(DataError, match="left as it is"):
        prepare_data(get_profile("tiny"), other)
    assert folder_bytes(other) == {"thesis.tex": folder_bytes(other)["thesis.tex"]}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_data(get_profile("tiny"), empty) == empty  # written, as before
    assert (empty / OURS).is_file() and detect_layout(empty) == "isic2017"


def test_results_are_not_written_among_files_of_yours(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "home"))
    before = folder_bytes(folder)
    args = ["reproduce", "--profile", "tiny", "--set", f"data={folder}", "--seeds", "0"]
    assert main([*args, "--rows", "no_uncertainty", "--out", str(folder)]) == 2
    assert "not written by segqual-lite" in capsys.readouterr().err
    assert folder_bytes(folder) == before
