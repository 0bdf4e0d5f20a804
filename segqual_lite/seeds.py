"""Seeds as the command line, a profile and a chapter's ``overrides`` take them: integers
and ranges (``0-15``, ``0,2,5-7``, ``0 1 2``), checked before any work starts, and
written back short for a profile's name (``tiny+seeds=0-15``)."""

from __future__ import annotations

import re

__all__ = ["check_seeds", "parse_seeds", "seeds_text"]


def check_seeds(seeds: tuple[int, ...]) -> None:
    """Refuse an empty list of seeds, a negative seed or one given twice, naming it."""
    if not seeds:
        raise ValueError("no seeds given: name at least one, e.g. 0, 0-15 or 0,2,5-7")
    negative = [s for s in seeds if s < 0]
    if negative:
        raise ValueError(f"seed {negative[0]} is negative: seeds are 0, 1, 2, ...")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ValueError(
            f"seed {twice[0]} is given twice in {', '.join(map(str, seeds))}: name it once"
        )


def parse_seeds(spec: str | int | list | tuple) -> tuple[int, ...]:
    """Seeds from a list or a text of integers and ranges, in the order given:
    ``"0-15"`` (0 to 15, both included), ``"0,2,5-7"``, ``"0 1 2"`` or ``3``; refused
    with the reason for a range that runs backwards (``"5-2"``), a negative seed, a seed
    given twice or a word that is not a seed."""
    if isinstance(spec, int | list | tuple):
        items = [spec] if isinstance(spec, int) else list(spec)
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in items):
            raise ValueError(
                f"seeds {spec!r}: give integers, e.g. [0, 1, 2], or a text like '0-15'"
            )
        seeds = tuple(items)
    else:
        seeds = []
        for part in str(spec).replace(",", " ").split():
            start, dash, stop = part.partition("-")
            if not re.fullmatch(r"\d+(-\d+)?", part):
                raise ValueError(
                    f"seeds {spec!r}: {part!r} is neither a seed nor a range such as 0-15 "
                    "(seeds are integers from 0)"
                )
            if dash and int(stop) < int(start):
                raise ValueError(
                    f"seeds {spec!r}: the range {part} runs backwards; write {stop}-{start}"
                )
            seeds.extend(range(int(start), int(stop or start) + 1))
        seeds = tuple(seeds)
    check_seeds(seeds)
    return seeds


def seeds_text(seeds: tuple[int, ...]) -> str:
    """Seeds written short, runs as ranges: ``(0, 1, 2, 5, 7, 8)`` -> ``"0-2_5_7-8"``
    (``_`` between the parts, since ``,`` separates the fields of a profile's name)."""
    parts, start = [], None
    for i, s in enumerate(seeds):
        start = s if start is None else start
        if i + 1 == len(seeds) or seeds[i + 1] != s + 1:
            parts.append(f"{start}-{s}" if s != start else f"{s}")
            start = None
    return "_".join(parts)
