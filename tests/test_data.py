import csv
import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from torchvision import tv_tensors

from segqual_lite.cli import main as cli_main
from segqual_lite.config import seed_everything
from segqual_lite.data import (
    HARD_CASES,
    ISIC2017,
    DataError,
    RandomRot90,
    check_isic2017,
    dihedral_augmentation,
    dihedral_augmentation_batch,
    joint_augmentation,
    make_synthetic_isic,
    read_hard_cases,
    split_folders,
)


def tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


# ---- Synthetic generator ---------------------------------------------------------------
def test_synthetic_layout_matches_isic2017(synth_root):
    image_dir, mask_dir = split_folders(synth_root, "train")
    assert image_dir.name == "ISIC-2017_Training_Data"
    assert mask_dir.name == "ISIC-2017_Training_Part1_GroundTruth"
    assert (image_dir / "ISIC_0000000.jpg").is_file()
    assert (image_dir / "ISIC_0000000_superpixels.png").is_file()
    assert (image_dir / "ISIC-2017_Training_Data_metadata.csv").is_file()
    assert (mask_dir / "ISIC_0000000_segmentation.png").is_file()
    assert split_folders(synth_root, "test")[0].name == "ISIC-2017_Test_v2_Data"
    mask = np.asarray(Image.open(mask_dir / "ISIC_0000000_segmentation.png"))
    assert set(np.unique(mask)) <= {0, 255}
    image = Image.open(image_dir / "ISIC_0000000.jpg")
    assert image.format == "JPEG" and image.size == (43, 32)  # landscape, like ISIC photos


def test_synthetic_is_byte_identical_for_a_seed(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    make_synthetic_isic(a, 3, 1, 2, size=24, seed=5)
    make_synthetic_isic(b, 3, 1, 2, size=24, seed=5)
    make_synthetic_isic(c, 3, 1, 2, size=24, seed=6)
    assert tree_digest(a) == tree_digest(b) != tree_digest(c)


def test_hard_case_shares_are_respected(tmp_path):
    make_synthetic_isic(
        tmp_path / "all", 6, 0, 0, size=24, hard_cases=dict.fromkeys(HARD_CASES, 1.0)
    )
    make_synthetic_isic(
        tmp_path / "none", 6, 0, 0, size=24, hard_cases=dict.fromkeys(HARD_CASES, 0.0)
    )
    for name, expected in (("all", ";".join(sorted(HARD_CASES))), ("none", "")):
        with open(tmp_path / name / "SYNTHETIC_CASES.csv") as f:
            assert {row["hard_cases"] for row in csv.DictReader(f)} == {expected}
    with pytest.raises(ValueError, match="unknown hard case"):
        make_synthetic_isic(tmp_path / "x", 1, 0, 0, hard_cases={"blurry": 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_synthetic_isic(tmp_path / "x", 1, 0, 0, hard_cases={"low_contrast": 2.0})


def test_the_ambiguous_rim_leaves_other_images_alone_and_is_drawn_half_the_time(tmp_path):
    make_synthetic_isic(tmp_path / "plain", 40, 0, 0, size=32, hard_cases={"ambiguous_rim": 0.0})
    make_synthetic_isic(tmp_path / "rim", 40, 0, 0, size=32, hard_cases={"ambiguous_rim": 0.5})
    cases = read_hard_cases(tmp_path / "rim")
    with_rim = {i for i, c in cases.items() if "ambiguous_rim" in c}
    assert 8 <= len(with_rim) <= 32
    plain_dir, rim_dir = (tmp_path / n / "ISIC-2017_Training_Data" for n in ("plain", "rim"))
    grown = 0
    for iid in cases:
        same = (plain_dir / f"{iid}.jpg").read_bytes() == (rim_dir / f"{iid}.jpg").read_bytes()
        assert same == (iid not in with_rim), iid  # only the rim images change
        if iid in with_rim:
            gt = "ISIC-2017_Training_Part1_GroundTruth"
            a = np.asarray(Image.open(tmp_path / "plain" / gt / f"{iid}_segmentation.png")) > 0
            b = np.asarray(Image.open(tmp_path / "rim" / gt / f"{iid}_segmentation.png")) > 0
            assert (a <= b).all()  # the rim only ever adds to the lesion
            grown += int(b.sum() > a.sum())
    assert 0 < grown < len(with_rim)  # some annotators drew the rim, some did not


def test_multi_blob_lesions_are_separate(tmp_path):
    # Only multi-blob lesions (no rim or lazy polygon that would join them in the mask).
    only = {"multi_blob": 1.0, "ambiguous_rim": 0.0, "lazy_mask": 0.0}
    for name in ("low_contrast", "border_cut"):
        only[name] = 0.0
    make_synthetic_isic(tmp_path, 24, 0, 0, size=64, hard_cases=only)
    gt = tmp_path / "ISIC-2017_Training_Part1_GroundTruth"
    components = [ndimage.label(np.asarray(Image.open(p)) > 0)[1] for p in sorted(gt.glob("*.png"))]
    assert len(components) == 24 and min(components) >= 2, components


def test_prepare_data_makes_the_counterfactual_data_beside_the_default(tmp_path, monkeypatch):
    from segqual_lite.config import get_profile
    from segqual_lite.data import prepare_data

    monkeypatch.setenv("SEGQUAL_HOME", str(tmp_path))
    small = get_profile("tiny").with_(n_train=20, n_val=2, n_test=2, image_size=24)
    default = prepare_data(small)
    no_rim = prepare_data(small, hard_cases={"ambiguous_rim": 0.0})
    assert default != no_rim and prepare_data(small) == default  # made once, reused
    assert not any("ambiguous_rim" in c for c in read_hard_cases(no_rim).values())
    assert any("ambiguous_rim" in c for c in read_hard_cases(default).values())
    with pytest.raises(ValueError, match=r"unknown hard case\(s\) \['rims'\]: choose from"):
        prepare_data(small, hard_cases={"rims": 0.0})
    with pytest.raises(ValueError, match="only applies to synthetic data, not 'isic2017'"):
        prepare_data(get_profile("colab"), tmp_path / "isic", hard_cases={"ambiguous_rim": 0.0})


def test_lesions_are_darker_than_skin(synth_root):
    ds = ISIC2017(synth_root, "train", 32)
    lum = ds.images.float().mean(1)
    inside = (lum * ds.masks).sum((1, 2)) / ds.masks.sum((1, 2)).clamp(min=1)
    outside = (lum * (1 - ds.masks)).sum((1, 2)) / (1 - ds.masks).sum((1, 2))
    assert (inside < outside).float().mean() > 0.8
    assert (ds.masks.float().mean((1, 2)) > 0.01).all()  # every image has a lesion


# ---- Reader and check ------------------------------------------------------------------
def test_check_counts(synth_root):
    assert check_isic2017(synth_root) == {"train": 12, "val": 4, "test": 6}


def test_dataset_items(synth_root):
    ds = ISIC2017(synth_root, "val", 16)
    assert len(ds) == 4 and ds.ids == sorted(ds.ids)
    image, mask = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, 16, 16)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert mask.dtype == torch.int64 and mask.shape == (16, 16)
    assert set(mask.unique().tolist()) <= {0, 1}
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (4, 3, 16, 16)


def test_mask_suffix_is_matched_case_insensitively(fresh_root):
    _, mask_dir = split_folders(fresh_root, "val")
    for p in mask_dir.glob("*_segmentation.png"):
        p.rename(p.with_name(p.name.replace("_segmentation.png", "_Segmentation.PNG")))
    assert check_isic2017(fresh_root)["val"] == 2


def damage_corrupt_jpeg(root):
    path = split_folders(root, "train")[0] / "ISIC_0000001.jpg"
    path.write_bytes(path.read_bytes()[:200])
    return path


def damage_missing_mask(root):
    path = split_folders(root, "test")[1] / "ISIC_0200002_segmentation.png"
    path.unlink()
    return path


def damage_size_mismatch(root):
    path = split_folders(root, "val")[1] / "ISIC_0100000_segmentation.png"
    Image.new("L", (7, 5)).save(path)
    return path


def damage_missing_split(root):
    folder = split_folders(root, "val")[0]
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    return folder


@pytest.mark.parametrize(
    "damage", [damage_corrupt_jpeg, damage_missing_mask, damage_size_mismatch, damage_missing_split]
)
def test_data_faults_name_the_file(fresh_root, damage, capsys):
    path = damage(fresh_root)
    with pytest.raises(DataError) as err:
        check_isic2017(fresh_root)
    assert str(path) in str(err.value)
    assert "Fix:" in str(err.value)
    assert cli_main(["data", "check", str(fresh_root)]) == 2
    captured = capsys.readouterr()
    assert str(path) in captured.err and "Traceback" not in captured.err


def test_all_faults_reported_at_once(fresh_root):
    paths = [damage_corrupt_jpeg(fresh_root), damage_missing_mask(fresh_root)]
    with pytest.raises(DataError) as err:
        check_isic2017(fresh_root)
    assert len(err.value.problems) == 2
    assert all(str(p) in str(err.value) for p in paths)


def test_dataset_raises_data_error(fresh_root):
    damage_missing_mask(fresh_root)
    with pytest.raises(DataError, match="missing mask"):
        ISIC2017(fresh_root, "test", 16)
    with pytest.raises(DataError, match="does not exist"):
        check_isic2017(fresh_root / "nowhere")


def test_cli_synth_then_check(tmp_path, capsys):
    out = tmp_path / "d"
    argv = ["data", "synth", "--out", str(out), "--n-train", "2", "--n-val", "1", "--n-test", "1"]
    assert cli_main(argv + ["--size", "20"]) == 0
    assert cli_main(["data", "check", str(out)]) == 0
    assert "train=2 val=1 test=1" in capsys.readouterr().out


# ---- Joint augmentation ------------------------------------------------------------------
def test_rot90_is_exact_and_covers_all_turns():
    x = torch.arange(16.0).reshape(1, 4, 4)
    seen = set()
    seed_everything(0)
    for _ in range(40):
        y = RandomRot90()(x)
        k = next(k for k in range(4) if torch.equal(y, torch.rot90(x, k, (-2, -1))))
        seen.add(k)
    assert seen == {0, 1, 2, 3}


def test_joint_augmentation_moves_image_and_mask_together():
    seed_everything(1)
    mask = torch.zeros(8, 8, dtype=torch.uint8)
    mask[1:3, 2:7] = 1  # asymmetric, so every flip/rotation is visible
    image = torch.stack([mask * 200, mask * 100, torch.full_like(mask, 7)])
    augment = joint_augmentation()
    outcomes = set()
    for _ in range(120):
        img2, mask2 = augment(image, mask)
        assert type(img2) is torch.Tensor and type(mask2) is torch.Tensor
        assert torch.equal(img2[0], mask2 * 200)
        outcomes.add(mask2.numpy().tobytes())
    assert len(outcomes) == 8  # the dihedral group of the square


def test_batched_augmentation_equals_the_v2_pipeline_sample_by_sample():
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (60, 3, 8, 8), dtype=torch.uint8, generator=g)
    masks = torch.randint(0, 2, (60, 8, 8), dtype=torch.uint8, generator=g)
    stacked = torch.rand(60, 5, 8, 8, generator=g)  # g's inputs: x, y_hat, z
    augment, augment_g = joint_augmentation(), dihedral_augmentation()
    seed_everything(3)
    pairs = [augment(i, m) for i, m in zip(images, masks, strict=True)]
    inputs = [augment_g(tv_tensors.Image(x)).as_subclass(torch.Tensor) for x in stacked]
    after_items = torch.get_rng_state()
    seed_everything(3)
    batch_images, batch_masks = dihedral_augmentation_batch(images, masks)
    (batch_inputs,) = dihedral_augmentation_batch(stacked)
    assert torch.equal(batch_images, torch.stack([p[0] for p in pairs]))
    assert torch.equal(batch_masks, torch.stack([p[1] for p in pairs]))
    assert torch.equal(batch_inputs, torch.stack(inputs))
    assert torch.equal(torch.get_rng_state(), after_items)  # the same draws, no more
    moved = {dihedral_augmentation_batch(images[:1])[0].numpy().tobytes() for _ in range(80)}
    assert len(moved) == 8  # the dihedral group of the square, not the identity
    with pytest.raises(ValueError, match="square"):
        dihedral_augmentation_batch(torch.zeros(2, 3, 8, 6))


@pytest.mark.parametrize("augment", [False, True])
def test_a_list_of_indices_gives_the_stacked_items(synth_root, augment):
    ds = ISIC2017(synth_root, "train", 16, augment=augment)
    index = [5, 0, 7, 7, 2]
    seed_everything(6)
    items = [ds[i] for i in index]
    seed_everything(6)
    images, masks = ds[index]
    assert images.dtype == torch.float32 and masks.dtype == torch.int64
    assert torch.equal(images, torch.stack([x for x, _ in items]))
    assert torch.equal(masks, torch.stack([y for _, y in items]))


def test_augmented_dataset_is_repeatable(synth_root):
    ds = ISIC2017(synth_root, "train", 16, augment=True)
    seed_everything(4)
    a = [ds[i] for i in range(6)]
    seed_everything(4)
    b = [ds[i] for i in range(6)]
    assert all(
        torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True)
    )


def test_a_split_is_decoded_once_and_then_read_from_the_store(synth_root, monkeypatch):
    from segqual_lite.data import isic

    first = ISIC2017(synth_root, "val", 16)
    path = isic.decoded_path(synth_root, "val", 16)
    assert path.exists() and path.is_relative_to(isic.home())

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(isic, "_read_pair", no_decoding)
    again = ISIC2017(synth_root, "val", 16)
    assert again.ids == first.ids
    assert torch.equal(again.images, first.images) and torch.equal(again.masks, first.masks)


def test_torchvision_and_sklearn_are_imported_when_needed():
    """The chapters on f (02-06) import the package without torchvision or
    scikit-learn, and the results chapters without torchvision (each costs about 1 s of
    every kernel start); the v2 pipeline still comes from ``segqual_lite.data`` when
    asked for, and a ranking metric imports scikit-learn."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import segqual_lite.segment, segqual_lite.uncertainty, segqual_lite.viz\n"
        "from segqual_lite.data import DIHEDRAL, ISIC2017, corrupt, prepare_data\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported at start'\n"
        "from segqual_lite.metrics import auroc\n"
        "assert auroc([0.5, 0.9], [0.4, 0.8]) == 1.0 and 'sklearn' in sys.modules\n"
        "import segqual_lite.experiment, segqual_lite.explorer\n"
        "assert 'torchvision' not in sys.modules, 'torchvision imported at start'\n"
        "from segqual_lite.data import joint_augmentation\n"
        "assert 'torchvision' in sys.modules\n"
        "import segqual_lite.data as data\n"
        "try:\n"
        "    data.no_such_name\n"
        "except AttributeError as e:\n"
        "    assert 'no_such_name' in str(e)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
