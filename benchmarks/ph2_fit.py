"""How well f fits PH2, and at what CPU cost, per number of epochs: how the ``ph2``
profile's ``epochs_f`` was chosen (``book/analysis_plan.md``), from f alone (no g, no
comparison of rows).

    python benchmarks/ph2_fit.py --data DIR [--epochs 20 40 80] [--seeds 0 1] [--workers 2]

Trains the plain U-Net of the ``ph2`` profile with each ``epochs_f`` and seed (one CPU
thread per process, cached under ``$SEGQUAL_HOME``) and prints, per variant, f's mean
Jaccard and failure share (J < 0.7) on its training and its test lesions, and the
worker-seconds it took. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor


def fit(epochs: int, seed: int, data: str) -> list[dict]:
    from segqual_lite.config import fix_threads, get_profile
    from segqual_lite.data import prepare_data
    from segqual_lite.segment import fit_frame

    fix_threads()
    profile = get_profile("ph2").overridden({"epochs_f": epochs})
    start = time.perf_counter()
    frame = fit_frame(profile, [seed], prepare_data(profile, data))
    return frame.assign(epochs_f=epochs, worker_s=time.perf_counter() - start).to_dict("records")


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the PH2 folder")
    parser.add_argument("--epochs", nargs="+", type=int, default=[20, 40, 80])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [(e, s, args.data) for e in args.epochs for s in args.seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        records = [r for rs in pool.map(fit, *zip(*jobs, strict=True)) for r in rs]
    frame = pd.DataFrame(records)
    table = frame.pivot_table(
        index="epochs_f", columns="split", values=["mean_jaccard", "failure_share"]
    )
    cost = frame.groupby("epochs_f")["worker_s"].mean()  # per seed; a cached f costs ~0
    print(f"f on PH2, mean over seeds {args.seeds} (failure: J < 0.7)")
    print("epochs_f  J train  J test  fail train  fail test  worker-s per seed")
    for epochs, row in table.iterrows():
        print(
            f"{epochs:8d}  {row['mean_jaccard', 'train']:.3f}    {row['mean_jaccard', 'test']:.3f}"
            f"   {row['failure_share', 'train']:.3f}       {row['failure_share', 'test']:.3f}"
            f"      {cost[epochs]:.0f}"
        )


if __name__ == "__main__":
    main()
