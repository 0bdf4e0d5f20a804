"""The eight symmetries of the square, in pure torch: the batched form of the paper's
flip-and-rotate augmentation (:func:`dihedral_augmentation_batch`, the same draws and
result as the v2 pipeline of :mod:`.transforms`), and the exact views of test-time
augmentation (:func:`dihedral`, :func:`undo_dihedral`, chapter 11).

Kept apart from the torchvision pipeline so that a chapter which only loads cached
results does not import torchvision (about 1 s per kernel on 2 CPU cores).
"""

from __future__ import annotations

import functools

import torch

__all__ = [
    "DIHEDRAL",
    "dihedral",
    "dihedral_augmentation_batch",
    "take_rows",
    "undo_dihedral",
]

# The eight symmetries of the square: (mirror left-right first?, quarter turns).
DIHEDRAL = tuple((flip, k) for flip in (False, True) for k in range(4))


def _draw_quarter_turns() -> int:
    return int(torch.randint(0, 4, ()).item())


def _draw_dihedral() -> int:
    """Draw what one call of :func:`.transforms.dihedral_augmentation` draws from torch's global
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
    """:func:`.transforms.dihedral_augmentation` applied to every sample of ``batches`` (each
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
