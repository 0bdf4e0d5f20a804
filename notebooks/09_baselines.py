# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Baselines: QualityNet and reverse classification accuracy
#
# Two earlier ways of predicting segmentation quality without ground truth stand beside
# the paper's proposal in Table 1 {footcite}`devries2018leveraging`. **QualityNet**
# {footcite}`huang2016qualitynet` is a CNN like $g$ that sees the image masked by the
# segmentation. **Reverse classification accuracy** (RCA)
# {footcite}`valindria2017rca,robinson2017rca` needs no training on quality at all: it
# asks whether the segmentation, used as training data, would segment *other* images
# well.

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/09_baselines.ipynb)

# %% [markdown]
# **You will learn**
#
# - QualityNet's input $x \odot \hat y$, and how it differs from the No Uncertainty row;
# - how RCA turns a segmentation into a reverse classifier and scores it on references;
# - why RCA, built for registered organ scans, suits skin lesions poorly.

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
from segqual_lite.data import ISIC2017, prepare_data
from segqual_lite.metrics import FAILURE_THRESHOLD, jaccard
from segqual_lite.quality import predicted_quality
from segqual_lite.rca import (
    choose_references,
    pixel_features,
    rca_cached,
    rca_scores,
    reverse_classify,
)
from segqual_lite.segment import segment_split
from segqual_lite.viz import (
    error_overlay,
    fit_width,
    pick_cases,
    say,
    summary_text,
    to_hwc,
)

# %% tags=["parameters"]
profile = "tiny"
# fields of the profile to change, e.g. {"epochs_f": 2, "seeds": [0]}
overrides = {}

# %%
P, device, seed = start_chapter(profile, overrides)
root = prepare_data(P)
test = segment_split(P, "max_prob", seed, root, "test", device)
print(
    f"{len(test.ids)} test segmentations from the plain U-Net,"
    f" {np.mean(test.jaccard < FAILURE_THRESHOLD):.0%} below"
    f" {FAILURE_THRESHOLD}"
)

# %% [markdown]
# ## QualityNet
#
# QualityNet multiplies the image by the mask, $x \odot \hat y$, so the network sees the
# lesion as segmented, on black. It cannot see what the segmentation left out, unlike the
# No Uncertainty row, which receives $(x, \hat y)$ as separate channels. Both use the
# same backbone as $g$ and the same training (chapter 07):

# %%
results = {}
for row in ("qualitynet", "no_uncertainty"):
    # fit_quality, then predict_quality on the test split (ch. 07), cached
    results[row] = predicted_quality(P, row, seed, root, device=device)
    summary = metrics.summarize(test.jaccard, results[row])
    say(f"{row}:", summary_text(summary), indent="    ")

# %% [markdown]
# ## Reverse classification accuracy
#
# RCA treats the predicted mask $\hat y$ of a test image as if it were ground truth and
# trains a *reverse classifier* on that single image. If $\hat y$ is good, the classifier
# has learned what lesion looks like, and it should segment at least one of $K$ reference
# images (with known ground truth) well. The predicted quality is the best Jaccard index
# over the references:
#
# $$
# \hat v_\text{RCA} = \max_{k = 1..K} J\big(r_{\hat y}(x_k), y_k\big),
# $$
#
# where $r_{\hat y}$ is the reverse classifier trained on $(x, \hat y)$. The original
# work registers atlases of organ scans; lesions in dermoscopy have no anatomical
# correspondence, so here the reverse classifier is a random forest on per-pixel colour
# and texture features (local means at two scales and local standard deviation). Masks
# that are empty or fill the image give nothing to learn and score 0. The score is not
# calibrated to the Jaccard scale, and is reported raw, as in the paper.
#
# The $K$ references, fixed once from the training split:

# %%
train = ISIC2017(root, "train", P.image_size)
refs = choose_references(len(train), P.rca_references)
ref_features = pixel_features(train.images[refs])
print(
    f"K = {len(refs)} references; {ref_features.shape[-1]} features per"
    " pixel"
)

# %% [markdown]
# The reverse classifier at work, on a good and a poor segmentation. For each, the test
# image with its predicted mask (the classifier's only training data), then the three
# references it segments best, with their Jaccard index:

# %% mystnb={"image": {"alt": "RCA on a good and a poor test case: the case's segmentation, then the three reference images on which its mask, transferred by the classifier, scores best"}}
# Degenerate masks (empty or full) give the classifier nothing to learn:
# pick among the rest.
usable = np.flatnonzero(
    (test.masks.flatten(1).float().mean(1) > 0).numpy()
    & (test.masks.flatten(1).float().mean(1) < 1).numpy()
)
if len(usable) == 0:
    raise ValueError(
        "every test mask is empty or full: train f longer (epochs_f)"
    )
cases = {
    k: int(usable[v]) for k, v in pick_cases(test.jaccard[usable]).items()
}
features = pixel_features(test.images[[cases["good"], cases["poor"]]])
fig, axes = plt.subplots(2, 4, figsize=fit_width(10, 5))
for r, (label, i) in enumerate(cases.items()):
    predicted = reverse_classify(
        features[r], test.masks[i].numpy(), ref_features, seed=seed
    )
    ref_j = jaccard(predicted, train.masks[refs])
    axes[r, 0].imshow(
        error_overlay(test.images[i], test.masks[i], test.true_masks[i])
    )
    axes[r, 0].set_title(
        f"{label}: true J = {test.jaccard[i]:.2f}\nRCA ="
        f" {ref_j.max():.2f}",
        fontsize=9,
    )
    for c, k in enumerate(np.argsort(ref_j)[::-1][:3]):
        axes[r, c + 1].imshow(
            error_overlay(
                train.images[refs[k]], predicted[k], train.masks[refs[k]]
            )
        )
        axes[r, c + 1].set_title(
            f"reference {k}: J = {ref_j[k]:.2f}", fontsize=9
        )
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# On every test image:

# %% mystnb={"image": {"alt": "Scatter plot of RCA's and QualityNet's predicted quality against the true Jaccard on the test split, with the diagonal and dotted lines at 0.7"}}
# rca_scores with these references, cached
scores = rca_cached(P, seed, root, test)
summary = metrics.summarize(test.jaccard, scores)
say("RCA:", summary_text(summary), indent="    ")
fig, ax = plt.subplots(figsize=(4, 4))
ax.scatter(test.jaccard, scores, s=10, alpha=0.7, label="RCA")
ax.scatter(
    test.jaccard,
    results["qualitynet"],
    s=10,
    alpha=0.7,
    label="QualityNet",
)
ax.plot([0, 1], [0, 1], c="grey", lw=0.8)
ax.axvline(FAILURE_THRESHOLD, ls=":", c="k")
ax.axhline(FAILURE_THRESHOLD, ls=":", c="k")
ax.set(
    xlabel="true Jaccard",
    ylabel="predicted quality",
    xlim=(0, 1.02),
    ylim=(0, 1.02),
)
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# RCA's score only ranks; its values need not sit on the diagonal. On ISIC 2017 the paper
# found RCA barely better than chance, blaming the variety of lesions: no reference need
# resemble the test lesion. The synthetic lesions of the `tiny` profile are far more
# alike (a dark blob on skin), which flatters RCA here; the results chapter compares the
# two settings.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-rca-k
# How does RCA depend on the number of references $K$? Score every third test image
# (a fixed third of the test set, to keep the exercise short) with $K = 3$, and compare
# the AUROC with that of the profile's $K$ on the same images.
# ```
#
# ```{solution-start} ex-rca-k
# :class: dropdown
# ```

# %%
subset = np.arange(0, len(test.ids), 3)  # every third test image
few = choose_references(len(train), 3)
# n_jobs=1: in this process, since a pool's workers would first have to
# import the package; the scores do not depend on n_jobs.
few_scores, _ = rca_scores(
    test.images[subset],
    test.masks[subset],
    train.images[few],
    train.masks[few],
    seed,
    n_jobs=1,
)
true = test.jaccard[subset]
print(
    f"AUROC on {len(subset)} of {len(test.ids)} test images (every third):"
)
print(f"  with K = 3 {metrics.auroc(true, few_scores):.3f}")
print(f"  with K = {len(refs)} {metrics.auroc(true, scores[subset]):.3f}")
say(
    "(one seed and a third of the test images, no interval: a difference"
    " of a few points may be noise)"
)

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-rca-mask
# QualityNet cannot see pixels outside the mask. Find the test image where QualityNet
# and No Uncertainty disagree most, and show its input.
# ```
#
# ```{solution-start} ex-rca-mask
# :class: dropdown
# ```

# %% mystnb={"image": {"alt": "The test image on which QualityNet and No Uncertainty disagree most: the masked image QualityNet sees, and the segmentation with its true Jaccard"}}
i = int(
    np.argmax(np.abs(results["qualitynet"] - results["no_uncertainty"]))
)
fig, axes = plt.subplots(1, 2, figsize=(5, 2.6))
axes[0].imshow(to_hwc(test.images[i]) * test.masks[i].numpy()[..., None])
axes[0].set_title(
    f"x * y_hat: QualityNet {results['qualitynet'][i]:.2f}", fontsize=8
)
axes[1].imshow(
    error_overlay(test.images[i], test.masks[i], test.true_masks[i])
)
axes[1].set_title(
    f"true J {test.jaccard[i]:.2f}, No Unc."
    f" {results['no_uncertainty'][i]:.2f}",
    fontsize=8,
)
for ax in axes:
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - QualityNet is $g$ on $x \odot \hat y$; the No Uncertainty row gives $g$ $(x, \hat y)$.
# - RCA trains a reverse classifier on the segmentation itself and scores it by the best
#   Jaccard it reaches on $K$ references; degenerate masks score 0.
# - RCA's premise, similar-looking references, holds for registered organs, hardly for
#   skin lesions.
#
# ## References
#
# ```{footbibliography}
# ```
