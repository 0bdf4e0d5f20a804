import os

import pytest

from segqual_lite.data import make_synthetic_isic


@pytest.fixture(scope="session", autouse=True)
def artifact_home(tmp_path_factory):
    """An artifact store for the session (decoded splits, models), so that tests which
    set none write nothing into the repository; tests that set their own keep it."""
    if "SEGQUAL_HOME" in os.environ:
        yield
        return
    os.environ["SEGQUAL_HOME"] = str(tmp_path_factory.mktemp("segqual_home"))
    yield
    os.environ.pop("SEGQUAL_HOME", None)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A small synthetic ISIC 2017 folder, written once per test session (read-only)."""
    root = tmp_path_factory.mktemp("isic_synth")
    make_synthetic_isic(root, n_train=12, n_val=4, n_test=6, size=32, seed=3)
    return root


@pytest.fixture
def fresh_root(tmp_path):
    """A synthetic ISIC 2017 folder that a test may damage."""
    make_synthetic_isic(tmp_path, n_train=4, n_val=2, n_test=3, size=24, seed=1)
    return tmp_path


@pytest.fixture(scope="session")
def built_site():
    """The site as ``make book`` builds it (tiny profile), into the repository's _build.

    Chapters whose sources and package code are unchanged since the last build are not
    executed again, so after ``make book`` this costs only the Sphinx pass.
    """
    from pathlib import Path

    from helpers import load_book_build

    book_build = load_book_build()
    html = book_build.build("tiny", Path(__file__).resolve().parents[1] / "_build")
    return html, book_build
