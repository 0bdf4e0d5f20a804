"""The analysis plan's verdicts, printed from the shipped reference run.

    python benchmarks/reference_verdicts.py [--profile tiny]

Prints the 12 comparisons of each uncertainty row with its control (mean improvement,
95% interval, outcome, share of seeds on which the row is better with its Wilson
interval), the counterfactual's gains and their differences with the verdict on the
rims, and the power at 3 seeds (the share of 3-seed draws from the reference that
resolve each comparison) (book/analysis_plan.md).
"""

from __future__ import annotations

import argparse

import pandas as pd

from segqual_lite.conclusions import counterfactual_frame
from segqual_lite.config import get_profile
from segqual_lite.power import power_curve
from segqual_lite.reference import load_reference
from segqual_lite.rows import METHODS, label
from segqual_lite.stats import compare_rows, comparisons_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="tiny")
    args = parser.parse_args()
    reference = load_reference(get_profile(args.profile))
    if reference is None:
        raise SystemExit(f"no reference for {args.profile!r}: run `make reference`")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    pd.set_option("display.max_colwidth", 40)
    comparisons = compare_rows(reference.predictions, METHODS)
    print(f"reference: {len(reference.seeds)} seeds, {reference.run['command']}")
    frame = comparisons_frame(comparisons).drop(columns=["per seed", "control"])
    print(frame.round(3).to_string(index=False))
    if reference.counterfactual is not None:
        counterfactual = compare_rows(reference.counterfactual, METHODS)
        print("\ncounterfactual (data without ambiguous rims)")
        print(counterfactual_frame(comparisons, counterfactual).to_string(index=False))
    print("\npower at 3 seeds (share of 2000 draws with replacement resolving the comparison)")
    for c in comparisons:
        row = power_curve(c, [3]).iloc[0]
        print(
            f"{label(c.row):16s} {c.metric:16s} resolved {row['resolved']:.0%}, "
            f"the wrong way {row['wrong_way']:.0%}"
        )


if __name__ == "__main__":
    main()
