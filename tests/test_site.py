"""The built site: a page per chapter, Colab links, no foreign assets, no tracebacks."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "_config.yml").read_text())

pytestmark = pytest.mark.book


class AssetParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.assets, self.links, self.images = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.assets.append(a["src"])
        if tag == "link" and a.get("href") and a.get("rel") in ("stylesheet", "preload"):
            self.assets.append(a["href"])
        if tag == "link" and a.get("href") and "stylesheet" in (a.get("rel") or ""):
            self.assets.append(a["href"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])


def parse(page: Path) -> AssetParser:
    parser = AssetParser()
    parser.feed(page.read_text())
    return parser


def pages(html: Path):
    return sorted(p for p in html.rglob("*.html") if "_static" not in p.parts)


def test_a_page_per_chapter(built_site):
    html, book_build = built_site
    for chapter in book_build.toc_chapters(REPO / "_toc.yml"):
        assert (html / f"{chapter}.html").is_file(), chapter
    assert (html / "index.html").is_file()


def test_every_chapter_links_colab_to_its_own_ipynb(built_site):
    html, book_build = built_site
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]
    chapters = [c for c in book_build.toc_chapters(REPO / "_toc.yml") if c.startswith("notebooks/")]
    assert chapters
    for chapter in chapters:
        links = parse(html / f"{chapter}.html").links
        expected = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{chapter}.ipynb"
        assert expected in links, f"{chapter}: no Colab link {expected}"
        assert (REPO / f"{chapter}.ipynb").is_file()


def test_no_script_or_stylesheet_from_another_host(built_site):
    html, _ = built_site
    for page in pages(html):
        for url in parse(page).assets:
            assert not urlparse(url).netloc and not url.startswith("//"), f"{page}: {url}"


def test_served_assets_exist(built_site):
    html, _ = built_site
    assert (html / "_widgets" / "embed.js").is_file()
    assert (html / "_mathjax" / "tex-chtml.js").is_file()
    page = (html / "notebooks" / "08_metrics.html").read_text()
    assert "_mathjax/tex-chtml.js" in page


def test_no_traceback_or_injected_parameters_on_any_page(built_site):
    html, _ = built_site
    for page in pages(html):
        text = page.read_text()
        for bad in ("Traceback (most recent call last)", "ipythontb", "Injected parameters"):
            assert bad not in text, f"{page} shows {bad!r}"


def test_chapters_were_executed_with_the_tiny_profile(built_site):
    html, book_build = built_site
    chapters = [c for c in book_build.toc_chapters(REPO / "_toc.yml") if c.startswith("notebooks/")]
    for chapter in chapters:
        text = (html / f"{chapter}.html").read_text()
        assert "profile=tiny" in text
        assert "<img" in text  # figures were rendered by this build
    info = json.loads((html.parent / "build-info.json").read_text())
    assert info["profile"] == "tiny"


def test_exercises_and_solutions_render(built_site):
    html, _ = built_site
    text = (html / "notebooks" / "01_data.html").read_text()
    assert text.count('class="exercise admonition"') == 2
    assert text.count('class="solution dropdown admonition"') == 2


class TextParser(HTMLParser):
    """The visible text of a page (outside scripts, styles and code cells' inputs)."""

    def __init__(self):
        super().__init__()
        self.text, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "pre"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "pre") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def test_no_page_shows_a_table_as_raw_pipe_text(built_site):
    html, _ = built_site
    for page in pages(html):
        parser = TextParser()
        parser.feed(page.read_text())
        text = " ".join(parser.text)
        # A pipe table's separator row, its dashes possibly typeset as en or em dashes.
        raw = re.search(r"\|\s*:?[-–—]{1,3}:?\s*\|\s*:?[-–—]{1,3}:?\s*\|", text)
        assert raw is None, f"raw pipe table in {page.name}: {text[raw.start() - 80 : raw.end()]}"
    results = (html / "notebooks" / "10_results.html").read_text()
    assert results.count("<table") >= 1 and "Max Probability</th>" in results


def test_no_page_shows_a_path_of_the_machine_that_built_it(built_site):
    html, _ = built_site
    local = {str(REPO), str(html.parent.resolve())}
    for page in pages(html):
        text = page.read_text()
        leaked = [path for path in local if path in text]
        assert not leaked, f"{page.relative_to(html)} shows {leaked}"


def test_chapter_figures_fit_the_text_column_at_150_dpi(built_site):
    """A chapter's figure is drawn at 150 dpi and at most the column's width (7 inches,
    with a margin for tight cropping), so the page shows it at (nearly) full size and its
    8 pt text stays 8 pt (segqual_lite.viz.PAGE_WIDTH)."""
    from PIL import Image

    html, _ = built_site
    checked = 0
    for page in sorted((html / "notebooks").glob("*.html")):
        for src in parse(page).images:
            if "_images/" not in src or not src.endswith(".png"):
                continue  # the theme's own icons
            with Image.open((page.parent / src).resolve()) as image:
                width, dpi = image.size[0], image.info.get("dpi", (0, 0))[0]
            assert round(dpi) >= 150, f"{page.name}: {src} at {dpi} dpi"
            assert width <= 7.3 * 150, f"{page.name}: {src} is {width / 150:.1f} inches wide"
            checked += 1
    assert checked > 20


def test_the_build_s_seeds_match_the_reference_run(built_site):
    """The build's seeds against the shipped reference: equal to its same seeds in the same
    environment, inside its seeds' spread in another (other floats: new draws); a stale
    reference fails here with the command that regenerates it (load_reference raises)."""
    from segqual_lite.config import get_profile
    from segqual_lite.reference import check_build, load_reference

    reference = load_reference(get_profile("tiny"))
    assert reference is not None, "no results/reference/tiny: run `make reference`"
    assert len(reference.seeds) >= 16 and reference.counterfactual is not None
    check = check_build(reference, REPO / "_build" / "results" / "tiny" / "predictions.csv")
    assert check.seeds == (0, 1, 2)
    assert check.ok, check.line()
    page = (built_site[0] / "notebooks" / "10_results.html").read_text()
    said = "equal the reference" if check.same_environment else "are new draws"
    assert said in page  # chapter 10 says which, in one line


def test_an_edit_to_a_chapter_s_py_shows_on_its_page_after_a_plain_build(built_site, tmp_path):
    """An instructor edits ``notebooks/01_data.py`` (the source, as the README says) and
    runs the build: the page shows the edit, the ``.ipynb`` has it, and only that
    chapter runs again. The build runs in a copy of the repository that starts from this
    session's executed chapters and Sphinx cache, so that it costs one chapter."""
    import shutil
    import subprocess
    import sys

    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    repo = tmp_path / "repo"
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, repo / name)
    out, built = repo / "_build", REPO / "_build"
    for name in ("stage", "jb"):
        shutil.copytree(built / name, out / name, symlinks=True)
    for name in ("artifacts", "npm", "web_assets"):
        (out / name).symlink_to(built / name)
    shutil.copy2(built / "timings.json", out / "timings.json")

    source = repo / "notebooks" / "01_data.py"
    note = "A note from the instructor, added after the last build."
    source.write_text(source.read_text() + f"\n# %% [markdown]\n# {note}\n")
    log = subprocess.run(
        [sys.executable, str(repo / "book" / "build.py"), "--out", str(out)],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert note in (out / "html" / "notebooks" / "01_data.html").read_text()
    assert note in (repo / "notebooks" / "01_data.ipynb").read_text()
    assert "notebooks/01_data.ipynb: updated from its pair" in log
    executed = re.findall(r"\[book\] (\S+): executing", log)
    assert executed == ["notebooks/01_data"], log
    assert "grid: training" not in log  # no results chapter had to run
