"""Point the book at another repository (a fork) in one command:

    make retarget REPO=https://github.com/me/segqual-lite
    python book/retarget.py https://github.com/me/segqual-lite [--branch main]

The repository URL lives in one place, ``_config.yml`` (``repository.url``, and
``repository.branch``). This script writes the URL given there, then rewrites what is
derived from it in every chapter's source ``notebooks/NN_*.py``: the Colab badge
(``colab.research.google.com/github/<owner>/<name>/blob/<branch>/notebooks/NN.ipynb``)
and the install cell's ``REPO_URL = "..."``; then regenerates the paired ``.ipynb``
(``jupytext --update``, no outputs). Only those lines change. Run without ``--write`` to
see what would change. ``tests/test_notebooks.py`` keeps the chapters equal to
``_config.yml``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GITHUB = re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+$")
BADGE = re.compile(r"(https://colab\.research\.google\.com/github/)[\w.-]+/[\w.-]+/blob/[\w./-]+?/")
INSTALL = re.compile(r'^(\s*REPO_URL = )"[^"]*"$', re.M)
CONFIG_URL = re.compile(r"^(repository:\n(?:  .*\n)*?  url: ).*$", re.M)
CONFIG_BRANCH = re.compile(r"^(repository:\n(?:  .*\n)*?  branch: ).*$", re.M)


def retarget(url: str, branch: str | None = None, root: Path = REPO) -> dict[Path, str]:
    """The new text of ``root/_config.yml`` and of each chapter source under
    ``root/notebooks`` that ``url`` (and ``branch``) change, by path; writes nothing."""
    url = url.rstrip("/").removesuffix(".git")
    if not GITHUB.match(url):
        raise ValueError(f"{url!r} is not a GitHub repository URL: https://github.com/OWNER/NAME")
    config_path = root / "_config.yml"
    config = config_path.read_text()
    if not CONFIG_URL.search(config):
        raise ValueError(f"{config_path} has no repository: url: line")
    config = CONFIG_URL.sub(lambda m: m.group(1) + url, config, count=1)
    if branch:
        config = CONFIG_BRANCH.sub(lambda m: m.group(1) + branch, config, count=1)
    branch = CONFIG_BRANCH.search(config).group(0).split(":")[-1].strip()
    owner_name = url.removeprefix("https://github.com/")
    changed = {config_path: config}
    for source in sorted((root / "notebooks").glob("[0-9][0-9]_*.py")):
        text = source.read_text()
        text = BADGE.sub(lambda m: f"{m.group(1)}{owner_name}/blob/{branch}/", text)
        text = INSTALL.sub(lambda m: f'{m.group(1)}"{url}"', text)
        changed[source] = text
    return {path: text for path, text in changed.items() if path.read_text() != text}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="https://github.com/OWNER/NAME")
    parser.add_argument("--branch", help="the branch Colab opens (default: _config.yml's)")
    parser.add_argument("--write", action="store_true", help="write the changes")
    parser.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        differ = retarget(args.url, args.branch, args.root)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in differ:
        print(f"{'rewrote' if args.write else 'would rewrite'} {path.relative_to(args.root)}")
        if args.write:
            path.write_text(differ[path])
    sources = [str(p) for p in differ if p.suffix == ".py"]
    if args.write and sources:  # the paired notebooks, as `make notebooks` makes them
        jupytext = [sys.executable, "-m", "jupytext", "--to", "ipynb", "--update", "-q"]
        subprocess.run([*jupytext, *sources], check=True)
    if not differ:
        print("nothing to change: the book already points at", args.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
