import pytest

from segqual_lite.data import make_synthetic_isic


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
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("book_build", repo / "book" / "build.py")
    book_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book_build)
    html = book_build.build("tiny", repo / "_build")
    return html, book_build
