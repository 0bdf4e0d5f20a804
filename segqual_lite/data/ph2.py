"""The PH2 database (real dermoscopy, chapter 10) read in its own layout.

PH2 (Mendonça et al., EMBC 2013) holds 200 dermoscopic images of melanocytic lesions with
an expert's lesion mask: 80 common nevi, 80 atypical nevi and 40 melanomas, from the
Hospital Pedro Hispano (Matosinhos, Portugal). Its authors distribute it as::

    PH2Dataset/PH2 Dataset images/IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp   (RGB)
    PH2Dataset/PH2 Dataset images/IMDnnn/IMDnnn_lesion/IMDnnn_lesion.bmp       (mask)
    PH2Dataset/PH2_dataset.txt   (per image: clinical diagnosis 0, 1, 2 and criteria)

(768 x 560 pixels, masks 24-bit BMP; a copy shrunk in size, with 8-bit masks, reads the
same.) The folder given may be ``PH2Dataset`` itself or the folder that holds it. Nothing
is written into it: the split is computed from its files on every read.

**The split** (:func:`ph2_split`, fixed in ``book/analysis_plan.md`` before any result):
within each clinical diagnosis the lesions are ordered by the SHA-256 of their name and
dealt out 50% / 10% / 40% to train / val / test, so 100 / 20 / 80 lesions, each split
with the database's 2 : 2 : 1 share of common nevi, atypical nevi and melanomas, the same
on every machine and for every version of every library.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .layout import PH2_IMAGES, SPLITS, DataError, ph2_base

__all__ = [
    "PH2_CITATION",
    "PH2_URL",
    "PH2_DIAGNOSES",
    "PH2_SHARES",
    "PH2_HINT",
    "read_diagnoses",
    "ph2_split",
    "ph2_pairs",
    "ph2_fingerprint",
]

PH2_CITATION = (
    "T. Mendonça, P. M. Ferreira, J. S. Marques, A. R. S. Marcal, J. Rozeira. PH2 - A "
    "dermoscopic image database for research and benchmarking. 35th International "
    "Conference of the IEEE Engineering in Medicine and Biology Society (EMBC), 2013, "
    "pp. 5437-5440."
)
PH2_URL = "https://www.fc.up.pt/addi/ph2%20database.html"
PH2_DIAGNOSES = {0: "common nevus", 1: "atypical nevus", 2: "melanoma"}
PH2_SHARES = {"train": 0.5, "val": 0.1, "test": 0.4}  # of each diagnosis
PH2_HINT = (
    "PH2 is read in its authors' layout: PH2Dataset/PH2 Dataset images/IMDnnn/"
    "IMDnnn_Dermoscopic_Image/IMDnnn.bmp, .../IMDnnn_lesion/IMDnnn_lesion.bmp and "
    f"PH2Dataset/PH2_dataset.txt. Extract the database from {PH2_URL} unchanged and give "
    "the folder that holds PH2Dataset (or PH2Dataset itself)."
)
_NAME = re.compile(r"^IMD\d{3}$")
_LIST = "PH2_dataset.txt"


def _cells(line: str) -> list[str]:
    """The cells of one line of PH2_dataset.txt: ``||``-separated as distributed, or
    tab-separated (the table saved from a spreadsheet)."""
    return [c.strip() for c in (line.split("||") if "||" in line else line.split("\t"))]


def read_diagnoses(root: str | Path) -> dict[str, int]:
    """``{name: clinical diagnosis}`` (0 common nevus, 1 atypical nevus, 2 melanoma) of
    every lesion listed in ``PH2_dataset.txt``; a missing list, a list without the
    ``Name`` and ``Clinical Diagnosis`` columns or a diagnosis other than 0, 1, 2 raises
    :class:`DataError` naming the file and line."""
    base = ph2_base(root)
    path = (base or Path(root)) / _LIST
    if base is None or not path.is_file():
        raise DataError([f"missing {path}: PH2's list of lesions and diagnoses"], PH2_HINT)
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    columns, diagnoses, problems = None, {}, []
    for number, line in enumerate(text.splitlines(), 1):
        cells = _cells(line)
        if columns is None:
            if "Name" in cells and "Clinical Diagnosis" in cells:
                columns = cells.index("Name"), cells.index("Clinical Diagnosis")
            continue
        if len(cells) <= max(columns) or not _NAME.match(cells[columns[0]]):
            continue  # the legend under the table, blank lines
        name, value = cells[columns[0]], cells[columns[1]]
        if value not in ("0", "1", "2"):
            problems.append(
                f"{path} line {number}: {name} has clinical diagnosis {value!r}, not 0, 1 or 2"
            )
            continue
        diagnoses[name] = int(value)
    if columns is None:
        problems.append(f"{path} has no header line with 'Name' and 'Clinical Diagnosis'")
    elif not diagnoses and not problems:
        problems.append(f"{path} lists no lesion (no line starting with IMDnnn)")
    if problems:
        raise DataError(problems, PH2_HINT)
    return diagnoses


def _rank(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def ph2_split(diagnoses: dict[str, int]) -> dict[str, str]:
    """``{name: split}``: within each diagnosis, names ordered by :func:`_rank` and dealt
    out by :data:`PH2_SHARES` (rounded: train first, then val, test the rest)."""
    split = {}
    for diagnosis in sorted(set(diagnoses.values())):
        names = sorted((n for n, d in diagnoses.items() if d == diagnosis), key=_rank)
        n_train = round(len(names) * PH2_SHARES["train"])
        n_val = round(len(names) * PH2_SHARES["val"])
        for i, name in enumerate(names):
            split[name] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return split


def ph2_pairs(root: str | Path, split: str) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """``list_pairs`` for PH2: the ``(name, image, mask)`` of ``split`` sorted by name, and
    the problems (a lesion listed without its image or mask, an image folder not listed)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    diagnoses = read_diagnoses(root)
    images = ph2_base(root) / PH2_IMAGES
    problems, pairs = [], []
    on_disk = {p.name for p in images.iterdir() if p.is_dir()}
    for name in sorted(on_disk - diagnoses.keys()):
        if split == "train":  # said once, not per split
            problems.append(
                f"{images / name} is not listed in {_LIST}: add its line or remove the folder"
            )
    for name, where in sorted(ph2_split(diagnoses).items()):
        if where != split:
            continue
        image = images / name / f"{name}_Dermoscopic_Image" / f"{name}.bmp"
        mask = images / name / f"{name}_lesion" / f"{name}_lesion.bmp"
        missing = [p for p in (image, mask) if not p.is_file()]
        problems += [f"missing {p} (lesion {name}, listed in {_LIST})" for p in missing]
        if not missing:
            pairs.append((name, image, mask))
    return pairs, problems


def ph2_fingerprint(root: str | Path) -> str:
    """A SHA-256 of what the book reads from a PH2 folder (the list of lesions, and every
    listed image and mask, by content): equal for two copies of the same files on any
    machine, different for the full-size database and a shrunk copy. A reference run
    records it (``run.json``), so a check on other files says so instead of failing."""
    base = ph2_base(root)
    digest = hashlib.sha256()
    paths = [base / _LIST] + [
        p for split in SPLITS for _, *pair in ph2_pairs(root, split)[0] for p in pair
    ]
    for path in sorted(paths):
        digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
