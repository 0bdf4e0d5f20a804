import math

import numpy as np
import pytest
import torch

from segqual_lite import quality, training
from segqual_lite.config import get_profile, seed_everything
from segqual_lite.models import QualityCNN
from segqual_lite.quality import ROWS, QualityDataset, map_scale, quality_loss
from segqual_lite.rows import in_channels
from segqual_lite.segment import SegmentationSet, segment_split

CPU = torch.device("cpu")
SMALL = get_profile("tiny").with_(
    image_size=32,
    unet_width=4,
    unet_depth=3,
    quality_widths=(4, 8),
    epochs_f=1,
    epochs_g=1,
    batch_size=4,
    seeds=(0,),
)


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


# ---- g's predictions, cached -------------------------------------------------------------
def test_predicted_quality_loads_exactly_what_g_computed_and_only_for_its_key(
    synth_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path))
    first = quality.predicted_quality(SMALL, "max_prob", 0, synth_root, device=CPU, progress=False)
    seg = segment_split(SMALL, "max_prob", 0, synth_root, "test", CPU, False)
    g, scale = quality.fit_quality(SMALL, "max_prob", 0, synth_root, device=CPU, progress=False)
    computed = quality.predict_quality(g.model, "max_prob", seg, scale)
    assert first.dtype == np.float64 and first.shape == (6,)
    assert first.tobytes() == computed.tobytes()  # bit for bit
    assert quality.predicted_path(SMALL, "max_prob", 0, synth_root).is_file()

    # A second call loads the array: g is neither loaded nor run.
    real_fit, real_predict = quality.fit_quality, quality.predict_quality
    monkeypatch.setattr(quality, "fit_quality", None)
    monkeypatch.setattr(quality, "predict_quality", None)
    again = quality.predicted_quality(SMALL, "max_prob", 0, synth_root, device=CPU, progress=False)
    assert again.tobytes() == first.tobytes()

    # Another split is not served from the test split's file: g runs on it.
    calls = []

    def spy(model, row, seg, *args):
        calls.append(len(seg.ids))
        return real_predict(model, row, seg, *args)

    monkeypatch.setattr(quality, "fit_quality", real_fit)
    monkeypatch.setattr(quality, "predict_quality", spy)
    val = quality.predicted_quality(SMALL, "max_prob", 0, synth_root, "val", device=CPU)
    assert calls == [4] and val.shape == (4,)

    # Everything that determines the predictions is in the key.
    def path(profile=SMALL, row="max_prob", seed=0, split="test", **kwargs):
        return quality.predicted_path(profile, row, seed, synth_root, split, **kwargs)

    paths = [
        path(),
        path(seed=1),
        path(split="val"),
        path(row="no_uncertainty"),
        path(train_split="val"),
        path(batch_size=32),
        path(SMALL.with_(epochs_g=2)),  # another g
        path(SMALL.with_(epochs_f=2)),  # other masks and maps
        path(SMALL.with_(mc_samples=3), row="mc_dropout"),
        path(SMALL.with_(mc_samples=4), row="mc_dropout"),
    ]
    assert len(set(paths)) == len(paths)
