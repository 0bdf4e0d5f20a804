"""PH2's download, offline: a fake PH2 folder packed as a RAR archive (members stored, so
that no RAR reader is needed) and served on 127.0.0.1."""

import pytest
from helpers import RangeHandler, folder_bytes, make_fake_ph2, serve, stored_rar

from segqual_lite.cli import main
from segqual_lite.data import DataError, check_data, download_ph2

pytest.importorskip("rarfile")

EXPECTED = {"train": 4, "val": 0, "test": 3}  # ph2_split of 3 + 3 + 1 lesions


@pytest.fixture
def server(tmp_path):
    make_fake_ph2(tmp_path / "src", (3, 3, 1), size=(12, 10))
    archive = stored_rar(tmp_path / "src")
    url, httpd = serve({"PH2Dataset.rar": archive})
    yield url + "PH2Dataset.rar", archive, tmp_path / "src"
    httpd.shutdown()


def test_the_download_extracts_what_was_packed_and_checks_it(server, tmp_path):
    url, archive, src = server
    out = tmp_path / "ph2"
    assert download_ph2(out, url, progress=False, expected_counts=EXPECTED) == EXPECTED
    assert (out / "downloads" / "PH2Dataset.rar").read_bytes() == archive
    extracted = folder_bytes(out / "PH2Dataset")
    assert extracted == folder_bytes(src / "PH2Dataset")
    assert check_data(out)[0] == "ph2"
    # A second run fetches and changes nothing.
    n_requests = len(RangeHandler.log)
    download_ph2(out, url, progress=False, expected_counts=EXPECTED)
    assert len(RangeHandler.log) == n_requests and folder_bytes(out / "PH2Dataset") == extracted


def test_the_download_resumes_and_names_the_counts_it_expected(server, tmp_path):
    url, archive, _ = server
    out = tmp_path / "ph2"
    (out / "downloads").mkdir(parents=True)
    (out / "downloads" / "PH2Dataset.rar.part").write_bytes(archive[: len(archive) // 2])
    with pytest.raises(DataError, match="PH2 has .'train': 100, 'val': 20, 'test': 80"):
        download_ph2(out, url, progress=False)  # the real PH2 has 200 lesions, not 7
    assert RangeHandler.log[-1][1] == f"bytes={len(archive) // 2}-"
    assert (out / "downloads" / "PH2Dataset.rar").read_bytes() == archive


def test_a_damaged_archive_is_named_and_deleted(tmp_path):
    make_fake_ph2(tmp_path / "src", (3, 3, 1), size=(12, 10))
    archive = bytearray(stored_rar(tmp_path / "src"))
    archive[-200] ^= 0xFF  # a byte of the last member's data: its CRC no longer matches
    url, httpd = serve({"PH2Dataset.rar": bytes(archive)})
    out = tmp_path / "ph2"
    try:
        with pytest.raises(DataError, match="corrupt archive .*damaged"):
            download_ph2(out, url + "PH2Dataset.rar", progress=False, expected_counts=EXPECTED)
    finally:
        httpd.shutdown()
    assert not (out / "downloads" / "PH2Dataset.rar").exists()


def test_the_command_downloads_ph2_and_never_into_a_folder_of_yours(server, tmp_path, capsys):
    url, _, _ = server
    yours = tmp_path / "yours"
    yours.mkdir()
    (yours / "notes.txt").write_text("mine")
    before = folder_bytes(yours)
    command = ["data", "download", "--profile", "ph2", "--mirror", url, "--quiet"]
    assert main([*command, str(yours)]) == 2
    assert "holds files a download did not write: notes.txt" in capsys.readouterr().err
    assert folder_bytes(yours) == before
