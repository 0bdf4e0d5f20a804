"""Write student copies of the chapters, with the exercise solutions removed.

    python book/student.py [--out student]

Each solution is the span from a ``{solution-start}`` directive to its
``{solution-end}``: the markers and every cell between them are replaced by an empty
code cell for the student's answer. The copies are ``.ipynb`` files without outputs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parents[1]
START = re.compile(r"```\{solution-start\}[^\n]*\n(?::[^\n]*\n)*```\s*$")
END = re.compile(r"^```\{solution-end\}\s*\n```\s*\n?")


def strip_solutions(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """Return a copy of ``nb`` without solutions, and how many were removed."""
    pending = list(nb.cells)
    cells, removed, inside = [], 0, False
    while pending:
        cell = pending.pop(0)
        source = cell.source
        if inside:
            if cell.cell_type == "markdown" and END.match(source):
                inside = False
                cells.append(nbformat.v4.new_code_cell("# Your solution here\n"))
                rest = END.sub("", source, count=1).lstrip("\n")
                if rest.strip():  # the next exercise may start in the same cell
                    pending.insert(0, nbformat.v4.new_markdown_cell(rest))
            continue
        if cell.cell_type == "markdown" and START.search(source):
            inside = True
            removed += 1
            head = START.sub("", source).rstrip()
            if head:
                cells.append(nbformat.v4.new_markdown_cell(head))
            continue
        cells.append(cell)
    if inside:
        raise ValueError("a {solution-start} has no matching {solution-end}")
    return nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata), removed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "student")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for source in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py")):
        nb, removed = strip_solutions(jupytext.read(source))
        target = args.out / f"{source.stem}.ipynb"
        nbformat.write(nb, target)
        print(f"{target}: {removed} solutions removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
