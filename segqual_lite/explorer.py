"""The uncertainty explorer: a widget to browse test cases per method (chapter 10).

For a handful of test images per method (the best, typical and worst by true Jaccard):
the image, the ground truth, the error overlay, the uncertainty map, the true and
predicted Jaccard and the pass/fail verdicts, with a method picker and an image slider.

Two wirings of the same panels:

* ``"static"``: nested ``widgets.Stack`` s of ``Image`` widgets, linked in the browser
  with ``jslink``. The state is saved with the executed notebook, so the controls keep
  working on the static site, with no kernel.
* ``"live"``: Python callbacks (``observe``) redraw one panel. Used on Colab, whose
  widget manager is the safe path for callbacks, and wherever ``widgets.Stack`` is
  missing (ipywidgets 7).
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from .metrics import FAILURE_THRESHOLD
from .viz import error_overlay, to_hwc

__all__ = ["ExplorerCase", "explorer_cases", "render_case", "uncertainty_explorer"]


@dataclass
class ExplorerCase:
    method: str
    image_id: str
    label: str  # "best", "typical" or "worst"
    image: np.ndarray  # uint8 [3, H, W]
    true_mask: np.ndarray
    pred_mask: np.ndarray
    uncertainty: np.ndarray
    true_jaccard: float
    predicted_jaccard: float


def explorer_cases(sets: dict, predicted: dict, per_method: int = 5) -> dict[str, list]:
    """Pick ``per_method`` test cases per method, from the best segmentation through
    typical ones to the worst. ``sets``: method -> SegmentationSet (test split);
    ``predicted``: method -> g's predicted Jaccard per test image."""
    out = {}
    for method, seg in sets.items():
        order = np.argsort(seg.jaccard)[::-1]  # best first
        picks = np.linspace(0, len(order) - 1, per_method).round().astype(int)
        cases = []
        for rank, k in enumerate(picks):
            i = int(order[k])
            label = "best" if rank == 0 else "worst" if rank == per_method - 1 else "typical"
            cases.append(
                ExplorerCase(
                    method,
                    seg.ids[i],
                    label,
                    seg.images[i].numpy(),
                    seg.true_masks[i].numpy(),
                    seg.masks[i].numpy(),
                    seg.maps[i].float().numpy(),
                    float(seg.jaccard[i]),
                    float(predicted[method][i]),
                )
            )
        out[method] = cases
    return out


def render_case(case: ExplorerCase, threshold: float = FAILURE_THRESHOLD, dpi: int = 50) -> bytes:
    """One PNG: image, ground truth, error overlay and uncertainty map, with the true and
    predicted Jaccard and the two verdicts in the title. Kept small: every panel of the
    static explorer is embedded in the page."""
    fig, axes = plt.subplots(1, 4, figsize=(8, 2.35), dpi=dpi)
    axes[0].imshow(to_hwc(case.image))
    axes[0].set_title(case.image_id, fontsize=9)
    axes[1].imshow(case.true_mask, cmap="gray")
    axes[1].set_title("ground truth", fontsize=9)
    axes[2].imshow(error_overlay(case.image, case.pred_mask, case.true_mask))
    axes[2].set_title("prediction (TP/FP/FN)", fontsize=9)
    axes[3].imshow(case.uncertainty, cmap="viridis_r")
    axes[3].set_title("uncertainty", fontsize=9)
    for ax in axes:
        ax.axis("off")
    truth = "pass" if case.true_jaccard >= threshold else "FAIL"
    verdict = "pass" if case.predicted_jaccard >= threshold else "FAIL"
    fig.suptitle(
        f"{case.label}: true J = {case.true_jaccard:.2f} ({truth}) | "
        f"predicted J = {case.predicted_jaccard:.2f} ({verdict})",
        fontsize=10,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def _on_colab() -> bool:
    return "google.colab" in sys.modules


def uncertainty_explorer(cases: dict[str, list], wiring: str | None = None):
    """The explorer widget for ``cases`` from :func:`explorer_cases`.

    ``wiring`` is ``"static"`` (jslink, works without a kernel) or ``"live"`` (Python
    callbacks); by default static, except on Colab or without ``widgets.Stack``.
    """
    if wiring is None:
        wiring = "live" if _on_colab() or not hasattr(widgets, "Stack") else "static"
    methods = list(cases)
    n = len(cases[methods[0]])
    picker = widgets.Dropdown(options=methods, value=methods[0], description="method")
    slider = widgets.IntSlider(value=0, min=0, max=n - 1, description="image", readout=True)
    if wiring == "static":
        inner = [
            widgets.Stack(
                [widgets.Image(value=render_case(c), format="png") for c in cases[m]],
                selected_index=0,
            )
            for m in methods
        ]
        for stack in inner:
            widgets.jslink((slider, "value"), (stack, "selected_index"))
        outer = widgets.Stack(inner, selected_index=0)
        widgets.jslink((picker, "index"), (outer, "selected_index"))
        return widgets.VBox([widgets.HBox([picker, slider]), outer])
    if wiring != "live":
        raise ValueError(f"wiring must be 'static' or 'live', got {wiring!r}")
    image = widgets.Image(format="png")

    def redraw(_=None):
        image.value = render_case(cases[picker.value][slider.value])

    picker.observe(redraw, names="value")
    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([picker, slider]), image])
