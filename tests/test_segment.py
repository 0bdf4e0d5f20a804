import shutil

import pytest
import torch

import segqual_lite.segment as segment
import segqual_lite.training as training
from segqual_lite.config import get_profile, home
from segqual_lite.data import ISIC2017

PROFILE = get_profile("tiny").with_(
    image_size=32, unet_width=4, unet_depth=3, epochs_f=1, batch_size=4, hcnn_train_samples=3
)
CPU = torch.device("cpu")


def test_no_training_image_is_predicted_by_a_model_that_saw_it(synth_root, tmp_path, monkeypatch):
    """Spy on what every fold model trains on and what it is asked to segment."""
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path))
    profile = PROFILE.with_(crossfit_folds=3)
    train = ISIC2017(synth_root, "train", 32)
    id_of = {train.images[i].numpy().tobytes(): train.ids[i] for i in range(len(train))}
    trained_on, model_of, predicted_by = {}, {}, {}

    real_fit, real_fit_seg, real_predict = (
        training.fit_checkpointed,
        segment.fit_segmentation,
        segment.predict_images,
    )

    def spy_fit(folder, key, make_model, dataset, *args, **kwargs):
        ids = [dataset.dataset.ids[i] for i in dataset.indices]  # a Subset of the split
        trained_on[folder.name] = set(ids)
        return real_fit(folder, key, make_model, dataset, *args, **kwargs)

    def spy_fit_seg(*args, **kwargs):
        result = real_fit_seg(*args, **kwargs)
        model_of[id(result.model)] = result.path.name
        return result

    def spy_predict(model, images, *args, **kwargs):
        ids = [id_of[img.numpy().tobytes()] for img in images]
        predicted_by.setdefault(model_of[id(model)], []).extend(ids)
        return real_predict(model, images, *args, **kwargs)

    monkeypatch.setattr(training, "fit_checkpointed", spy_fit)
    monkeypatch.setattr(segment, "fit_segmentation", spy_fit_seg)
    monkeypatch.setattr(segment, "predict_images", spy_predict)
    seg = segment.segment_split(profile, "mc_dropout", 0, synth_root, "train", CPU, False, True)

    assert len(trained_on) == 3 and set(predicted_by) == set(trained_on)
    everyone = [i for ids in predicted_by.values() for i in ids]
    assert sorted(everyone) == sorted(train.ids)  # every image predicted exactly once
    for name, ids in predicted_by.items():
        assert not set(ids) & trained_on[name], f"{name} segmented an image it trained on"
        assert set(ids) | trained_on[name] == set(train.ids)
    assert seg.masks.shape == (len(train), 32, 32) and seg.maps.shape == (len(train), 32, 32)
    with pytest.raises(ValueError, match="training split"):
        segment.segment_split(profile, "max_prob", 0, synth_root, "test", CPU, False, True)


def test_sampled_maps_do_not_depend_on_whether_f_was_trained_or_loaded(
    synth_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path))
    profile = PROFILE.with_(mc_samples=3)
    trained = segment.segment_split(profile, "mc_dropout", 0, synth_root, "test", CPU, False)
    for folder in (home() / "models" / profile.name).glob("segmentation-*"):
        shutil.rmtree(folder)  # keep the U-Net, forget its maps
    loaded = segment.segment_split(profile, "mc_dropout", 0, synth_root, "test", CPU, False)
    assert torch.equal(trained.maps, loaded.maps) and torch.equal(trained.masks, loaded.masks)


def test_segment_split_caches_masks_maps_and_extras(synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path))
    profile = PROFILE.with_(hcnn_samples=4)
    first = segment.segment_split(profile, "hcnn", 0, synth_root, "test", CPU, False)
    assert first.extras["entropy"].shape == first.maps.shape == (6, 32, 32)
    assert first.masks.dtype == torch.uint8 and len(first.jaccard) == 6
    (cached,) = (home() / "models" / profile.name).glob("segmentation-hcnn-seed0-test-*")
    monkeypatch.setattr(segment, "fit_segmentation", None)  # a second call must not train
    again = segment.segment_split(profile, "hcnn", 0, synth_root, "test", CPU, False)
    assert torch.equal(first.maps, again.maps)
    assert torch.equal(first.extras["entropy"], again.extras["entropy"])
    with pytest.raises(ValueError, match="unknown split"):
        segment.segment_split(profile, "hcnn", 0, synth_root, "tset", CPU, False)
    with pytest.raises(ValueError, match="unknown method"):
        segment.segment_split(profile, "mc-dropout", 0, synth_root, "test", CPU, False)
