# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Beyond the paper: cross-fitting, risk-coverage, ensembles and TTA
#
# The paper {footcite}`devries2018leveraging` leaves some questions open, and later work
# added tools it did not use. This chapter tries four of them with the same grid as
# Table 1 (same seeds, same quality network $g$, same test images): training $g$ on
# *out-of-fold* segmentations, judging $g$ by how much work it can take off an expert
# (risk-coverage), and two more uncertainty maps, a deep ensemble and test-time
# augmentation.

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/11_beyond.ipynb)

# %% [markdown]
# **You will learn**
#
# - why $g$'s training segmentations should come from a network that never saw their
#   images, and how cross-fitting provides them;
# - how a risk-coverage curve turns predicted quality into an automation rate;
# - how a deep ensemble and test-time augmentation (TTA) produce uncertainty maps, and
#   whether they help $g$ on this run.

# %% tags=["hide-input"]
# Install segqual_lite if missing (Colab); an existing torch is kept.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("segqual_lite") is None:
    REPO_URL = "https://github.com/segqual-lite/segqual-lite"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"],
        check=True,
    )

# %%

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from segqual_lite.conclusions import comparisons_frame
from segqual_lite.config import data_name, start_chapter
from segqual_lite.data import DIHEDRAL, dihedral, prepare_data
from segqual_lite.experiment import run_grid
from segqual_lite.metrics import (
    FAILURE_THRESHOLD,
    METRICS,
    aurc,
    automation_rate,
    risk_coverage,
)
from segqual_lite.rows import SCORE_ROWS, label
from segqual_lite.segment import segment_split
from segqual_lite.stats import COMPARED_METRICS, compare
from segqual_lite.tables import (
    beyond_table,
    display_frame,
    display_table,
    format_table_md,
    metric_name,
    per_seed_arrays,
    read_predictions,
    signed,
    table_caption,
)
from segqual_lite.training import crossfit_folds
from segqual_lite.viz import (
    PAGE_WIDTH,
    plot_figure2,
    plot_forest,
    plot_risk_coverage,
    say,
    to_hwc,
)

# %% tags=["parameters"]
profile = "tiny"
# fields of the profile to change, e.g. {"epochs_f": 2, "seeds": [0]}
overrides = {}

# %%
P, device, seed = start_chapter(profile, overrides)
root = prepare_data(P)

# %% [markdown]
# ## Cross-fitting: training data that $f$ has not seen
#
# In the paper, $g$ learns from $f$'s segmentations of $f$'s own training images. A
# network segments the images it was trained on better than new ones; the paper notes
# that these quality estimates "rarely fall below 0.2" and suggests a held-out set as
# future work. Then $g$ learns what $f$'s successes look like, but sees few of its
# failures, while at test time failures are exactly what it must find.
#
# **Cross-fitting** {footcite}`chernozhukov2018double` gets held-out segmentations of
# every training image without setting any image aside. Split the training images into
# $K$ folds; train one U-Net $f^{(-k)}$ on all folds but the $k$-th and let it segment
# fold $k$:
#
# $$\hat y_i = f^{(-k(i))}(x_i), \qquad k(i) \text{ the fold of image } i.$$
#
# Every training image is then segmented by a network that never saw it, as a test image
# is. $g$ learns from these out-of-fold segmentations and maps; at test time nothing
# changes: the test images are segmented by the U-Net trained on the whole training
# split, exactly as for the rows of Table 1. The price is $K$ more U-Nets per seed, each
# trained on a fraction $(K-1)/K$ of the images (the profile's `crossfit_folds`; $K = 2$
# on `tiny`, 5 on `paper`).

# %%
train = segment_split(P, "max_prob", seed, root, "train", device)
fold = crossfit_folds(len(train.ids), P.crossfit_folds, seed)
print(
    f"{P.crossfit_folds} folds of {np.bincount(fold).tolist()} training"
    f" images (seed {seed})"
)

# %% [markdown]
# How different are the three sets of segmentations: the training images segmented
# in-sample (the paper's choice), out-of-fold, and the test images?

# %% mystnb={"image": {"alt": "Histograms of the true Jaccard of the plain U-Net's masks on the training split in-sample, out-of-fold, and on the test split, a dotted line at 0.7"}}
quality_sets = {
    "training, in-sample": train,
    "training, out-of-fold": segment_split(
        P, "max_prob", seed, root, "train", device, crossfit=True
    ),
    "test": segment_split(P, "max_prob", seed, root, "test", device),
}
fig, ax = plt.subplots(figsize=(6, 3))
bins = np.linspace(0, 1, 26)
for name, seg in quality_sets.items():
    ax.hist(
        seg.jaccard,
        bins=bins,
        histtype="step",
        density=True,
        lw=1.5,
        label=name,
    )
    print(
        f"{name:22s} mean J {seg.jaccard.mean():.3f}, below"
        f" {FAILURE_THRESHOLD}:"
        f" {np.mean(seg.jaccard < FAILURE_THRESHOLD):.1%}"
    )
ax.axvline(FAILURE_THRESHOLD, ls=":", c="k")
ax.set(xlabel="true Jaccard of the plain U-Net's masks", ylabel="density")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# Read the three lines above against each other. In-sample segmentations that are
# better than the test ones are the paper's problem; out-of-fold ones come from fold
# models trained on fewer images than $f$, so they can be *worse* than $f$'s on the test
# split: cross-fitting trades "too good" for "too bad", by a margin that shrinks as $K$
# grows (with $K = 5$, the `paper` profile, each fold model sees 80% of the images; with
# $K = 2$ on `tiny`, half). Both gaps, measured on this run:

# %%
test_mean = quality_sets["test"].jaccard.mean()
for name in ("training, in-sample", "training, out-of-fold"):
    gap = quality_sets[name].jaccard.mean() - test_mean
    verdict = "better" if gap > 0 else "worse"
    print(
        f"{name:22s} mean J {abs(gap):.3f} {verdict} than on the test"
        " split"
    )

# %% [markdown]
# ## Two more uncertainty maps: deep ensembles and test-time augmentation
#
# A **deep ensemble** {footcite}`lakshminarayanan2017ensembles` trains the same network
# several times from different random initialisations and data orders, and averages the
# softmax of its $M$ members; here the members are the plain U-Nets of the profile's
# seeds (so the ensemble's maps are the same for every seed of $g$; only $g$ changes):
#
# $$\bar p = \frac{1}{M} \sum_{m=1}^{M} \operatorname{softmax}\big(f_m(x)\big).$$
#
# **Test-time augmentation** {footcite}`wang2019tta` uses one network but several views
# of the image: each of the eight symmetries $T_t$ of the square (flips and quarter
# turns, the augmentation $f$ was trained with) is applied, the network segments the
# view, and the prediction is turned back with $T_t^{-1}$ before averaging:
#
# $$\bar p = \frac{1}{8} \sum_{t=1}^{8} T_t^{-1}\Big(\operatorname{softmax}\big(f(T_t\,x)\big)\Big).$$
#
# In both cases the mask is $\arg\max_c \bar p_c$ and the uncertainty map is the entropy
# of $\bar p$ (eq. 6), exactly as for MC-dropout, where the average runs over dropout
# masks. The eight views of one test image, the one the U-Net segments best:

# %% mystnb={"image": {"alt": "One test image under the eight flips and rotations that test-time augmentation averages over"}}
test = quality_sets["test"]
shown = int(np.argmax(test.jaccard))  # a lesion the U-Net sees clearly
fig, axes = plt.subplots(2, len(DIHEDRAL) // 2, figsize=(PAGE_WIDTH, 4.0))
for ax, (t, (flip, k)) in zip(
    axes.flat, enumerate(DIHEDRAL), strict=True
):
    ax.imshow(to_hwc(dihedral(test.images[shown], t)))
    ax.set_title(f"{'mirror, ' if flip else ''}{90 * k}°", fontsize=9)
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# The maps of the four methods that read the plain U-Net, for the best, the median, a
# poor and the worst test segmentation of the plain U-Net (as in Figure 2):

# %% mystnb={"image": {"alt": "Figure 2 for chapter 11's maps: max probability, MC-dropout, the ensemble and test-time augmentation, each segmentation above its map, one colour bar"}}
methods = ("max_prob", "mc_dropout", "ensemble", "tta")
sets = {
    m: segment_split(P, m, seed, root, "test", device) for m in methods
}
fig = plot_figure2(sets)
for method, seg in sets.items():
    print(f"{label(method):16s} test mean J {seg.jaccard.mean():.3f}")

# %% [markdown]
# ## The grid with the new rows
#
# `run_grid(..., beyond=True)` runs Table 1's rows (loaded from the cache after chapter 10) and four new
# ones, for every seed, with the same $g$: `max_prob_crossfit` and
# `mc_dropout_crossfit` (the Max Probability and MC-dropout rows with out-of-fold
# training data), `ensemble` and `tta` (and the training-free rows of chapter 12, left
# out of the table here, as are its two metrics, AUGRC and NAURC). It writes
# `beyond.csv` and its readable twin, recomputed below from the per-image predictions
# as a check. Besides Table 1's five metrics there are two new columns, explained in
# the next section.

# %%
result = run_grid(P, data_root=root, device=device, beyond=True)
recomputed = beyond_table(
    read_predictions(result.out / "beyond_predictions.csv")
)
assert (
    format_table_md(recomputed, P.name, "Beyond Table 1")
    == (result.out / "beyond.md").read_text()
)
# Chapter 12 shows its rows and metrics (AUGRC, NAURC); this table keeps
# chapter 11's.
chapter11 = recomputed[
    ~recomputed["method"].isin(SCORE_ROWS)
    & ~recomputed["metric"].isin(["augrc", "naurc"])
]
# in two tables that fit the page: Table 1's metrics, then the risk metrics
in_table1 = chapter11["metric"].isin(METRICS)
display(
    Markdown(
        table_caption(chapter11, P.name, "Beyond Table 1", data_name(P))
    ),
    display_table(chapter11[in_table1]),
    display_table(chapter11[~in_table1]),
)

# %% [markdown]
# ## Risk-coverage: how much work can $g$ take off an expert?
#
# In deployment, $g$ decides which segmentations are accepted automatically and which
# go to an expert. Sort the test cases by predicted quality, highest first, and accept
# the first $k$: the **coverage** is $k/N$, and the accepted cases have a mean true
# Jaccard $\bar J_k$, their **risk** being $1 - \bar J_k$. The risk-coverage curve
# {footcite}`geifman2017selective` traces this for every $k$, and two numbers summarise
# it:
#
# - **AURC**, the area under the risk-coverage curve, $\frac{1}{N}\sum_{k=1}^{N}
#   (1 - \bar J_k)$: lower is better (the figure below plots $\bar J_k = 1 -$ risk,
#   so there higher is better);
# - the **automation rate** at 0.8: the largest coverage at which the accepted cases
#   keep $\bar J_k \geq 0.8$.
#
# Two orders frame every curve: the **oracle** accepts by the true Jaccard (the best any
# $g$ can do), the **random** order accepts blindly (its curve is flat at the mean
# Jaccard). Equal predicted values are accepted in random order, and the curve is the
# expected one. For the first seed:

# %% mystnb={"image": {"alt": "Risk-coverage curves: the mean true Jaccard of the accepted test images against the share accepted, one line per row, with the oracle order and a random order as references"}}
# the rows compared below in colour, the others grey
compared = [
    "max_prob",
    "max_prob_crossfit",
    "mc_dropout",
    "mc_dropout_crossfit",
]
compared += ["ensemble", "tta"]
fig = plot_risk_coverage(
    result.predictions, seed=P.seeds[0], highlight=compared
)

# %% [markdown]
# A target of 0.8 is easy when the segmentations are good on average: if the mean
# Jaccard of all test cases is already above it, even the random order accepts
# everything, and the automation rate cannot tell the rows apart. (The random order's
# curve is flat, so it automates all or nothing: averaged over seeds whose mean Jaccard
# falls on both sides of the target it gives a large standard deviation.) How far is each
# row's AURC from its own oracle (the *excess* AURC), and how much can be automated at
# stricter targets?

# %%
arrays = {
    m: a
    for m, a in per_seed_arrays(result.predictions).items()
    if m not in SCORE_ROWS
}
lines = []
for method, by_seed in arrays.items():
    true, pred = by_seed[P.seeds[0]]
    line = {
        "row": label(method),
        "mean J": f"{true.mean():.3f}",
        "E-AURC": f"{aurc(true, pred) - aurc(true, true):.4f}",
    }
    for t in (0.8, 0.85, 0.9):
        line[f"automated\nat {t}"] = (
            f"{automation_rate(true, pred, t):.0%}"
        )
    lines.append(line)
display(display_frame(pd.DataFrame(lines)))

# %% [markdown]
# ## What this run shows
#
# Each new row against the row it changes, paired per seed on the same test images, with
# the interval of chapter 08 (improvements: positive means the new row is better), in
# one table: a line per pair, a cell per metric with the mean, its 95% interval and the
# outcome. These rows are not in the book's reference run
# (its [analysis plan](../book/analysis_plan.md) says why: they cost too much for 20
# seeds on two cores), so these comparisons rest on this build's seeds only. Chapter 10
# shows how rarely so few seeds resolve a gain of a few points: read an unresolved cell
# as "not measured", not as "no effect".

# %% mystnb={"image": {"alt": "Forest plot, one panel per metric: the paired improvements of the cross-fitted, ensemble and test-time augmentation rows over their baselines, per seed and as a mean with its 95% interval"}}
pairs = [
    ("max_prob_crossfit", "max_prob"),
    ("mc_dropout_crossfit", "mc_dropout"),
    ("ensemble", "max_prob"),
    ("tta", "max_prob"),
    ("ensemble", "mc_dropout"),
    ("tta", "mc_dropout"),
]
comparisons = [
    compare(result.predictions, row, baseline, metric)
    for row, baseline in pairs
    for metric in COMPARED_METRICS
]
display(display_frame(comparisons_frame(comparisons)))
fig = plot_forest(comparisons)

# %% [markdown]
# How to read this table:
#
# - **Cross-fitting** changes only $g$'s training data; the test inputs are identical to
#   those of the in-sample rows. It removes the first gap measured in the first section
#   (in-sample segmentations better than test ones), where there is one, and adds the
#   second (out-of-fold ones from weaker fold models); where in-sample segmentations are
#   no better than test ones, cross-fitting can only make $g$'s training data less
#   like the test data. On ISIC 2017, where $f$ fits its training images far
#   better than new ones (the paper's remark), the first gap is large; the `colab` and
#   `paper` profiles measure it. On this run:

# %%
gaps = {
    name: quality_sets[name].jaccard.mean() - test_mean
    for name in ("training, in-sample", "training, out-of-fold")
}
larger = max(gaps, key=lambda name: abs(gaps[name]))
crossfit = [c for c in comparisons if c.row == "max_prob_crossfit"]
say(
    "f's training segmentations against its test ones, in mean J: "
    + ", ".join(
        f"{name} {signed(v, '{:+.3f}')}" for name, v in gaps.items()
    )
    + f"; the larger gap is the {larger} one. Cross-fitted Max"
    " Probability"
    " against in-sample: "
    + ", ".join(f"{metric_name(c.metric)} {c.outcome}" for c in crossfit)
)

# %% [markdown]
# - **Ensemble and TTA** change both the mask and the map, so their AUROC and RMSE
#   judge $g$ on different segmentations; AURC mixes the two (a better mask lowers every
#   point of the curve), which is why the excess AURC over each row's own oracle is
#   printed above.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-beyond-automation
# The automation rate depends on the target. For the first seed, plot the automation
# rate of Max Probability, its cross-fitted twin and the oracle against targets from
# 0.5 to 1.
# ```
#
# ```{solution-start} ex-beyond-automation
# :class: dropdown
# ```

# %% mystnb={"image": {"alt": "Share of test images automated against the target mean Jaccard of the accepted ones, for the oracle, Max Probability and its cross-fitted version"}}
targets = np.linspace(0.5, 1.0, 51)
fig, ax = plt.subplots(figsize=(4.5, 3))
true, _ = arrays["max_prob"][P.seeds[0]]
ax.plot(
    targets,
    [automation_rate(true, true, t) for t in targets],
    "k--",
    label="oracle",
)
for method in ("max_prob", "max_prob_crossfit"):
    true, pred = arrays[method][P.seeds[0]]
    rates = [automation_rate(true, pred, t) for t in targets]
    ax.plot(targets, rates, label=label(method))
ax.set(xlabel="target mean Jaccard", ylabel="share automated")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-beyond-selective
# A risk-coverage curve can also be drawn for a segmentation's *mean uncertainty*, with
# no $g$ at all: accept the images whose Max Probability map has the lowest mean first.
# Compute its AURC on the test split of the first seed and compare it with the Max
# Probability row's.
# ```
#
# ```{solution-start} ex-beyond-selective
# :class: dropdown
# ```

# %%
seg = sets["max_prob"]
mean_map = seg.maps.mean(dim=(1, 2)).numpy()
# low uncertainty first
coverage, accepted = risk_coverage(seg.jaccard, -mean_map)
true, pred = arrays["max_prob"][P.seeds[0]]
print(
    f"AURC by mean uncertainty: {aurc(seg.jaccard, -mean_map):.4f}; by g:"
    f" {aurc(true, pred):.4f}"
)

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - Cross-fitting gives $g$ training segmentations from networks that never saw the
#   images, at the cost of $K$ extra U-Nets per seed; the test side is unchanged.
# - Risk-coverage reads $g$ as a triage tool: AURC and the automation rate at a target
#   quality, beside the oracle and random orders of the same masks.
# - Deep ensembles and TTA give entropy maps like MC-dropout's from several networks or
#   several views; they also change the mask.
# - Every comparison above is paired per seed, with chapter 08's interval, and printed
#   from this run; with this build's few seeds it decides little.
#
# ## References
#
# ```{footbibliography}
# ```
