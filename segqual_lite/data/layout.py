"""The two folder layouts the book reads, and the error every data fault raises
(chapter 01; ``book/own_data.md``).

**ISIC 2017 Part 1** (and the synthetic lesions): folders named like the official zips.
``ISIC-2017_Training_Data`` holds ``ISIC_<7 digits>.jpg`` (plus ``*_superpixels.png`` and
a metadata CSV, both skipped); ``ISIC-2017_Training_Part1_GroundTruth`` holds
``ISIC_<id>_segmentation.png`` (0/255).

**A folder of your own** (:data:`FOLDER_LAYOUT`): ``DIR/{train,val,test}/images/NAME.png``
(or ``.jpg``, ``.jpeg``; RGB or grey, any size) and ``DIR/{train,val,test}/masks/NAME.png``,
an image and its mask sharing the name; a mask's non-zero pixels are the foreground.

**PH2** (real dermoscopy, :mod:`segqual_lite.data.ph2`): the authors' layout,
``PH2Dataset/PH2 Dataset images/IMDnnn/...`` with ``PH2Dataset/PH2_dataset.txt``; the
split is computed from the diagnoses listed there.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "SPLITS",
    "SPLIT_PREFIX",
    "OFFICIAL_COUNTS",
    "FOLDER_LAYOUT",
    "DataError",
    "split_folders",
    "folder_dirs",
    "detect_layout",
    "ph2_base",
    "LAYOUT_NAMES",
]

SPLITS = ("train", "val", "test")
SPLIT_PREFIX = {
    "train": "ISIC-2017_Training",
    "val": "ISIC-2017_Validation",
    "test": "ISIC-2017_Test_v2",
}
OFFICIAL_COUNTS = {"train": 2000, "val": 150, "test": 600}

FOLDER_LAYOUT = (
    "DIR/{train,val,test}/images/NAME.(png|jpg|jpeg) and DIR/{train,val,test}/masks/NAME.png"
)
FOLDER_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_RE = re.compile(r"^(ISIC_\d{7})\.jpe?g$", re.IGNORECASE)
MASK_RE = re.compile(r"^(ISIC_\d{7})_segmentation\.png$", re.IGNORECASE)
PH2_IMAGES = "PH2 Dataset images"  # PH2's folder of one folder per lesion
LAYOUT_NAMES = {  # detect_layout's answers, as `data check` prints them
    "folder": "a folder of your own",
    "isic2017": "the ISIC 2017 layout",
    "ph2": "the PH2 database (its fixed split)",
}


class DataError(Exception):
    """A data fault: names every missing, unreadable or mismatched file and the fix.

    ``problems`` holds one line per fault, so callers (and tests) can inspect them.
    """

    def __init__(self, problems: list[str], hint: str = ""):
        self.problems = list(problems)
        self.hint = hint
        shown = self.problems[:25]
        more = len(self.problems) - len(shown)
        lines = [f"{len(self.problems)} data problem(s):"] + [f"  - {p}" for p in shown]
        if more:
            lines.append(f"  ... and {more} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


def split_folders(root: str | Path, split: str) -> tuple[Path, Path]:
    """(image folder, ground-truth folder) of ``split`` under ``root``."""
    if split not in SPLIT_PREFIX:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    prefix = SPLIT_PREFIX[split]
    root = Path(root)
    return root / f"{prefix}_Data", root / f"{prefix}_Part1_GroundTruth"


def folder_dirs(root: str | Path, split: str) -> tuple[Path, Path]:
    """(image folder, mask folder) of ``split`` in a folder of your own."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    return Path(root) / split / "images", Path(root) / split / "masks"


def ph2_base(root: str | Path) -> Path | None:
    """The ``PH2Dataset`` folder of ``root`` (``root`` itself or ``root/PH2Dataset``): the
    one that holds :data:`PH2_IMAGES`; None when neither does."""
    root = Path(root)
    for base in (root, root / "PH2Dataset"):
        if (base / PH2_IMAGES).is_dir():
            return base
    return None


def detect_layout(root: str | Path) -> str:
    """``"folder"`` when ``root`` holds any ``<split>/images`` folder (a folder of your
    own), ``"ph2"`` when it holds the PH2 database (:func:`ph2_base`), else
    ``"isic2017"`` (the official layout, which the synthetic lesions share)."""
    if any(folder_dirs(root, s)[0].is_dir() for s in SPLITS):
        return "folder"
    return "ph2" if ph2_base(root) else "isic2017"
