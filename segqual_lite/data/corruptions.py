"""Image corruptions for the shift test (chapter 12).

Does a quality estimate still rank segmentations when the test images are worse than
the training images? :func:`corrupt` degrades a batch of images in four ways, each at
severities 1-5 (0 leaves the images as they are), with the levels of ImageNet-C
(Hendrycks & Dietterich, ICLR 2019, "Benchmarking neural network robustness to common
corruptions and perturbations"), which were set for 224-pixel images:

* ``blur``: Gaussian blur, sigma 1, 2, 3, 4, 6 pixels at 224 px, scaled with the image
  side so that a severity blurs the same share of the lesion at every profile's size
  (at 64 px, severity 1 is a sigma of 0.3 pixel and hardly changes the image);
* ``noise``: additive Gaussian noise, standard deviation 0.08 ... 0.38, clipped to [0, 1];
* ``contrast``: contrast kept at 0.4 ... 0.05 of the original (a blend with the mean
  grey level, torchvision's ``adjust_contrast``);
* ``jpeg``: JPEG compression at quality 25, 18, 15, 10, 7.

Blur, noise and contrast are torchvision transforms v2 (``gaussian_blur``,
``gaussian_noise``, ``adjust_contrast``). JPEG goes through PIL, as every image file
of this package does: torchvision 0.29's ``JPEG`` transform calls its deprecated
encoder.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

__all__ = ["CORRUPTIONS", "CORRUPTION_LEVELS", "corrupt"]

CORRUPTIONS = ("blur", "noise", "contrast", "jpeg")
# ImageNet-C's parameters for severities 1-5 (blur sigma in pixels at 224 px).
CORRUPTION_LEVELS = {
    "blur": (1.0, 2.0, 3.0, 4.0, 6.0),
    "noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "jpeg": (25, 18, 15, 10, 7),
}
_REFERENCE_SIDE = 224


def _check_images(images) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images must be a torch tensor [B, 3, H, W], got {shape}")
    if not images.is_floating_point():
        raise ValueError(
            f"images must be float in [0, 1], got dtype {images.dtype}: "
            "convert uint8 images with images.float() / 255"
        )
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"images must lie in [0, 1], got values from {float(images.min()):g} "
            f"to {float(images.max()):g}"
        )


def _jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode each image with PIL at ``quality``."""
    pixels = images.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
        out.append(np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")))
    decoded = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    return decoded.to(device=images.device, dtype=images.dtype).div(255)


def corrupt(images: torch.Tensor, kind: str, severity: int, seed: int = 0) -> torch.Tensor:
    """``images`` (float ``[B, 3, H, W]`` in [0, 1], as :class:`ISIC2017` yields them)
    corrupted by ``kind`` (one of :data:`CORRUPTIONS`) at ``severity`` 0-5: a new
    tensor of the same shape, dtype and device, in [0, 1]. Severity 0 returns an
    unchanged copy. Chapter 12.

    Only ``noise`` is random: it is drawn on the CPU from ``seed`` (torch's global
    generator is left as it was), so the same images and seed give the same result on
    any device. The noise depends on the batch: corrupt a split in one call, or give
    each batch its own seed.
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}: choose one of {CORRUPTIONS}")
    if isinstance(severity, bool) or int(severity) != severity or not 0 <= severity <= 5:
        raise ValueError(f"severity must be an integer from 0 (none) to 5, got {severity!r}")
    _check_images(images)
    if severity == 0:
        return images.clone()
    from torchvision.transforms.v2 import functional as TF  # imported when first needed

    level = CORRUPTION_LEVELS[kind][int(severity) - 1]
    if kind == "blur":
        sigma = level * min(images.shape[-2:]) / _REFERENCE_SIDE
        size = 2 * math.ceil(3 * sigma) + 1  # three standard deviations on each side
        return TF.gaussian_blur(images, kernel_size=[size, size], sigma=[sigma, sigma])
    if kind == "noise":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            noisy = TF.gaussian_noise(images.cpu(), mean=0.0, sigma=level, clip=True)
        return noisy.to(images.device)
    if kind == "contrast":
        return TF.adjust_contrast(images, contrast_factor=level)
    return _jpeg(images, level)
