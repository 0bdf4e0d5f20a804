"""Chapter 10's Conclusions: the verdict table and paragraphs follow the numbers."""

import numpy as np
from helpers import prediction_records

from segqual_lite.conclusions import (
    Evidence,
    conclusions_markdown,
    counterfactual_frame,
    verdict_table,
)
from segqual_lite.rows import METHODS, control_of
from segqual_lite.stats import compare_rows
from segqual_lite.tables import predictions_frame


def _run(gain: dict[str, float], seeds=range(8), n=150):
    """Every uncertainty row's g predicts better than its control by ``gain[row]``
    (noise scale removed from the control's), a little differently on each seed."""
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        true = rng.uniform(0.3, 1.0, n)
        for row in METHODS:
            noise = rng.standard_normal(n)
            jitter = 0.01 * rng.standard_normal()
            for method, scale in ((control_of(row), 0.2), (row, 0.2 - gain[row] + jitter)):
                rows += prediction_records(method, seed, true, true + scale * noise)
    return predictions_frame(rows)


def _evidence(with_gain, without_gain, gap=-0.01):
    comparisons = compare_rows(_run(with_gain), METHODS, n_boot=200)
    counterfactual = compare_rows(_run(without_gain), METHODS, n_boot=200)
    return Evidence(comparisons, counterfactual, 8, 90.0, gap, 3, {r: 0.2 for r in METHODS})


def test_the_conclusions_follow_the_verdicts():
    strong = dict.fromkeys(METHODS, 0.1)
    evidence = _evidence({**strong, "hcnn": 0.0}, {**strong, "max_prob": 0.0, "hcnn": 0.0})
    table = verdict_table(evidence)
    assert list(table["paper's finding"]) == ["holds", "holds", "not shown", "holds"]
    text = conclusions_markdown(evidence)
    assert "holds for Max Probability, MC-dropout and LCE" in text
    assert "For HCNN no AUROC gain is resolved" in text
    assert "margin for Max Probability (RMSE, AUROC and detection error)" in text
    assert "does not depend" not in text and "stays resolved without the rims" in text
    assert "Without the rims, 6 of 12 comparisons still resolve a gain: MC-dropout" in text
    assert "no better on its training images" in text
    assert "3 seeds resolve an AUROC comparison in 20% of draws" in text
    frame = counterfactual_frame(evidence.comparisons, evidence.counterfactual)
    assert len(frame) == 12 and "the rims carry the gain" in set(frame["verdict"])


def test_no_row_holding_is_said_plainly():
    none = dict.fromkeys(METHODS, 0.0)
    text = conclusions_markdown(_evidence(none, none, gap=0.05))
    assert "holds for no row" in text
    assert "better on its training images than on the test images by 0.050" in text
    assert "no resolved gain whose source it could show" in text
    assert "decides nothing for any of the 12" in text
    assert "Without the rims, no row's gain over its control is resolved, on any metric" in text
