from functools import cache

import numpy as np
import pytest
import torch

from segqual_lite.data import CORRUPTIONS, ISIC2017, corrupt, draw_lesion


@cache
def _lesions(n, size, seed) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    images = np.stack([draw_lesion(rng, size, size)[0] for _ in range(n)])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)


def lesion_images(n=4, size=48, seed=0) -> torch.Tensor:
    """Synthetic dermoscopy images as the package's datasets yield them (a fresh copy)."""
    return _lesions(n, size, seed).clone()


def test_lesion_images_match_the_dataset_format(synth_root):
    image, _ = ISIC2017(synth_root, "test", size=32)[0]
    x = lesion_images(size=32)
    assert (x.dtype, x.shape[1:]) == (image.dtype, image.shape)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_severity_zero_is_identity_and_the_output_keeps_the_format(kind):
    x = lesion_images()
    same = corrupt(x, kind, 0, seed=1)
    assert torch.equal(same, x) and same is not x
    for severity in (1, 5):
        y = corrupt(x, kind, severity, seed=1)
        assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device)
        assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("kind", CORRUPTIONS)
@pytest.mark.parametrize("size", [64, 224])  # the profiles' smallest and largest
def test_distortion_grows_with_severity(kind, size):
    x = lesion_images(size=size)
    distortion = [float((corrupt(x, kind, s, seed=3) - x).abs().mean()) for s in range(6)]
    assert distortion[0] == 0.0
    assert np.all(np.diff(distortion) > 0), distortion


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_deterministic_for_a_seed_and_global_rng_untouched(kind):
    x = lesion_images()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = corrupt(x, kind, 3, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a, corrupt(x, kind, 3, seed=5))
    other = corrupt(x, kind, 3, seed=6)
    assert torch.equal(a, other) == (kind != "noise")  # only the noise is random


def test_noise_level_is_the_stated_one():
    x = torch.full((2, 3, 64, 64), 0.5)  # far from the clipping ends for severity 1
    y = corrupt(x, "noise", 1, seed=0)
    assert float((y - x).std()) == pytest.approx(0.08, rel=0.05)


def test_bad_arguments_raise_clear_errors():
    x = lesion_images(n=1)
    with pytest.raises(
        ValueError, match=r"unknown corruption 'fog'.*'blur', 'noise', 'contrast', 'jpeg'"
    ):
        corrupt(x, "fog", 1)
    for severity in (-1, 6, 2.5):
        with pytest.raises(ValueError, match="severity must be an integer from 0"):
            corrupt(x, "blur", severity)
    with pytest.raises(ValueError, match=r"images.float\(\) / 255"):
        corrupt((x * 255).to(torch.uint8), "blur", 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(x * 2, "blur", 1)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        corrupt(x[0], "blur", 1)
