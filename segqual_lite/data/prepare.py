"""Data set-up per profile, the first call of every chapter (chapter 01)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import Profile, home
from ..store import artifact_key, atomic_path, data_identity, digest, write_text
from ..timing import phase
from .download import ISIC2017_BASE_URL, PH2_ARCHIVE_URL, download_isic2017, download_ph2
from .isic import check_folder, check_isic2017, check_ph2
from .layout import SPLITS, DataError, detect_layout
from .ph2 import PH2_HINT
from .synthetic import DEFAULT_HARD_CASE_SHARES, HARD_CASES, make_synthetic_isic

__all__ = [
    "prepare_data",
    "SYNTHETIC_SEED",
    "MIRROR_ENV",
    "PH2_ENV",
    "PH2_MIRROR_ENV",
    "ph2_archive_url",
    "download_data",
    "isic2017_base_url",
    "expected_counts",
]

SYNTHETIC_SEED = 0
_COMPLETE = ".complete.json"
MIRROR_ENV = "SEGQUAL_ISIC_MIRROR"  # a mirror of the ISIC 2017 zips, for prepare_data
PH2_ENV = "SEGQUAL_PH2"  # where the PH2 database is, for the ph2 profile
PH2_MIRROR_ENV = "SEGQUAL_PH2_MIRROR"  # a mirror of PH2's archive, for data download


def isic2017_base_url() -> str:
    """Where the ISIC 2017 zips are fetched from: ``$SEGQUAL_ISIC_MIRROR`` (a folder URL
    holding the six official zip names), else the ISIC archive."""
    return os.environ.get(MIRROR_ENV) or ISIC2017_BASE_URL


def ph2_archive_url() -> str:
    """Where PH2's archive is fetched from: ``$SEGQUAL_PH2_MIRROR`` (the archive's URL),
    else the authors' distribution."""
    return os.environ.get(PH2_MIRROR_ENV) or PH2_ARCHIVE_URL


def download_data(
    profile: Profile, root: str | os.PathLike, mirror: str | None = None, progress: bool = True
) -> dict[str, int]:
    """``data download``: PH2 for a ``ph2`` profile (:func:`download_ph2`, from ``mirror``
    or :func:`ph2_archive_url`), else ISIC 2017 Part 1 with the profile's split counts
    (:func:`download_isic2017`, from ``mirror`` or :func:`isic2017_base_url`)."""
    if profile.data == "ph2":
        return download_ph2(root, mirror or ph2_archive_url(), progress)
    return download_isic2017(
        root, mirror or isic2017_base_url(), expected_counts(profile), progress
    )


def expected_counts(profile: Profile) -> dict[str, int]:
    """The image/mask pairs per split that a real-data profile's folder holds: its
    ``n_train``, ``n_val`` and ``n_test`` (the official 2000 / 150 / 600 on ``colab`` and
    ``paper``; a rehearsal on a few images, or another data set in the ISIC layout, sets
    its own)."""
    return {split: getattr(profile, f"n_{split}") for split in SPLITS}


def _use_existing_isic2017(root: Path, expected: dict[str, int]) -> bool:
    """Whether ``root`` already holds ISIC 2017 Part 1 with the ``expected`` counts,
    checked once (every image decoded) and remembered in the artifact store while its
    files stay the same; says why not, when not. A folder with more pairs than expected
    is an error (no download can mend it): the profile's counts are wrong."""
    if not root.is_dir():
        print(f"no ISIC 2017 folder at {root}: downloading the official zips")
        return False
    record = _record(root)
    if record.exists():
        seen = json.loads(record.read_text())
        if seen.get("listing") == data_identity(root) and seen.get("counts") == expected:
            return True
    try:
        counts = check_isic2017(root)
    except DataError as err:
        counts, problems = {}, err.problems
    else:
        problems = [
            f"split {split!r} has {counts[split]} image/mask pairs, expected {n}"
            for split, n in expected.items()
            if counts[split] != n
        ]
        extra = [f"n_{split}={counts[split]}" for split, n in expected.items() if counts[split] > n]
        if extra:
            raise DataError(
                problems,
                f"{root} holds more images than the profile expects: set the profile's "
                f"n_train, n_val and n_test to the counts of its folder ({', '.join(extra)}).",
            )
    if problems:
        print(
            f"the ISIC 2017 folder {root} is incomplete ({len(problems)} problem(s), the first: "
            f"{problems[0]}): downloading the missing zips"
        )
        return False
    _remember(root, counts)
    print(f"using the ISIC 2017 folder {root} as it is: {counts}")
    return True


def _record(root: Path) -> Path:
    """Where the artifact store remembers that ``root`` was checked."""
    return home() / "data" / "checked" / f"{digest({'root': str(root.resolve())})}.json"


def _checked_before(root: Path) -> bool:
    """Whether ``root`` was checked while its files were as they are now."""
    record = _record(root)
    return record.exists() and json.loads(record.read_text()).get("listing") == data_identity(root)


def _remember(root: Path, counts: dict[str, int]) -> None:
    listing = data_identity(root)
    write_text(
        _record(root),
        json.dumps({"root": str(root.resolve()), "listing": listing, "counts": counts}),
    )


def _synthetic_settings(profile: Profile, hard_cases: dict[str, float] | None) -> dict:
    unknown = set(hard_cases or {}) - set(HARD_CASES)
    if unknown:
        raise ValueError(f"unknown hard case(s) {sorted(unknown)}: choose from {HARD_CASES}")
    return {
        "n_train": profile.n_train,
        "n_val": profile.n_val,
        "n_test": profile.n_test,
        "size": profile.image_size,
        "seed": SYNTHETIC_SEED,
        "hard_cases": {**DEFAULT_HARD_CASE_SHARES, **(hard_cases or {})},
    }


def prepare_data(
    profile: Profile,
    root: str | os.PathLike | None = None,
    hard_cases: dict[str, float] | None = None,
) -> Path:
    """Return the data folder of ``profile``, making it if needed.

    * ``synthetic`` profiles: lesions from :func:`make_synthetic_isic`, written once into
      ``<home>/data/synthetic-<key>`` (the key hashes the generator's settings) and reused.
      ``hard_cases`` changes the share of some hard cases (``{"ambiguous_rim": 0.0}``:
      the same data set without ambiguous rims, chapter 10's counterfactual). A ``root``
      given is written only when it is new or empty; a non-empty one is read as it is
      (the ISIC layout), never replaced.
    * ``ph2`` profiles: the PH2 database at ``root``, else ``$SEGQUAL_PH2``, else
      ``<home>/data/ph2``, in its authors' layout, read as it is (never written; checked
      once, its fixed split's counts the profile's).
    * ``isic2017`` profiles: ``root`` (default ``<home>/data/isic2017``) is used as it is,
      without touching the network, when it holds ISIC 2017 Part 1 with the profile's
      counts (:func:`expected_counts`, the official ones on ``colab`` and ``paper``; a
      Drive mount, a lab share, a copy extracted by hand; checked once, every image
      decoded); otherwise the zips are downloaded into it, from
      :func:`isic2017_base_url` (``$SEGQUAL_ISIC_MIRROR`` names a mirror), saying why.
    * any other ``data``: the path of a folder of your own
      (:data:`~segqual_lite.data.layout.FOLDER_LAYOUT`), checked once and used as it is
      (``overrides = {"data": "DIR"}`` in a chapter, ``--set data=DIR`` on the command
      line; ``book/own_data.md``).
    """
    if hard_cases and profile.data != "synthetic":
        raise ValueError(f"hard_cases only applies to synthetic data, not {profile.data!r}")
    if root and detect_layout(root) == "folder":  # --data DIR: a folder of your own
        return _own_folder(Path(root))
    if profile.data == "synthetic":
        settings = _synthetic_settings(profile, hard_cases)
        key = digest(artifact_key("data", synthetic=settings), length=10)
        given = Path(root) if root else None
        root = given or home() / "data" / f"synthetic-{key}"
        if (root / _COMPLETE).exists():
            return root
        if given and given.is_dir() and any(given.iterdir()):
            return _given_isic_folder(given)
        # atomic: an interrupted run leaves no half folder
        with phase("data", "synthetic lesions"), atomic_path(root) as tmp:
            make_synthetic_isic(tmp, **settings)
            (tmp / _COMPLETE).write_text(json.dumps(settings, indent=1))
        return root
    if profile.data == "ph2":
        return _ph2_folder(
            Path(root or os.environ.get(PH2_ENV) or home() / "data" / "ph2"), profile
        )
    if profile.data == "isic2017":
        root = Path(root) if root else home() / "data" / "isic2017"
        expected = expected_counts(profile)
        if _use_existing_isic2017(root, expected):
            return root
        counts = download_isic2017(root, base_url=isic2017_base_url(), expected_counts=expected)
        data_identity.cache_clear()  # the files changed: fingerprint them afresh
        _remember(root, counts)  # verified while extracting: not decoded again
        return root
    return _own_folder(Path(profile.data))


def _ph2_folder(root: Path, profile: Profile) -> Path:
    """The PH2 database at ``root`` (:mod:`~segqual_lite.data.ph2`), read as it is: checked
    once (every file decoded) while its files stay the same; its split's counts must be
    the profile's."""
    if detect_layout(root) != "ph2":
        raise DataError(
            [f"no PH2 database at {root}"],
            f"{PH2_HINT} Then pass --data DIR, or set ${PH2_ENV}=DIR.",
        )
    counts = json.loads(_record(root).read_text())["counts"] if _checked_before(root) else None
    if counts is None:
        counts = check_ph2(root)
        _remember(root, counts)
    expected = expected_counts(profile)
    if counts != expected:
        raise DataError(
            [f"{root} splits into {counts}, the {profile.name} profile expects {expected}"],
            "A complete PH2 holds 200 lesions (100 / 20 / 80 after the split); for a part of "
            "it, set the profile's n_train, n_val and n_test to the counts above (--set).",
        )
    return root


def _given_isic_folder(root: Path) -> Path:
    """A non-empty folder given to a synthetic profile (``--data DIR``): read as it is when
    it holds the ISIC 2017 layout (checked once), never written into or replaced."""
    if _checked_before(root):
        return root
    try:
        counts = check_isic2017(root)
    except DataError as err:
        raise DataError(
            err.problems,
            f"{root} is neither a folder of your own nor the ISIC 2017 layout; it is left "
            "as it is. Give a folder in one of the layouts of book/own_data.md, a new or "
            "empty folder to write the synthetic lesions into, or no --data.",
        ) from err
    _remember(root, counts)
    return root


def _own_folder(root: Path) -> Path:
    """A folder of your own (a profile whose ``data`` is its path): checked once (every
    file decoded; :func:`~segqual_lite.data.check_folder`) while its files stay the same,
    and used as it is. Its split counts are the folder's, whatever the profile says."""
    if not root.is_dir():
        raise DataError(
            [f"data folder {root} does not exist"],
            "Give the path of a folder of your own (book/own_data.md), or a profile's data: "
            "'synthetic' or 'isic2017'.",
        )
    if detect_layout(root) != "folder":
        raise DataError(
            [f"{root} has no <split>/images folder: it is not a folder of your own"],
            "An ISIC 2017 folder is read with an isic2017 profile (--data DIR); a folder of "
            "your own holds train/, val/ and test/, each with images/ and masks/.",
        )
    if _checked_before(root):
        return root
    _remember(root, check_folder(root))
    return root
