"""Build the book: execute every chapter once with papermill, then render with Jupyter Book.

    python book/build.py [--profile tiny] [--out _build]

1. Web assets. The ipywidgets HTML manager (``embed.js`` and its fonts) and MathJax are
   fetched with ``npm pack`` (pinned versions, cached under ``<out>/npm``) and served by
   the site itself, so pages work with no network.
2. Pairs. Each chapter's pair (``notebooks/NN_*.py``, the source, and the committed
   ``.ipynb``) is synchronised with jupytext, the newer side's cells winning, so the build
   shows an edit made on either side (and the ``.ipynb`` that Colab opens has it too).
   Staging. ``_config.yml``, ``_toc.yml``, ``book/`` and the chapters of the table of
   contents are copied to ``<out>/stage``; paths there equal paths in the repository, so
   the Colab links point at the committed ``.ipynb`` files.
3. Execution. First the grid of the results chapters (every row, every seed, and chapter
   10's counterfactual unless the profile's reference run holds it) is trained and
   segmented by ``reproduce --beyond [--counterfactual] --workers N`` in N single-threaded processes
   (N = the CPU count), so the chapters mostly load. Then papermill runs each chapter
   exactly once, injecting ``profile``, in N processes side by side; the injected-parameters
   cell is tagged ``remove-cell``. A chapter whose source, package code and profile are
   unchanged since its last execution is not run again, and the grid runs only when a
   results chapter must. Kernels talk to papermill over local IPC sockets and are shut
   down without an interrupt, so a healthy build logs no warning; a failing chapter
   stops the build with papermill's failing cell and traceback.
4. Rendering. Jupyter Book builds the staged copy with execution off into ``<out>/html``.
5. Accounting. Each executed chapter's wall time is split into kernel start, set-up
   (imports), the package's timed phases (data, each model trained or loaded, maps, g,
   RCA, figures saved; :mod:`segqual_lite.timing`), figure cells, exercises and other
   cells, and written to ``<out>/timings.json``; the grid's wall time and its
   worker-seconds by kind go to ``<out>/grid-timings.json``. The largest items are
   printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import nbformat
import papermill
import yaml
from jupyter_client.manager import AsyncKernelManager
from jupytext.cli import jupytext as jupytext_cli
from traitlets import Unicode

from segqual_lite.config import PROFILES, get_profile
from segqual_lite.cost import grid_cost
from segqual_lite.data import prepare_data
from segqual_lite.experiment import counterfactual_jobs
from segqual_lite.reference import reference_folder
from segqual_lite.rows import CONTROL_ROWS, EXTENDED_ROWS, TABLE_ROWS
from segqual_lite.scheduler import grid_jobs, pending_jobs
from segqual_lite.timing import TIMINGS_ENV  # where the package appends its phases

REPO = Path(__file__).resolve().parents[1]
KERNEL = "segqual-lite"
FINGERPRINT_KEY = "segqual_build_fingerprint"
TIMINGS_KEY = "segqual_timings"
SOLUTION_START = re.compile(r"```\{solution-start\}")
SOLUTION_END = re.compile(r"```\{solution-end\}")
# npm package -> (folder inside the package, folder on the site)
WEB_ASSETS = {
    "@jupyter-widgets/html-manager@1.0.15": ("package/dist", "_widgets"),
    "mathjax@3.2.2": ("package/es5", "_mathjax"),
}


def log(msg: str) -> None:
    print(f"[book] {msg}", flush=True)


class QuietKernelManager(AsyncKernelManager):
    """A kernel manager for papermill whose kernels need no TCP port (IPC sockets in
    Jupyter's runtime folder, so the kernel has no unencrypted transport to warn about)
    and are shut down by request alone: jupyter_client interrupts a kernel before its
    shutdown request, and an idle kernel logs that interrupt as an error."""

    transport = Unicode("ipc")

    def _ip_default(self) -> str:
        # The sockets' path prefix, one per kernel: jupyter_client's default is a fixed
        # name in the current folder, which kernels started side by side would share.
        return os.path.join(tempfile.gettempdir(), f"segqual-kernel-{uuid.uuid4().hex}-ipc")

    async def _async_interrupt_kernel(self) -> None:
        if not self.shutting_down:  # a timeout's interrupt still reaches the kernel
            await super()._async_interrupt_kernel()


def run_notebook(src: Path, dst: Path, parameters: dict, cwd: Path) -> None:
    """Execute the notebook ``src`` into ``dst`` with papermill on the book's kernel,
    injecting ``parameters``; a failing cell raises papermill's error, which names the
    cell and carries its traceback."""
    papermill.execute_notebook(
        str(src),
        str(dst),
        parameters=parameters,
        kernel_name=KERNEL,
        cwd=str(cwd),
        progress_bar=False,
        request_save_on_cell_execute=False,
        kernel_manager_class=QuietKernelManager,
    )


def sync_pairs(sources: list[Path]) -> list[Path]:
    """Synchronise each jupytext pair of ``sources`` (``notebooks/NN_*.py`` and its
    ``.ipynb``) with ``jupytext --sync``: the cells of the newer file win, the outputs
    of the ``.ipynb`` stay. Returns the files that changed."""
    pairs = [f for src in sources for f in (src, src.with_suffix(".ipynb")) if f.exists()]
    before = {f: f.read_bytes() for f in pairs}
    for src in sources:
        jupytext_cli(["--sync", "--quiet", str(src)])
    changed = [f for f in pairs if f.read_bytes() != before[f]]
    for f in changed:
        log(f"{f.relative_to(REPO) if f.is_relative_to(REPO) else f}: updated from its pair")
    return changed


def fetch_web_assets(out: Path) -> Path:
    """npm-pack each pinned package once and unpack the files the site serves."""
    cache, web = out / "npm", out / "web_assets"
    cache.mkdir(parents=True, exist_ok=True)
    for spec, (inner, target) in WEB_ASSETS.items():
        name, version = spec.rsplit("@", 1)
        tarball = cache / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
        if not tarball.exists():
            log(f"npm pack {spec}")
            subprocess.run(
                ["npm", "pack", spec, "--silent", "--pack-destination", str(cache)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        dest = web / target
        stamp = dest / ".from"
        if stamp.exists() and stamp.read_text() == tarball.name:
            continue
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        prefix = inner.rstrip("/") + "/"
        with tarfile.open(tarball) as tf:
            for member in tf.getmembers():
                if member.isfile() and member.name.startswith(prefix):
                    member.name = member.name[len(prefix) :]
                    tf.extract(member, dest, filter="data")
        stamp.write_text(tarball.name)
    # Our own small scripts for the widget pages (book/web), beside the widget manager.
    for script in sorted((REPO / "book" / "web").glob("*.js")):
        shutil.copy2(script, web / "_widgets" / script.name)
    return web


def toc_chapters(toc_path: Path) -> list[str]:
    """Every file named in ``_toc.yml``, in reading order (without extension)."""
    toc = yaml.safe_load(toc_path.read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def package_digest() -> str:
    """The package's code and the reference runs the chapters read (results/reference)."""
    h = hashlib.sha256()
    files = [*(REPO / "segqual_lite").rglob("*.py"), *(REPO / "results").rglob("*")]
    for p in sorted(f for f in files if f.is_file()):
        h.update(p.relative_to(REPO).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def stage_sources(stage: Path, chapters: list[str], web: Path) -> list[str]:
    """Copy the book's text sources into ``stage``; return the notebook chapters."""
    stage.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO / name, stage / name)
    shutil.copytree(
        REPO / "book",
        stage / "book",
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(
            "build.py", "student.py", "ph2_figure.py", "web", "__pycache__"
        ),
    )
    # Figures shipped with the reference runs, which a page shows (book/ph2_lesions.md).
    for figure in sorted((REPO / "results" / "reference").glob("*/*.png")):
        target = stage / figure.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(figure, target)
    shutil.copytree(web, stage / "_web", dirs_exist_ok=True)
    notebooks = []
    for chapter in chapters:
        if (REPO / f"{chapter}.ipynb").exists():
            notebooks.append(chapter)
        elif not (REPO / f"{chapter}.md").exists():
            raise FileNotFoundError(f"_toc.yml names {chapter}, but neither .ipynb nor .md exists")
    return notebooks


def chapter_fingerprint(chapter: str, profile: str, package: str) -> str:
    """What a chapter's executed copy depends on: its source, the package
    (:func:`package_digest`, computed once per build) and the profile."""
    src = REPO / f"{chapter}.ipynb"
    return hashlib.sha256(
        b"|".join([src.read_bytes(), package.encode(), profile.encode()])
    ).hexdigest()


def is_current(chapter: str, stage: Path, fingerprint: str) -> bool:
    """Whether the stage holds an executed copy of ``chapter`` with this fingerprint."""
    dst = stage / f"{chapter}.ipynb"
    return (
        dst.exists()
        and nbformat.read(dst, as_version=4).metadata.get(FINGERPRINT_KEY) == fingerprint
    )


def execute_chapter(
    chapter: str, stage: Path, profile: str, env_dir: Path, fingerprint: str
) -> None:
    """Run one chapter with papermill into the stage, stamped with ``fingerprint``."""
    src, dst = REPO / f"{chapter}.ipynb", stage / f"{chapter}.ipynb"
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.stem + ".running.ipynb")
    phases = dst.with_name(dst.stem + ".phases.jsonl")
    phases.unlink(missing_ok=True)
    os.environ[TIMINGS_ENV] = str(phases)
    start = time.perf_counter()
    log(f"{chapter}: executing (profile={profile})")
    try:
        run_notebook(src, tmp, {"profile": profile}, env_dir)
    finally:
        os.environ.pop(TIMINGS_ENV, None)
    wall = time.perf_counter() - start
    nb = nbformat.read(tmp, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    records = (
        [json.loads(line) for line in phases.read_text().splitlines()] if phases.exists() else []
    )
    phases.unlink(missing_ok=True)
    nb.metadata[FINGERPRINT_KEY] = fingerprint
    nb.metadata[TIMINGS_KEY] = account_chapter(nb, records, wall)
    nbformat.write(nb, tmp)
    os.replace(tmp, dst)
    log(f"{chapter}: done in {wall:.1f} s")


def _execute_unit(chapters: list[str], stage: Path, profile: str, fingerprints: dict) -> None:
    for chapter in chapters:
        execute_chapter(chapter, stage, profile, REPO, fingerprints[chapter])


def reads_grid(chapter: str) -> bool:
    """Whether ``chapter`` reads the grid's results (it calls ``run_grid``)."""
    return "run_grid(" in (REPO / f"{chapter}.py").read_text()


def work_units(chapters: list[str], estimate: dict[str, float]) -> list[list[str]]:
    """``chapters`` as units of work for processes side by side, longest first (each
    process takes the next unit when it is free). ``estimate``: seconds per chapter, from
    the last build (10 when unknown). The chapters that write the results folder (they
    call ``run_grid``) form one unit, in reading order, so the folder ends as the last
    of them leaves it."""
    grid = [c for c in chapters if reads_grid(c)]
    units = [grid] if grid else []
    units += [[c] for c in chapters if c not in grid]
    return sorted(units, key=lambda unit: -sum(estimate.get(c, 10.0) for c in unit))


def grid_estimate(profile: str, workers: int, counterfactual: bool) -> dict:
    """The cost model's estimate (:func:`segqual_lite.cost.grid_cost` on this CPU) of the
    jobs of the grid that :func:`prepare_grid` runs and the cache does not hold yet, for
    the timing summary."""
    p = get_profile(profile)
    rows = (*TABLE_ROWS, *CONTROL_ROWS, *EXTENDED_ROWS)
    jobs = grid_jobs(p, rows, p.seeds, prepare_data(p))
    jobs |= counterfactual_jobs(p) if counterfactual else {}
    return grid_cost(p, pending_jobs(jobs, p), workers, "cpu")


def prepare_grid(profile: str, out: Path, workers: int) -> dict[str, float]:
    """Train and segment everything of the results chapters' grid first, in ``workers``
    single-threaded processes (``reproduce --beyond --workers``); the chapters then load
    it. Returns its accounting: wall time, then worker-seconds by kind of phase."""
    phases = out / "grid.phases.jsonl"
    phases.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "segqual_lite", "reproduce", "--profile", profile, "--beyond"]
    # Chapter 10 reads the counterfactual from the reference run when the profile has one.
    counterfactual = not reference_folder(profile)
    cmd += ["--counterfactual"] if counterfactual else []
    estimate = grid_estimate(profile, workers, counterfactual)
    cmd += ["--workers", str(workers), "--out", str(out / "grid-results")]
    log(f"grid: training and segmenting in {workers} worker processes")
    start = time.perf_counter()
    subprocess.run(
        cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, TIMINGS_ENV: str(phases)}
    )
    wall = time.perf_counter() - start
    todo = len(estimate["seconds"])
    log(f"grid: done in {wall:.1f} s (estimated {estimate['wall_seconds']:.0f} s for {todo} jobs)")
    kinds: dict[str, float] = defaultdict(float)
    for line in phases.read_text().splitlines() if phases.exists() else []:
        record = json.loads(line)
        kinds[f"worker-seconds: {record['kind']}"] += record["seconds"]
    return {
        f"wall ({workers} workers)": round(wall, 2),
        f"estimated wall ({workers} workers)": round(estimate["wall_seconds"], 2),
        "estimated worker-seconds": round(estimate["worker_seconds"], 2),
        **{k: round(v, 2) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
    }


def _cell_kind(cell, in_exercise: bool, setup_done: bool) -> str:
    if in_exercise:
        return "exercise cells"
    if not setup_done:
        return "set-up cells (imports)"
    if any("image/png" in out.get("data", {}) for out in cell.get("outputs", [])):
        return "figure cells"
    return "other cells"


def account_chapter(nb, records: list[dict], wall: float) -> dict[str, float]:
    """Split an executed chapter's ``wall`` seconds into items, largest first.

    Cells run from papermill's start to end times; the package's phases (``records``,
    see :mod:`segqual_lite.timing`) are charged to the cell during which they ended and
    subtracted from it. Items are the phases by kind and name (suffixed ``(exercise)``
    inside a solution), the rest of each cell by its kind (set-up up to the cell that
    calls ``start_chapter``, exercise, figure, other) and "kernel start and papermill",
    the wall time outside every cell."""
    items: dict[str, float] = defaultdict(float)
    cells, in_exercise, setup_done = [], False, False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            in_exercise = (in_exercise or bool(SOLUTION_START.search(cell.source))) and not (
                SOLUTION_END.search(cell.source)
            )
            continue
        meta = cell.metadata.get("papermill", {})
        if meta.get("start_time") and meta.get("end_time"):
            span = (
                datetime.fromisoformat(meta["start_time"]).timestamp(),
                datetime.fromisoformat(meta["end_time"]).timestamp(),
            )
            cells.append([span, _cell_kind(cell, in_exercise, setup_done), span[1] - span[0]])
        setup_done = setup_done or "start_chapter(" in cell.source
    for record in records:
        # the last cell that had started when the phase ended
        owner = max(
            (c for c in cells if c[0][0] <= record["end"]), default=None, key=lambda c: c[0][0]
        )
        suffix = " (exercise)" if owner and owner[1] == "exercise cells" else ""
        items[f"{record['kind']}: {record['name']}{suffix}"] += record["seconds"]
        if owner:
            owner[2] -= record["seconds"]
    for _, kind, rest in cells:
        items[kind] += max(rest, 0.0)
    items["kernel start and papermill"] = max(wall - sum(c[0][1] - c[0][0] for c in cells), 0.0)
    return {k: round(v, 2) for k, v in sorted(items.items(), key=lambda kv: -kv[1])}


def report_timings(stage: Path, notebooks: list[str], out: Path, top: int = 10) -> list:
    """Write every chapter's accounting to ``<out>/timings.json`` and print the
    ``top`` largest items of the whole book (chapters kept from an earlier build keep the
    accounting of the run that executed them)."""
    per_chapter = {}
    for chapter in notebooks:
        path = stage / f"{chapter}.ipynb"
        if path.exists():
            per_chapter[chapter] = nbformat.read(path, as_version=4).metadata.get(TIMINGS_KEY, {})
    (out / "timings.json").write_text(json.dumps(per_chapter, indent=1))
    grid_path = out / "grid-timings.json"
    if grid_path.exists():
        grid = json.loads(grid_path.read_text())
        log("grid: " + "; ".join(f"{item} {s:.1f} s" for item, s in grid.items()))
    flat = sorted(
        (
            (s, Path(ch).name, item)
            for ch, items in per_chapter.items()
            for item, s in items.items()
        ),
        reverse=True,
    )
    log(f"chapters: {sum(s for s, _, _ in flat):.1f} s of chapter time; the {top} largest items:")
    for seconds, chapter, item in flat[:top]:
        log(f"  {seconds:7.1f} s  {chapter}: {item}")
    kinds: dict[str, float] = defaultdict(float)
    for seconds, _, item in flat:
        kinds[item.split(":")[0] + (" (exercise)" if item.endswith("(exercise)") else "")] += (
            seconds
        )
    ranked = sorted(kinds.items(), key=lambda kv: -kv[1])
    log("chapter time by kind: " + "; ".join(f"{k} {s:.1f} s" for k, s in ranked))
    return flat


def render(stage: Path, out: Path) -> Path:
    """Jupyter Book on the staged copy; a full rebuild when the configuration changed."""
    jb_out = out / "jb"
    # Sphinx rewrites only pages whose source changed; a change to the configuration or to
    # a local extension must rewrite them all.
    h = hashlib.sha256()
    for p in [
        REPO / "_config.yml",
        REPO / "_toc.yml",
        *sorted((REPO / "book" / "_ext").glob("*.py")),
        *sorted((REPO / "book" / "_ext" / "static").glob("*")),
    ]:
        h.update(p.read_bytes())
    stamp = jb_out / "config-digest"
    full = not stamp.exists() or stamp.read_text() != h.hexdigest()
    cmd = [
        str(Path(sys.executable).with_name("jupyter-book")),
        "build",
        str(stage),
        "--path-output",
        str(jb_out),
        "--warningiserror",
        "--keep-going",
        *(["--all"] if full else []),
    ]
    log("jupyter-book build" + (" (all pages)" if full else ""))
    subprocess.run(cmd, check=True)
    stamp.write_text(h.hexdigest())
    html = out / "html"
    shutil.rmtree(html, ignore_errors=True)
    shutil.copytree(jb_out / "_build" / "html", html)
    return html


def previous_walls(out: Path) -> dict[str, float]:
    """Each chapter's wall time at the last build that executed it (empty at first)."""
    path = out / "timings.json"
    if not path.exists():
        return {}
    return {c: sum(items.values()) for c, items in json.loads(path.read_text()).items()}


def build(profile: str, out: Path, workers: int | None = None) -> Path:
    """Build the site (module docstring); ``workers`` processes share the work (default:
    the CPU count)."""
    workers = workers or os.cpu_count() or 1
    start = time.perf_counter()
    out = out.resolve()
    web = fetch_web_assets(out)
    stage = out / "stage"
    chapters = toc_chapters(REPO / "_toc.yml")
    sync_pairs([REPO / f"{c}.py" for c in chapters if (REPO / f"{c}.py").exists()])
    notebooks = stage_sources(stage, chapters, web)
    # Chapters write data and models under <out>/artifacts (read from SEGQUAL_HOME).
    home = out / "artifacts"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "SEGQUAL_HOME": str(home),
        "SEGQUAL_PROGRESS": "0",  # progress bars would only litter the rendered pages
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        package = package_digest()
        fingerprints = {c: chapter_fingerprint(c, profile, package) for c in notebooks}
        pending = [c for c in notebooks if not is_current(c, stage, fingerprints[c])]
        for chapter in sorted(set(notebooks) - set(pending)):
            log(f"{chapter}: unchanged, reusing its executed copy")
        if pending:
            chapters_start = time.perf_counter()
            if any(reads_grid(c) for c in pending):
                grid = prepare_grid(profile, out, workers)
                (out / "grid-timings.json").write_text(json.dumps(grid, indent=1))
            estimate = previous_walls(out)
            # fork: the children need this module, which the tests load from its path
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                runs = [
                    pool.submit(_execute_unit, unit, stage, profile, fingerprints)
                    for unit in work_units(pending, estimate)
                ]
                for run in runs:
                    run.result()
            log(f"grid and chapters executed in {time.perf_counter() - chapters_start:.1f} s")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    render_start = time.perf_counter()
    html = render(stage, out)
    report_timings(stage, notebooks, out)
    log(f"rendered in {time.perf_counter() - render_start:.1f} s")
    log(f"site in {html} ({time.perf_counter() - start:.1f} s)")
    (out / "build-info.json").write_text(
        json.dumps({"profile": profile, "seconds": round(time.perf_counter() - start, 1)})
    )
    return html


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="tiny", choices=list(PROFILES))
    parser.add_argument("--out", type=Path, default=REPO / "_build")
    parser.add_argument(
        "--workers", type=int, default=None, help="processes side by side (default: CPU count)"
    )
    args = parser.parse_args(argv)
    build(args.profile, args.out, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
