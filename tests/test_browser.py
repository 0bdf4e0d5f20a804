"""Headless Chromium against the built site, with every non-local request blocked."""

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "_build" / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [pytest.mark.book, pytest.mark.browser]


@pytest.fixture(scope="module")
def served_site(built_site):
    html, _ = built_site
    handler = functools.partial(QuietHandler, directory=str(html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: run `make chromium` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def open_page(browser, url):
    """Open ``url`` with non-local requests aborted; return (page, blocked, failed, errors)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    blocked, failed, errors = [], [], []

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("response", lambda resp: resp.status >= 400 and failed.append(resp.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="load")
    return page, blocked, failed, errors


CHAPTERS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
PAGES = ["book/intro.html"] + [f"notebooks/{p.stem}.html" for p in CHAPTERS]


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_offline_and_math_is_typeset(served_site, browser, path):
    page, blocked, failed, errors = open_page(browser, f"{served_site}/{path}")
    try:
        page.locator("article h1").first.wait_for(state="visible", timeout=10_000)
        # MathJax replaces TeX with <mjx-container> elements once it has typeset the page.
        page.wait_for_function(
            "document.querySelectorAll('mjx-container').length > 0", timeout=20_000
        )
        assert page.locator("mjx-container").count() >= 1
        scripts = [u for u in blocked if u.endswith(".js") or u.endswith(".css")]
        assert not scripts, f"the page asked another host for code: {scripts}"
        assert not failed, f"missing local files: {failed}"
        assert not errors, f"JavaScript errors: {errors}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / (path.replace("/", "_") + ".png")), full_page=True)
        problems = page.evaluate(READER_CHECKS)
        assert not problems, f"{path}: {problems}"
    finally:
        page.context.close()


# What a reader would notice on a page, checked on the rendered DOM in a 1280 px window:
# Markdown tables left as text, figures enlarged beyond the pixels they were rendered
# with (blurred; panels deliberately enlarged without smoothing are exempt), absolute
# paths of the machine that built the book, any output or table wider than the text
# column (it would scroll sideways or spill over), and more than 5% of code cells that
# scroll sideways.
READER_CHECKS = r"""() => {
    const main = document.querySelector('main');
    const problems = [];
    const text = main.innerText;
    const pipes = text.split('\n').filter(line => /\|\s*:?-{3,}:?\s*\|/.test(line));
    if (pipes.length) problems.push(`raw pipe table: ${pipes[0]}`);
    for (const img of main.querySelectorAll('img')) {
        const shown = img.getBoundingClientRect().width * window.devicePixelRatio;
        const pixelated = getComputedStyle(img).imageRendering === 'pixelated';
        if (img.naturalWidth && shown > img.naturalWidth * 1.02 && !pixelated) {
            problems.push(`blurred: ${img.alt || img.src.slice(0, 60)} rendered ` +
                          `${img.naturalWidth} px wide, shown ${Math.round(shown)} px`);
        }
    }
    const column = main.querySelector('article').getBoundingClientRect().right;
    const wide = e => e.offsetParent !== null &&
        (e.scrollWidth > e.clientWidth + 2 || e.getBoundingClientRect().right > column + 2);
    const outputs = main.querySelectorAll('.cell_output pre, .cell_output table, article table');
    for (const e of [...outputs].filter(wide)) {
        const line = e.innerText.split('\n').sort((a, b) => b.length - a.length)[0];
        problems.push(`wider than the column: ${e.tagName} "${line.slice(0, 70)}"`);
    }
    const code = [...main.querySelectorAll('.cell_input pre')];
    const scrolling = code.filter(wide);
    if (scrolling.length > 0.05 * code.length) {
        problems.push(`${scrolling.length} of ${code.length} code cells scroll sideways`);
    }
    const root = /(^|[\s'"(=])(\/(home|root|tmp|work|Users|mnt|content)\/|[A-Z]:\\)\S*/m;
    const path = text.match(root);
    if (path) problems.push(`absolute path: ${path[0].trim()}`);
    return problems;
}"""


def test_search_snippets_show_maths_as_text(served_site, browser):
    page, _, failed, errors = open_page(browser, f"{served_site}/search.html?q=sigma")
    try:
        page.wait_for_selector("#search-results li p.context", timeout=30_000)
        page.wait_for_timeout(1000)  # the remaining snippets are fetched one page each
        snippets = page.locator("#search-results li p.context").all_inner_texts()
        assert snippets, "no search result for 'sigma'"
        latex = [s for s in snippets if "\\(" in s or "\\)" in s or "\\sigma" in s]
        assert not latex, f"snippets show LaTeX source: {latex[:2]}"
        assert not failed and not errors, (failed, errors)
    finally:
        page.context.close()


def test_figures_load(served_site, browser):
    page, _, failed, _ = open_page(browser, f"{served_site}/notebooks/01_data.html")
    try:
        images = page.locator("main img")
        assert images.count() >= 4
        widths = page.eval_on_selector_all("main img", "els => els.map(e => e.naturalWidth)")
        assert all(w > 0 for w in widths), "an image did not load"
        assert not failed
    finally:
        page.context.close()


def visible_lesion(page) -> str:
    """The header of the explorer's lesion now on screen (the Stacks hide the others)."""
    return page.evaluate(
        """() => {
            const shown = [...document.querySelectorAll('.segqual-lesion')]
                .filter(d => d.offsetParent !== null && d.getBoundingClientRect().width > 0);
            return shown.length === 1 ? shown[0].querySelector('p').innerText
                                      : `visible lesions: ${shown.length}`;
        }"""
    )


WAIT_FOR_ANOTHER_LESION = """prev => {
    const shown = [...document.querySelectorAll('.segqual-lesion')]
        .filter(d => d.offsetParent !== null);
    return shown.length === 1 && shown[0].querySelector('p').innerText !== prev;
}"""


def test_explorer_works_offline(served_site, browser):
    page, blocked, failed, errors = open_page(browser, f"{served_site}/notebooks/10_results.html")
    try:
        page.wait_for_selector(".segqual-lesion", timeout=30_000)
        explorer = page.locator(".widget-vbox").filter(has=page.locator(".widget-dropdown")).first
        explorer.scroll_into_view_if_needed()
        first = visible_lesion(page)
        assert first.startswith("synthetic lesion ") and "fails for" in first, first
        panels = page.evaluate(
            """() => [...document.querySelectorAll('.segqual-lesion')]
                .find(d => d.offsetParent !== null).querySelectorAll('img').length"""
        )
        assert panels == 2 + 2 * 4, "image, truth, then an overlay and a map per method"
        assert "seed 0" in first, first
        # Another filter: the outer Stack follows the dropdown's index (jslink); the
        # passing lesions come after every failing one, so the lesion changes.
        show = page.locator(".widget-dropdown select:visible").nth(1)
        options = show.evaluate('s => [...s.options].map(o => o.text.replaceAll("\\u00a0", " "))')
        assert any(o.startswith("the map changed g's verdict") for o in options), options
        show.select_option(index=options.index(next(o for o in options if o.startswith("pass"))))
        page.wait_for_function(WAIT_FOR_ANOTHER_LESION, arg=first, timeout=10_000)
        second = visible_lesion(page)
        assert "fails for 0 of" in second, second
        # Another lesion: the filter's Stack follows its slider (jslink) ...
        handle = page.locator(".widget-slider .noUi-handle:visible").first
        handle.focus()
        handle.press("ArrowRight")
        page.wait_for_function(WAIT_FOR_ANOTHER_LESION, arg=second, timeout=10_000)
        third = visible_lesion(page)
        # ... and the arrows of its number box, the previous and next buttons.
        number = page.locator(".widget-text input[type=number]:visible").first
        number.focus()
        number.press("ArrowUp")
        page.wait_for_function(WAIT_FOR_ANOTHER_LESION, arg=third, timeout=10_000)
        # Another seed: the seeds' Stack follows the first dropdown.
        fourth = visible_lesion(page)
        page.locator(".widget-dropdown select:visible").first.select_option(index=1)
        page.wait_for_function(WAIT_FOR_ANOTHER_LESION, arg=fourth, timeout=10_000)
        assert "seed 1" in visible_lesion(page)
        assert not [u for u in blocked if u.endswith((".js", ".css"))]
        assert not failed and not errors, (failed, errors)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        explorer.screenshot(path=str(ARTIFACTS / "explorer.png"))
    finally:
        page.context.close()


def test_results_page_stays_small(built_site):
    html, _ = built_site
    page = html / "notebooks" / "10_results.html"
    images = AssetSizes.of(page)
    assert page.stat().st_size + images < 3 * 2**20, "the explorer page exceeds 3 MB"


class AssetSizes:
    @staticmethod
    def of(page: Path) -> int:
        """Bytes of the images a page embeds from the site (its own figures)."""
        import re

        total = 0
        for src in set(re.findall(r'<img[^>]+src="([^"]+)"', page.read_text())):
            path = (page.parent / src.split("?")[0]).resolve()
            if path.is_file():
                total += path.stat().st_size
        return total
