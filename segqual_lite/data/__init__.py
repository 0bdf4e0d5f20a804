"""Data: ISIC 2017 Part 1 on disk, synthetic lesions in its layout, the download, and
joint augmentation (chapter 01); corrupted test images for the shift test (chapter 12)."""

from .corruptions import CORRUPTION_LEVELS, CORRUPTIONS, corrupt
from .download import ISIC2017_BASE_URL, ISIC2017_ZIPS, download_isic2017, download_ph2
from .isic import ISIC2017, check_data, check_folder, check_isic2017, decode_split, list_pairs
from .layout import (
    FOLDER_LAYOUT,
    OFFICIAL_COUNTS,
    SPLITS,
    DataError,
    detect_layout,
    folder_dirs,
    split_folders,
)
from .prepare import (
    MIRROR_ENV,
    download_data,
    expected_counts,
    isic2017_base_url,
    ph2_archive_url,
    prepare_data,
)
from .symmetries import DIHEDRAL, dihedral, dihedral_augmentation_batch, take_rows, undo_dihedral
from .synthetic import (
    DEFAULT_HARD_CASE_SHARES,
    HARD_CASES,
    draw_lesion,
    lesion_name,
    make_synthetic_folder,
    make_synthetic_isic,
    read_hard_cases,
)

# torchvision's v2 pipeline, imported when first asked for (torchvision costs about 1 s
# of every kernel start, and a chapter that loads cached results never needs it).
_TRANSFORMS = ("RandomRot90", "dihedral_augmentation", "joint_augmentation")


def __getattr__(name: str):
    if name in _TRANSFORMS:
        from . import transforms

        return getattr(transforms, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CORRUPTIONS",
    "CORRUPTION_LEVELS",
    "corrupt",
    "DEFAULT_HARD_CASE_SHARES",
    "DIHEDRAL",
    "HARD_CASES",
    "ISIC2017",
    "ISIC2017_BASE_URL",
    "ISIC2017_ZIPS",
    "OFFICIAL_COUNTS",
    "SPLITS",
    "DataError",
    "RandomRot90",
    "check_isic2017",
    "check_folder",
    "check_data",
    "detect_layout",
    "folder_dirs",
    "FOLDER_LAYOUT",
    "dihedral",
    "lesion_name",
    "dihedral_augmentation",
    "dihedral_augmentation_batch",
    "download_isic2017",
    "download_ph2",
    "download_data",
    "expected_counts",
    "draw_lesion",
    "joint_augmentation",
    "list_pairs",
    "decode_split",
    "make_synthetic_isic",
    "make_synthetic_folder",
    "prepare_data",
    "isic2017_base_url",
    "ph2_archive_url",
    "MIRROR_ENV",
    "read_hard_cases",
    "split_folders",
    "take_rows",
    "undo_dihedral",
]
