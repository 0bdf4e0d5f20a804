"""Colab install: the chapters' install cell is the only set-up, and it keeps Colab's torch."""

import ast
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import jupytext
import tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[@]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _fake_distribution(site: Path, name: str, version: str, requires=()) -> None:
    """Installed-package metadata for ``name`` (what pip reads to see what is there)."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


def _copy_source(src: Path) -> None:
    """What a build of the package reads: its code, the shipped references, metadata."""
    shutil.copytree(REPO / "segqual_lite", src / "segqual_lite")
    shutil.copytree(REPO / "results" / "reference", src / "results" / "reference")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)


def test_installing_the_package_keeps_an_existing_torch(tmp_path):
    """pip's dry run of installing the package, in an environment that has Colab's torch
    and torchvision (other versions than this project's; their metadata only) and every
    other package of this one: nothing but the package itself is to be installed."""
    colab = tmp_path / "colab"
    venv.create(colab, with_pip=False)
    python = colab / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    _fake_distribution(site, "torch", "2.3.1+cu121", ["filelock", "typing-extensions"])
    _fake_distribution(site, "torchvision", "0.18.1+cu121", ["numpy", "torch==2.3.1", "pillow"])
    # Found after the fakes: this environment's packages stand for the rest of Colab's.
    (site / "the_rest.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    src = tmp_path / "segqual-lite"  # a copy: building the metadata writes into the tree
    _copy_source(src)
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run"]
    done = subprocess.run(
        [*pip, "--no-index", "--no-build-isolation", "--report", str(report), str(src)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr  # --no-index: anything to fetch fails here
    installs = {
        i["metadata"]["name"]: i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    assert installs == {"segqual-lite": PYPROJECT["version"]}


def test_the_install_cell_brings_everything_the_chapters_import():
    """Every package that the package or a chapter imports is a dependency of the
    package (so the chapters' install cell is all a Colab user runs), or an optional one
    imported only where it is needed (submitit, for ``reproduce --executor``)."""
    declared = {_name(r) for r in PYPROJECT["dependencies"]}
    optional = {_name(r) for extra in PYPROJECT["optional-dependencies"].values() for r in extra}
    distributions = importlib.metadata.packages_distributions()
    files = [*(REPO / "segqual_lite").rglob("*.py"), *(REPO / "notebooks").glob("[0-9]*.py")]
    undeclared, eager_optional = set(), set()
    for path in files:
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in {m.split(".")[0] for m in modules} - {"segqual_lite"}:
                if module in sys.stdlib_module_names:
                    continue
                names = {_name(d) for d in distributions.get(module, [module])}
                if names & optional and id(node) in top_level:
                    eager_optional.add(f"{path.name}: {module}")
                elif not names & (declared | optional):
                    undeclared.add(f"{path.name}: {module}")
    assert not undeclared, f"imported but not in pyproject's dependencies: {sorted(undeclared)}"
    assert not eager_optional, f"optional packages imported at module level: {eager_optional}"
    for source in sorted((REPO / "notebooks").glob("[0-9]*.py")):
        cells = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
        installs = [c for c in cells if "pip" in c]
        assert len(installs) == 1 and '"install", "-q", f"git+{REPO_URL}"' in installs[0]


def test_an_installed_package_used_elsewhere_loads_every_shipped_reference(tmp_path):
    """A plain (non-editable) install, as the install cell makes on Colab, used from a
    folder outside the repository: every reference under results/reference loads."""
    src, target, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    _copy_source(src)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run([*pip, "--target", str(target), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(src)  # nothing of the source tree is left to find
    elsewhere.mkdir()
    shipped = sorted(p.parent.name for p in (REPO / "results" / "reference").glob("*/run.json"))
    assert {"tiny", "tiny-overfit"} <= set(shipped)
    script = (
        "import sys, segqual_lite\n"
        "from segqual_lite.config import get_profile\n"
        "from segqual_lite.reference import load_reference\n"
        "assert segqual_lite.__file__.startswith(sys.argv[1]), segqual_lite.__file__\n"
        "for name in sys.argv[2:]:\n"
        "    ref = load_reference(get_profile(name))\n"
        "    print(name, len(ref.seeds), len(ref.predictions), ref.folder.parent.name)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(target), *shipped],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for line, name in zip(done.stdout.splitlines(), shipped, strict=True):
        profile, seeds, rows, base = line.split()
        assert profile == name and int(seeds) >= 16 and int(rows) > 0 and base == "references"
