"""Chapter sources: pairing, no outputs, one parameters cell, the chapter skeleton."""

import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
CONFIG = yaml.safe_load((REPO / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_chapters():
    assert len(SOURCES) >= 2


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_is_paired_and_clean(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.exists(), f"missing {ipynb.name}: run make notebooks"
    committed = nbformat.read(ipynb, as_version=4)
    from_source = jupytext.read(source)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in from_source.cells
    ], f"{ipynb.name} is out of step with {source.name}: run make notebooks"
    # the cell metadata jupytext keeps (jupytext.toml): tags and the figures' alt text
    kept = ("tags", "mystnb")
    assert [{k: c.metadata.get(k) for k in kept} for c in committed.cells] == [
        {k: c.metadata.get(k) for k in kept} for c in from_source.cells
    ], f"{ipynb.name}'s cell metadata is out of step with {source.name}: run make notebooks"
    for cell in code_cells(committed):
        assert cell.outputs == [] and cell.execution_count is None, f"{ipynb.name} has outputs"
    assert committed.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_names_the_cell_metadata_its_py_holds(source):
    """jupytext's sync and --update take a cell's metadata from the .py only for the keys
    the .ipynb's own filter names; a stale filter there lets the .ipynb undo an edit."""
    import tomllib

    config = tomllib.loads((REPO / "jupytext.toml").read_text())
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert (
        committed.metadata["jupytext"]["cell_metadata_filter"] == (config["cell_metadata_filter"])
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_exactly_one_parameters_cell_defaulting_to_tiny(source):
    nb = jupytext.read(source)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert re.search(r'^profile = "tiny"$', params[0].source, re.M)
    assert re.search(r"^overrides = \{\}", params[0].source, re.M)  # for instructors
    assert params[0].cell_type == "code"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_chapter_skeleton(source):
    nb = jupytext.read(source)
    text = [c.source for c in nb.cells]
    assert nb.cells[0].cell_type == "markdown" and text[0].startswith("# ")
    colab = (
        f"https://colab.research.google.com/github/{REPO_URL.removeprefix('https://github.com/')}"
    )
    assert f"{colab}/blob/{CONFIG['repository']['branch']}/notebooks/{source.stem}.ipynb" in text[1]
    assert any("**You will learn**" in t for t in text[:4])
    install = next(t for t in text if 'find_spec("segqual_lite")' in t)
    assert f'REPO_URL = "{REPO_URL}"' in install
    joined = "\n".join(text)
    for heading in ("## Exercises", "## Summary", "## References"):
        assert heading in joined, f"{source.name} lacks {heading!r}"
    assert "{exercise}" in joined and "{solution-start}" in joined
    # Only the profile sets cost: no hard-coded epochs or sample counts in chapters.
    assert not re.search(r"\b(epochs|n_epochs|mc_samples)\s*=\s*\d", joined)


def test_toc_lists_every_chapter():
    toc = (REPO / "_toc.yml").read_text()
    for source in SOURCES:
        assert f"notebooks/{source.stem}" in toc


def _load_student_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("student", REPO / "book" / "student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_copies_drop_every_solution_and_keep_the_exercises(source):
    nb = jupytext.read(source)
    text = "\n".join(c.source for c in nb.cells)
    student, removed = _load_student_tool().strip_solutions(nb)
    student_text = "\n".join(c.source for c in student.cells)
    assert removed == text.count("{solution-start}") >= 1
    assert "{solution" not in student_text
    assert student_text.count("{exercise}") == text.count("{exercise}")
    # The code of every solution is gone; everything else is still there.
    inside, solution_code = False, []
    for cell in nb.cells:
        if "{solution-start}" in cell.source:
            inside = True
        elif "{solution-end}" in cell.source:
            inside = False
        elif inside and cell.cell_type == "code":
            solution_code.append(cell.source)
    assert solution_code and all(code not in student_text for code in solution_code)
    assert student_text.count("# Your solution here") == removed
    nbformat.validate(student)


# The book's code column holds 75 characters of its monospace font at 1280 px
# (tests/test_browser.py measures the rendered pages); notebooks/ruff.toml formats to it.
CODE_COLUMN = 75


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_code_fits_the_page_s_column(source):
    long = [
        line
        for cell in code_cells(jupytext.read(source))
        for line in cell.source.splitlines()
        if len(line) > CODE_COLUMN
    ]
    assert not long, f"{source.name}: {len(long)} code lines scroll sideways: {long[:3]}"


def test_a_fork_is_one_command_away(tmp_path):
    """book/retarget.py on a copy: _config.yml, every chapter's badge and install cell
    and its paired .ipynb name the fork; nothing else in the sources changes."""
    import subprocess
    import sys

    root = tmp_path / "fork"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    for path in (REPO / "notebooks").glob("[0-9][0-9]_*.*"):
        shutil.copy(path, root / "notebooks" / path.name)
    fork = "https://github.com/someone/my-fork"
    script = [sys.executable, str(REPO / "book" / "retarget.py"), fork, "--root", str(root)]
    done = subprocess.run([*script, "--write"], capture_output=True, text=True, check=True)
    assert done.stdout.count("rewrote") == 1 + len(SOURCES)
    config = yaml.safe_load((root / "_config.yml").read_text())
    assert config["repository"]["url"] == fork
    assert {k: v for k, v in config.items() if k != "repository"} == {
        k: v for k, v in CONFIG.items() if k != "repository"
    }
    badge = "https://colab.research.google.com/github/someone/my-fork/blob/main/notebooks/"
    for source in SOURCES:
        new = (root / "notebooks" / source.name).read_text()
        assert f'REPO_URL = "{fork}"' in new and f"{badge}{source.stem}.ipynb" in new
        old_lines, new_lines = source.read_text().splitlines(), new.splitlines()
        changed = [a for a, b in zip(old_lines, new_lines, strict=True) if a != b]
        assert len(changed) == 2, source.name  # the badge and the install cell only
        paired = jupytext.read(root / "notebooks" / f"{source.stem}.ipynb")
        assert fork in "\n".join(c.source for c in paired.cells)
    again = subprocess.run(script, capture_output=True, text=True, check=True)
    assert "nothing to change" in again.stdout
