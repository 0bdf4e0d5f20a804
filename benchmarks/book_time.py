"""The book's time budget table, from the accounting of the last ``make book``.

    python benchmarks/book_time.py [--build _build]

Reads ``<build>/timings.json`` (per chapter: its wall time split into items) and
``<build>/grid-timings.json`` (the grid trained first by worker processes: its wall time
and worker-seconds by kind), and prints one line per chapter with its wall time and its
time by kind, then the grid. Run ``git clean -xdfq -e .venv && time make book`` first for
a cold build. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

COLUMNS = {
    "kernel start and papermill": "kernel",
    "set-up cells (imports)": "imports",
    "train f": "train f",
    "train g": "train g",
    "maps": "maps",
    "rca": "rca",
    "figure cells": "figures",
    "exercise cells": "exercises",
}


def kind(item: str) -> str:
    name = item.split(":")[0]
    if item.endswith("(exercise)"):
        return "exercises"
    return COLUMNS.get(name, "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", type=Path, default=Path("_build"))
    args = parser.parse_args()
    chapters = json.loads((args.build / "timings.json").read_text())
    heads = [*dict.fromkeys(COLUMNS.values()), "other"]
    print(f"{'chapter':24s} {'wall':>7s} " + " ".join(f"{h:>9s}" for h in heads))
    totals: dict[str, float] = defaultdict(float)
    for chapter, items in chapters.items():
        row: dict[str, float] = defaultdict(float)
        for item, seconds in items.items():
            row[kind(item)] += seconds
        for h, s in row.items():
            totals[h] += s
        wall = sum(items.values())
        cells = " ".join(f"{row.get(h, 0.0):9.1f}" for h in heads)
        print(f"{Path(chapter).name:24s} {wall:7.1f} {cells}")
    cells = " ".join(f"{totals.get(h, 0.0):9.1f}" for h in heads)
    print(f"{'all chapters (serial s)':24s} {sum(totals.values()):7.1f} {cells}")
    grid = args.build / "grid-timings.json"
    if grid.exists():
        print("\ngrid, trained before the chapters:")
        for item, seconds in json.loads(grid.read_text()).items():
            print(f"  {item:40s} {seconds:7.1f} s")
    info = args.build / "build-info.json"
    if info.exists():
        print(f"\nwhole build (wall): {json.loads(info.read_text())['seconds']:.1f} s")


if __name__ == "__main__":
    main()
