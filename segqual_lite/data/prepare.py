"""Data set-up per profile, the first call of every chapter (chapter 01)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import Profile, home
from ..store import artifact_key, atomic_path, data_identity, digest, write_text
from ..timing import phase
from .download import ISIC2017_BASE_URL, download_isic2017
from .isic import check_isic2017
from .layout import OFFICIAL_COUNTS, DataError
from .synthetic import DEFAULT_HARD_CASE_SHARES, HARD_CASES, make_synthetic_isic

__all__ = ["prepare_data", "SYNTHETIC_SEED", "MIRROR_ENV", "isic2017_base_url"]

SYNTHETIC_SEED = 0
_COMPLETE = ".complete.json"
MIRROR_ENV = "SEGQUAL_ISIC_MIRROR"  # a mirror of the ISIC 2017 zips, for prepare_data


def isic2017_base_url() -> str:
    """Where the ISIC 2017 zips are fetched from: ``$SEGQUAL_ISIC_MIRROR`` (a folder URL
    holding the six official zip names), else the ISIC archive."""
    return os.environ.get(MIRROR_ENV) or ISIC2017_BASE_URL


def _use_existing_isic2017(root: Path) -> bool:
    """Whether ``root`` already holds ISIC 2017 Part 1 with the official counts, checked
    once (every image decoded) and remembered in the artifact store while its files stay
    the same; says why not, when not."""
    if not root.is_dir():
        print(f"no ISIC 2017 folder at {root}: downloading the official zips")
        return False
    record = home() / "data" / "checked" / f"{digest({'root': str(root.resolve())})}.json"
    listing = data_identity(root)
    if record.exists() and json.loads(record.read_text()).get("listing") == listing:
        return True
    try:
        counts = check_isic2017(root)
        problems = [
            f"split {split!r} has {counts.get(split, 0)} image/mask pairs, expected {n}"
            for split, n in OFFICIAL_COUNTS.items()
            if counts.get(split, 0) != n
        ]
    except DataError as err:
        problems = err.problems
    if problems:
        print(
            f"the ISIC 2017 folder {root} is incomplete ({len(problems)} problem(s), the first: "
            f"{problems[0]}): downloading the missing zips"
        )
        return False
    write_text(
        record, json.dumps({"root": str(root.resolve()), "listing": listing, "counts": counts})
    )
    print(f"using the ISIC 2017 folder {root} as it is: {counts}")
    return True


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
    """Return a data folder in the ISIC 2017 layout for ``profile``, making it if needed.

    * ``synthetic`` profiles: lesions from :func:`make_synthetic_isic`, written once into
      ``<home>/data/synthetic-<key>`` (the key hashes the generator's settings) and reused.
      ``hard_cases`` changes the share of some hard cases (``{"ambiguous_rim": 0.0}``:
      the same data set without ambiguous rims, chapter 10's counterfactual).
    * ``isic2017`` profiles: ``root`` (default ``<home>/data/isic2017``) is used as it is,
      without touching the network, when it holds ISIC 2017 Part 1 with the official
      counts (a Drive mount, a lab share, a copy extracted by hand; checked once, every
      image decoded); otherwise the zips are downloaded into it, from
      :func:`isic2017_base_url` (``$SEGQUAL_ISIC_MIRROR`` names a mirror), saying why.
    """
    if hard_cases and profile.data != "synthetic":
        raise ValueError(f"hard_cases only applies to synthetic data, not {profile.data!r}")
    if profile.data == "synthetic":
        settings = _synthetic_settings(profile, hard_cases)
        key = digest(artifact_key("data", synthetic=settings), length=10)
        root = Path(root) if root else home() / "data" / f"synthetic-{key}"
        if (root / _COMPLETE).exists():
            return root
        # atomic: an interrupted run leaves no half folder
        with phase("data", "synthetic lesions"), atomic_path(root) as tmp:
            make_synthetic_isic(tmp, **settings)
            (tmp / _COMPLETE).write_text(json.dumps(settings, indent=1))
        return root
    if profile.data == "isic2017":
        root = Path(root) if root else home() / "data" / "isic2017"
        if (root / _COMPLETE).exists() or _use_existing_isic2017(root):
            return root
        counts = download_isic2017(root, base_url=isic2017_base_url())
        (root / _COMPLETE).write_text(json.dumps(counts))
        data_identity.cache_clear()  # the files changed: fingerprint them afresh
        return root
    raise ValueError(f"profile {profile.name!r} has unknown data {profile.data!r}")
