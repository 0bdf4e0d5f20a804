"""The book build's time accounting (book/build.py), on a hand-made executed notebook."""

import json
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from helpers import load_book_build

from segqual_lite import timing

REPO = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def book_build():
    return load_book_build()


def _code(source, start, end, outputs=()):
    cell = nbformat.v4.new_code_cell(source, outputs=list(outputs))
    iso = lambda t: datetime.fromtimestamp(T0 + t, UTC).isoformat()  # noqa: E731
    cell.metadata["papermill"] = {"start_time": iso(start), "end_time": iso(end)}
    return cell


def _notebook():
    png = nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})
    return nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# A chapter"),
            _code("import torch", 2.0, 5.0),
            _code("P, device, seed = start_chapter(profile)", 5.0, 5.5),
            _code("f = fit_segmentation(...)", 6.0, 16.0),
            _code("plot(...)", 16.0, 18.0, outputs=[png]),
            nbformat.v4.new_markdown_cell("```{solution-start} ex-1\n```"),
            _code("g = fit_quality(...)", 18.0, 24.0),
            nbformat.v4.new_markdown_cell("```{solution-end}\n```"),
            _code("print(1)", 24.0, 25.0),
        ]
    )


def test_wall_time_is_split_into_cells_phases_and_kernel_start(book_build):
    records = [
        {"kind": "train f", "name": "f[plain-seed0]", "seconds": 9.0, "end": T0 + 15.0},
        {"kind": "train g", "name": "g[row] seed 0", "seconds": 5.0, "end": T0 + 23.0},
    ]
    items = book_build.account_chapter(_notebook(), records, wall=26.0)
    assert items == {
        "train f: f[plain-seed0]": 9.0,
        "train g: g[row] seed 0 (exercise)": 5.0,
        "set-up cells (imports)": 3.5,
        "kernel start and papermill": 3.5,
        "figure cells": 2.0,
        "exercise cells": 1.0,
        "other cells": 2.0,
    }
    assert list(items.values()) == sorted(items.values(), reverse=True)
    assert sum(items.values()) == pytest.approx(26.0)


def test_phases_record_their_own_time_without_nested_ones(tmp_path, monkeypatch):
    path = tmp_path / "phases.jsonl"
    monkeypatch.setenv(timing.TIMINGS_ENV, str(path))
    with timing.phase("outer", "a"):
        with timing.phase("inner", "b"):
            sum(range(200_000))
    inner, outer = (json.loads(line) for line in path.read_text().splitlines())
    assert (inner["kind"], outer["kind"]) == ("inner", "outer")
    assert outer["total"] >= inner["total"] > 0
    assert outer["seconds"] == pytest.approx(outer["total"] - inner["total"])
    monkeypatch.delenv(timing.TIMINGS_ENV)
    with timing.phase("unrecorded"):
        pass
    assert len(path.read_text().splitlines()) == 2


def test_results_chapters_form_one_unit_and_the_longest_units_go_first(book_build):
    chapters = book_build.toc_chapters(REPO / "_toc.yml")
    chapters = [c for c in chapters if (REPO / f"{c}.py").exists()]
    grid = ["notebooks/10_results", "notebooks/11_beyond", "notebooks/12_failure_detection"]
    units = book_build.work_units(chapters, {"notebooks/09_baselines": 15.0})
    assert units[0] == grid  # 30 s estimated (three unknown chapters), in reading order
    assert units[1] == ["notebooks/09_baselines"]
    assert sorted(c for unit in units for c in unit) == sorted(chapters)
    assert all(len(unit) == 1 for unit in units[1:])
    assert book_build.work_units(chapters, {"notebooks/01_data": 60.0})[0] == ["notebooks/01_data"]


def test_the_build_functions_pickle_into_its_processes(book_build):
    """The build runs chapters in processes of its own; its functions must reach them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        assert pool.submit(book_build._execute_unit, [], REPO, "tiny", {}).result() is None


def test_the_newer_side_of_a_pair_wins(book_build, tmp_path):
    """An edit to a chapter's .py reaches its .ipynb before the build reads it, and an
    edit made in the .ipynb (in Jupyter, say) reaches the .py; an unchanged pair is left
    byte for byte."""
    import os
    import shutil

    shutil.copy2(REPO / "jupytext.toml", tmp_path)
    for suffix in (".py", ".ipynb"):
        shutil.copy2(REPO / "notebooks" / f"01_data{suffix}", tmp_path)
    py, ipynb = tmp_path / "01_data.py", tmp_path / "01_data.ipynb"
    assert book_build.sync_pairs([py]) == []

    alt = 'mystnb={"image": {"alt": "An alt text changed in the .py"}}'
    text = py.read_text().replace('# %% tags=["parameters"]', f'# %% {alt} tags=["parameters"]')
    py.write_text(text + "\n# %% [markdown]\n# An instructor's note.\n")
    os.utime(py, (ipynb.stat().st_mtime + 5,) * 2)
    assert book_build.sync_pairs([py]) == [ipynb]
    synced = nbformat.read(ipynb, as_version=4)
    assert "An instructor's note." in synced.cells[-1].source
    params = next(c for c in synced.cells if "parameters" in c.metadata.get("tags", []))
    assert params.metadata["mystnb"]["image"]["alt"] == "An alt text changed in the .py"

    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[-1].source = "A note made in Jupyter."
    nbformat.write(nb, ipynb)
    os.utime(ipynb, (py.stat().st_mtime + 5,) * 2)
    assert py in book_build.sync_pairs([py])
    assert "# A note made in Jupyter." in py.read_text()


def test_a_healthy_notebook_logs_nothing_and_a_failing_one_names_its_cell(
    book_build, tmp_path, capfd
):
    """The kernels of the build log no warning (no TCP transport, no interrupt at
    shutdown), and a failing cell still stops it with papermill's cell and traceback."""
    import papermill

    healthy, failing = tmp_path / "healthy.ipynb", tmp_path / "failing.ipynb"
    params = nbformat.v4.new_code_cell("profile = 'x'", metadata={"tags": ["parameters"]})
    for path, code in ((healthy, "print(profile * 2)"), (failing, "1 / 0")):
        nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(code)])
        nb.metadata["kernelspec"] = {"name": "segqual-lite", "language": "python"}
        nbformat.write(nb, path)
    # two kernels side by side, as the build runs chapters: each has sockets of its own
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        runs = [
            pool.submit(book_build.run_notebook, healthy, tmp_path / f"out{i}.ipynb", p, tmp_path)
            for i, p in enumerate(({"profile": "tiny"}, {"profile": "small"}))
        ]
        [run.result() for run in runs]
    for i, word in enumerate(("tiny", "small")):
        out = nbformat.read(tmp_path / f"out{i}.ipynb", as_version=4)
        assert out.cells[-1].outputs[0]["text"] == f"{word * 2}\n"
    assert not list(tmp_path.glob("kernel-ipc*"))  # no socket left in the working folder
    with pytest.raises(papermill.PapermillExecutionError, match="ZeroDivisionError") as failed:
        book_build.run_notebook(failing, tmp_path / "out.ipynb", {}, tmp_path)
    assert "1 / 0" in str(failed.value)  # the failing cell's source, with its traceback
    logged = capfd.readouterr()
    lines = (logged.out + logged.err).splitlines()
    assert [line for line in lines if "WARNING" in line or "ERROR" in line] == []
