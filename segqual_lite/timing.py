"""Where a run's time goes: named phases, written down when the run asks for it.

The package wraps its costly steps in :func:`phase` (data, decoding, each model trained
or loaded, maps, g's predictions, RCA, figures saved). When the environment variable
``SEGQUAL_TIMINGS`` names a file, every phase appends one JSON line to it::

    {"kind": "train f", "name": "f[plain-seed0]", "seconds": 12.3, "total": 14.0, "end": ...}

``seconds`` is the phase's own time (its nested phases subtracted), so the lines of a
run add up to at most its wall time; ``total`` includes the nested phases; ``end`` is
the Unix time at which it ended (to find the notebook cell that ran it). The book
build sets the variable for each chapter and reports the largest items
(``_build/timings.json``). Without the variable, :func:`phase` only measures.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["TIMINGS_ENV", "phase"]

TIMINGS_ENV = "SEGQUAL_TIMINGS"
_open_phases: list[list[float]] = []  # per open phase: [start, time spent in children]


@contextmanager
def phase(kind: str, name: str = "") -> Iterator[None]:
    """Time the block as one ``kind`` of work (``"train f"``, ``"maps"``, ...) on ``name``."""
    start = time.perf_counter()
    _open_phases.append([start, 0.0])
    try:
        yield
    finally:
        _, children = _open_phases.pop()
        total = time.perf_counter() - start
        if _open_phases:
            _open_phases[-1][1] += total
        path = os.environ.get(TIMINGS_ENV)
        if path:
            record = {
                "kind": kind,
                "name": name,
                "seconds": total - children,
                "total": total,
                "end": time.time(),
            }
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")
