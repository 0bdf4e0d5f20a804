"""Data set-up per profile, the first call of every chapter (chapter 01)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import Profile, home
from ..store import artifact_key, atomic_path, digest
from ..timing import phase
from .download import download_isic2017
from .synthetic import DEFAULT_HARD_CASE_SHARES, make_synthetic_isic

__all__ = ["prepare_data", "SYNTHETIC_SEED"]

SYNTHETIC_SEED = 0
_COMPLETE = ".complete.json"


def _synthetic_settings(profile: Profile) -> dict:
    return {
        "n_train": profile.n_train,
        "n_val": profile.n_val,
        "n_test": profile.n_test,
        "size": profile.image_size,
        "seed": SYNTHETIC_SEED,
        "hard_cases": dict(DEFAULT_HARD_CASE_SHARES),
    }


def prepare_data(profile: Profile, root: str | os.PathLike | None = None) -> Path:
    """Return a data folder in the ISIC 2017 layout for ``profile``, making it if needed.

    * ``synthetic`` profiles: lesions from :func:`make_synthetic_isic`, written once into
      ``<home>/data/synthetic-<key>`` (the key hashes the generator's settings) and reused.
    * ``isic2017`` profiles: ``root`` (default ``<home>/data/isic2017``) is used as it is
      when it already holds the official counts; otherwise the zips are downloaded.
    """
    if profile.data == "synthetic":
        settings = _synthetic_settings(profile)
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
        if not (root / _COMPLETE).exists():
            counts = download_isic2017(root)
            (root / _COMPLETE).write_text(json.dumps(counts))
        return root
    raise ValueError(f"profile {profile.name!r} has unknown data {profile.data!r}")
