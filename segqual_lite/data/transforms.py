"""Joint image/mask augmentation with torchvision transforms v2 (chapter 01).

The paper flips images and rotates them by multiples of 90 degrees. Wrapping the pair as
``tv_tensors.Image`` and ``tv_tensors.Mask`` makes every transform move both together.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = [
    "DIHEDRAL",
    "RandomRot90",
    "dihedral",
    "dihedral_augmentation",
    "joint_augmentation",
    "undo_dihedral",
]

# The eight symmetries of the square: (mirror left-right first?, quarter turns).
DIHEDRAL = tuple((flip, k) for flip in (False, True) for k in range(4))


class RandomRot90(v2.Transform):
    """Rotate by k·90 degrees, k uniform in {0, 1, 2, 3}: an exact pixel permutation,
    with no interpolation (``v2.RandomRotation`` would resample)."""

    def make_params(self, flat_inputs):
        """Draw the number of quarter turns, shared by every input of one call."""
        return {"k": int(torch.randint(0, 4, ()).item())}

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
