"""Chapters run on their own: executed alone, from an empty artifact folder, they
train or load whatever they need (as on a fresh Colab runtime)."""

from pathlib import Path

import papermill
import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.book


@pytest.mark.parametrize("chapter", ["03_max_probability", "09_baselines"])
def test_chapter_runs_alone_from_an_empty_cache(chapter, tmp_path, monkeypatch):
    home = tmp_path / "artifacts"
    monkeypatch.setenv("SEGQUAL_HOME", str(home))
    monkeypatch.setenv("SEGQUAL_PROGRESS", "0")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    out = tmp_path / f"{chapter}.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks" / f"{chapter}.ipynb"),
        str(out),
        parameters={"profile": "tiny"},
        kernel_name="segqual-lite",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    assert out.exists()
    assert any((home / "models" / "tiny").glob("f-plain-seed0-*/final.pt"))
