"""The registry of methods and rows: every other module asks here (chapters 03-11).

A **method** is a way for f to produce a mask and an uncertainty map: which U-Net it
reads (and so which head that U-Net trains), how its map is scaled to [0, 1] for g, and
how many samples it draws. A **row** is a line of Table 1 (or of chapter 11's table):
which method's masks and maps it judges, what g is given, and the paper's numbers.

Adding a method touches this registry, its equations in
:mod:`segqual_lite.uncertainty` and its chapter; nothing else names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import Profile

__all__ = [
    "Method",
    "Row",
    "UNET_HEADS",
    "METHOD_REGISTRY",
    "ROW_REGISTRY",
    "METHODS",
    "SEGMENTERS",
    "TABLE_ROWS",
    "QUALITY_ROWS",
    "CROSSFIT_ROWS",
    "BEYOND_ROWS",
    "REFERENCE_ROWS",
    "CONTROL_ROWS",
    "SCORE_ROWS",
    "EXTENDED_ROWS",
    "ONE_PASS_METHODS",
    "SHIFT_ROWS",
    "AGGREGATIONS",
    "ROW_LABELS",
    "PAPER_TABLE1",
    "get_method",
    "get_row",
    "label",
    "samples",
    "in_channels",
    "control_of",
    "map_maximum",
]

# The U-Nets f comes in, and the extra head each trains (chapter 02; 05 and 06).
UNET_HEADS = {"plain": None, "hcnn": "sigma", "lce": "confidence"}


@dataclass(frozen=True)
class Method:
    """One way of segmenting with an uncertainty map.

    ``unet``: the U-Net it reads (a key of :data:`UNET_HEADS`); ``map_kind``: what its
    map is, which sets the largest value the map can take with C classes and so the
    divisor that brings it to [0, 1] for g (:func:`map_maximum`): ``"one_minus_max"``
    (1 - 1/C), ``"entropy"`` (ln C), ``"one_minus_confidence"`` (1), or ``"sigma"``
    (unbounded, scaled by its 99th percentile on g's training images instead);
    ``samples_field``: the profile field holding its number of samples T, and
    ``default_samples`` the paper's T; ``all_seeds``: one predictor made of the U-Nets of
    every seed of the profile (the deep ensemble).
    """

    name: str
    label: str
    unet: str
    map_kind: str
    equation: str
    chapter: str
    samples_field: str | None = None
    default_samples: int = 1
    all_seeds: bool = False
    paper: bool = True

    @property
    def head(self) -> str | None:
        """The extra head of this method's U-Net: None, ``"sigma"`` or ``"confidence"``."""
        return UNET_HEADS[self.unet]


@dataclass(frozen=True)
class Row:
    """One row of the results tables.

    ``method``: the method of f whose test masks the row judges (and whose map g reads);
    ``inputs``: what g is given, ``"x*y"`` (QualityNet), ``"x,y"``, ``"x,y,z"``, or None
    for rows without g (RCA, the reference orders of chapter 11, the scores of chapter
    12); ``crossfit``: g learns from out-of-fold segmentations of the training images
    (chapter 11); ``score``: for a training-free row (chapter 12), the image score of
    :data:`AGGREGATIONS` that replaces g; ``paper``: the paper's Table 1 as (mean, std)
    per metric, RMSE a fraction, the rest %.
    """

    name: str
    label: str
    method: str
    inputs: str | None
    table: str  # "table1", "control", "beyond", "reference" or "scores"
    crossfit: bool = False
    score: str | None = None
    paper: tuple[tuple[float, float], ...] | None = None


_METHODS = (
    Method("max_prob", "Max Probability", "plain", "one_minus_max", "4", "03"),
    Method(
        "mc_dropout",
        "MC-dropout",
        "plain",
        "entropy",
        "5-6",
        "04",
        samples_field="mc_samples",
        default_samples=20,
    ),
    Method(
        "hcnn",
        "HCNN",
        "hcnn",
        "sigma",
        "7",
        "05",
        samples_field="hcnn_samples",
        default_samples=100,
    ),
    Method("lce", "LCE", "lce", "one_minus_confidence", "8", "06"),
    # Beyond the paper (chapter 11): entropy maps of mean softmaxes of plain U-Nets.
    Method("ensemble", "Deep ensemble", "plain", "entropy", "6", "11", all_seeds=True, paper=False),
    Method("tta", "TTA", "plain", "entropy", "6", "11", paper=False),
)

# DeVries & Taylor (2018), Table 1: mean and std over 5 runs; RMSE a fraction, the rest %
# (RMSE, detection error, AUROC, AUPR-Pass, AUPR-Fail).
_ROWS = (
    Row(
        "rca",
        "RCA",
        "max_prob",
        None,
        "table1",
        paper=((0.438, 0.007), (43.8, 1.0), (53.7, 1.4), (74.4, 1.4), (30.7, 0.9)),
    ),
    Row(
        "qualitynet",
        "QualityNet",
        "max_prob",
        "x*y",
        "table1",
        paper=((0.213, 0.009), (25.7, 2.7), (80.9, 3.1), (89.0, 2.3), (69.1, 4.7)),
    ),
    Row(
        "no_uncertainty",
        "No Uncertainty",
        "max_prob",
        "x,y",
        "table1",
        paper=((0.198, 0.011), (27.3, 3.3), (79.8, 3.8), (88.5, 1.9), (66.4, 7.9)),
    ),
    Row(
        "max_prob",
        "Max Probability",
        "max_prob",
        "x,y,z",
        "table1",
        paper=((0.168, 0.014), (18.4, 3.0), (88.4, 2.2), (93.2, 1.6), (80.5, 3.2)),
    ),
    Row(
        "mc_dropout",
        "MC-dropout",
        "mc_dropout",
        "x,y,z",
        "table1",
        paper=((0.163, 0.010), (18.8, 1.4), (88.1, 0.8), (93.5, 1.3), (78.1, 3.0)),
    ),
    Row(
        "hcnn",
        "HCNN",
        "hcnn",
        "x,y,z",
        "table1",
        paper=((0.196, 0.023), (21.3, 1.8), (85.5, 1.5), (91.6, 1.4), (76.2, 4.5)),
    ),
    Row(
        "lce",
        "LCE",
        "lce",
        "x,y,z",
        "table1",
        paper=((0.167, 0.019), (19.3, 1.1), (88.3, 1.4), (93.6, 1.5), (79.1, 3.9)),
    ),
    Row(
        "max_prob_crossfit",
        "Max Probability, cross-fitted",
        "max_prob",
        "x,y,z",
        "beyond",
        crossfit=True,
    ),
    Row(
        "mc_dropout_crossfit",
        "MC-dropout, cross-fitted",
        "mc_dropout",
        "x,y,z",
        "beyond",
        crossfit=True,
    ),
    Row("ensemble", "Deep ensemble", "ensemble", "x,y,z", "beyond"),
    Row("tta", "TTA", "tta", "x,y,z", "beyond"),
    # Controls (ours): g given x and y_hat only, on the masks of a method with its own
    # segmentations, so that each uncertainty row meets the g that saw the same masks.
    Row(
        "no_uncertainty_mc_dropout",
        "No Uncertainty, MC-dropout's masks",
        "mc_dropout",
        "x,y",
        "control",
    ),
    Row("no_uncertainty_hcnn", "No Uncertainty, HCNN's masks", "hcnn", "x,y", "control"),
    Row("no_uncertainty_lce", "No Uncertainty, LCE's masks", "lce", "x,y", "control"),
    # Reference orders of risk-coverage (chapter 11), for the plain U-Net's test masks.
    Row("oracle", "Oracle order, Max Probability's masks", "max_prob", None, "reference"),
    Row("random", "Random order, Max Probability's masks", "max_prob", None, "reference"),
)

# Training-free image scores (chapter 12, :mod:`segqual_lite.scores`): what each one
# reads and how it is named in a row's label.
AGGREGATIONS = {
    "image_mean": "mean over the image",
    "foreground_mean": "mean over the predicted lesion",
    "boundary_mean": "mean away from the predicted border",
    "agreement": "pairwise Jaccard of the masks it averages",
    "expected_entropy": "expected entropy, mean over the image",
    "mutual_information": "mutual information, mean over the image",
}
_SCORES = {
    **{m: ("image_mean", "foreground_mean", "boundary_mean") for m in ("max_prob", "hcnn", "lce")},
    "mc_dropout": (
        "image_mean",
        "foreground_mean",
        "boundary_mean",
        "agreement",
        "expected_entropy",
        "mutual_information",
    ),
    "ensemble": ("agreement",),
    "tta": ("agreement",),
}
_ROWS += tuple(
    Row(
        f"{method}_{score}",
        f"{next(m.label for m in _METHODS if m.name == method)}, {AGGREGATIONS[score]}",
        method,
        None,
        "scores",
        score=score,
    )
    for method, scores in _SCORES.items()
    for score in scores
)

METHOD_REGISTRY: dict[str, Method] = {m.name: m for m in _METHODS}
ROW_REGISTRY: dict[str, Row] = {r.name: r for r in _ROWS}

METHODS = tuple(m.name for m in _METHODS if m.paper)  # the paper's four
SEGMENTERS = tuple(METHOD_REGISTRY)  # every method, chapter 11's included
TABLE_ROWS = tuple(r.name for r in _ROWS if r.table == "table1")
QUALITY_ROWS = tuple(r for r in TABLE_ROWS if ROW_REGISTRY[r].inputs)  # Table 1's rows with g
CROSSFIT_ROWS = tuple(r.name for r in _ROWS if r.crossfit)
BEYOND_ROWS = tuple(r.name for r in _ROWS if r.table == "beyond")
REFERENCE_ROWS = tuple(r.name for r in _ROWS if r.table == "reference")
CONTROL_ROWS = tuple(r.name for r in _ROWS if r.table == "control")
SCORE_ROWS = tuple(r.name for r in _ROWS if r.table == "scores")
# Every row beyond the paper's: chapter 11's and chapter 12's (``reproduce --beyond``).
EXTENDED_ROWS = (*BEYOND_ROWS, *SCORE_ROWS)
# The paper's methods whose map costs one pass of f (no samples T), and the rows of
# chapter 12's shift test, rerun at every corruption: g with and without the plain
# U-Net's map, the g of every other one-pass method, and the plain U-Net's map averaged
# over the image, training-free (MC-dropout's and HCNN's sampled maps would dominate the
# book's time).
ONE_PASS_METHODS = tuple(m.name for m in _METHODS if m.paper and m.samples_field is None)
SHIFT_ROWS = (
    *(
        r
        for r in TABLE_ROWS
        if ROW_REGISTRY[r].inputs in ("x,y", "x,y,z") and ROW_REGISTRY[r].method in ONE_PASS_METHODS
    ),
    f"{ONE_PASS_METHODS[0]}_image_mean",
)
ROW_LABELS = {r: ROW_REGISTRY[r].label for r in TABLE_ROWS}
PAPER_TABLE1 = {r: list(ROW_REGISTRY[r].paper) for r in TABLE_ROWS}

_CHANNELS = {"x*y": 3, "x,y": 4, "x,y,z": 5}


def get_method(name: str) -> Method:
    """The registered method called ``name``; a clear error for anything else."""
    try:
        return METHOD_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}: choose one of {SEGMENTERS}") from None


def get_row(name: str) -> Row:
    """The registered row called ``name``; a clear error for anything else."""
    try:
        return ROW_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown row {name!r}: choose one of {tuple(ROW_REGISTRY)}") from None


def label(name: str) -> str:
    """The readable name of a row or a method (the name itself when unregistered)."""
    entry = ROW_REGISTRY.get(name) or METHOD_REGISTRY.get(name)
    return entry.label if entry else name


def samples(profile: Profile, method: str) -> int | None:
    """T for ``method``'s sampled map on ``profile`` (MC-dropout, HCNN); None otherwise."""
    field = get_method(method).samples_field
    return getattr(profile, field) if field else None


def in_channels(row: str) -> int:
    """Input channels of g for ``row``: 3 (x * y_hat), 4 (x, y_hat) or 5 (x, y_hat, z)."""
    inputs = get_row(row).inputs
    if inputs is None:
        raise ValueError(f"row {row!r} has no quality network g")
    return _CHANNELS[inputs]


def control_of(row: str) -> str:
    """The control of an uncertainty row: the row whose g sees x and y_hat only, on the
    same method's masks (No Uncertainty for the plain U-Net's). Comparing a row with its
    control isolates what the map adds to g."""
    r = get_row(row)
    for candidate in (*TABLE_ROWS, *CONTROL_ROWS):
        c = ROW_REGISTRY[candidate]
        if c.inputs == "x,y" and c.method == r.method and not r.crossfit:
            return candidate
    raise ValueError(f"row {row!r} has no control: controls exist for {QUALITY_ROWS[2:]}")


_MAXIMA = {
    "one_minus_max": lambda c: 1 - 1 / c,
    "entropy": math.log,
    "one_minus_confidence": lambda c: 1.0,
}


def map_maximum(method: str, num_classes: int = 2) -> float | None:
    """The largest value ``method``'s map can take with ``num_classes`` classes (None for
    HCNN's unbounded sigma): the divisor that brings the map to [0, 1] for g."""
    kind = get_method(method).map_kind
    return None if kind == "sigma" else float(_MAXIMA[kind](num_classes))
