import numpy as np
import pytest

from segqual_lite.config import get_profile
from segqual_lite.store import (
    CODE_VERSIONS,
    OURS,
    ForeignFolder,
    artifact_folder,
    artifact_key,
    atomic_path,
    claim_folder,
    digest,
    save_array,
    write_text,
)


def test_keys_carry_the_code_version_and_hash_independently_of_order():
    key = artifact_key("g", row="lce", seed=0)
    assert key == {"kind": "g", "code": CODE_VERSIONS["g"], "row": "lce", "seed": 0}
    assert digest(key) == digest({"seed": 0, "row": "lce", "code": key["code"], "kind": "g"})
    assert digest(key) != digest(artifact_key("g", row="lce", seed=1))
    with pytest.raises(ValueError, match="unknown artifact kind 'model'"):
        artifact_key("model", seed=0)


def test_artifact_folders_are_named_by_kind_name_and_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path))
    key = artifact_key("f", unet="plain", seed=0)
    folder = artifact_folder(get_profile("tiny"), "plain-seed0", key)
    assert folder == tmp_path / "models" / "tiny" / f"f-plain-seed0-{digest(key)}"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "sub" / "table.csv"
    write_text(path, "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.csv"]
    write_text(path, "new\n")
    assert path.read_text() == "new\n"


def test_whole_folders_are_replaced_atomically_only_when_the_book_wrote_them(tmp_path):
    target = tmp_path / "data"
    (target / "stale").mkdir(parents=True)
    (target / OURS).write_text("")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "fresh.txt").write_text("x")
    assert sorted(p.name for p in target.iterdir()) == ["fresh.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    (target / "yours.txt").write_text("mine")  # no marker now: a folder of yours
    with pytest.raises(ForeignFolder, match="did not write"), atomic_path(target) as tmp:
        tmp.mkdir()
    assert sorted(p.name for p in target.iterdir()) == ["fresh.txt", "yours.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_folder_is_claimed_only_when_new_empty_marked_or_legacy(tmp_path):
    assert (claim_folder(tmp_path / "new", "results") / OURS).is_file()
    (tmp_path / "empty").mkdir()
    claim_folder(tmp_path / "empty", "results")
    old = tmp_path / "old"
    old.mkdir()
    (old / "run.json").write_text("{}")
    claim_folder(old, "results", legacy=("run.json",))
    yours = tmp_path / "yours"
    yours.mkdir()
    (yours / "notes.txt").write_text("mine")
    with pytest.raises(ForeignFolder, match=f"{yours} is not empty .notes.txt.*new folder"):
        claim_folder(yours, "results", legacy=("run.json",))
    assert [p.name for p in yours.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("")
    with pytest.raises(ForeignFolder, match="is a file"):
        claim_folder(tmp_path / "file", "results")


def test_arrays_keep_their_name(tmp_path):
    save_array(np.arange(3.0), tmp_path / "scores.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.npy"]
    assert np.load(tmp_path / "scores.npy").tolist() == [0.0, 1.0, 2.0]


def test_data_identity_tells_folders_of_the_same_name_and_changed_masks_apart(tmp_path):
    from segqual_lite.config import get_profile
    from segqual_lite.data import make_synthetic_isic
    from segqual_lite.store import data_identity
    from segqual_lite.training import training_key

    a, b = tmp_path / "one" / "isic2017", tmp_path / "two" / "isic2017"
    make_synthetic_isic(a, 4, 2, 3, size=24, seed=1)
    make_synthetic_isic(b, 4, 2, 3, size=24, seed=2)
    assert data_identity(a).startswith("isic2017-") and data_identity(a) != data_identity(b)
    profile = get_profile("tiny")
    before = training_key(profile, "max_prob", 0, a)
    assert training_key(profile, "max_prob", 0, b) != before  # no shared models
    mask = next((a / "ISIC-2017_Training_Part1_GroundTruth").glob("*.png"))
    mask.write_bytes(mask.read_bytes() + b"\0")
    assert training_key(profile, "max_prob", 0, a) == before  # taken once per process ...
    data_identity.cache_clear()
    assert training_key(profile, "max_prob", 0, a) != before  # ... and a change invalidates
