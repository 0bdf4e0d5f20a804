import base64
import io
import re

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from PIL import Image

from segqual_lite.explorer import (
    explorer_lesions,
    lesion_filters,
    lesion_html,
    uncertainty_explorer,
)
from segqual_lite.segment import SegmentationSet

IDS = [f"ISIC_{i:07d}" for i in range(8)]


def _set(jaccard, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = len(jaccard)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    masks[:, 2:6, 2:6] = 1
    return SegmentationSet(
        IDS[:n],
        torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
        masks,
        masks,
        torch.rand(n, size, size, generator=g) * 0.5,  # max probability maps lie in [0, 0.5]
        np.asarray(jaccard, dtype=np.float64),
    )


def _two_methods():
    # Image 1 fails for max_prob only, image 4 for both, the other six pass everywhere.
    a = _set([0.9, 0.5, 0.8, 0.95, 0.2, 0.75, 0.85, 0.99])
    b = _set([0.9, 0.8, 0.8, 0.95, 0.6, 0.75, 0.85, 0.99], seed=1)
    predicted = {
        "max_prob": np.array([0.9, 0.8, 0.8, 0.9, 0.3, 0.5, 0.8, 0.9]),  # misses 1, alarms 5
        "lce": np.array([0.9, 0.8, 0.8, 0.9, 0.6, 0.8, 0.8, 0.9]),
    }
    return {"max_prob": a, "lce": b}, predicted


def test_every_failure_then_a_spread_of_passes():
    sets, predicted = _two_methods()
    hard = {IDS[1]: frozenset({"multi_blob"}), IDS[4]: frozenset({"low_contrast"})}
    lesions = explorer_lesions(sets, predicted, hard, passing=3)
    # Failures worst first (by the lowest Jaccard over the methods), then three passes
    # from the lowest to the highest Jaccard.
    assert [les.image_id for les in lesions] == [IDS[4], IDS[1], IDS[5], IDS[6], IDS[7]]
    assert lesions[0].failing() == ["max_prob", "lce"] and lesions[1].failing() == ["max_prob"]
    assert lesions[1].hard_cases == {"multi_blob"} and lesions[2].hard_cases == frozenset()
    view = lesions[1].methods["max_prob"]
    assert (view.true_jaccard, view.predicted_jaccard) == (0.5, 0.8)
    # Each map on one scale: max probability divided by its largest value, 1/2.
    np.testing.assert_allclose(view.map, sets["max_prob"].maps[1].numpy() * 2, rtol=1e-6)
    assert all(les.image.dtype == np.uint8 and les.image.shape == (3, 8, 8) for les in lesions)


def test_every_lesion_passes_when_no_sample_is_asked():
    sets, predicted = _two_methods()
    assert [les.image_id for les in explorer_lesions(sets, predicted, passing=0)] == [
        IDS[4],
        IDS[1],
    ]


def test_sets_of_different_images_are_refused():
    sets, predicted = _two_methods()
    sets["lce"].ids = list(reversed(sets["lce"].ids))
    with pytest.raises(ValueError, match="different test images"):
        explorer_lesions(sets, predicted)
    sets, predicted = _two_methods()
    predicted["lce"] = predicted["lce"][:3]
    with pytest.raises(ValueError, match=r"predicted\['lce'\] has 3 values for 8 images"):
        explorer_lesions(sets, predicted)


def test_filters_by_outcome_and_hard_case():
    sets, predicted = _two_methods()
    hard = {IDS[1]: frozenset({"multi_blob"}), IDS[4]: frozenset({"low_contrast"})}
    lesions = explorer_lesions(sets, predicted, hard, passing=3)
    ids = {
        name: [lesions[i].image_id for i in kept] for name, kept in lesion_filters(lesions).items()
    }
    assert ids == {
        "all": [IDS[4], IDS[1], IDS[5], IDS[6], IDS[7]],
        "failing (some method)": [IDS[4], IDS[1]],
        "passing (every method)": [IDS[5], IDS[6], IDS[7]],
        "g missed a failure": [IDS[1]],
        "g raised a false alarm": [IDS[5]],
        "hard case: low contrast": [IDS[4]],
        "hard case: multi blob": [IDS[1]],
        "no hard case": [IDS[5], IDS[6], IDS[7]],
    }
    # Real data: no hard cases, no hard-case filters.
    plain = lesion_filters(explorer_lesions(sets, predicted, passing=3))
    assert not [name for name in plain if "hard case" in name]


def test_a_lesion_shows_every_method_with_its_jaccards():
    sets, predicted = _two_methods()
    lesion = explorer_lesions(sets, predicted, passing=0)[1]
    page = lesion_html(lesion)
    assert "ISIC_0000001" in page and "fails for 1 of 2 methods" in page
    assert "Max Probability" in page and "LCE" in page
    assert "true J 0.500 (<b>fail</b>)<br>g: 0.800 (pass)<br><i>g missed a failure</i>" in page
    assert page.count("<i>") == 1  # g's one wrong verdict on this lesion
    alarm = lesion_html(explorer_lesions(sets, predicted, passing=3)[2])  # image 5
    assert "true J 0.750 (pass)<br>g: 0.500 (<b>fail</b>)<br><i>false alarm</i>" in alarm
    sources = re.findall(r'src="data:image/webp;base64,([^"]+)"', page)
    assert len(sources) == 2 + 2 * 2  # image and truth, then overlay and map per method
    panel = Image.open(io.BytesIO(base64.b64decode(sources[0])))
    assert panel.size == (8, 8)  # stored at the data's resolution ...
    assert 'width="128" height="128" style="image-rendering:pixelated' in page  # ... shown 16x
    alts = re.findall(r'alt="([^"]+)"', page)
    assert len(alts) == 6 and all(alt.startswith("ISIC_0000001: ") for alt in alts)


@pytest.mark.parametrize("wiring", ["static", "live"])
def test_both_wirings_follow_the_filter_and_the_slider(wiring):
    sets, predicted = _two_methods()
    lesions = explorer_lesions(sets, predicted, passing=3)
    box = uncertainty_explorer(lesions, wiring=wiring)
    legend, picker = box.children[:2]
    assert "colour bar" in legend.value
    assert list(picker.options) == [
        "all (5)",
        "failing (some method) (2)",
        "passing (every method) (3)",
        "g missed a failure (1)",
        "g raised a false alarm (1)",
    ]
    if wiring == "static":
        outer = box.children[2]
        assert isinstance(outer, widgets.Stack) and len(outer.children) == 5
        slider, stack = outer.children[1].children
        assert slider.options == ("1 of 2", "2 of 2") and len(stack.children) == 2
        # The failures' page shares the lesions of the "all" page: each is stored once.
        every = outer.children[0].children[1].children
        assert stack.children[0] is every[0] and stack.children[1] is every[1]
    else:
        slider, shown = box.children[2:]
        assert slider.value == "1 of 5" and IDS[4] in shown.value
        slider.index = 1
        assert IDS[1] in shown.value
        picker.index = 2  # the passes
        assert slider.value == "1 of 3" and IDS[5] in shown.value
        slider.index = 2
        assert IDS[7] in shown.value
    with pytest.raises(ValueError, match="wiring"):
        uncertainty_explorer(lesions, wiring="magic")
    with pytest.raises(ValueError, match="no lesions"):
        uncertainty_explorer([], wiring=wiring)
