import numpy as np
import pytest
import torch

from segqual_lite import training
from segqual_lite.config import get_profile
from segqual_lite.data import ISIC2017
from segqual_lite.training import crossfit_folds, fit_segmentation, training_key
from segqual_lite.uncertainty import predict_images

PROFILE = get_profile("tiny").with_(
    image_size=32, unet_width=4, unet_depth=3, epochs_f=3, batch_size=4, hcnn_train_samples=3
)
CPU = torch.device("cpu")


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_gives_the_same_weights(synth_root, tmp_path, monkeypatch):
    for method in ("max_prob", "lce"):  # lce also carries lambda across the interruption
        monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / f"straight-{method}"))
        straight = fit_segmentation(PROFILE, method, 0, synth_root, CPU, progress=False)
        monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / f"resumed-{method}"))
        part = fit_segmentation(PROFILE, method, 0, synth_root, CPU, False, stop_after_epoch=1)
        assert not part.finished and len(part.history) == 1
        assert (part.path / "checkpoint.pt").exists()
        resumed = fit_segmentation(PROFILE, method, 0, synth_root, CPU, progress=False)
        assert resumed.finished and not (resumed.path / "checkpoint.pt").exists()
        assert same(weights(straight.model), weights(resumed.model))
        assert straight.history == resumed.history


def test_history_and_cache_reuse(synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path))
    first = fit_segmentation(PROFILE, "lce", 1, synth_root, CPU, progress=False)
    assert [h["epoch"] for h in first.history] == [1, 2, 3]
    assert all(0 <= h["val_jaccard"] <= 1 and "lambda" in h for h in first.history)
    mtime = (first.path / "final.pt").stat().st_mtime_ns
    again = fit_segmentation(PROFILE, "lce", 1, synth_root, CPU, progress=False)
    assert (first.path / "final.pt").stat().st_mtime_ns == mtime  # loaded, not retrained
    assert same(weights(first.model), weights(again.model))
    # max_prob and mc_dropout share one plain U-Net.
    a = fit_segmentation(PROFILE, "max_prob", 1, synth_root, CPU, progress=False)
    b = fit_segmentation(PROFILE, "mc_dropout", 1, synth_root, CPU, progress=False)
    assert a.path == b.path


def test_key_changes_with_what_produced_the_model(synth_root):
    base = training_key(PROFILE, "hcnn", 0, synth_root)
    assert training_key(PROFILE.with_(epochs_f=4), "hcnn", 0, synth_root) != base
    assert training_key(PROFILE.with_(hcnn_train_samples=5), "hcnn", 0, synth_root) != base
    assert training_key(PROFILE, "hcnn", 1, synth_root) != base
    assert training_key(PROFILE, "lce", 0, synth_root) != base
    # Settings that do not affect f leave the key alone.
    assert training_key(PROFILE.with_(epochs_g=99), "hcnn", 0, synth_root) == base
    # Methods that read the same U-Net share its key; the key names the code version.
    assert training_key(PROFILE, "tta", 0, synth_root) == training_key(
        PROFILE, "max_prob", 0, synth_root
    )
    assert base["kind"] == "f" and base["unet"] == "hcnn"


def test_predict_images_batches_like_one_call(synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path))
    model = fit_segmentation(PROFILE.with_(epochs_f=1), "hcnn", 0, synth_root, CPU, False).model
    test = ISIC2017(synth_root, "test", 32)
    whole = predict_images(model, test.images, "max_prob", batch_size=64)
    pieces = predict_images(model, test.images, "max_prob", batch_size=4)
    torch.testing.assert_close(whole.probs, pieces.probs)
    assert whole.mask.shape == (6, 32, 32)
    hcnn = predict_images(model, test.images, "hcnn", samples=4, batch_size=4)
    assert hcnn.extras["entropy"].shape == (6, 32, 32)


# ---- The faster loop trains the same networks as the previous one -------------------------
def previous_loader(dataset, batch_size, generator, pin_memory):
    """The loop's data path until issue 15: one __getitem__ per image, then collate."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=generator, pin_memory=pin_memory
    )


def previous_adam(params, lr):
    """The optimiser until issue 15: PyTorch's default, a per-parameter loop on the CPU."""
    return torch.optim.Adam(params, lr=lr)


@pytest.mark.parametrize(
    ("previous", "method", "fold"),
    [
        ("loader", "max_prob", None),
        ("loader", "hcnn", None),
        ("loader", "lce", None),
        ("loader", "max_prob", (0, 2)),  # cross-fitting: a Subset of the training images
        ("adam", "lce", None),
    ],
)
def test_f_trains_to_the_same_weights_as_with_the_previous_loop(
    synth_root, tmp_path, monkeypatch, previous, method, fold
):
    # Dropout, HCNN's noise and LCE's hints draw from the generator that the augmentation
    # draws from: any change in the order of draws would change the weights.
    profile = PROFILE.with_(epochs_f=2)
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "now"))
    now = fit_segmentation(profile, method, 0, synth_root, CPU, False, fold=fold)
    if previous == "loader":
        monkeypatch.setattr(training, "_shuffled_batches", previous_loader)
    else:
        monkeypatch.setattr(training, "_adam", previous_adam)
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / "before"))
    before = fit_segmentation(profile, method, 0, synth_root, CPU, False, fold=fold)
    assert same(weights(now.model), weights(before.model))
    assert now.history == before.history


def test_bfloat16_training_on_a_cpu_is_a_profile_knob(synth_root, tmp_path, monkeypatch):
    """f's mixed precision on a CPU: the same seed gives the same weights, float32 other
    weights; each precision has its own cache key (g's follows from f's), and float32's
    keys are unchanged."""
    from segqual_lite.quality import quality_key

    fp32 = PROFILE.with_(cpu_precision="float32", epochs_f=1)
    bf16 = PROFILE.with_(cpu_precision="bfloat16", epochs_f=1)
    runs = {}
    for name, profile in (("fp32", fp32), ("bf16", bf16), ("bf16-again", bf16)):
        monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path / name))
        runs[name] = weights(fit_segmentation(profile, "hcnn", 0, synth_root, CPU, False).model)
    assert same(runs["bf16"], runs["bf16-again"])
    assert not same(runs["bf16"], runs["fp32"])
    assert all(v.dtype != torch.bfloat16 for v in runs["bf16"].values())  # float32 weights
    assert all(torch.isfinite(v).all() for v in runs["bf16"].values() if v.is_floating_point())
    key32, key16 = (training_key(p, "hcnn", 0, synth_root) for p in (fp32, bf16))
    assert "cpu_precision" not in key32 and key16["cpu_precision"] == "bfloat16"
    g32, g16 = (quality_key(p, "max_prob", 0, synth_root, "train") for p in (fp32, bf16))
    assert g32 != g16 and g16["source"]["f"]["cpu_precision"] == "bfloat16"
    with pytest.raises(ValueError, match="cpu_precision='float16'.*bfloat16"):
        PROFILE.with_(cpu_precision="float16")


# ---- Cross-fitting folds (chapter 11) ------------------------------------------------------
def test_crossfit_folds_partition_the_images():
    fold = crossfit_folds(11, 3, seed=5)
    assert sorted(np.bincount(fold)) == [3, 4, 4]  # balanced, every image in one fold
    assert np.array_equal(fold, crossfit_folds(11, 3, seed=5))
    assert not np.array_equal(fold, crossfit_folds(11, 3, seed=6))
    with pytest.raises(ValueError, match="folds"):
        crossfit_folds(5, 1, 0)
