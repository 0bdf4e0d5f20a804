import math

import numpy as np
import pytest
import torch

from segqual_lite import training
from segqual_lite.config import seed_everything
from segqual_lite.models import QualityCNN
from segqual_lite.quality import ROWS, QualityDataset, map_scale, quality_loss
from segqual_lite.rows import in_channels
from segqual_lite.segment import SegmentationSet


def toy_set(n=3, size=16):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    masks[:, 4:12, 4:12] = 1
    maps = torch.rand(n, size, size, generator=g)
    return SegmentationSet(
        [f"ISIC_{i:07d}" for i in range(n)], images, masks, masks, maps, np.ones(n)
    )


# ---- g's inputs -----------------------------------------------------------------------
@pytest.mark.parametrize("row", ROWS)
def test_quality_inputs_per_row(row):
    seg = toy_set()
    ds = QualityDataset(row, seg, scale=0.5)
    x, target = ds[1]
    assert x.shape == (in_channels(row), 16, 16) and x.dtype == torch.float32
    image = seg.images[1].float() / 255
    if row == "qualitynet":
        torch.testing.assert_close(x, image * seg.masks[1].float())
    else:
        torch.testing.assert_close(x[:3], image)
        torch.testing.assert_close(x[3], seg.masks[1].float())
    if in_channels(row) == 5:
        torch.testing.assert_close(x[4], (seg.maps[1] / 0.5).clamp(0, 1))
        assert 0 <= x[4].min() and x[4].max() <= 1
    assert target == 1.0
    g = QualityCNN(in_channels(row), widths=(4, 8))
    out = g(ds.inputs(slice(0, 3)))
    assert out.shape == (3,) and ((out > 0) & (out < 1)).all()


def test_map_scale_bounded_maps_by_their_maximum_sigma_by_its_percentile():
    maps = torch.linspace(0, 10, 10_000).reshape(1, 100, 100)
    assert map_scale("max_prob", maps) == 0.5
    assert map_scale("mc_dropout", maps) == math.log(2) == map_scale("tta", maps)
    assert map_scale("lce", maps) == 1.0
    assert map_scale("hcnn", maps) == pytest.approx(9.9, abs=1e-3)  # 99th percentile


def test_augmented_inputs_keep_channels_aligned():
    seg = toy_set(n=1)
    seg.maps[0] = seg.masks[0].float() * 0.25  # map equal to a scaled mask
    ds = QualityDataset("max_prob", seg, scale=0.5, augment=True)
    torch.manual_seed(0)
    for _ in range(10):
        x, _ = ds[0]
        torch.testing.assert_close(x[4], x[3] * 0.5)


@pytest.mark.parametrize("row", ["qualitynet", "no_uncertainty", "max_prob"])
def test_a_list_of_indices_gives_the_stacked_items(row):
    ds = QualityDataset(row, toy_set(n=6), scale=0.5, augment=True)
    index = [4, 1, 1, 5]
    seed_everything(2)
    items = [ds[i] for i in index]
    seed_everything(2)
    x, target = ds[index]
    assert torch.equal(x, torch.stack([x for x, _ in items]))
    assert torch.equal(target, torch.stack([t for _, t in items]))


# ---- Training g: the faster loop trains the same network as the previous one ----------------
def previous_loader(dataset, batch_size, generator, pin_memory):
    """The loop's data path until issue 15: one __getitem__ per image, then collate."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=generator, pin_memory=pin_memory
    )


def previous_adam(params, lr):
    """The optimiser until issue 15: PyTorch's default, a per-parameter loop on the CPU."""
    return torch.optim.Adam(params, lr=lr)


def fit_g(folder, dataset):
    return training.fit_checkpointed(
        folder,
        {},
        make_model=lambda: QualityCNN(5, widths=(4, 8)),
        dataset=dataset,
        loss_fn=quality_loss,
        epochs=2,
        seed=1,
        lr=1e-3,
        batch_size=4,
        device=torch.device("cpu"),
        progress=False,
        desc="g[test]",
    )


@pytest.mark.parametrize("previous", ["loader", "adam"])
def test_g_trains_to_the_same_weights_as_with_the_previous_loop(tmp_path, monkeypatch, previous):
    seg = toy_set(n=10)
    seg.jaccard = np.linspace(0.2, 0.9, 10)
    ds = QualityDataset("max_prob", seg, scale=0.5, augment=True)
    now = fit_g(tmp_path / "now", ds)
    if previous == "loader":
        monkeypatch.setattr(training, "_shuffled_batches", previous_loader)
    else:
        monkeypatch.setattr(training, "_adam", previous_adam)
    before = fit_g(tmp_path / "before", ds)
    a, b = now.model.state_dict(), before.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert now.history == before.history
