"""Reading a data folder from disk, checking it and serving it as a Dataset (chapter 01):
ISIC 2017 Part 1 (and the synthetic lesions in its layout), a folder of your own
(:data:`~segqual_lite.data.layout.FOLDER_LAYOUT`, ``book/own_data.md``) or the PH2
database (:mod:`~segqual_lite.data.ph2`).

Images are resized bilinearly and masks by nearest neighbour to ``size`` x ``size``;
ISIC and PH2 masks are thresholded at > 128, the masks of a folder of your own at > 0 (after a
check that each holds at most two values). Decoded, resized data stay in memory as uint8 tensors:
with no worker processes, decoding once is what keeps an epoch cheap. Each (data
folder, split, size) is decoded once and kept in the artifact store
(``<home>/decoded``, keyed by :func:`~segqual_lite.store.data_identity`): later chapters
and runs open it in a fraction of a second instead of decoding real ISIC images of up to
4499 x 6748 pixels again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..config import home
from ..store import atomic_path, data_identity
from ..timing import phase
from .layout import (
    FOLDER_IMAGE_SUFFIXES,
    FOLDER_LAYOUT,
    IMAGE_RE,
    MASK_RE,
    SPLITS,
    DataError,
    detect_layout,
    folder_dirs,
    split_folders,
)
from .ph2 import PH2_HINT, ph2_pairs
from .symmetries import dihedral_augmentation_batch, take_rows

__all__ = [
    "check_isic2017",
    "check_folder",
    "check_ph2",
    "check_data",
    "ISIC2017",
    "list_pairs",
    "decode_split",
    "decoded_path",
]

FIX_HINT = (
    "Fix: re-extract the official ISIC 2017 Part 1 zips into the data folder "
    "(python -m segqual_lite data download DIR), or regenerate synthetic data "
    "(python -m segqual_lite data synth --out DIR)."
)


FOLDER_HINT = f"A folder of your own is laid out as {FOLDER_LAYOUT} (book/own_data.md)."


def _hint(root: str | Path) -> str:
    return {"folder": FOLDER_HINT, "ph2": PH2_HINT}.get(detect_layout(root), FIX_HINT)


def _folder_pairs(root: Path, split: str) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """:func:`list_pairs` for a folder of your own: images and masks matched by name."""
    image_dir, mask_dir = folder_dirs(root, split)
    problems = [
        f"missing folder {folder} (split {split!r}): create it and put the split's "
        f"{'images' if folder == image_dir else 'masks'} there"
        for folder in (image_dir, mask_dir)
        if not folder.is_dir()
    ]
    if problems:
        return [], problems
    images: dict[str, Path] = {}
    for p in sorted(image_dir.iterdir()):
        if p.suffix.lower() in FOLDER_IMAGE_SUFFIXES:
            if p.stem in images:
                problems.append(
                    f"two images named {p.stem!r} in {image_dir} ({images[p.stem].name} and "
                    f"{p.name}): rename or remove one"
                )
            images[p.stem] = p
    masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() == ".png"}
    if not images:
        problems.append(
            f"split {split!r} is empty: no .png, .jpg or .jpeg image in {image_dir}; put at "
            "least one image there, with its mask"
        )
    for name in sorted(images.keys() - masks.keys()):
        problems.append(
            f"missing mask {mask_dir / (name + '.png')} for {images[name]}: add it (a PNG "
            "with the image's name), or remove the image"
        )
    for name in sorted(masks.keys() - images.keys()):
        problems.append(
            f"mask {masks[name]} has no image {image_dir / name}.png or .jpg: add the "
            "image, or remove the mask"
        )
    pairs = [(name, images[name], masks[name]) for name in sorted(images.keys() & masks.keys())]
    return pairs, problems


def list_pairs(root: str | Path, split: str) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Match images to masks in one split: by ISIC id, or by name in a folder of your own.

    Returns ``([(id, image_path, mask_path), ...] sorted by id, problems)``; problems name
    missing folders, images without masks and masks without images.
    """
    layout = detect_layout(root)
    if layout == "folder":
        return _folder_pairs(Path(root), split)
    if layout == "ph2":
        return ph2_pairs(root, split)
    image_dir, mask_dir = split_folders(root, split)
    problems = []
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            problems.append(f"missing folder {folder} (split {split!r})")
    if problems:
        return [], problems
    images = {}
    for p in image_dir.iterdir():
        m = IMAGE_RE.match(p.name)
        if m:
            images[m.group(1).upper()] = p
    masks = {}
    for p in mask_dir.iterdir():
        m = MASK_RE.match(p.name)
        if m:
            masks[m.group(1).upper()] = p
    if not images:
        problems.append(f"no ISIC_<7 digits>.jpg images in {image_dir}")
    for iid in sorted(images.keys() - masks.keys()):
        problems.append(f"missing mask {mask_dir / (iid + '_segmentation.png')} for {images[iid]}")
    for iid in sorted(masks.keys() - images.keys()):
        problems.append(f"mask {masks[iid]} has no image {image_dir / (iid + '.jpg')}")
    pairs = [(iid, images[iid], masks[iid]) for iid in sorted(images.keys() & masks.keys())]
    return pairs, problems


def _open(
    path: Path, mode: str, draft_size: int | None = None, hint: str = FIX_HINT
) -> Image.Image:
    """Open and fully decode ``path`` (a truncated file fails here, not later)."""
    try:
        im = Image.open(path)
        if draft_size and im.format == "JPEG":
            # Let libjpeg decode at a reduced scale: much faster for 1000+ px images.
            im.draft("RGB", (draft_size, draft_size))
        im.load()
        return im.convert(mode)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DataError([f"unreadable file {path}: {err}"], hint) from err


def _read_pair(image_path: Path, mask_path: Path, size: int | None, own: bool = False):
    """Image (RGB) and mask (8-bit grey) of one pair, and the problems found: sizes that
    differ, and for a folder of your own (``own``) a mask with more than two values."""
    hint = FOLDER_HINT if own else FIX_HINT
    image = _open(image_path, "RGB", draft_size=size, hint=hint)
    mask = _open(mask_path, "L", hint=hint)
    problems = []
    if own:
        values = np.unique(np.asarray(mask))
        if len(values) > 2:
            shown = ", ".join(map(str, values[:6])) + (", ..." if len(values) > 6 else "")
            problems.append(
                f"mask {mask_path} is not binary: read as 8-bit grey (PIL mode 'L', colour "
                f"weighted to grey) it holds {len(values)} values ({shown}); save it with 0 "
                "for the background and one value, e.g. 255, for the foreground"
            )
    # draft() may have shrunk the JPEG: compare against the size the file declares.
    with Image.open(image_path) as raw:
        declared = raw.size
    if mask.size != declared:
        problems.append(
            f"size mismatch: image {image_path} is {declared[0]}x{declared[1]} but "
            f"mask {mask_path} is {mask.size[0]}x{mask.size[1]}"
        )
    return image, mask, problems


def check_isic2017(root: str | Path, splits=SPLITS) -> dict[str, int]:
    """Verify an ISIC 2017 Part 1 folder; return the number of image/mask pairs per split.

    Decodes every image and mask, so a corrupt JPEG, a missing mask, a mask whose size
    differs from its image or a missing split folder raise :class:`DataError`, which
    lists every such file at once.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError([f"data folder {root} does not exist"], FIX_HINT)
    return _check_splits(root, splits, own=False)


def check_ph2(root: str | Path, splits=SPLITS) -> dict[str, int]:
    """Verify a PH2 folder (:mod:`~segqual_lite.data.ph2`, full size or shrunk): every
    listed lesion's image and mask decoded, of the same size, the mask binary; return the
    lesions per split of the fixed split, or raise :class:`DataError` listing every fault."""
    counts, problems = {}, []
    for split in splits:
        pairs, split_problems = ph2_pairs(root, split)
        problems += split_problems
        for _, image_path, mask_path in pairs:
            try:
                problems += _read_pair(image_path, mask_path, size=None, own=True)[2]
            except DataError as err:
                problems += err.problems
        counts[split] = len(pairs)
    if problems:
        raise DataError(problems, PH2_HINT)
    return counts


def _check_splits(root: Path, splits, own: bool) -> dict[str, int]:
    """Decode every pair of ``splits``; the pairs per split, or one :class:`DataError`
    listing every problem (``own``: a folder of your own, else the ISIC layout)."""
    counts, problems = {}, []
    for split in splits:
        pairs, split_problems = _folder_pairs(root, split) if own else list_pairs(root, split)
        problems += split_problems
        for _, image_path, mask_path in pairs:
            try:
                problems += _read_pair(image_path, mask_path, size=64, own=own)[2]
            except DataError as err:
                problems += err.problems
        counts[split] = len(pairs)
    if problems:
        raise DataError(problems, FOLDER_HINT if own else FIX_HINT)
    return counts


def check_folder(root: str | Path, splits=SPLITS) -> dict[str, int]:
    """Verify a folder of your own (:data:`~segqual_lite.data.layout.FOLDER_LAYOUT`);
    return the image/mask pairs per split. Decodes every file, so a missing image or
    mask, an empty split, an unreadable file, a mask of another size than its image or a
    mask that is not binary raise :class:`DataError`, naming each file and the fix."""
    return _check_splits(Path(root), splits, own=True)


def check_data(root: str | Path) -> tuple[str, dict[str, int]]:
    """``(layout, pairs per split)`` of a data folder in any of the three layouts (module
    docstring), checked by :func:`check_folder`, :func:`check_ph2` or
    :func:`check_isic2017`."""
    if not Path(root).is_dir():
        raise DataError([f"data folder {root} does not exist"], FIX_HINT)
    layout = detect_layout(root)
    check = {"folder": check_folder, "ph2": check_ph2}.get(layout, check_isic2017)
    return layout, check(root)


def decoded_path(root: str | Path, split: str, size: int) -> Path:
    """Where :func:`decode_split` keeps a split decoded at ``size``."""
    return home() / "decoded" / f"{data_identity(root)}-{split}-{size}.npz"


def decode_split(
    root: str | Path, split: str, size: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(ids, images uint8 [N, S, S, 3], masks uint8 [N, S, S])`` of a split at ``size``:
    decoded and resized once, then read from the artifact store (written atomically)."""
    path = decoded_path(root, split, size)
    if path.exists():
        with phase("load decoded", f"{split} at {size} px"), np.load(path) as saved:
            return saved["ids"].tolist(), saved["images"], saved["masks"]
    pairs, problems = list_pairs(root, split)
    if problems:
        raise DataError(problems, _hint(root))
    own = detect_layout(root) == "folder"
    images = np.empty((len(pairs), size, size, 3), dtype=np.uint8)
    masks = np.empty((len(pairs), size, size), dtype=np.uint8)
    with phase("decode", f"{split} at {size} px"):
        for i, (_, image_path, mask_path) in enumerate(pairs):
            image, mask, mismatch = _read_pair(image_path, mask_path, size, own)
            if mismatch:
                raise DataError(mismatch, _hint(root))
            images[i] = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))
            mask_small = mask.resize((size, size), Image.Resampling.NEAREST)
            masks[i] = np.asarray(mask_small) > (0 if own else 128)
    ids = [iid for iid, _, _ in pairs]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, ids=np.array(ids), images=images, masks=masks)
    return ids, images, masks


class ISIC2017(Dataset):
    """ISIC 2017 Part 1 (or synthetic data in its layout) as ``(image, mask)`` pairs.

    ``image`` is float32 ``[3, size, size]`` in [0, 1]; ``mask`` is int64 ``[size, size]``
    in {0, 1}. With ``augment=True`` each item is randomly flipped and rotated by a
    multiple of 90 degrees, image and mask together (the paper's augmentation). A list of
    indices gives the whole batch at once (``[B, 3, size, size]``, ``[B, size, size]``):
    what the training loop asks for, equal to stacking the items one by one, random
    draws included (:func:`~segqual_lite.data.dihedral_augmentation_batch`).

    Attributes ``images`` (uint8 ``[N, 3, S, S]``), ``masks`` (uint8 ``[N, S, S]``) and
    ``ids`` give the whole split at once, for fast batched inference.
    """

    def __init__(self, root: str | Path, split: str, size: int, augment: bool = False):
        if not isinstance(size, int) or size < 8:
            raise ValueError(f"size must be an int >= 8, got {size!r}")
        ids, images, masks = decode_split(root, split, size)
        self.root, self.split, self.size = Path(root), split, size
        self.ids = ids
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        self.masks = torch.from_numpy(masks)
        self.augment = None
        if augment:
            from .transforms import joint_augmentation  # torchvision, only when augmenting

            self.augment = joint_augmentation()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = take_rows(self.images, index), take_rows(self.masks, index)
        if self.augment is not None:
            if isinstance(index, list):
                image, mask = dihedral_augmentation_batch(image, mask)
            else:
                image, mask = self.augment(image, mask)
        return image.float().div_(255), mask.long()

    def __repr__(self) -> str:
        root, split = str(self.root), self.split
        return f"ISIC2017(root={root!r}, split={split!r}, n={len(self)}, size={self.size})"
