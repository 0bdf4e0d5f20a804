"""The uncertainty explorer: compare the methods on one test lesion at a time (chapter 10).

For each lesion shown: the image and its ground truth, then, side by side, each method's
segmentation (green true positive, red false positive, blue false negative) above its
uncertainty map, every map on one colour scale, and under them the true Jaccard and g's
predicted Jaccard with their verdicts. The lesions are every failing test image (a true
Jaccard below 0.7 for at least one method) and a sample of passing ones. A filter picks
the failures, the passes, g's missed failures and false alarms, or (on synthetic data)
one hard case.

Each lesion is one HTML fragment whose panels are small WebP images at the data's own
resolution, scaled up in the browser without smoothing, so that the whole set fits in a
page of a few megabytes.

Two wirings of the same fragments:

* ``"static"``: ``widgets.Stack`` s of ``HTML`` widgets, linked in the browser with
  ``jslink``. The state is saved with the executed notebook, so the controls keep working
  on the static site, with no kernel. Every lesion is stored once and shared by the
  filters' stacks.
* ``"live"``: Python callbacks (``observe``) rewrite one ``HTML`` widget. Used on Colab,
  whose widget manager is the safe path for callbacks, and wherever ``widgets.Stack`` is
  missing (ipywidgets 7).
"""

from __future__ import annotations

import base64
import html
import io
import sys
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from .metrics import FAILURE_THRESHOLD
from .rows import label
from .viz import UNCERTAINTY_COLOURS, display_scale, error_overlay, to_hwc

__all__ = [
    "MethodView",
    "Lesion",
    "explorer_lesions",
    "lesion_filters",
    "lesion_html",
    "uncertainty_explorer",
]

MAP_COLOURS = UNCERTAINTY_COLOURS  # yellow sure, purple unsure, as in the figures
PANEL_PX = 128  # displayed width of one panel, in CSS pixels


@dataclass
class MethodView:
    """One method's segmentation of one lesion."""

    mask: np.ndarray  # uint8 [H, W], predicted
    map: np.ndarray  # float [H, W], uncertainty divided by the method's display scale
    true_jaccard: float
    predicted_jaccard: float  # g's


@dataclass
class Lesion:
    """One test image with every method's segmentation of it."""

    image_id: str
    image: np.ndarray  # uint8 [3, H, W]
    true_mask: np.ndarray  # uint8 [H, W]
    methods: dict[str, MethodView]
    hard_cases: frozenset[str] = frozenset()

    def failing(self, threshold: float = FAILURE_THRESHOLD) -> list[str]:
        """The methods whose segmentation fails (true Jaccard below ``threshold``)."""
        return [m for m, v in self.methods.items() if v.true_jaccard < threshold]


def explorer_lesions(
    sets: dict,
    predicted: dict,
    hard_cases: dict[str, frozenset[str]] | None = None,
    passing: int = 12,
    threshold: float = FAILURE_THRESHOLD,
) -> list[Lesion]:
    """The lesions to explore: every test image on which at least one method fails, worst
    first, then ``passing`` of the others spread evenly over their Jaccard range.

    ``sets``: method -> :class:`~segqual_lite.segment.SegmentationSet` on the test split
    (the same images in the same order); ``predicted``: method -> g's predicted Jaccard
    per test image; ``hard_cases``: image id -> its hard cases
    (:func:`~segqual_lite.data.read_hard_cases`; empty on real data). Each map is divided
    by its method's :func:`~segqual_lite.viz.display_scale` over the whole test split.
    """
    methods = list(sets)
    first = sets[methods[0]]
    for m in methods[1:]:
        if list(sets[m].ids) != list(first.ids):
            raise ValueError(f"the sets of {methods[0]!r} and {m!r} hold different test images")
    for m in methods:
        if len(predicted[m]) != len(first.ids):
            raise ValueError(
                f"predicted[{m!r}] has {len(predicted[m])} values for {len(first.ids)} images"
            )
    jaccard = np.stack([sets[m].jaccard for m in methods])  # [methods, N]
    worst = jaccard.min(axis=0)
    failing = np.flatnonzero(worst < threshold)
    failing = failing[np.argsort(worst[failing], kind="stable")]
    others = np.flatnonzero(worst >= threshold)
    others = others[np.argsort(worst[others], kind="stable")]
    if passing and len(others):
        picks = np.unique(np.linspace(0, len(others) - 1, min(passing, len(others))).round())
        others = others[picks.astype(int)]
    else:
        others = others[:0]
    scales = {m: display_scale(m, sets[m].maps) for m in methods}
    hard_cases = hard_cases or {}
    lesions = []
    for i in [*failing, *others]:
        i = int(i)
        views = {
            m: MethodView(
                sets[m].masks[i].numpy(),
                sets[m].maps[i].float().numpy() / scales[m],
                float(sets[m].jaccard[i]),
                float(predicted[m][i]),
            )
            for m in methods
        }
        image_id = first.ids[i]
        lesions.append(
            Lesion(
                image_id,
                first.images[i].numpy(),
                first.true_masks[i].numpy(),
                views,
                frozenset(hard_cases.get(image_id, ())),
            )
        )
    return lesions


def lesion_filters(
    lesions: list[Lesion], threshold: float = FAILURE_THRESHOLD
) -> dict[str, list[int]]:
    """Filter name -> the indices of ``lesions`` it keeps; filters that keep nothing are
    left out. A lesion is *failing* when at least one method fails on it; g *misses* a
    failure when it predicts a pass for a failing segmentation, and raises a *false alarm*
    when it predicts a failure for a passing one."""

    def any_view(lesion, test):
        return any(test(v) for v in lesion.methods.values())

    tests = {
        "all": lambda lesion: True,
        "failing (some method)": lambda lesion: bool(lesion.failing(threshold)),
        "passing (every method)": lambda lesion: not lesion.failing(threshold),
        "g missed a failure": lambda lesion: any_view(
            lesion, lambda v: v.true_jaccard < threshold <= v.predicted_jaccard
        ),
        "g raised a false alarm": lambda lesion: any_view(
            lesion, lambda v: v.predicted_jaccard < threshold <= v.true_jaccard
        ),
    }
    cases = sorted({c for lesion in lesions for c in lesion.hard_cases})
    for case in cases:
        tests[f"hard case: {case.replace('_', ' ')}"] = lambda lesion, c=case: (
            c in lesion.hard_cases
        )
    if cases:
        tests["no hard case"] = lambda lesion: not lesion.hard_cases
    filters = {
        name: [i for i, les in enumerate(lesions) if test(les)] for name, test in tests.items()
    }
    return {name: kept for name, kept in filters.items() if kept}


def _webp(rgb: np.ndarray, lossless: bool = False) -> str:
    """A data URI of an RGB image (float in [0, 1] or uint8 [H, W, 3]) as WebP: lossy at
    quality 80 (about 0.7 kB for a 64 px panel), or lossless for two-colour masks."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="WEBP", quality=80, method=6, lossless=lossless)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(rgb: np.ndarray, alt: str, lossless: bool = False) -> str:
    height, width = np.asarray(rgb).shape[:2]
    shown = PANEL_PX if width <= PANEL_PX else min(width, 2 * PANEL_PX)
    # Small images are enlarged without smoothing (their pixels stay sharp squares).
    rendering = "image-rendering:pixelated;" if width < shown else ""
    return (
        f'<img src="{_webp(rgb, lossless)}" alt="{html.escape(alt)}" width="{shown}" '
        f'height="{round(shown * height / width)}" style="{rendering}max-width:none">'
    )


def _map_rgb(values: np.ndarray) -> np.ndarray:
    return matplotlib.colormaps[MAP_COLOURS](np.clip(values, 0, 1))[..., :3]


# g's wrong verdicts: (true fails, g says fails) -> (what it is, cell colour).
_WRONG = {
    (True, False): ("g missed a failure", "#fbd3d0"),
    (False, True): ("false alarm", "#fdebc8"),
}


def _verdict(value: float, threshold: float) -> str:
    return "pass" if value >= threshold else "<b>fail</b>"


def lesion_html(lesion: Lesion, threshold: float = FAILURE_THRESHOLD) -> str:
    """One lesion as an HTML table: a column for the image and its ground truth, then one
    per method with its segmentation, its map and its true and predicted Jaccard."""
    name = html.escape(lesion.image_id)
    failing = lesion.failing(threshold)
    facts = [f"fails for {len(failing)} of {len(lesion.methods)} methods"]
    if lesion.hard_cases:
        facts.append("hard case: " + ", ".join(sorted(lesion.hard_cases)).replace("_", " "))
    image = to_hwc(lesion.image)
    truth = np.repeat(np.asarray(lesion.true_mask, dtype=np.float32)[..., None], 3, axis=2)
    head = ['<th style="text-align:left">image, truth</th>']
    tops = [_img(image, f"{lesion.image_id}: the dermoscopy image")]
    bottoms = [_img(truth, f"{lesion.image_id}: the ground-truth mask, lesion in white", True)]
    notes = ["<td></td>"]
    for method, view in lesion.methods.items():
        title = label(method)
        head.append(f'<th style="text-align:left">{html.escape(title)}</th>')
        overlay = error_overlay(lesion.image, view.mask, lesion.true_mask)
        tops.append(
            _img(
                overlay,
                f"{lesion.image_id}: {title}'s segmentation, green true positive, "
                "red false positive, blue false negative",
            )
        )
        bottoms.append(
            _img(
                _map_rgb(view.map),
                f"{lesion.image_id}: {title}'s uncertainty map, yellow sure, purple unsure",
            )
        )
        wrong = _WRONG.get((view.true_jaccard < threshold, view.predicted_jaccard < threshold))
        style = "font-size:12px;line-height:1.35"
        tag = ""
        if wrong:
            style += f";background:{wrong[1]}"
            tag = f"<br><i>{wrong[0]}</i>"
        notes.append(
            f'<td style="{style}">true J {view.true_jaccard:.3f} '
            f"({_verdict(view.true_jaccard, threshold)})<br>g: {view.predicted_jaccard:.3f} "
            f"({_verdict(view.predicted_jaccard, threshold)}){tag}</td>"
        )

    def row(cells, tag="td"):
        return (
            "<tr>"
            + "".join(c if c.startswith("<t") else f"<{tag}>{c}</{tag}>" for c in cells)
            + "</tr>"
        )

    return (
        f'<div class="segqual-lesion"><p style="margin:4px 0"><b>{name}</b> &middot; '
        + " &middot; ".join(facts)
        + '</p><table style="border-collapse:collapse;margin:0">'
        + row(head)
        + row(tops)
        + row(bottoms)
        + row(notes)
        + "</table></div>"
    )


def _legend(threshold: float) -> str:
    """The colour bar of the maps and the key to the panels, as HTML."""
    fig, ax = plt.subplots(figsize=(4.4, 0.75), dpi=100, layout="constrained")
    fig.colorbar(
        matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, 1), MAP_COLOURS),
        cax=ax,
        orientation="horizontal",
    )
    ax.set_xlabel("uncertainty map / its largest value (HCNN: 99th pct.)", fontsize=10)
    ax.tick_params(labelsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    bar = base64.b64encode(buffer.getvalue()).decode("ascii")
    missed, alarm = (_WRONG[k][1] for k in ((True, False), (False, True)))
    return (
        '<div style="font-size:13px;display:flex;gap:16px;align-items:center;flex-wrap:wrap">'
        f'<img src="data:image/png;base64,{bar}" width="440" height="75" '
        'alt="colour bar of the uncertainty maps: yellow 0 (sure) to purple 1 (unsure)">'
        "<span>Segmentations: green true positive, red false positive, blue false negative."
        f"<br>A Jaccard index of at least {threshold} passes. g's wrong verdicts:"
        f' <span style="background:{missed}">missed failure</span>,'
        f' <span style="background:{alarm}">false alarm</span>.</span></div>'
    )


def _lesion_labels(n: int) -> list[str]:
    return [f"{k} of {n}" for k in range(1, n + 1)]


def _lesion_slider(n: int) -> widgets.SelectionSlider:
    """A slider over ``n`` lesions that reads "k of n"; its ``index`` selects the lesion."""
    return widgets.SelectionSlider(
        options=_lesion_labels(n),
        index=0,
        description="lesion",
        continuous_update=True,
        disabled=n == 1,
    )


def _on_colab() -> bool:
    return "google.colab" in sys.modules


def uncertainty_explorer(
    lesions: list[Lesion], wiring: str | None = None, threshold: float = FAILURE_THRESHOLD
):
    """The explorer widget for ``lesions`` from :func:`explorer_lesions`: a filter, a
    slider over the lesions it keeps, and one lesion at a time (:func:`lesion_html`).

    ``wiring`` is ``"static"`` (jslink, works without a kernel) or ``"live"`` (Python
    callbacks); by default static, except on Colab or without ``widgets.Stack``.
    """
    if not lesions:
        raise ValueError("no lesions to explore: explorer_lesions returned an empty list")
    if wiring is None:
        wiring = "live" if _on_colab() or not hasattr(widgets, "Stack") else "static"
    if wiring not in ("static", "live"):
        raise ValueError(f"wiring must be 'static' or 'live', got {wiring!r}")
    filters = lesion_filters(lesions, threshold)
    legend = widgets.HTML(_legend(threshold))
    picker = widgets.Dropdown(
        options=[f"{name} ({len(kept)})" for name, kept in filters.items()],
        index=0,
        description="show",
        layout=widgets.Layout(width="320px"),
    )
    if wiring == "static":
        fragments = [widgets.HTML(lesion_html(lesion, threshold)) for lesion in lesions]
        pages = []
        for kept in filters.values():
            slider = _lesion_slider(len(kept))
            stack = widgets.Stack([fragments[i] for i in kept], selected_index=0)
            widgets.jslink((slider, "index"), (stack, "selected_index"))
            pages.append(widgets.VBox([slider, stack]))
        outer = widgets.Stack(pages, selected_index=0)
        widgets.jslink((picker, "index"), (outer, "selected_index"))
        return widgets.VBox([legend, picker, outer])
    kept_lists = list(filters.values())
    slider = _lesion_slider(len(kept_lists[0]))
    shown = widgets.HTML()

    def redraw(_=None):
        shown.value = lesion_html(lesions[kept_lists[picker.index][slider.index]], threshold)

    def refilter(_=None):
        with slider.hold_trait_notifications():
            slider.options = _lesion_labels(len(kept_lists[picker.index]))
            slider.index = 0
        redraw()

    picker.observe(refilter, names="index")
    slider.observe(redraw, names="index")
    redraw()
    return widgets.VBox([legend, picker, slider, shown])
