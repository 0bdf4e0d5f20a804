"""Joint image/mask augmentation with torchvision transforms v2 (chapter 01).

The paper flips images and rotates them by multiples of 90 degrees. Wrapping the pair as
``tv_tensors.Image`` and ``tv_tensors.Mask`` makes every transform move both together.
Training asks for whole batches: :func:`dihedral_augmentation_batch` gives the same
result as the v2 pipeline applied sample by sample, with the same random draws, in one
gather per batch.
"""

from __future__ import annotations

import functools

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = [
    "DIHEDRAL",
    "RandomRot90",
    "dihedral",
    "dihedral_augmentation",
    "dihedral_augmentation_batch",
    "joint_augmentation",
    "take_rows",
    "undo_dihedral",
]

# The eight symmetries of the square: (mirror left-right first?, quarter turns).
DIHEDRAL = tuple((flip, k) for flip in (False, True) for k in range(4))


def _draw_quarter_turns() -> int:
    return int(torch.randint(0, 4, ()).item())


class RandomRot90(v2.Transform):
    """Rotate by k·90 degrees, k uniform in {0, 1, 2, 3}: an exact pixel permutation,
    with no interpolation (``v2.RandomRotation`` would resample)."""

    def make_params(self, flat_inputs):
        """Draw the number of quarter turns, shared by every input of one call."""
        return {"k": _draw_quarter_turns()}

    def transform(self, inpt, params):
        """Rotate one input (image, mask or plain tensor) by ``k`` quarter turns."""
        k = params["k"]
        if k == 0:
            return inpt
        out = torch.rot90(inpt, k, dims=(-2, -1))
        if isinstance(inpt, tv_tensors.TVTensor):
            return tv_tensors.wrap(out, like=inpt)
        return out


def dihedral_augmentation() -> v2.Compose:
    """Random horizontal and vertical flips and a random 90-degree rotation: the paper's
    augmentation, for f's (image, mask) pairs and g's stacked inputs alike."""
    return v2.Compose([v2.RandomHorizontalFlip(0.5), v2.RandomVerticalFlip(0.5), RandomRot90()])


def _draw_dihedral() -> int:
    """Draw what one call of :func:`dihedral_augmentation` draws from torch's global
    generator, in its order: ``torch.rand(1)`` for each flip (v2 skips a flip when the
    draw is >= p = 0.5), then the quarter turns. Returns the code
    ``8 * left-right + 4 * up-down + quarter turns`` (an index of :func:`_dihedral_index`)."""
    left_right = torch.rand(1).item() < 0.5  # float32 draws: exact in a Python float
    up_down = torch.rand(1).item() < 0.5
    return 8 * left_right + 4 * up_down + _draw_quarter_turns()


@functools.lru_cache(maxsize=8)
def _dihedral_index(size: int) -> torch.Tensor:
    """int64 ``[16, size * size]``: for each code of :func:`_draw_dihedral`, the source
    pixel of every output pixel (row-major), found by moving a grid of pixel numbers
    with the very flips and turn that the v2 pipeline applies."""
    grid = torch.arange(size * size).reshape(size, size)
    moved = []
    for code in range(16):
        x = grid.flip(-1) if code & 8 else grid
        x = x.flip(-2) if code & 4 else x
        moved.append(torch.rot90(x, code & 3, dims=(-2, -1)).flatten())
    return torch.stack(moved)


def take_rows(tensor: torch.Tensor, index) -> torch.Tensor:
    """``tensor[index]`` for an int or a slice; for a list of indices (a batch asked for
    by the training loop) the same rows by ``index_select``, about 20x faster than
    advanced indexing of uint8 tensors."""
    if isinstance(index, list):
        return tensor.index_select(0, torch.tensor(index, dtype=torch.int64))
    return tensor[index]


def dihedral_augmentation_batch(*batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """:func:`dihedral_augmentation` applied to every sample of ``batches`` (each
    ``[B, ..., S, S]``, square), sample b of every batch moved alike (an image and its
    mask).

    It draws from torch's global generator exactly the numbers that calling the v2
    pipeline once per sample draws, in the same order, so for the same seed the result
    equals stacking the per-sample results, bit for bit. Each batch is moved by one
    gather (a pixel permutation: exact) instead of three transforms per sample, which
    is what the training loop wants (:func:`segqual_lite.training.fit_checkpointed`).
    """
    n, size = len(batches[0]), batches[0].shape[-1]
    for x in batches:
        if len(x) != n or x.shape[-2:] != (size, size):
            shapes = [tuple(x.shape) for x in batches]
            raise ValueError(f"batches need one length and square [S, S] images, got {shapes}")
    codes = torch.tensor([_draw_dihedral() for _ in range(n)], dtype=torch.int64)
    index = _dihedral_index(size)[codes]  # [B, S*S]
    moved = []
    for x in batches:
        flat = x.reshape(n, -1, size * size)
        where = index[:, None, :].expand(-1, flat.shape[1], -1)
        moved.append(flat.gather(2, where).reshape(x.shape))
    return tuple(moved)


class _JointFlipRotate:
    """Callable ``(image, mask) -> (image, mask)`` over plain tensors."""

    def __init__(self):
        self.transform = dihedral_augmentation()

    def __call__(self, image: torch.Tensor, mask: torch.Tensor):
        image, mask = self.transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return f"joint_augmentation({self.transform})"


def joint_augmentation() -> _JointFlipRotate:
    """Random horizontal and vertical flips and 90-degree rotations, applied jointly.

    Draws from torch's global generator, so :func:`segqual_lite.config.seed_everything`
    makes it repeatable.
    """
    return _JointFlipRotate()


def dihedral(x: torch.Tensor, index: int) -> torch.Tensor:
    """Apply symmetry ``DIHEDRAL[index]`` to the last two (square) dimensions of ``x``:
    a left-right mirror if asked, then ``k`` quarter turns. Exact; no resampling."""
    flip, k = DIHEDRAL[index]
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"dihedral symmetries need square images, got {tuple(x.shape[-2:])}")
    return torch.rot90(x.flip(-1) if flip else x, k, dims=(-2, -1))


def undo_dihedral(x: torch.Tensor, index: int) -> torch.Tensor:
    """The inverse of :func:`dihedral`: ``undo_dihedral(dihedral(x, i), i) == x``
    (turn back, then mirror back). Used by test-time augmentation (chapter 11) to bring
    each view's prediction back to the original image."""
    flip, k = DIHEDRAL[index]
    x = torch.rot90(x, -k, dims=(-2, -1))
    return x.flip(-1) if flip else x
