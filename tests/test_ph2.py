"""The PH2 database read in its authors' layout (segqual_lite.data.ph2): on fake folders
in both of its forms, and on the shared copy and the shipped reference where present."""

import os
from collections import Counter
from pathlib import Path

import pytest
from helpers import folder_bytes, make_fake_ph2

from segqual_lite.cli import main
from segqual_lite.config import get_profile
from segqual_lite.data import DataError, check_data, decode_split, detect_layout, prepare_data
from segqual_lite.data.ph2 import ph2_fingerprint, ph2_split, read_diagnoses

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGQUAL_PH2") or REPO.parent / "shared" / "data" / "ph2")


@pytest.mark.parametrize("table, bits", [("||", 24), ("\t", 8)])
def test_a_ph2_folder_is_recognised_and_checked_in_both_forms(tmp_path, table, bits, capsys):
    """The distributed form (``||`` table, 24-bit masks) and the shrunk one (tab table,
    8-bit masks): the same layout and split, given as the folder or as PH2Dataset."""
    diagnoses = make_fake_ph2(tmp_path, (10, 10, 5), table=table, mask_bits=bits)
    assert read_diagnoses(tmp_path) == diagnoses
    for root in (tmp_path, tmp_path / "PH2Dataset"):
        assert detect_layout(root) == "ph2"
        assert check_data(root) == ("ph2", {"train": 12, "val": 2, "test": 11})
    assert main(["data", "check", str(tmp_path)]) == 0
    assert "the PH2 database" in capsys.readouterr().out
    ids, images, masks = decode_split(tmp_path, "test", 32)
    assert len(ids) == 11 and images.shape == (11, 32, 32, 3) and set(masks.ravel()) == {0, 1}


def test_the_split_is_stratified_by_diagnosis_and_fixed():
    """PH2's 80 / 80 / 40 lesions split 100 / 20 / 80, each split 2 : 2 : 1 by diagnosis,
    whatever the order the lesions are listed in; a name's split does not depend on the
    other names of its diagnosis beyond their number."""
    diagnoses = {f"IMD{i:03d}": 0 if i < 80 else 1 if i < 160 else 2 for i in range(200)}
    split = ph2_split(diagnoses)
    counts = Counter((split[n], d) for n, d in diagnoses.items())
    assert counts == {
        ("train", 0): 40, ("train", 1): 40, ("train", 2): 20,
        ("val", 0): 8, ("val", 1): 8, ("val", 2): 4,
        ("test", 0): 32, ("test", 1): 32, ("test", 2): 16,
    }  # fmt: skip
    assert ph2_split(dict(reversed(list(diagnoses.items())))) == split
    assert split["IMD000"] == ph2_split(diagnoses)["IMD000"]


def test_bad_ph2_input_names_the_file_and_the_fix(tmp_path):
    make_fake_ph2(tmp_path)
    base = tmp_path / "PH2Dataset"
    images = base / "PH2 Dataset images"
    (images / "IMD002" / "IMD002_lesion" / "IMD002_lesion.bmp").unlink()
    (images / "IMD099").mkdir()
    with pytest.raises(DataError) as err:
        check_data(tmp_path)
    text = str(err.value)
    assert "missing" in text and "IMD002_lesion.bmp" in text and "listed in PH2_dataset.txt" in text
    assert (
        "IMD099 is not listed in PH2_dataset.txt" in text
        and "PH2Dataset/PH2 Dataset images" in text
    )
    listing = base / "PH2_dataset.txt"
    listing.write_text(
        listing.read_text().replace("|| IMD005 ||  || 0 ||", "|| IMD005 ||  || 7 ||")
    )
    with pytest.raises(DataError, match=r"IMD005 has clinical diagnosis '7', not 0, 1 or 2"):
        read_diagnoses(tmp_path)
    listing.write_text("Name\tAsymmetry\nIMD003\t0\n")
    with pytest.raises(DataError, match="no header line with 'Name' and 'Clinical Diagnosis'"):
        read_diagnoses(tmp_path)


def test_a_mask_that_is_not_binary_is_named(tmp_path):
    from PIL import Image

    make_fake_ph2(tmp_path)
    mask = tmp_path / "PH2Dataset/PH2 Dataset images/IMD005/IMD005_lesion/IMD005_lesion.bmp"
    Image.new("RGB", (48, 36), (10, 20, 30)).save(mask)  # three grey values, one mask
    Image.open(mask).convert("L").point(lambda v: v).save(mask)
    grey = Image.new("L", (48, 36), 0)
    grey.paste(100, (0, 0, 10, 10))
    grey.paste(255, (20, 20, 30, 30))
    grey.save(mask)
    with pytest.raises(DataError, match=r"IMD005_lesion.bmp is not binary"):
        check_data(tmp_path)


def test_prepare_data_reads_ph2_as_it_is(tmp_path, monkeypatch):
    """The ph2 profile reads the folder given (or $SEGQUAL_PH2) and writes nothing into it;
    no PH2 there, or other counts than the profile's, is a clear error."""
    make_fake_ph2(tmp_path / "ph2", (10, 10, 5))
    before = folder_bytes(tmp_path / "ph2")
    profile = get_profile("ph2").with_(n_train=12, n_val=2, n_test=11)
    assert prepare_data(profile, tmp_path / "ph2") == tmp_path / "ph2"
    monkeypatch.setenv("SEGQUAL_PH2", str(tmp_path / "ph2"))
    assert prepare_data(profile) == tmp_path / "ph2"
    assert folder_bytes(tmp_path / "ph2") == before
    with pytest.raises(DataError, match=r"splits into .*'train': 12.*the ph2 profile expects"):
        prepare_data(get_profile("ph2"), tmp_path / "ph2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"(?s)no PH2 database at .*empty.*SEGQUAL_PH2"):
        prepare_data(profile, tmp_path / "empty")


def test_the_fingerprint_follows_the_files_not_the_machine(tmp_path):
    make_fake_ph2(tmp_path / "a")
    make_fake_ph2(tmp_path / "b")
    assert ph2_fingerprint(tmp_path / "a") == ph2_fingerprint(tmp_path / "b" / "PH2Dataset")
    mask = tmp_path / "b/PH2Dataset/PH2 Dataset images/IMD002/IMD002_lesion/IMD002_lesion.bmp"
    data = mask.read_bytes()
    mask.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert ph2_fingerprint(tmp_path / "a") != ph2_fingerprint(tmp_path / "b")


needs_ph2 = pytest.mark.skipif(
    detect_layout(SHARED) != "ph2" if SHARED.is_dir() else True,
    reason=f"no PH2 database at {SHARED} (set SEGQUAL_PH2 to one)",
)


@needs_ph2
def test_the_shared_ph2_splits_100_20_80(capsys):
    assert main(["data", "check", str(SHARED)]) == 0
    assert "train=100 val=20 test=80" in capsys.readouterr().out


@needs_ph2
def test_one_seed_on_the_shared_ph2_matches_the_shipped_reference(tmp_path):
    """A seed of the build on PH2 against the shipped PH2 reference: equal in the same
    environment, a plausible draw from its seeds in another (reference.check_build)."""
    from segqual_lite.reference import check_build, load_reference

    reference = load_reference(get_profile("ph2"))
    assert reference is not None, "no results/reference/ph2: run `make reference PROFILE=ph2`"
    if reference.run["data"]["fingerprint"] != ph2_fingerprint(SHARED):
        pytest.skip(f"{SHARED} holds other PH2 files than the reference read (full size?)")
    out = tmp_path / "results"
    rows = ["no_uncertainty", "max_prob"]
    command = ["reproduce", "--profile", "ph2", "--data", str(SHARED), "--seeds", "0"]
    assert main([*command, "--rows", *rows, "--out", str(out)]) == 0
    check = check_build(reference, out / "predictions.csv")
    assert check.seeds == (0,) and check.ok, check.line()


def test_the_shipped_ph2_figure_shows_the_reference_s_lesions():
    """results/reference/ph2/figure2.png (drawn by `make ph2-figure` where the database
    is): its record names test lesions of the reference's first seed, ranked as Figure 2
    ranks them, with the reference's own Jaccard for each method."""
    import json

    import numpy as np

    from segqual_lite.reference import load_reference, reference_folder
    from segqual_lite.viz import figure2_cases

    reference = load_reference(get_profile("ph2"))
    record = json.loads((reference_folder("ph2") / "figure2.json").read_text())
    assert record["seed"] == reference.seeds[0] and record["matches_reference"]
    rows = reference.predictions[reference.predictions["seed"] == record["seed"]]
    for method, shown in record["jaccard"].items():
        truth = rows[rows["method"] == method].set_index("image_id")["true_jaccard"]
        np.testing.assert_allclose(truth.loc[record["lesions"]], shown, atol=1e-4)
    plain = rows[rows["method"] == "max_prob"].sort_values("image_id")
    ranked = [plain["image_id"].iloc[i] for i in figure2_cases(plain["true_jaccard"].to_numpy())]
    assert ranked == record["lesions"]
