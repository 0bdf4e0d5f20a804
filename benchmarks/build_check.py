"""How often the reference check fails a healthy build on another CPU, and how often it
catches a broken row, by simulation from each shipped reference's seeds
(:func:`segqual_lite.power.simulate_build_check`; ``book/analysis_plan.md``).

    python benchmarks/build_check.py [--profiles tiny tiny-overfit] [--sims 20000]

Prints, per reference: the number of rows x metrics checked, the false-failure rate
under a normal model, for this reference with builds resampled from its seeds, and with
reference and build both resampled; then, for each uncertainty row turned into its
no-uncertainty control (what a map of zeros does), the share of builds caught.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse

from segqual_lite.config import get_profile
from segqual_lite.power import simulate_build_check
from segqual_lite.reference import FAMILY_ALPHA, load_reference, seed_table
from segqual_lite.rows import METHODS, control_of

RATES = ("normal_false_failure", "resampled_false_failure", "bootstrap_false_failure")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", nargs="+", default=["tiny", "tiny-overfit"])
    parser.add_argument("--sims", type=int, default=20000)
    args = parser.parse_args()
    print(f"healthy builds of 3 seeds failing (nominal at most {FAMILY_ALPHA:.0%})")
    for name in args.profiles:
        reference = load_reference(get_profile(name))
        if reference is None:
            print(f"{name}: no reference")
            continue
        table = seed_table(reference.predictions)
        rates = simulate_build_check(table, n_sim=args.sims)
        cells = "  ".join(f"{r.removesuffix('_false_failure')} {rates[r]:.2%}" for r in RATES)
        print(f"{name} ({len(reference.seeds)} seeds, {rates['intervals']} intervals): {cells}")
        rows = [m for m in METHODS if m in table.index.get_level_values("method")]
        for row in rows:
            broken = simulate_build_check(
                table, n_sim=args.sims // 4, broken={row: control_of(row)}
            )
            print(f"    {row} as its control {control_of(row)}: caught {broken['caught']:.1%}")


if __name__ == "__main__":
    main()
