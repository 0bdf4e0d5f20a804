# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The quality network
#
# The second stage of the paper's system reads a segmentation and says how good it is.
# A VGG-style network $g$ {footcite}`simonyan2015vgg` receives the image, the predicted
# mask and, in the paper's proposal, the uncertainty map, and regresses the Jaccard index
# of the segmentation (eq. 3 of {footcite}`devries2018leveraging`). This chapter builds
# its training data, its variants (the rows of Table 1) and trains one.

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/07_quality_network.ipynb)

# %% [markdown]
# **You will learn**
#
# - what $g$ sees in each row of Table 1, and how the uncertainty maps are normalised;
# - where $g$'s training data comes from, and why that choice matters;
# - how $g$ is trained, and what its predictions look like against the truth.

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

from segqual_lite import metrics
from segqual_lite.config import start_chapter
from segqual_lite.data import prepare_data
from segqual_lite.models import QualityCNN
from segqual_lite.quality import (
    QualityDataset,
    fit_quality,
    map_scale,
    predict_quality,
)
from segqual_lite.rows import (
    METHODS,
    QUALITY_ROWS,
    get_row,
    in_channels,
    label,
)
from segqual_lite.segment import segment_split
from segqual_lite.viz import (
    UNCERTAINTY_COLOURS,
    say,
    show_source,
    summary_text,
    to_hwc,
)

# %% tags=["parameters"]
profile = "tiny"
# fields of the profile to change, e.g. {"epochs_f": 2, "seeds": [0]}
overrides = {}
row = "max_prob"  # the row of Table 1 this chapter trains

# %%
P, device, seed = start_chapter(profile, overrides)
root = prepare_data(P)

# %% [markdown]
# ## Equation 3
#
# For an image $x$, the segmentation $\hat y = f(x)$ and its uncertainty map $z$, the
# quality network predicts
#
# $$
# \hat v = g(x, \hat y, z) \in [0, 1], \tag{3}
# $$
#
# trained to match the true Jaccard index $v = J(\hat y, y)$ with the mean squared error
# $\frac1n \sum_t (\hat v_t - v_t)^2$. At test time no ground truth is needed: $g$ flags
# a segmentation as a failure when $\hat v < 0.7$.
#
# $g$ is a small VGG-style CNN: blocks of two $3 \times 3$ convolutions with pooling,
# global average pooling, one linear layer and a sigmoid. The paper trains it for 30
# epochs with Adam ($10^{-3}$), batches of 16, and the same flips and rotations as $f$.

# %% [markdown]
# The inputs of eq. (3) are assembled by
# {py:meth}`~segqual_lite.quality.QualityDataset.inputs`, for each row of Table 1:

# %%
show_source(QualityDataset.inputs)

# %%
for name in QUALITY_ROWS:
    g = QualityCNN(in_channels(name), P.quality_widths)
    print(
        f"{name:15s} {in_channels(name)} input channels,"
        f" {sum(p.numel() for p in g.parameters()):,} parameters"
    )

# %% [markdown]
# ## What $g$ sees, row by row
#
# - **QualityNet** {footcite}`huang2016qualitynet`: the image masked by the segmentation,
#   $x \odot \hat y$ (3 channels);
# - **No Uncertainty**: the image and the mask side by side, $(x, \hat y)$ (4 channels);
# - **Max Probability, MC-dropout, HCNN, LCE**: $(x, \hat y, z)$ with the map of that
#   method, from that method's U-Net (5 channels).
#
# The maps live on different scales: $1 - \max p \le 0.5$, an entropy $\le \ln 2$,
# $1 - c \le 1$, and HCNN's $\sigma$ is unbounded. Each is divided by its largest
# possible value, and $\sigma$ by its 99th percentile on $g$'s training images (clipped
# at 1), so that every map enters $g$ in $[0, 1]$. For one training image:

# %% mystnb={"image": {"alt": "What the quality network g sees for one training image: the image, QualityNet's masked image and the predicted mask, then the scaled uncertainty map of each of the four methods with one colour bar"}}
train_sets = {
    m: segment_split(P, m, seed, root, "train", device) for m in METHODS
}
i = int(
    np.argsort(train_sets["max_prob"].jaccard)[
        len(train_sets["max_prob"].jaccard) // 10
    ]
)
fig, axes = plt.subplots(2, 4, figsize=(7, 4.4), layout="constrained")
axes[0, 0].imshow(to_hwc(train_sets["max_prob"].images[i]))
axes[0, 0].set_title("the image x")
for ax, name in zip(axes[0, 1:3], ["qualitynet", "no_uncertainty"]):
    x = QualityDataset(name, train_sets["max_prob"], 1.0)[i][0]
    ax.imshow(
        to_hwc(x[:3]) if name == "qualitynet" else x[3], cmap="gray"
    )
    given = "x * y_hat" if name == "qualitynet" else "y_hat, beside x"
    ax.set_title(f"{label(name)}:\n{given}")
for ax, method in zip(axes[1], train_sets):
    seg = train_sets[method]
    x = QualityDataset(method, seg, map_scale(method, seg.maps))[i][0]
    shown = ax.imshow(x[4], cmap=UNCERTAINTY_COLOURS, vmin=0, vmax=1)
    ax.set_title(
        f"{label(method)}: z / scale\n(its mask: J ="
        f" {seg.jaccard[i]:.2f})"
    )
fig.colorbar(
    shown, ax=axes[1, :], shrink=0.8, label="z / scale: 0 sure, 1 unsure"
)
for ax in axes.flat:
    ax.axis("off")

# %% [markdown]
# ## Where the training data comes from
#
# $g$ needs segmentations *with* known quality. The paper takes $f$'s predictions on
# $f$'s own training images. That is cheap, but $f$ has seen those images: on ISIC 2017
# its masks there are better than on new images, so $g$ sees fewer failures in training
# than it will meet at test time (the paper notes that its estimates rarely fall below
# 0.2). Whether that happens on this run, from the quality of $f$'s segmentations on both
# splits:

# %% mystnb={"image": {"alt": "Histograms of the true Jaccard of f's masks on the training split, where g learns, and on the test split, a dotted line at 0.7"}}
seg_train = train_sets[get_row(row).method]
seg_test = segment_split(
    P, get_row(row).method, seed, root, "test", device
)
fig, ax = plt.subplots(figsize=(5.5, 2.8))
bins = np.linspace(0, 1, 26)
for seg, name in (
    (seg_train, "training split (g learns here)"),
    (seg_test, "test split"),
):
    ax.hist(seg.jaccard, bins=bins, alpha=0.6, density=True, label=name)
ax.axvline(metrics.FAILURE_THRESHOLD, c="k", ls=":")
ax.set(xlabel="true Jaccard of f's mask", ylabel="density")
ax.legend(fontsize=8)
fig.tight_layout()
for name, seg in [("training", seg_train), ("test", seg_test)]:
    print(
        f"{name:8s} split: mean J {seg.jaccard.mean():.3f},"
        f" {np.mean(seg.jaccard < metrics.FAILURE_THRESHOLD):.0%} below"
        f" {metrics.FAILURE_THRESHOLD}"
    )
gap = seg_train.jaccard.mean() - seg_test.jaccard.mean()
say(
    f"f's masks are {'better' if gap > 0 else 'worse'} on its training"
    f" images by {abs(gap):.3f} in mean Jaccard: "
    + (
        "the paper's situation"
        if gap > 0
        else "unlike the paper, g trains on no easier cases"
    )
)

# %% [markdown]
# `fit_quality(..., train_split=...)` can learn from another split instead; chapter 11
# trains $g$ on out-of-fold predictions.
#
# ## Training $g$
#
# The row is a parameter of this chapter (`row` in the parameters cell); $g$ is trained
# for the profile's `epochs_g`, or loaded from the cache when the results chapter or an
# earlier run has trained it:

# %% mystnb={"image": {"alt": "Training loss (mean squared error) of the quality network g per epoch"}}
g, scale = fit_quality(P, row, seed, root, device=device)
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot([h["epoch"] for h in g.history], [h["loss"] for h in g.history])
ax.set(
    xlabel="epoch",
    ylabel="training MSE",
    title=f"g for row {row}, seed {seed}",
)
fig.tight_layout()

# %% mystnb={"image": {"alt": "Scatter plot of g's predicted Jaccard against the true Jaccard on the test split, with the diagonal and dotted lines at 0.7"}}
predicted = predict_quality(g.model, row, seg_test, scale)
summary = metrics.summarize(seg_test.jaccard, predicted)
say(summary_text(summary))
fig, ax = plt.subplots(figsize=(4, 4))
ax.scatter(seg_test.jaccard, predicted, s=10, alpha=0.7)
ax.plot([0, 1], [0, 1], c="grey", lw=0.8)
ax.axvline(metrics.FAILURE_THRESHOLD, ls=":", c="k")
ax.axhline(metrics.FAILURE_THRESHOLD, ls=":", c="k")
ax.set(
    xlabel="true Jaccard",
    ylabel="predicted Jaccard",
    xlim=(0, 1.02),
    ylim=(0, 1.02),
)
fig.tight_layout()

# %% [markdown]
# Points in the lower left are failures that $g$ caught; in the upper left, failures it
# missed (false positives of the pass class); in the lower right, good segmentations it
# would send to a person for nothing.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-g-constant
# How much better than a constant is $g$? Compare its RMSE with that of always
# predicting the mean true Jaccard of its training split.
# ```
#
# ```{solution-start} ex-g-constant
# :class: dropdown
# ```

# %%
constant = np.full_like(seg_test.jaccard, seg_train.jaccard.mean())
print(
    f"g: RMSE {metrics.rmse(seg_test.jaccard, predicted):.3f} | constant:"
    f" RMSE {metrics.rmse(seg_test.jaccard, constant):.3f}"
)

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-g-map-only
# Is a learned $g$ needed at all? Score each test image by its mean (normalised)
# uncertainty alone and compare the AUROC with $g$'s.
# ```
#
# ```{solution-start} ex-g-map-only
# :class: dropdown
# ```

# %%
map_only = -seg_test.maps.float().mean(dim=(1, 2)).numpy()
print(
    f"AUROC: g {metrics.auroc(seg_test.jaccard, predicted):.3f} | mean"
    f" map alone {metrics.auroc(seg_test.jaccard, map_only):.3f}"
)

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - $g$ regresses the Jaccard index (eq. 3) from $x \odot \hat y$, $(x, \hat y)$ or
#   $(x, \hat y, z)$, the rows of Table 1; maps are normalised to $[0, 1]$.
# - It learns from $f$'s predictions on $f$'s training images, as in the paper.
# - Its predictions are judged with the metrics of chapter 08.
#
# ## References
#
# ```{footbibliography}
# ```
