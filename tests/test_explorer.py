import ipywidgets as widgets
import numpy as np
import pytest
import torch

from segqual_lite.explorer import explorer_cases, render_case, uncertainty_explorer
from segqual_lite.segment import SegmentationSet


def _set(n=7, size=8):
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    masks[:, 2:6, 2:6] = 1
    return SegmentationSet(
        [f"ISIC_{i:07d}" for i in range(n)],
        torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
        masks,
        masks,
        torch.rand(n, size, size, generator=g),
        np.linspace(0.1, 0.95, n)[::-1].copy(),  # image 0 best, image n-1 worst
    )


def test_cases_run_from_the_best_to_the_worst():
    seg = _set()
    cases = explorer_cases({"max_prob": seg}, {"max_prob": np.full(7, 0.8)}, per_method=3)
    picked = cases["max_prob"]
    assert [c.label for c in picked] == ["best", "typical", "worst"]
    assert [c.image_id for c in picked] == ["ISIC_0000000", "ISIC_0000003", "ISIC_0000006"]
    assert picked[0].true_jaccard == pytest.approx(0.95)
    assert render_case(picked[0])[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("wiring", ["static", "live"])
def test_both_wirings_show_the_chosen_case(wiring):
    seg = _set()
    cases = explorer_cases({"a": seg, "b": seg}, {"a": np.zeros(7), "b": np.ones(7)}, 2)
    box = uncertainty_explorer(cases, wiring=wiring)
    picker, slider = box.children[0].children
    assert list(picker.options) == ["a", "b"] and slider.max == 1
    if wiring == "static":
        outer = box.children[1]
        assert isinstance(outer, widgets.Stack) and len(outer.children) == 2
        assert all(len(inner.children) == 2 for inner in outer.children)
    else:
        image = box.children[1]
        first = image.value
        slider.value = 1
        assert image.value != first  # redrawn for the other case
    with pytest.raises(ValueError, match="wiring"):
        uncertainty_explorer(cases, wiring="magic")
