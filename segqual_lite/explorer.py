"""The uncertainty explorer: compare the methods on one test lesion at a time (chapter 10).

The lesions and their HTML are :mod:`segqual_lite.lesions`'. The explorer adds the
controls: a seed, a filter (the failures, the passes, g's missed failures and false
alarms, the lesions on which the map changed g's verdict, or on synthetic data one hard
case), and a slider with a number box whose arrows step to the previous or next lesion.

Two wirings of the same fragments:

* ``"static"``: ``widgets.Stack`` s of ``HTML`` widgets, linked in the browser with
  ``jslink``. The state is saved with the executed notebook, so the controls keep working
  on the static site, with no kernel. Every lesion is stored once and shared by the
  filters' stacks.
* ``"live"``: Python callbacks (``observe``) rewrite one ``HTML`` widget, with previous
  and next buttons. Used on Colab, whose widget manager is the safe path for callbacks,
  and wherever ``widgets.Stack`` is missing (ipywidgets 7).
"""

from __future__ import annotations

import base64
import io
import sys

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt

from .lesions import CHANGED_COLOURS, WRONG_VERDICTS, Lesion, lesion_filters, lesion_html
from .metrics import FAILURE_THRESHOLD
from .viz import UNCERTAINTY_COLOURS

__all__ = ["uncertainty_explorer"]


def _legend(threshold: float) -> str:
    """The colour bar of the maps and the key to the panels, as HTML."""
    fig, ax = plt.subplots(figsize=(4.4, 0.75), dpi=100, layout="constrained")
    fig.colorbar(
        matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, 1), UNCERTAINTY_COLOURS),
        cax=ax,
        orientation="horizontal",
    )
    ax.set_xlabel("uncertainty / its largest value (HCNN: its 1st to 99th pct.)", fontsize=10)
    ax.tick_params(labelsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    bar = base64.b64encode(buffer.getvalue()).decode("ascii")
    missed, alarm = (WRONG_VERDICTS[k][1] for k in ((True, False), (False, True)))
    return (
        '<div style="font-size:13px;display:flex;gap:16px;align-items:center;flex-wrap:wrap">'
        f'<img src="data:image/png;base64,{bar}" width="440" height="75" '
        'alt="colour bar of the uncertainty maps: yellow 0 (sure) to purple 1 (unsure)">'
        "<span>Segmentations: green true positive, red false positive, blue false negative,"
        " the true outline in white."
        f"<br>A Jaccard index of at least {threshold} passes. g's wrong verdicts:"
        f' <span style="background:{missed}">missed failure</span>,'
        f' <span style="background:{alarm}">false alarm</span>. "no map": the g that'
        " sees no map, on the same masks; where its verdict differs, the map changed"
        f' it, <span style="color:{CHANGED_COLOURS["rightly"]}">rightly</span> or'
        f' <span style="color:{CHANGED_COLOURS["wrongly"]}">wrongly</span>.</span></div>'
    )


def _on_colab() -> bool:
    return "google.colab" in sys.modules


def _by_seed(lesions) -> dict[int, list[Lesion]]:
    if isinstance(lesions, dict):
        return {seed: list(kept) for seed, kept in lesions.items() if kept}
    by_seed: dict[int, list[Lesion]] = {}
    for lesion in lesions:
        by_seed.setdefault(lesion.seed, []).append(lesion)
    return by_seed


def _stepper(n: int):
    """A slider over lesions 1 to ``n`` and a number box on the same value, whose arrows
    step to the previous or next lesion (they work without a kernel)."""
    slider = widgets.IntSlider(
        value=1, min=1, max=max(n, 1), description="lesion", readout=False, disabled=n == 1
    )
    box = widgets.BoundedIntText(
        value=1,
        min=1,
        max=max(n, 1),
        continuous_update=True,
        description=f"of {n}:",
        layout=widgets.Layout(width="150px"),
        style={"description_width": "50px"},
    )
    return slider, box


def uncertainty_explorer(lesions, wiring: str | None = None, threshold: float = FAILURE_THRESHOLD):
    """The explorer widget for ``lesions`` (a list from
    :func:`~segqual_lite.lesions.explorer_lesions`, or a dict seed -> list): a seed, a
    filter, a slider with a number box over the lesions the filter keeps, and one lesion
    at a time (:func:`~segqual_lite.lesions.lesion_html`).

    ``wiring`` is ``"static"`` (jslink, works without a kernel) or ``"live"`` (Python
    callbacks); by default static, except on Colab or without ``widgets.Stack``.
    """
    by_seed = _by_seed(lesions)
    if not by_seed:
        raise ValueError("no lesions to explore: explorer_lesions returned an empty list")
    if wiring is None:
        wiring = "live" if _on_colab() or not hasattr(widgets, "Stack") else "static"
    if wiring not in ("static", "live"):
        raise ValueError(f"wiring must be 'static' or 'live', got {wiring!r}")
    legend = widgets.HTML(_legend(threshold))
    seeds = list(by_seed)
    seed_picker = widgets.Dropdown(
        options=[f"seed {s}" for s in seeds], index=0, description="seed"
    )
    filters = {s: lesion_filters(kept, threshold) for s, kept in by_seed.items()}

    def filter_picker(seed):
        return widgets.Dropdown(
            options=[f"{name} ({len(kept)})" for name, kept in filters[seed].items()],
            index=0,
            description="show",
            layout=widgets.Layout(width="360px"),
        )

    if wiring == "static":
        blank = widgets.HTML()  # index 0 of every stack: the slider counts from 1
        seed_pages = []
        for seed, kept_lesions in by_seed.items():
            fragments = [widgets.HTML(lesion_html(les, threshold)) for les in kept_lesions]
            picker = filter_picker(seed)
            pages = []
            for kept in filters[seed].values():
                slider, box = _stepper(len(kept))
                stack = widgets.Stack([blank, *(fragments[i] for i in kept)], selected_index=1)
                widgets.jslink((slider, "value"), (box, "value"))
                widgets.jslink((slider, "value"), (stack, "selected_index"))
                pages.append(widgets.VBox([widgets.HBox([slider, box]), stack]))
            outer = widgets.Stack(pages, selected_index=0)
            widgets.jslink((picker, "index"), (outer, "selected_index"))
            seed_pages.append(widgets.VBox([picker, outer]))
        by_seed_stack = widgets.Stack(seed_pages, selected_index=0)
        widgets.jslink((seed_picker, "index"), (by_seed_stack, "selected_index"))
        return widgets.VBox([legend, seed_picker, by_seed_stack])

    picker = filter_picker(seeds[0])
    slider, box = _stepper(len(next(iter(filters[seeds[0]].values()))))
    widgets.link((slider, "value"), (box, "value"))
    previous, following = widgets.Button(description="previous"), widgets.Button(description="next")
    shown = widgets.HTML()

    def kept_now():
        seed = seeds[seed_picker.index]
        return seed, list(filters[seed].values())[picker.index]

    def redraw(_=None):
        seed, kept = kept_now()
        shown.value = lesion_html(by_seed[seed][kept[slider.value - 1]], threshold)

    def refilter(_=None):
        _, kept = kept_now()
        with slider.hold_trait_notifications(), box.hold_trait_notifications():
            slider.value = box.value = 1
            slider.max = box.max = len(kept)
            box.description = f"of {len(kept)}:"
        redraw()

    def reseed(_=None):
        with picker.hold_trait_notifications():
            picker.options = filter_picker(seeds[seed_picker.index]).options
            picker.index = 0
        refilter()

    def step(delta):
        slider.value = min(max(slider.value + delta, slider.min), slider.max)

    seed_picker.observe(reseed, names="index")
    picker.observe(refilter, names="index")
    slider.observe(redraw, names="value")
    previous.on_click(lambda _: step(-1))
    following.on_click(lambda _: step(+1))
    redraw()
    controls = widgets.HBox([previous, slider, box, following])
    return widgets.VBox([legend, seed_picker, picker, controls, shown])
