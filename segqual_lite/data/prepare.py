"""Data set-up per profile, the first call of every chapter (chapter 01)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import Profile, home
from ..store import artifact_key, atomic_path, digest
from ..timing import phase
from .download import download_isic2017
from .synthetic import DEFAULT_HARD_CASE_SHARES, HARD_CASES, make_synthetic_isic

__all__ = ["prepare_data", "SYNTHETIC_SEED"]

SYNTHETIC_SEED = 0
_COMPLETE = ".complete.json"


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
    * ``isic2017`` profiles: ``root`` (default ``<home>/data/isic2017``) is used as it is
      when it already holds the official counts; otherwise the zips are downloaded.
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
        if not (root / _COMPLETE).exists():
            counts = download_isic2017(root)
            (root / _COMPLETE).write_text(json.dumps(counts))
        return root
    raise ValueError(f"profile {profile.name!r} has unknown data {profile.data!r}")
