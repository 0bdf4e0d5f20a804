"""Sphinx extension: the book's own script and stylesheet, served from ``static/``.

- ``search-snippets.js``: search snippets show maths as text, not as its LaTeX source.
  Sphinx's search page fetches each hit's page and shows a snippet of its text. MathJax
  has not run on that fetched copy, so inline maths reads ``\\(\\sigma\\)`` and display
  equations appear as raw LaTeX. The script rewrites inline maths as plain text (``σ``)
  and drops display equations from the snippet.
- ``page.css``: package source shown in a chapter's output
  (``segqual_lite.viz.show_source``, formatted to the package's 100 characters) wraps at
  the page's column instead of scrolling sideways.
"""

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def _add_static(app):
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_js_file("search-snippets.js", loading_method="defer")
    app.add_css_file("page.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
