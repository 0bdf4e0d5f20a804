"""Dress rehearsal of the real-data path, end to end through the command line.

Fake ISIC 2017 zips with the official names and inside layout (images, superpixel
files, the metadata CSV, ground-truth folders; one photograph at ISIC's largest size,
6748 x 4499, one at its smallest, 722 x 540) are served on 127.0.0.1 through the mirror
setting. ``data download`` is killed halfway through the first zip and resumes; a zip
with a damaged member is refused with the names of both; then ``data check``,
``reproduce --beyond`` on the ``colab`` profile shrunk by ``--set`` (one epoch, a few
images, two seeds; one run per seed) and ``merge``; and papermill runs chapters 01 and
10 on the same shrunk profile through their parameters cell. The wall time of each
step is printed (``pytest -s``).
"""

import io
import signal
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from helpers import RangeHandler, serve
from PIL import Image

from segqual_lite.cli import main
from segqual_lite.data import ISIC2017_ZIPS, MIRROR_ENV, make_synthetic_isic
from segqual_lite.data.layout import SPLIT_PREFIX
from segqual_lite.tables import read_predictions

REPO = Path(__file__).resolve().parents[1]
COUNTS = {"train": 8, "val": 2, "test": 6}
# The colab profile shrunk for CI, as the command line and a parameters cell take it.
OVERRIDES = {
    "epochs_f": 1,
    "epochs_g": 1,
    "n_train": COUNTS["train"],
    "n_val": COUNTS["val"],
    "n_test": COUNTS["test"],
    "seeds": [0, 1],
    "rca_references": 4,
    "crossfit_folds": 2,
}
SET = [
    arg
    for k, v in OVERRIDES.items()
    for arg in ("--set", f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}")
]
# ISIC 2017's largest and smallest photographs (width x height), one image each.
REALISTIC = {("train", 0): (6748, 4499), ("test", 1): (722, 540)}
HOLD_AT = 1 << 20  # the first zip stalls after 1 MiB (the downloader's read size)


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def make_isic_zips(src: Path) -> dict[str, bytes]:
    """The six official zips (name -> bytes) of a small ISIC 2017 look-alike: synthetic
    lesions, two of them enlarged to realistic sizes with sensor-like noise."""
    make_synthetic_isic(src, **{f"n_{s}": n for s, n in COUNTS.items()}, size=48, seed=5)
    rng = np.random.default_rng(0)
    for (split, index), size in REALISTIC.items():
        prefix = SPLIT_PREFIX[split]
        images = sorted((src / f"{prefix}_Data").glob("ISIC_???????.jpg"))
        image_path = images[index]
        iid = image_path.stem
        mask_path = src / f"{prefix}_Part1_GroundTruth" / f"{iid}_segmentation.png"
        big = np.asarray(Image.open(image_path).convert("RGB").resize(size, Image.BILINEAR))
        noise = rng.integers(-6, 7, size=big.shape, dtype=np.int16)
        big = np.clip(big.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        image_path.write_bytes(_jpeg(Image.fromarray(big)))
        mask_path.write_bytes(_png(Image.open(mask_path).resize(size, Image.NEAREST)))
        ids = np.arange(size[0] * size[1], dtype=np.uint32).reshape(size[1], size[0]) // 4096
        rgb = np.stack([ids & 255, (ids >> 8) & 255, ids >> 16], axis=-1).astype(np.uint8)
        (image_path.parent / f"{iid}_superpixels.png").write_bytes(_png(Image.fromarray(rgb)))
    zips = {}
    for name in ISIC2017_ZIPS:
        folder = src / name.removesuffix(".zip")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr(f"{folder.name}/", b"")  # the folder's own entry, as in the official zips
            for path in sorted(folder.iterdir()):
                zf.write(path, f"{folder.name}/{path.name}")
        zips[name] = buf.getvalue()
    return zips


def damage_member(data: bytes, member: str) -> bytes:
    """``data`` (a zip) with bytes in the middle of ``member``'s compressed data flipped."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    header = data[info.header_offset : info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little")
    start += int.from_bytes(header[28:30], "little")
    middle = start + info.compress_size // 2
    damaged = bytearray(data)
    damaged[middle : middle + 8] = bytes(b ^ 0xFF for b in damaged[middle : middle + 8])
    return bytes(damaged)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """The whole command-line path, step by step; returns the folders and step times."""
    base = tmp_path_factory.mktemp("rehearsal")
    times = {}
    start = time.perf_counter()
    zips = make_isic_zips(base / "src")
    times["fake zips"] = time.perf_counter() - start
    url, httpd = serve(zips)
    home, data = base / "home", base / "home" / "data" / "isic2017"
    env = {
        "SEGQUAL_HOME": str(home),
        "SEGQUAL_RESULTS": str(base / "chapter_results"),
        "SEGQUAL_PROGRESS": "0",
        MIRROR_ENV: url,
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        yield base, data, zips, times
    httpd.shutdown()
    total = sum(times.values())
    print("\ndress rehearsal, wall time per step:")
    for step, seconds in times.items():
        print(f"  {step:38s} {seconds:6.1f} s")
    print(f"  {'total':38s} {total:6.1f} s")


@contextmanager
def _timed(times, step):
    start = time.perf_counter()
    yield
    times[step] = time.perf_counter() - start


def test_killed_download_resumes_and_a_damaged_member_is_named(rehearsal, capsys):
    base, data, zips, times = rehearsal
    first = ISIC2017_ZIPS[0]
    assert len(zips[first]) > 2 * HOLD_AT  # the realistic photograph makes it large
    with _timed(times, "download killed halfway"):
        release = threading.Event()
        RangeHandler.hold[first] = (HOLD_AT, release)
        proc = subprocess.Popen(
            [sys.executable, "-m", "segqual_lite", "data", "download", str(data), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        part = data / "downloads" / f"{first}.part"
        deadline = time.monotonic() + 120
        while not (part.exists() and part.stat().st_size >= HOLD_AT):
            assert proc.poll() is None and time.monotonic() < deadline, "no bytes arrived"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        release.set()
        assert part.stat().st_size == HOLD_AT and not (data / "downloads" / first).exists()

    damaged_zip = ISIC2017_ZIPS[3]  # validation ground truth
    member = sorted(n for n in zipfile.ZipFile(io.BytesIO(zips[damaged_zip])).namelist())[-1]
    RangeHandler.files = {**zips, damaged_zip: damage_member(zips[damaged_zip], member)}
    with _timed(times, "download resumed, damaged zip refused"):
        assert main(["data", "download", str(data), "--quiet", *SET]) == 2
    err = capsys.readouterr().err
    assert damaged_zip in err and member in err, err
    assert (first, f"bytes={HOLD_AT}-") in RangeHandler.log  # resumed, not restarted
    assert (data / "downloads" / first).read_bytes() == zips[first]
    assert not (data / "downloads" / damaged_zip).exists()  # deleted, fetched afresh next

    RangeHandler.files = zips
    with _timed(times, "download completed"):
        assert main(["data", "download", str(data), "--quiet", *SET]) == 0
    assert capsys.readouterr().out.split() == ["train=8", "val=2", "test=6"]
    for name in ISIC2017_ZIPS:
        assert (data / "downloads" / name).read_bytes() == zips[name]
    big = data / "ISIC-2017_Training_Data" / "ISIC_0000000.jpg"
    assert Image.open(big).size == REALISTIC[("train", 0)]
    with _timed(times, "data check"):
        assert main(["data", "check", str(data)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].endswith("the ISIC 2017 layout")
    assert said[-1].split() == ["train=8", "val=2", "test=6"]


def test_profile_fields_are_checked_by_name_and_type(rehearsal, capsys):
    _, data, _, _ = rehearsal
    for setting, problem in (
        ("epoch_f=1", "'epoch_f=1' is not FIELD=VALUE"),
        ("epochs_f=one", "'epochs_f=one': 'one' is not int"),
    ):
        assert main(["reproduce", "--profile", "colab", "--data", str(data), "--set", setting]) == 2
        err = capsys.readouterr().err
        assert problem in err and "epochs_f: int" in err and "seeds: tuple[int, ...]" in err


@pytest.fixture(scope="module")
def reproduced(rehearsal):
    """``reproduce --beyond`` one seed per run (the second reuses what the first trained
    for the ensemble), then ``merge``."""
    base, data, _, times = rehearsal
    folders = []
    for seed in (0, 1):
        out = base / f"results-seed{seed}"
        args = ["reproduce", "--profile", "colab", "--data", str(data), *SET, "--beyond"]
        with _timed(times, f"reproduce --beyond --seeds {seed}"):
            assert main([*args, "--seeds", str(seed), "--out", str(out)]) == 0
        folders.append(out)
    with _timed(times, "merge"):
        assert main(["merge", *map(str, folders), "--out", str(base / "merged")]) == 0
    return base / "merged", folders


def test_reproduce_and_merge_on_the_shrunk_colab_profile(rehearsal, reproduced):
    merged, folders = reproduced
    predictions = read_predictions(merged / "beyond_predictions.csv")
    assert set(predictions["seed"]) == {0, 1}
    assert set(predictions.groupby(["method", "seed"]).size()) == {COUNTS["test"]}
    for name in ("table1.md", "beyond.csv", "figure3.png", "risk_coverage.png"):
        assert (merged / name).is_file(), name
    for folder in folders:  # each run: its own seed, figures of the real images
        assert (folder / "figure2.png").is_file()
        run = (folder / "run.json").read_text()
        assert '"name": "colab+' in run and '"n_train": 8' in run and '"epochs_f": 1' in run


@pytest.mark.book
def test_chapters_01_and_10_run_on_the_shrunk_colab_profile(rehearsal, reproduced):
    import nbformat
    import papermill

    base, data, _, times = rehearsal
    requests = len(RangeHandler.log)
    for chapter in ("01_data", "10_results"):
        out = base / f"{chapter}.ipynb"
        with _timed(times, f"papermill {chapter}"):
            papermill.execute_notebook(
                str(REPO / "notebooks" / f"{chapter}.ipynb"),
                str(out),
                parameters={"profile": "colab", "overrides": OVERRIDES},
                cwd=str(base),
                progress_bar=False,
                kernel_name="python3",
            )
        text = "\n".join(
            o.get("text", "")
            for c in nbformat.read(out, as_version=4).cells
            if c.cell_type == "code"
            for o in c.outputs
        )
        assert "profile=colab+" in text and "(ISIC 2017, real dermoscopy" in text  # its data, named
    assert "the counterfactual needs the synthetic generator; these data are not synthetic" in text
    assert (base / "chapter_results" / "table1.md").is_file()  # chapter 10's own results
    assert len(RangeHandler.log) == requests  # the chapters used the folder as it is
