"""The ISIC 2017 download helper, offline: small zips served on 127.0.0.1."""

import zipfile

import pytest
from helpers import RangeHandler, serve

from segqual_lite.cli import main
from segqual_lite.config import get_profile
from segqual_lite.data import ISIC2017_ZIPS, DataError, download_isic2017, make_synthetic_isic


@pytest.fixture
def server(tmp_path):
    src = tmp_path / "src"
    make_synthetic_isic(src, n_train=3, n_val=1, n_test=2, size=20, seed=2)
    files = {}
    for name in ISIC2017_ZIPS:
        folder = src / name.removesuffix(".zip")
        zpath = tmp_path / name
        with zipfile.ZipFile(zpath, "w") as zf:
            for p in sorted(folder.iterdir()):
                zf.write(p, f"{folder.name}/{p.name}")
        files[name] = zpath.read_bytes()
    url, httpd = serve(files)
    yield url, files
    httpd.shutdown()


EXPECTED = {"train": 3, "val": 1, "test": 2}


def test_download_extracts_and_counts(server, tmp_path):
    url, files = server
    out = tmp_path / "isic"
    assert download_isic2017(out, url, EXPECTED, progress=False) == EXPECTED
    assert (out / "ISIC-2017_Training_Data" / "ISIC_0000000.jpg").is_file()
    assert all((out / "downloads" / n).read_bytes() == files[n] for n in ISIC2017_ZIPS)
    # A second run fetches nothing and extracts nothing (the files keep their times, so
    # the folder's fingerprint and the models cached for it stay valid)...
    n_requests = len(RangeHandler.log)
    files_now = {p: p.stat().st_mtime_ns for p in out.rglob("ISIC_*")}
    download_isic2017(out, url, EXPECTED, progress=False)
    assert len(RangeHandler.log) == n_requests
    assert {p: p.stat().st_mtime_ns for p in out.rglob("ISIC_*")} == files_now
    # ... but brings back a file that went missing.
    mask = next((out / "ISIC-2017_Test_v2_Part1_GroundTruth").glob("*.png"))
    mask.unlink()
    download_isic2017(out, url, EXPECTED, progress=False)
    assert mask.is_file() and len(RangeHandler.log) == n_requests


def test_download_resumes_a_partial_file(server, tmp_path):
    url, files = server
    out = tmp_path / "isic"
    name = ISIC2017_ZIPS[0]
    (out / "downloads").mkdir(parents=True)
    half = len(files[name]) // 2
    (out / "downloads" / (name + ".part")).write_bytes(files[name][:half])
    download_isic2017(out, url, EXPECTED, progress=False)
    assert (name, f"bytes={half}-") in RangeHandler.log
    assert (out / "downloads" / name).read_bytes() == files[name]


def test_interrupted_download_keeps_part_and_resumes(server, tmp_path):
    url, files = server
    out = tmp_path / "isic"
    name = ISIC2017_ZIPS[2]
    RangeHandler.cut_after[name] = 100
    with pytest.raises(DataError, match="resumes"):
        download_isic2017(out, url, EXPECTED, progress=False)
    assert (out / "downloads" / (name + ".part")).stat().st_size == 100
    assert download_isic2017(out, url, EXPECTED, progress=False) == EXPECTED
    assert (name, "bytes=100-") in RangeHandler.log


def test_corrupt_archive_is_named_and_deleted(server, tmp_path):
    url, files = server
    name = ISIC2017_ZIPS[1]
    data = bytearray(files[name])
    data[60:80] = b"\x00" * 20  # inside the first member's data: CRC fails
    RangeHandler.files = {**files, name: bytes(data)}
    out = tmp_path / "isic"
    with pytest.raises(DataError, match=name) as err:
        download_isic2017(out, url, EXPECTED, progress=False)
    assert "corrupt archive" in str(err.value)
    assert not (out / "downloads" / name).exists()


def test_wrong_counts_and_missing_zip(server, tmp_path):
    url, files = server
    with pytest.raises(DataError, match="expected 2000"):
        download_isic2017(tmp_path / "a", url, progress=False)
    RangeHandler.files = {k: v for k, v in files.items() if k != ISIC2017_ZIPS[3]}
    with pytest.raises(DataError, match="HTTP 404"):
        download_isic2017(tmp_path / "b", url, EXPECTED, progress=False)


# ---- An existing folder, and the mirror setting -------------------------------------------
SMALL = get_profile("colab").with_(n_train=4, n_val=2, n_test=3)


@pytest.fixture
def isic_home(tmp_path, monkeypatch):
    """A small ISIC-layout folder, complete for :data:`SMALL` (a real-data profile with
    its counts), an artifact store, and a download that records its calls instead of
    touching the network."""
    from segqual_lite.data import prepare

    root = tmp_path / "isic2017"
    make_synthetic_isic(root, n_train=4, n_val=2, n_test=3, size=24, seed=1)
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "home"))
    calls = []

    def download(folder, base_url, **_):
        calls.append((folder, base_url))
        folder.mkdir(parents=True, exist_ok=True)
        return {"train": 4, "val": 2, "test": 3}

    monkeypatch.setattr(prepare, "download_isic2017", download)
    return root, calls


def test_an_existing_complete_folder_is_used_without_the_network(isic_home, monkeypatch, capsys):
    from segqual_lite.data import prepare, prepare_data
    from segqual_lite.store import data_identity

    root, calls = isic_home
    assert prepare_data(SMALL, root) == root and not calls
    assert "using the ISIC 2017 folder" in capsys.readouterr().out
    checks = []
    counts = {"train": 4, "val": 2, "test": 3}
    monkeypatch.setattr(prepare, "check_isic2017", lambda r: checks.append(r) or counts)
    prepare_data(SMALL, root)  # remembered: not decoded again
    assert not checks and not calls
    mask = next((root / "ISIC-2017_Test_v2_Part1_GroundTruth").glob("*.png"))
    mask.write_bytes(mask.read_bytes() + b"\0")  # a changed file: checked again
    data_identity.cache_clear()  # (a new session would take a new fingerprint anyway)
    prepare_data(SMALL, root)
    assert checks == [root]


def test_a_missing_or_incomplete_folder_is_downloaded_from_the_mirror(
    isic_home, monkeypatch, capsys
):
    from segqual_lite.data import MIRROR_ENV, prepare_data
    from segqual_lite.store import data_identity

    root, calls = isic_home
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example/isic/")
    next((root / "ISIC-2017_Validation_Part1_GroundTruth").glob("*.png")).unlink()
    prepare_data(SMALL, root)
    out = capsys.readouterr().out
    assert "is incomplete" in out and "downloading the missing zips" in out
    assert calls == [(root, "http://mirror.example/isic/")]
    from segqual_lite.store import _data_identity

    fresh = _data_identity.__wrapped__(str(root.resolve()))
    assert data_identity(root) == fresh  # not the fingerprint of the incomplete folder
    prepare_data(SMALL, root.parent / "elsewhere")
    assert "no ISIC 2017 folder at" in capsys.readouterr().out and len(calls) == 2


def test_the_download_command_takes_a_mirror(monkeypatch, tmp_path, capsys):
    from segqual_lite import cli
    from segqual_lite.data import prepare

    seen = {}

    def download(root, base_url, expected_counts, progress):
        seen.update(root=root, base_url=base_url, counts=expected_counts)
        return {"train": 0, "val": 0, "test": 0}

    monkeypatch.setattr(prepare, "download_isic2017", download)
    assert cli.main(["data", "download", str(tmp_path), "--mirror", "http://m/x/", "--quiet"]) == 0
    official = {"train": 2000, "val": 150, "test": 600}
    assert seen == {"root": str(tmp_path), "base_url": "http://m/x/", "counts": official}
    # The counts to expect are the profile's, changed like any field.
    cli.main(["data", "download", str(tmp_path), "--set", "n_val=3", "--quiet"])
    assert seen["counts"] == {**official, "val": 3}

    # PH2: its archive's URL from --mirror, else $SEGQUAL_PH2_MIRROR, else the authors'.
    def download_ph2(root, url, progress):
        seen.update(url=url)
        return {"train": 100, "val": 20, "test": 80}

    monkeypatch.setattr(prepare, "download_ph2", download_ph2)
    command = ["data", "download", str(tmp_path), "--profile", "ph2", "--quiet"]
    monkeypatch.setenv("SEGQUAL_PH2_MIRROR", "http://m/PH2Dataset.rar")
    assert cli.main(command) == 0 and seen["url"] == "http://m/PH2Dataset.rar"
    assert "train=100 val=20 test=80" in capsys.readouterr().out
    assert (
        cli.main([*command, "--mirror", "http://n/P.rar"]) == 0 and seen["url"] == "http://n/P.rar"
    )


def test_a_folder_larger_than_the_profile_says_is_refused_without_download(isic_home):
    from segqual_lite.data import prepare_data

    root, calls = isic_home
    with pytest.raises(DataError, match=r"n_train, n_val and n_test.*n_train=4") as err:
        prepare_data(SMALL.with_(n_train=3), root)
    assert "split 'train' has 4 image/mask pairs, expected 3" in err.value.problems
    assert not calls


def test_a_download_never_writes_among_files_of_yours(server, tmp_path, capsys):
    url, files = server
    yours = tmp_path / "yours"
    yours.mkdir()
    (yours / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="notes.txt"):
        download_isic2017(yours, url, EXPECTED, progress=False)
    assert [p.name for p in yours.iterdir()] == ["notes.txt"]
    assert main(["data", "download", str(yours), "--mirror", url, "--quiet"]) == 2
    assert f"{yours} holds files a download did not write" in capsys.readouterr().err
    assert [p.name for p in yours.iterdir()] == ["notes.txt"]


def test_an_extracted_file_of_another_size_is_named_not_overwritten(server, tmp_path):
    url, files = server
    out = tmp_path / "isic"
    download_isic2017(out, url, EXPECTED, progress=False)
    image = out / "ISIC-2017_Training_Data" / "ISIC_0000000.jpg"
    image.write_bytes(b"edited by hand")
    with pytest.raises(DataError, match="ISIC_0000000.jpg has 14 bytes"):
        download_isic2017(out, url, EXPECTED, progress=False)
    assert image.read_bytes() == b"edited by hand"
