"""The lesions of the uncertainty explorer (chapter 10): which test images it shows, how
it filters them, each one as an HTML fragment, and the tally over every test image.

Per lesion: the image and its ground truth, then each method's segmentation (green true
positive, red false positive, blue false negative, the true outline in white) above its
map, with the true Jaccard, g's prediction with the map and that of the g without it on
the same masks (:func:`segqual_lite.rows.control_of`). Where the two verdicts differ,
**the map changed g's verdict**, rightly when the verdict with the map is the true one.
Panels are small WebP images, scaled up unsmoothed: hundreds of lesions in a few MB.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

import matplotlib
import numpy as np
from PIL import Image

from .data.synthetic import lesion_name
from .metrics import FAILURE_THRESHOLD
from .rows import label
from .viz import UNCERTAINTY_COLOURS, display_range, error_overlay, mask_outline, to_hwc

__all__ = [
    "MethodView",
    "Lesion",
    "explorer_lesions",
    "lesion_filters",
    "lesion_html",
    "map_tally",
]

PANEL_PX = 128  # displayed width of one panel, in CSS pixels
CHANGED = "the map changed g's verdict"


def _fails(value: float, threshold: float) -> bool:
    return value < threshold


@dataclass
class MethodView:
    """One method's segmentation of one lesion: its mask, its map on the display scale,
    the true Jaccard, g's prediction with the map and (when known) the prediction of
    the g without a map on the same masks."""

    mask: np.ndarray  # uint8 [H, W], predicted
    map: np.ndarray  # float [H, W] in [0, 1] for display
    true_jaccard: float
    predicted_jaccard: float  # g's, with the map
    control_jaccard: float | None = None  # the g without a map, on the same masks

    def changed(self, threshold: float = FAILURE_THRESHOLD) -> str | None:
        """``"rightly"`` or ``"wrongly"`` when the map changed g's verdict (the verdict
        with the map is, or is not, the true one), else None."""
        if self.control_jaccard is None:
            return None
        with_map = _fails(self.predicted_jaccard, threshold)
        if with_map == _fails(self.control_jaccard, threshold):
            return None
        return "rightly" if with_map == _fails(self.true_jaccard, threshold) else "wrongly"

    def moved(self) -> float | None:
        """How much closer the map brought g's estimate to the true Jaccard: the no-map
        g's error minus the error with the map (both absolute, in J; positive = closer);
        None without a control."""
        if self.control_jaccard is None:
            return None
        return abs(self.control_jaccard - self.true_jaccard) - abs(
            self.predicted_jaccard - self.true_jaccard
        )


@dataclass
class Lesion:
    """One test image with every method's segmentation of it, for one seed."""

    image_id: str
    image: np.ndarray  # uint8 [3, H, W]
    true_mask: np.ndarray  # uint8 [H, W]
    methods: dict[str, MethodView]
    hard_cases: frozenset[str] = frozenset()
    seed: int = 0
    synthetic: bool = False

    @property
    def name(self) -> str:
        """What the page calls it (:func:`~segqual_lite.data.lesion_name`)."""
        return lesion_name(self.image_id, self.synthetic)

    def failing(self, threshold: float = FAILURE_THRESHOLD) -> list[str]:
        """The methods whose segmentation fails (true Jaccard below ``threshold``)."""
        return [m for m, v in self.methods.items() if v.true_jaccard < threshold]

    def changed(self, threshold: float = FAILURE_THRESHOLD) -> list[str]:
        """The methods whose map changed g's verdict on this lesion."""
        return [m for m, v in self.methods.items() if v.changed(threshold)]


def explorer_lesions(
    sets: dict,
    predicted: dict,
    hard_cases: dict[str, frozenset[str]] | None = None,
    passing: int = 12,
    threshold: float = FAILURE_THRESHOLD,
    controls: dict | None = None,
    seed: int = 0,
    synthetic: bool = False,
    limit: int | None = None,
) -> list[Lesion]:
    """The lesions to explore for one ``seed``: the test images on which at least one
    method fails, worst first, then ``passing`` of the others spread evenly over their
    Jaccard range. With ``limit``, at most ``limit`` lesions in all: the failures on
    which a map changed g's verdict are kept first, then the worst.

    ``sets``: method -> :class:`~segqual_lite.segment.SegmentationSet` on the test split
    (the same images in the same order); ``predicted``: method -> g's predicted Jaccard
    per test image; ``controls``: method -> the predictions of its control (g without
    a map, on the same masks); ``hard_cases``: image id -> its hard cases
    (:func:`~segqual_lite.data.read_hard_cases`; empty on real data); ``synthetic``:
    the images are drawn by the generator, and say so."""
    methods = list(sets)
    first = sets[methods[0]]
    for m in methods[1:]:
        if list(sets[m].ids) != list(first.ids):
            raise ValueError(f"the sets of {methods[0]!r} and {m!r} hold different test images")
    controls = controls or {}
    for name, values in (
        *((f"predicted[{m!r}]", predicted[m]) for m in methods),
        *((f"controls[{m!r}]", v) for m, v in controls.items()),
    ):
        if len(values) != len(first.ids):
            raise ValueError(f"{name} has {len(values)} values for {len(first.ids)} images")
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
    ranges = {m: display_range(m, sets[m].maps) for m in methods}
    hard_cases = hard_cases or {}

    def lesion(i: int) -> Lesion:
        views = {
            m: MethodView(
                sets[m].masks[i].numpy(),
                np.clip(
                    (sets[m].maps[i].float().numpy() - ranges[m][0])
                    / (ranges[m][1] - ranges[m][0]),
                    0,
                    1,
                ),
                float(sets[m].jaccard[i]),
                float(predicted[m][i]),
                float(controls[m][i]) if m in controls else None,
            )
            for m in methods
        }
        image_id = first.ids[i]
        return Lesion(
            image_id,
            first.images[i].numpy(),
            first.true_masks[i].numpy(),
            views,
            frozenset(hard_cases.get(image_id, ())),
            seed,
            synthetic,
        )

    chosen = [lesion(int(i)) for i in failing]
    if limit is not None and len(chosen) + len(others) > limit:
        keep = max(limit - len(others), 0)
        ranked = sorted(range(len(chosen)), key=lambda k: (not chosen[k].changed(threshold), k))
        chosen = [chosen[k] for k in sorted(ranked[:keep])]
    return chosen + [lesion(int(i)) for i in others]


def lesion_filters(
    lesions: list[Lesion], threshold: float = FAILURE_THRESHOLD
) -> dict[str, list[int]]:
    """Filter name -> the indices of ``lesions`` it keeps; filters that keep nothing are
    left out. A lesion is *failing* when at least one method fails on it; g *misses* a
    failure when it predicts a pass for a failing segmentation, and raises a *false alarm*
    when it predicts a failure for a passing one; the map *changed g's verdict* when g
    with and without the map disagree on one of the methods."""

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
        CHANGED: lambda lesion: bool(lesion.changed(threshold)),
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
    return matplotlib.colormaps[UNCERTAINTY_COLOURS](np.clip(values, 0, 1))[..., :3]


def _segmentation(lesion: Lesion, view: MethodView) -> np.ndarray:
    """The error overlay with the ground truth's outline blended in white."""
    rgb = error_overlay(lesion.image, view.mask, lesion.true_mask)
    outline = mask_outline(lesion.true_mask)
    rgb[outline] = 0.4 * rgb[outline] + 0.6
    return rgb


# g's wrong verdicts: (true fails, g says fails) -> (what it is, cell colour).
WRONG_VERDICTS = {
    (True, False): ("g missed a failure", "#fbd3d0"),
    (False, True): ("false alarm", "#fdebc8"),
}
CHANGED_COLOURS = {"rightly": "#1a7f37", "wrongly": "#b42318"}


def _verdict(value: float, threshold: float) -> str:
    return "pass" if value >= threshold else "<b>fail</b>"


def _notes(view: MethodView, threshold: float) -> str:
    wrong = WRONG_VERDICTS.get((view.true_jaccard < threshold, view.predicted_jaccard < threshold))
    style = "font-size:12px;line-height:1.35;vertical-align:top"
    lines = [
        f"true J {view.true_jaccard:.3f} ({_verdict(view.true_jaccard, threshold)})",
        f"g: {view.predicted_jaccard:.3f} ({_verdict(view.predicted_jaccard, threshold)})",
    ]
    if view.control_jaccard is not None:
        lines.append(
            f"no map: {view.control_jaccard:.3f} ({_verdict(view.control_jaccard, threshold)})"
        )
    if wrong:
        style += f";background:{wrong[1]}"
        lines.append(f"<i>{wrong[0]}</i>")
    moved = view.moved()
    if moved is not None:
        lines.append(
            f"the map moved g {abs(moved):.3f} "
            + ("closer to" if moved > 0 else "further from" if moved < 0 else "no nearer")
            + " the true J"
        )
    changed = view.changed(threshold)
    if changed:
        lines.append(
            f'<span style="color:{CHANGED_COLOURS[changed]}">the map changed the verdict, '
            f"{changed}</span>"
        )
    return f'<td style="{style}">' + "<br>".join(lines) + "</td>"


def lesion_html(lesion: Lesion, threshold: float = FAILURE_THRESHOLD) -> str:
    """One lesion as an HTML table: a column for the image and its ground truth, then one
    per method with its segmentation, its map and its true and predicted Jaccard."""
    name = html.escape(lesion.name)
    failing = lesion.failing(threshold)
    facts = [f"seed {lesion.seed}", f"fails for {len(failing)} of {len(lesion.methods)} methods"]
    changed = lesion.changed(threshold)
    if changed:
        facts.append(f"the map changed g's verdict for {len(changed)}")
    if lesion.hard_cases:
        facts.append("hard case: " + ", ".join(sorted(lesion.hard_cases)).replace("_", " "))
    kind = "synthetic image" if lesion.synthetic else "dermoscopy image"
    image = to_hwc(lesion.image)
    truth = np.repeat(np.asarray(lesion.true_mask, dtype=np.float32)[..., None], 3, axis=2)
    head = ['<th style="text-align:left">image, truth</th>']
    tops = [_img(image, f"{lesion.name}: the {kind}")]
    bottoms = [_img(truth, f"{lesion.name}: the ground-truth mask, lesion in white", True)]
    notes = ["<td></td>"]
    for method, view in lesion.methods.items():
        title = label(method)
        head.append(f'<th style="text-align:left">{html.escape(title)}</th>')
        tops.append(
            _img(
                _segmentation(lesion, view),
                f"{lesion.name}: {title}'s segmentation, green true positive, "
                "red false positive, blue false negative, the true outline in white",
            )
        )
        bottoms.append(
            _img(
                _map_rgb(view.map),
                f"{lesion.name}: {title}'s uncertainty map, yellow sure, purple unsure",
            )
        )
        notes.append(_notes(view, threshold))

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


def map_tally(predictions, rows, threshold: float = FAILURE_THRESHOLD):
    """Per uncertainty row and seed, over every test image (not only the explorer's): how
    often the map changed g's verdict (against the g without a map on the same masks,
    :func:`~segqual_lite.rows.control_of`), rightly and wrongly, and on how many images
    it moved g's estimate closer to the true Jaccard or further from it."""
    import pandas as pd

    from .rows import control_of

    records = []
    for row in rows:
        ours = predictions[predictions["method"] == row]
        theirs = predictions[predictions["method"] == control_of(row)]
        both = ours.merge(theirs, on=["seed", "image_id"], suffixes=("", "_control"))
        for seed, part in both.groupby("seed"):
            truth, with_map = part["true_jaccard"], part["predicted_jaccard"]
            without = part["predicted_jaccard_control"]
            changed = (with_map < threshold) != (without < threshold)
            right = changed & ((with_map < threshold) == (truth < threshold))
            moved = (without - truth).abs() - (with_map - truth).abs()
            records.append(
                {
                    "row": label(row),
                    "seed": seed,
                    "images": len(part),
                    "verdict changed rightly": int(right.sum()),
                    "verdict changed wrongly": int((changed & ~right).sum()),
                    "moved closer": int((moved > 0).sum()),
                    "moved further": int((moved < 0).sum()),
                }
            )
    return pd.DataFrame(records)


def tally_summary(tally) -> str:
    """Per row of :func:`map_tally`: on how many seeds the map moved g closer to the true
    Jaccard on more images than further, and changed more verdicts rightly than wrongly."""
    parts = []
    for row, part in tally.groupby("row", sort=False):
        closer = int((part["moved closer"] > part["moved further"]).sum())
        right = int((part["verdict changed rightly"] > part["verdict changed wrongly"]).sum())
        parts.append(
            f"{row}: closer on more images than further on {closer} of {len(part)} seeds, "
            f"more verdicts changed rightly than wrongly on {right}"
        )
    return "; ".join(parts) + "."
