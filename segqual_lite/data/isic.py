"""Reading ISIC 2017 Part 1 from disk: checking it and serving it as a Dataset (chapter 01).

Images are resized bilinearly and masks by nearest neighbour to ``size`` x ``size``;
masks are thresholded at > 128. Decoded, resized data stay in memory as uint8 tensors:
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
from .layout import IMAGE_RE, MASK_RE, SPLITS, DataError, split_folders
from .symmetries import dihedral_augmentation_batch, take_rows

__all__ = ["check_isic2017", "ISIC2017", "list_pairs", "decode_split", "decoded_path"]

FIX_HINT = (
    "Fix: re-extract the official ISIC 2017 Part 1 zips into the data folder "
    "(python -m segqual_lite data download DIR), or regenerate synthetic data "
    "(python -m segqual_lite data synth --out DIR)."
)


def list_pairs(root: str | Path, split: str) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Match images to masks in one split by ISIC id.

    Returns ``([(id, image_path, mask_path), ...] sorted by id, problems)``; problems name
    missing folders, images without masks and masks without images.
    """
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


def _open(path: Path, mode: str, draft_size: int | None = None) -> Image.Image:
    """Open and fully decode ``path`` (a truncated file fails here, not later)."""
    try:
        im = Image.open(path)
        if draft_size and im.format == "JPEG":
            # Let libjpeg decode at a reduced scale: much faster for 1000+ px images.
            im.draft("RGB", (draft_size, draft_size))
        im.load()
        return im.convert(mode)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DataError([f"unreadable file {path}: {err}"], FIX_HINT) from err


def _read_pair(image_path: Path, mask_path: Path, size: int | None):
    image = _open(image_path, "RGB", draft_size=size)
    mask = _open(mask_path, "L")
    problems = []
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
    counts, problems = {}, []
    for split in splits:
        pairs, split_problems = list_pairs(root, split)
        problems += split_problems
        for _, image_path, mask_path in pairs:
            try:
                _, _, mismatch = _read_pair(image_path, mask_path, size=64)
                problems += mismatch
            except DataError as err:
                problems += err.problems
        counts[split] = len(pairs)
    if problems:
        raise DataError(problems, FIX_HINT)
    return counts


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
        raise DataError(problems, FIX_HINT)
    images = np.empty((len(pairs), size, size, 3), dtype=np.uint8)
    masks = np.empty((len(pairs), size, size), dtype=np.uint8)
    with phase("decode", f"{split} at {size} px"):
        for i, (_, image_path, mask_path) in enumerate(pairs):
            image, mask, mismatch = _read_pair(image_path, mask_path, size)
            if mismatch:
                raise DataError(mismatch, FIX_HINT)
            images[i] = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))
            mask_small = mask.resize((size, size), Image.Resampling.NEAREST)
            masks[i] = np.asarray(mask_small) > 128
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
