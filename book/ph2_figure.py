"""Figure 2 on PH2 for chapter 10: four test lesions of the PH2 reference's first seed
(the best, the median, a poor and the worst segmentation of the Max Probability U-Net),
each method's segmentation above its uncertainty map, with the database's citation.

    make ph2-figure PH2=DIR      # python book/ph2_figure.py --data DIR

PH2's images are not shipped with the book, so the site cannot draw this figure when it
is built; this script draws it once where the database is, and writes it beside the
reference (``results/reference/ph2/figure2.png``, atomically; the book's page
``book/ph2_lesions.md`` shows it) with its provenance
(``figure2.json``: the commit, the environment, the data's fingerprint, the lesions
shown and each method's Jaccard on them, and whether these U-Nets reproduce the
reference's seed exactly). The README of the database allows a few example lesions in a
figure, each with the citation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference" / "ph2"


def main() -> None:
    import numpy as np
    from PIL import Image

    from segqual_lite.config import fix_threads, get_profile, pick_device
    from segqual_lite.data import prepare_data
    from segqual_lite.data.ph2 import PH2_CITATION, ph2_fingerprint
    from segqual_lite.provenance import environment
    from segqual_lite.reference import current_commit, load_reference
    from segqual_lite.rows import METHODS
    from segqual_lite.segment import segment_split
    from segqual_lite.store import atomic_path
    from segqual_lite.viz import figure2_cases, plot_figure2

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the PH2 folder")
    args = parser.parse_args()
    fix_threads()  # the reference's threads per process: else other floats, other U-Nets
    profile = get_profile("ph2")
    reference = load_reference(profile)
    if reference is None:
        raise SystemExit(f"no PH2 reference in {REFERENCE}: `make reference PROFILE=ph2` first")
    seed = reference.seeds[0]
    root = prepare_data(profile, args.data)
    device = pick_device()
    sets = {m: segment_split(profile, m, seed, root, "test", device) for m in METHODS}
    shown = figure2_cases(sets["max_prob"].jaccard)
    ids = [sets["max_prob"].ids[i] for i in shown]

    # The reference's true Jaccard of the same masks: equal when this machine computes
    # the reference's floats.
    rows = reference.predictions[reference.predictions["seed"] == seed]
    gaps = []
    for method, seg in sets.items():
        truth = rows[rows["method"] == method].set_index("image_id")["true_jaccard"]
        gaps.append(float(np.max(np.abs(truth.loc[seg.ids].to_numpy() - seg.jaccard))))

    fig = plot_figure2(sets)
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    fig.text(
        0.5,
        0.005,
        f"Images and expert masks: the PH2 database ({PH2_CITATION.rstrip('.')}).",
        ha="center",
        va="bottom",
        fontsize=6,
        wrap=True,
    )
    with atomic_path(REFERENCE / "figure2.png") as tmp:
        fig.savefig(tmp, dpi=150)  # the site's figures' resolution (viz.PAGE_WIDTH)
        with Image.open(tmp) as drawn:  # 256 colours: a third of the bytes, the same look
            drawn.convert("RGB").quantize(256).save(tmp, dpi=(150, 150), optimize=True)
    record = {
        "commit": current_commit(),
        "environment": environment(device.type),
        "profile": profile.name,
        "seed": seed,
        "data": {"name": "PH2", "citation": PH2_CITATION, "fingerprint": ph2_fingerprint(root)},
        "lesions": ids,
        "jaccard": {m: [round(float(s.jaccard[i]), 4) for i in shown] for m, s in sets.items()},
        "matches_reference": max(gaps) < 1e-6,
        "largest_jaccard_difference": max(gaps),
    }
    with atomic_path(REFERENCE / "figure2.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {REFERENCE / 'figure2.png'}: lesions {', '.join(ids)}, seed {seed}")
    print(f"same masks as the reference's seed {seed}: {record['matches_reference']}")


if __name__ == "__main__":
    main()
