"""How many seeds does the reference run need? Power and coverage of the book's interval.

Prints, from simulation (:func:`segqual_lite.power.power` and
:func:`segqual_lite.power.simulate_coverage`):

1. the power to resolve a true AUROC gain of ``--effect`` points (the share of simulated
   runs of k seeds whose 95% interval lies above 0), for per-seed spreads ``--seed-sd``
   and a test-image spread of ``--image-ratio`` times the per-seed one, k = 3 to 28;
2. the coverage of the t interval and of the former percentile bootstrap with no effect
   at all, at 3 seeds and at ``--seeds`` seeds.

    python benchmarks/seed_power.py [--effect 2] [--seed-sd 1.7 2.3 2.9] [--seeds 20]

The defaults are the spreads measured on the tiny profile (book/analysis_plan.md).
"""

from __future__ import annotations

import argparse

from segqual_lite.power import power, simulate_coverage

KS = (3, 8, 12, 16, 20, 24, 28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--effect", type=float, default=2.0, help="AUROC points")
    parser.add_argument("--seed-sd", type=float, nargs="+", default=[1.7, 2.3, 2.9])
    parser.add_argument("--image-ratio", type=float, nargs="+", default=[0.1, 0.2])
    parser.add_argument("--seeds", type=int, default=20, help="N of the reference run")
    args = parser.parse_args()
    print(f"power for a true gain of {args.effect:g} AUROC points (share of runs resolving it)")
    print(f"{'seed sd':>8s} {'image sd':>9s} " + " ".join(f"k={k:<4d}" for k in KS))
    for sd in args.seed_sd:
        for ratio in args.image_ratio:
            cells = " ".join(f"{power(args.effect, sd, sd * ratio, k):6.2f}" for k in KS)
            print(f"{sd:8.1f} {sd * ratio:9.2f} {cells}")
    print("\ncoverage of the 95% intervals with no effect (share of runs covering 0)")
    for sd in args.seed_sd:
        for ratio in args.image_ratio:
            for k in (3, args.seeds):
                c = simulate_coverage(k, sd, sd * ratio, n_sim=2000)
                print(
                    f"seed sd {sd:.1f}, image sd {sd * ratio:.2f}, k={k:2d}: "
                    f"t {c['t']:.3f}, bootstrap {c['bootstrap']:.3f}"
                )


if __name__ == "__main__":
    main()
