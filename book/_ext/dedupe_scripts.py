"""Sphinx extension: drop repeated inline scripts from each page.

sphinx-thebe (pulled in by Jupyter Book 1) registers its inline configuration script
twice, which redeclares a ``const`` and raises a JavaScript error on every page.
"""


# Runs early: html-page-context stops at the first handler that returns a template.
def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # The same script is registered once with filename None and once with "".
        attributes = getattr(js, "attributes", {})
        key = (getattr(js, "filename", js) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
