"""Download the six official ISIC 2017 Part 1 zips, or the PH2 database's RAR archive:
resumable, verified (chapter 01).

Each zip is fetched into ``<root>/downloads/<name>.part`` and renamed only when complete;
an interrupted download resumes with an HTTP ``Range`` request. Every archive is tested
(CRC of each member; a damaged one is named) before anything is extracted from it, only
the members the folder lacks are extracted (nothing already there is changed), into a
new or empty folder or one a download wrote, and the extracted splits are counted against
the expected counts (the official 2000 / 150 / 600 unless a profile says otherwise; PH2:
its 200 lesions, checked by :func:`~segqual_lite.data.isic.check_ph2`).
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm.auto import tqdm

from ..store import OURS, atomic_path
from .isic import check_ph2, list_pairs
from .layout import OFFICIAL_COUNTS, SPLIT_PREFIX, SPLITS, DataError

__all__ = [
    "ISIC2017_BASE_URL",
    "ISIC2017_ZIPS",
    "PH2_ARCHIVE_URL",
    "download_isic2017",
    "download_ph2",
]

# The authors' distribution, linked from their page (segqual_lite.data.ph2.PH2_URL).
PH2_ARCHIVE_URL = "https://www.dropbox.com/s/k88qukc20ljnbuo/PH2Dataset.rar?dl=1"
PH2_ARCHIVE = "PH2Dataset.rar"
PH2_COUNTS = {"train": 100, "val": 20, "test": 80}  # ph2_split of the 200 lesions

ISIC2017_BASE_URL = "https://isic-challenge-data.s3.amazonaws.com/2017/"
ISIC2017_ZIPS = tuple(
    f"{SPLIT_PREFIX[split]}_{part}.zip"
    for split in SPLITS
    for part in ("Data", "Part1_GroundTruth")
)


def _fetch(url: str, dest: Path, progress: bool, timeout: float, chunk: int = 1 << 20) -> None:
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={start}-"} if start else {}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # nothing left to send: the .part is whole
            os.replace(part, dest)
            return
        raise DataError([f"could not download {url}: HTTP {err.code} {err.reason}"]) from err
    except (urllib.error.URLError, OSError) as err:
        raise DataError(
            [f"could not download {url}: {getattr(err, 'reason', err)}"],
            f"Check the network; {part.name} is kept and the next run resumes it.",
        ) from err
    with resp:
        resumed = start and resp.status == 206
        if not resumed:
            start = 0  # the server ignored Range: start over
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        received = start
        with (
            open(part, "ab" if resumed else "wb") as out,
            tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while True:
                try:
                    block = resp.read(chunk)
                except OSError as err:
                    raise DataError(
                        [f"download of {url} interrupted after {received} bytes: {err}"],
                        f"Run again: {part.name} is kept and the download resumes.",
                    ) from err
                if not block:
                    break
                out.write(block)
                received += len(block)
                bar.update(len(block))
    if total is not None and received != total:
        raise DataError(
            [f"download of {url} ended after {received} of {total} bytes"],
            f"Run again: {part.name} is kept and the download resumes.",
        )
    os.replace(part, dest)


def _archive_errors() -> tuple[type[Exception], ...]:
    try:
        import rarfile

        return (zipfile.BadZipFile, zlib.error, EOFError, rarfile.Error)
    except ImportError:
        return (zipfile.BadZipFile, zlib.error, EOFError)


def _test_members(zf) -> None:
    """Read every member through its CRC check; a damaged one is named (``testzip`` lets
    a damaged deflate stream escape as ``zlib.error``, without the member's name)."""
    for member in zf.infolist():
        try:
            with zf.open(member) as f:
                while f.read(1 << 20):
                    pass
        except _archive_errors() as err:
            raise zipfile.BadZipFile(f"member {member.filename} is damaged ({err})") from err


def _verify_and_extract(archive: Path, root: Path, opener=zipfile.ZipFile) -> None:
    """Test and extract the members of ``archive`` that ``root`` lacks, each written
    atomically. Files already there are never changed: one of the archive's size is kept
    (a second run neither re-reads the archive nor changes the folder's fingerprint and
    the models cached for it), one of another size is named, not overwritten. ``opener``:
    the archive's reader (zipfile's, or rarfile's with the same interface)."""
    try:
        with opener(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            there = {m.filename: root / m.filename for m in members}
            differ = [
                f"{there[m.filename]} has {there[m.filename].stat().st_size} bytes, the "
                f"archive's {m.filename} {m.file_size}"
                for m in members
                if there[m.filename].is_file() and there[m.filename].stat().st_size != m.file_size
            ]
            if differ:
                raise DataError(
                    differ,
                    f"Files of {root} differ from {archive.name}'s and are kept as they are: "
                    "move them away, or download into a new folder.",
                )
            missing = [m for m in members if not there[m.filename].exists()]
            if not missing:
                return
            _test_members(zf)
            root_resolved = root.resolve()
            for member in zf.infolist():
                target = (root / member.filename).resolve()
                if root_resolved not in target.parents and target != root_resolved:
                    raise zipfile.BadZipFile(f"member {member.filename} escapes {root}")
            for member in missing:
                with zf.open(member) as src, atomic_path(there[member.filename]) as tmp:
                    with open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst)
    except (*_archive_errors(), OSError) as err:
        archive.unlink(missing_ok=True)
        raise DataError(
            [f"corrupt archive {archive}: {err}"],
            "The archive was deleted; run the download again to fetch it afresh.",
        ) from err


_ISIC_FOLDERS = tuple(n.removesuffix(".zip") for n in ISIC2017_ZIPS)


def _check_download_folder(root: Path, extracted=_ISIC_FOLDERS) -> None:
    """A download writes only into a new or empty folder, or one holding what a download
    writes (its ``downloads`` and the ``extracted`` folders): never among files of yours."""
    own = {"downloads", OURS, *extracted}
    foreign = sorted(p.name for p in root.iterdir() if p.name not in own) if root.is_dir() else []
    if foreign:
        raise DataError(
            [f"{root} holds files a download did not write: {', '.join(foreign[:3])}"],
            "Nothing is downloaded among files of yours: name a new or empty folder.",
        )


def download_isic2017(
    root: str | os.PathLike,
    base_url: str = ISIC2017_BASE_URL,
    expected_counts: dict[str, int] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> dict[str, int]:
    """Fetch, verify and extract ISIC 2017 Part 1 into ``root``; return pairs per split.

    Zips already downloaded are not fetched again, files already extracted not again
    extracted; a ``.part`` file is resumed. Raises
    :class:`DataError` for a failed download, a corrupt archive (which is deleted so the
    next run refetches it) or split counts that differ from ``expected_counts``
    (default: the official 2000 / 150 / 600).
    """
    root = Path(root)
    _check_download_folder(root)
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    expected = dict(OFFICIAL_COUNTS if expected_counts is None else expected_counts)
    base = base_url if base_url.endswith("/") else base_url + "/"
    for name in ISIC2017_ZIPS:
        archive = downloads / name
        if not archive.exists():
            _fetch(base + name, archive, progress, timeout)
        _verify_and_extract(archive, root)
    counts, problems = {}, []
    for split in SPLITS:
        pairs, split_problems = list_pairs(root, split)
        counts[split] = len(pairs)
        problems += split_problems
        if split in expected and len(pairs) != expected[split]:
            problems.append(
                f"split {split!r} has {len(pairs)} image/mask pairs, expected {expected[split]}"
            )
    if problems:
        raise DataError(problems, f"Delete {downloads} and download again.")
    return counts


def _rar_opener():
    """rarfile's reader, or a :class:`DataError` naming how to install it."""
    try:
        import rarfile
    except ImportError as err:
        raise DataError(
            ["PH2 is distributed as a RAR archive, and the rarfile package is missing"],
            "pip install rarfile (make installs it), then run the download again.",
        ) from err
    return rarfile


def download_ph2(
    root: str | os.PathLike,
    url: str = PH2_ARCHIVE_URL,
    progress: bool = True,
    timeout: float = 60.0,
    expected_counts: dict[str, int] | None = None,
) -> dict[str, int]:
    """Fetch, verify and extract the PH2 database into ``root``; return lesions per split.

    The archive goes to ``<root>/downloads/PH2Dataset.rar`` (resumed from its ``.part``,
    not fetched again once whole), every member is read through its CRC before anything
    is extracted, only the members the folder lacks are extracted, and the result must be
    PH2's 200 lesions (:func:`~segqual_lite.data.isic.check_ph2`, split 100 / 20 / 80,
    unless ``expected_counts`` says otherwise).
    The archive's compressed members need a RAR reader that rarfile can call (unrar,
    unar, 7z or bsdtar); without one, a :class:`DataError` names the package to install
    and the archive is kept."""
    rarfile = _rar_opener()
    root = Path(root)
    _check_download_folder(root, extracted=("PH2Dataset",))
    archive = root / "downloads" / PH2_ARCHIVE
    archive.parent.mkdir(parents=True, exist_ok=True)
    if not archive.exists():
        _fetch(url, archive, progress, timeout)
    try:
        with rarfile.RarFile(archive) as rf:
            compressed = any(m.compress_type != rarfile.RAR_M0 for m in rf.infolist())
        if compressed:
            rarfile.tool_setup()
    except rarfile.RarCannotExec as err:
        raise DataError(
            [f"{archive} is compressed, and no RAR reader is installed ({err})"],
            "Install one, e.g. `sudo apt-get install libarchive-tools` (bsdtar) or unar on "
            "Debian and Colab, then run the download again: the archive is kept.",
        ) from err
    except rarfile.Error as err:
        archive.unlink(missing_ok=True)
        raise DataError(
            [f"corrupt archive {archive}: {err}"],
            "The archive was deleted; run the download again to fetch it afresh.",
        ) from err
    _verify_and_extract(archive, root, opener=rarfile.RarFile)
    counts, expected = check_ph2(root), expected_counts or PH2_COUNTS
    if counts != expected:
        raise DataError(
            [f"{root} holds {counts} lesions per split, PH2 has {expected}"],
            f"Delete {archive} and download again, or check the mirror.",
        )
    return counts
