import numpy as np
import pytest
import torch

from segqual_lite.config import PROFILES, get_profile, pick_device, seed_everything


def test_profiles_exist_and_paper_values():
    assert set(PROFILES) == {"tiny", "tiny-overfit", "ph2", "colab", "paper"}
    paper = get_profile("paper")
    # DeVries & Taylor (2018), section 4.
    assert (paper.image_size, paper.epochs_f, paper.epochs_g) == (224, 120, 30)
    assert (paper.batch_size, paper.lr, len(paper.seeds)) == (16, 1e-3, 5)
    assert (paper.mc_samples, paper.hcnn_samples) == (20, 100)
    assert (paper.n_train, paper.n_val, paper.n_test) == (2000, 150, 600)
    assert paper.data == "isic2017"


def test_tiny_is_cheaper_than_paper():
    tiny, paper = get_profile("tiny"), get_profile("paper")
    assert tiny.data == "synthetic"
    assert tiny.image_size < paper.image_size and tiny.unet_width < paper.unet_width
    assert tiny.epochs_f < paper.epochs_f and len(tiny.seeds) < len(paper.seeds)


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="'tiny'"):
        get_profile("huge")


def test_with_changes_one_field_and_key_changes():
    tiny = get_profile("tiny")
    small = tiny.with_(epochs_f=1)
    assert small.epochs_f == 1 and tiny.epochs_f != 1
    assert small.key() != tiny.key()


def test_pick_device(monkeypatch):
    monkeypatch.delenv("SEGQUAL_DEVICE", raising=False)
    device = pick_device()
    assert device.type in {"cuda", "mps", "cpu"}
    if not torch.cuda.is_available():
        assert device.type != "cuda"
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("SEGQUAL_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_seed_everything_repeats():
    seed_everything(7)
    a = (torch.rand(3), np.random.rand(3))  # noqa: NPY002
    seed_everything(7)
    b = (torch.rand(3), np.random.rand(3))  # noqa: NPY002
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        seed_everything(-1)


@pytest.mark.parametrize("page", ["README.md", "book/reproduce.md", "book/intro.md"])
def test_profile_tables_in_the_docs_match_the_profiles(page):
    """The docs' profile tables quote epochs and sizes; they must follow the code."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / page).read_text()
    for name, p in PROFILES.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}`"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert f"{p.epochs_f} / {p.epochs_g}" in cells, (page, name, row)
        assert str(p.image_size) in cells and str(p.unet_width) in cells, (page, name, row)
        assert str(len(p.seeds)) in cells, (page, name, row)


def test_the_thread_count_is_fixed_and_checked(monkeypatch):
    import torch as t

    from segqual_lite.config import fix_threads, torch_threads

    before = t.get_num_threads()
    monkeypatch.setenv("SEGQUAL_THREADS", "2")
    assert fix_threads() == 2 == t.get_num_threads()
    monkeypatch.setenv("SEGQUAL_THREADS", "two")
    with pytest.raises(ValueError, match="SEGQUAL_THREADS must be a positive integer, got 'two'"):
        torch_threads()
    monkeypatch.delenv("SEGQUAL_THREADS")
    assert torch_threads() == 1
    t.set_num_threads(before)


def test_profile_fields_are_changed_by_name_and_type_or_refused_with_the_list():
    from segqual_lite.config import overridden_name, parse_overrides, start_chapter

    tiny = get_profile("tiny")
    with pytest.raises(ValueError, match=r"unknown field 'epochs'.*fields of a profile: name: str"):
        tiny.with_(epochs=1)
    with pytest.raises(ValueError, match=r"epochs_f='1' is not int"):
        tiny.with_(epochs_f="1")
    with pytest.raises(ValueError, match=r"seeds=\[0\] is not tuple\[int, \.\.\.\]"):
        tiny.with_(seeds=[0])
    changes = parse_overrides(["epochs_f=1", "seeds=0,1", "lr=3e-4"])
    assert changes == {"epochs_f": 1, "seeds": (0, 1), "lr": 3e-4}
    assert overridden_name(tiny, changes) == "tiny+epochs_f=1,lr=0.0003,seeds=0-1"
    with pytest.raises(
        ValueError, match=r"'epochs_f=x': 'x' is not int. The fields of a profile: name: str"
    ):
        parse_overrides(["epochs_f=x"])
    with pytest.raises(ValueError, match=r"'batch=4' is not FIELD=VALUE with a field of"):
        parse_overrides(["batch=4"])
    P, _, seed = start_chapter("tiny", {"seeds": [3], "epochs_f": 2})  # as papermill gives it
    assert (P.name, P.seeds, P.epochs_f, seed) == ("tiny+epochs_f=2,seeds=3", (3,), 2, 3)


def test_reproduce_refuses_an_unknown_field(capsys):
    from segqual_lite.cli import main

    assert main(["reproduce", "--profile", "tiny", "--set", "epochs=1"]) != 0
    assert "is not FIELD=VALUE with a field of" in capsys.readouterr().err


def test_every_chapter_names_the_data_its_numbers_come_from():
    import torch

    from segqual_lite.config import data_name, describe

    assert data_name(get_profile("tiny")) == "synthetic lesions"
    assert data_name(get_profile("ph2")) == "PH2, real dermoscopy"
    assert data_name(get_profile("colab")) == "ISIC 2017, real dermoscopy"
    assert data_name(get_profile("tiny").with_(data="/some/folder")) == "your own folder"
    line = describe(get_profile("ph2"), torch.device("cpu")).splitlines()[0]
    assert line == "profile=ph2 (PH2, real dermoscopy, 64 px, U-Net width 8)"
