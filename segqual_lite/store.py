"""The artifact store: cache keys, folders and atomic writes (used by every step).

Every artifact (a data folder, a trained U-Net or quality network, a set of
predictions, RCA scores) is stored in a folder named by a hash of its **key**: a dict of
everything that produced it, stamped with the version of the code that makes that kind
of artifact. Changing a setting therefore never reuses a stale artifact, and a second
run finds everything. Keys are built by :func:`artifact_key` only.

Every file is written through :func:`atomic_path`: to a temporary name beside the
target, renamed over it when complete, so an interrupted run (a Colab disconnect) never
leaves half a file that a later run would trust.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from .config import Profile, home
from .timing import phase

__all__ = [
    "CODE_VERSIONS",
    "artifact_key",
    "digest",
    "artifact_folder",
    "data_identity",
    "atomic_path",
    "write_text",
    "write_bytes",
    "save_torch",
    "save_array",
    "save_figure",
    "OURS",
    "ForeignFolder",
    "claim_folder",
]

# Bump a kind's version when its code changes what it produces (data 2: the satellites of
# multi-blob lesions kept apart; segmentation 2: MC-dropout maps from the folded sampler,
# equal to the module path up to float rounding; segmentation 3: the agreement of the
# masks a method averages, and MC-dropout's entropy split, for chapter 12).
# "predicted_jaccard": g's predictions on a split, kept so that the chapters that read
# the grid again do not run g again; "shift": chapter 12's shift test, per seed.
CODE_VERSIONS = {
    "data": 2,
    "f": 2,
    "segmentation": 3,
    "g": 1,
    "predicted_jaccard": 1,
    "rca": 1,
    "shift": 1,
}


def artifact_key(kind: str, **parts) -> dict:
    """The cache key of an artifact of ``kind``: ``parts`` (everything that produced it)
    and the code version of that kind."""
    if kind not in CODE_VERSIONS:
        raise ValueError(f"unknown artifact kind {kind!r}: choose one of {tuple(CODE_VERSIONS)}")
    return {"kind": kind, "code": CODE_VERSIONS[kind], **parts}


def digest(key: dict, length: int = 12) -> str:
    """A short hash of ``key`` (order-independent JSON)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:length]


def artifact_folder(profile: Profile, name: str, key: dict) -> Path:
    """``<home>/models/<profile>/<kind>-<name>-<hash of key>``: one folder per artifact."""
    return home() / "models" / profile.name / f"{key['kind']}-{name}-{digest(key)}"


def data_identity(root: str | os.PathLike) -> str:
    """What identifies a data folder in the keys of everything computed from it: its
    name and a fingerprint of its files (every file's path, size and modification
    time), so that two folders of the same name, or a folder whose mask was changed,
    do not share models. Taken once per folder and process (listing thousands of files
    costs a fraction of a second); after changing data within a running session, call
    ``data_identity.cache_clear()`` or restart."""
    return _data_identity(str(Path(root).resolve()))


@functools.lru_cache(maxsize=16)
def _data_identity(root: str) -> str:
    entries = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            stat = os.stat(path)
            entries.append((os.path.relpath(path, root), stat.st_size, stat.st_mtime_ns))
    return f"{Path(root).name}-{digest({'files': sorted(entries)}, length=16)}"


data_identity.cache_clear = _data_identity.cache_clear


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, rename
    it over ``path`` (a file or a whole folder), else remove it. The temporary name keeps
    the suffix, for writers that choose the format by it, and names the process, so that
    processes writing the same artifact at once (the grid's workers) never share it: the
    last rename wins, with a whole file. A folder is only renamed over an empty one or
    one the book wrote (:func:`claim_folder`), never over a folder of yours."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir():
            if path.is_dir() and any(path.iterdir()) and not (path / OURS).exists():
                raise ForeignFolder(f"{path} holds files segqual-lite did not write: kept")
            _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


OURS = ".segqual-lite"  # marks a folder the book wrote, which it may write into again


class ForeignFolder(Exception):
    """A folder holds files the book did not write: nothing the book runs writes into
    it, deletes from it or replaces it (a folder of your own is read, never changed)."""


def claim_folder(folder: str | os.PathLike, what: str, legacy: tuple[str, ...] = ()) -> Path:
    """Make ``folder`` ready for the book to write ``what`` into it, and mark it as the
    book's (:data:`OURS`): it must be new, empty, marked by an earlier run, or hold one of
    the ``legacy`` names (what an earlier version wrote there). Any other folder raises
    :class:`ForeignFolder`, naming it and the fix, before anything is written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ForeignFolder(f"{folder} is a file, not a folder: name a new folder for {what}")
    if folder.is_dir():
        entries = sorted(p.name for p in folder.iterdir())
        if entries and not any((folder / name).exists() for name in (OURS, *legacy)):
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise ForeignFolder(
                f"{folder} is not empty ({shown}) and was not written by segqual-lite: "
                f"{what} is only written into a new or empty folder, or one it wrote "
                "before, so that no file of yours is replaced. Name a new folder."
            )
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / OURS).exists():
        (folder / OURS).write_text("written by segqual-lite; it may write here again\n")
    return folder


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def save_torch(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_array(array: np.ndarray, path: str | os.PathLike) -> None:
    """``np.save`` to ``path`` (ending in ``.npy``) atomically."""
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> None:
    """Save a matplotlib figure to ``path`` atomically (the format from the suffix)."""
    with phase("figure", Path(path).name), atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
