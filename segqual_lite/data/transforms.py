"""Joint image/mask augmentation with torchvision transforms v2 (chapter 01).

The paper flips images and rotates them by multiples of 90 degrees. Wrapping the pair as
``tv_tensors.Image`` and ``tv_tensors.Mask`` makes every transform move both together.
Training asks for whole batches: :func:`.symmetries.dihedral_augmentation_batch` gives
the same result as this v2 pipeline applied sample by sample, with the same random
draws, in one gather per batch.

:mod:`segqual_lite.data` imports this module (and so torchvision) only when one of its
names is first asked for.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from .symmetries import _draw_quarter_turns

__all__ = ["RandomRot90", "dihedral_augmentation", "joint_augmentation"]


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
