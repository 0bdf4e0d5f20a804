"""Download the six official ISIC 2017 Part 1 zips: resumable, verified (chapter 01).

Each zip is fetched into ``<root>/downloads/<name>.part`` and renamed only when complete;
an interrupted download resumes with an HTTP ``Range`` request. Every archive is tested
(CRC of each member; a damaged one is named) before anything is extracted from it, only
the members the folder lacks are extracted (nothing already there is changed), into a
new or empty folder or one a download wrote, and the extracted splits are counted against
the expected counts (the official 2000 / 150 / 600 unless a profile says otherwise).
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
from .isic import list_pairs
from .layout import OFFICIAL_COUNTS, SPLIT_PREFIX, SPLITS, DataError

__all__ = ["ISIC2017_BASE_URL", "ISIC2017_ZIPS", "download_isic2017"]

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


def _test_members(zf: zipfile.ZipFile) -> None:
    """Read every member through its CRC check; a damaged one is named (``testzip`` lets
    a damaged deflate stream escape as ``zlib.error``, without the member's name)."""
    for member in zf.infolist():
        try:
            with zf.open(member) as f:
                while f.read(1 << 20):
                    pass
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise zipfile.BadZipFile(f"member {member.filename} is damaged ({err})") from err


def _verify_and_extract(archive: Path, root: Path) -> None:
    """Test and extract the members of ``archive`` that ``root`` lacks, each written
    atomically. Files already there are never changed: one of the archive's size is kept
    (a second run neither re-reads the archive nor changes the folder's fingerprint and
    the models cached for it), one of another size is named, not overwritten."""
    try:
        with zipfile.ZipFile(archive) as zf:
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
    except (zipfile.BadZipFile, OSError) as err:
        archive.unlink(missing_ok=True)
        raise DataError(
            [f"corrupt archive {archive}: {err}"],
            "The archive was deleted; run the download again to fetch it afresh.",
        ) from err


def _check_download_folder(root: Path) -> None:
    """A download writes only into a new or empty folder, or one holding what a download
    writes (its ``downloads`` and the six extracted folders): never among files of yours."""
    own = {"downloads", OURS, *(name.removesuffix(".zip") for name in ISIC2017_ZIPS)}
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
