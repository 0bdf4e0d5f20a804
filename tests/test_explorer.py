import base64
import io
import re

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from PIL import Image

from segqual_lite.explorer import uncertainty_explorer
from segqual_lite.lesions import explorer_lesions, lesion_filters, lesion_html
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
def test_both_wirings_follow_the_seed_the_filter_and_the_slider(wiring):
    sets, predicted = _two_methods()
    lesions = {
        0: explorer_lesions(sets, predicted, passing=3),
        1: explorer_lesions(sets, predicted, passing=0, seed=1),
    }
    box = uncertainty_explorer(lesions, wiring=wiring)
    legend, seed_picker = box.children[:2]
    assert "colour bar" in legend.value and list(seed_picker.options) == ["seed 0", "seed 1"]
    options = [
        "all (5)",
        "failing (some method) (2)",
        "passing (every method) (3)",
        "g missed a failure (1)",
        "g raised a false alarm (1)",
    ]
    if wiring == "static":
        seeds = box.children[2]
        assert isinstance(seeds, widgets.Stack) and len(seeds.children) == 2
        picker, outer = seeds.children[0].children
        assert list(picker.options) == options and len(outer.children) == 5
        steps, stack = outer.children[1].children
        slider, number = steps.children
        assert (slider.min, slider.max, number.max) == (1, 2, 2)
        assert len(stack.children) == 3 and stack.selected_index == 1  # a blank, then 2
        # The failures' page shares the lesions of the "all" page: each is stored once.
        every = outer.children[0].children[1].children
        assert stack.children[1] is every[1] and stack.children[2] is every[2]
        assert "seed 1" in seeds.children[1].children[1].children[0].children[1].children[1].value
    else:
        picker, controls, shown = box.children[2:]
        previous, slider, number, following = controls.children
        assert list(picker.options) == options
        assert slider.value == 1 and IDS[4] in shown.value and "seed 0" in shown.value
        following.click()
        assert slider.value == number.value == 2 and IDS[1] in shown.value
        previous.click()
        previous.click()  # stays on the first
        assert slider.value == 1
        picker.index = 2  # the passes
        assert slider.max == 3 and IDS[5] in shown.value
        number.value = 3
        assert IDS[7] in shown.value
        seed_picker.index = 1
        assert list(picker.options)[:2] == ["all (2)", "failing (some method) (2)"]
        assert "seed 1" in shown.value and slider.max == 2
    with pytest.raises(ValueError, match="wiring"):
        uncertainty_explorer(lesions, wiring="magic")
    with pytest.raises(ValueError, match="no lesions"):
        uncertainty_explorer([], wiring=wiring)


def _with_controls():
    sets, predicted = _two_methods()
    controls = {  # the g without a map, on the same masks
        "max_prob": np.array([0.9, 0.6, 0.8, 0.9, 0.8, 0.8, 0.8, 0.9]),  # 1 right, 4 wrong
        "lce": np.array([0.9, 0.8, 0.8, 0.9, 0.6, 0.8, 0.8, 0.9]),  # agrees everywhere
    }
    return sets, predicted, controls


def test_the_map_changed_g_s_verdict_rightly_or_wrongly():
    sets, predicted, controls = _with_controls()
    lesions = explorer_lesions(sets, predicted, passing=3, controls=controls)
    by_id = {les.image_id: les for les in lesions}
    # Image 1 fails (J 0.5): without the map g says fail (0.6), with it pass (0.8).
    assert by_id[IDS[1]].methods["max_prob"].changed() == "wrongly"
    # Image 4 fails (J 0.2): without the map g says pass (0.8), with it fail (0.3).
    assert by_id[IDS[4]].methods["max_prob"].changed() == "rightly"
    assert by_id[IDS[4]].changed() == ["max_prob"] and not by_id[IDS[6]].changed()
    kept = lesion_filters(lesions)["the map changed g's verdict"]
    assert [lesions[i].image_id for i in kept] == [IDS[4], IDS[1], IDS[5]]
    page = lesion_html(by_id[IDS[4]])
    assert "no map: 0.800 (pass)" in page and "the map changed the verdict, rightly" in page
    assert "the map changed g's verdict for 1" in page
    with pytest.raises(ValueError, match=r"controls\['lce'\] has 2 values for 8 images"):
        explorer_lesions(sets, predicted, controls={"lce": controls["lce"][:2]})


def test_a_limit_keeps_the_lesions_whose_verdict_the_map_changed_first():
    sets, predicted, controls = _with_controls()
    predicted["max_prob"][1] = 0.9  # still wrongly changed: with the map, pass
    controls["max_prob"][4] = 0.3  # image 4: no longer changed
    lesions = explorer_lesions(sets, predicted, passing=1, controls=controls, limit=2)
    assert [les.image_id for les in lesions] == [IDS[1], IDS[5]]  # one failure, one pass


def test_synthetic_lesions_say_so_and_an_unbounded_map_is_stretched_over_the_split():
    sets, predicted = _two_methods()
    sets = {"hcnn": sets["max_prob"]}
    sets["hcnn"].maps = sets["hcnn"].maps * 10 + 3  # sigma: unbounded, far from 0
    sets["hcnn"].maps[0] = 3.0  # one quiet image: it must look quiet, not stretched
    lesions = explorer_lesions(sets, {"hcnn": predicted["max_prob"]}, synthetic=True)
    views = {les.image_id: les.methods["hcnn"].map for les in lesions}
    low, high = np.quantile(sets["hcnn"].maps.numpy(), [0.01, 0.99])
    some = next(iter(views))
    expected = np.clip((sets["hcnn"].maps[IDS.index(some)].numpy() - low) / (high - low), 0, 1)
    np.testing.assert_allclose(views[some], expected, rtol=1e-5, atol=1e-6)
    lesion = lesions[0]
    page = lesion_html(lesion)
    shown = lesion.image_id.removeprefix("ISIC_")
    assert f"synthetic lesion {shown}" in page and "the synthetic image" in page
    assert lesion.image_id not in page  # no synthetic lesion passes for an ISIC image


def test_the_tally_counts_what_the_map_did_on_every_image():
    """Per row and seed: verdicts changed rightly and wrongly, estimates moved closer and
    further, against the control on the same images."""
    import pandas as pd

    from segqual_lite.lesions import MethodView, map_tally

    records = []
    for method, preds in (("no_uncertainty", (0.75, 0.5, 0.8)), ("max_prob", (0.6, 0.9, 0.8))):
        for i, (true, pred) in enumerate(zip((0.5, 0.9, 0.8), preds, strict=True)):
            records.append(
                {"method": method, "seed": 0, "image_id": f"I{i}", "true_jaccard": true,
                 "predicted_jaccard": pred}
            )  # fmt: skip
    tally = map_tally(pd.DataFrame(records), ["max_prob"]).iloc[0]
    assert (tally["verdict changed rightly"], tally["verdict changed wrongly"]) == (2, 0)
    assert (tally["moved closer"], tally["moved further"], tally["images"]) == (2, 0, 3)
    view = MethodView(None, None, 0.5, 0.6, 0.75)
    assert view.moved() == pytest.approx(0.15)


def test_the_tally_sentence_counts_the_seeds_where_the_map_helped():
    import pandas as pd

    from segqual_lite.lesions import tally_summary

    tally = pd.DataFrame(
        {
            "row": ["LCE"] * 3,
            "seed": [0, 1, 2],
            "verdict changed rightly": [2, 0, 1],
            "verdict changed wrongly": [1, 3, 1],
            "moved closer": [10, 4, 7],
            "moved further": [5, 9, 7],
        }
    )
    assert tally_summary(tally) == (
        "LCE: closer on more images than further on 1 of 3 seeds,"
        " more verdicts changed rightly than wrongly on 1."
    )
