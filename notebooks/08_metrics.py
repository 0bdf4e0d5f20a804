# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Measuring segmentations and quality predictions
#
# Two kinds of numbers run through the book. The **Jaccard index** says how good one
# segmentation is. A quality network $g$ *predicts* that Jaccard index, and five metrics
# say how good those predictions are: RMSE, detection error, AUROC, AUPR-Pass and
# AUPR-Fail, the columns of Table 1 in {footcite}`devries2018leveraging`. This chapter defines
# each with its equation, computes it on a worked example, and pins down the conventions
# that make published numbers comparable, or not.

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/08_metrics.ipynb)

# %% [markdown]
# **You will learn**
#
# - the Jaccard index of a segmentation, and the pass/fail rule $J \ge 0.7$;
# - RMSE, detection error, AUROC and AUPR for a predictor of $J$, each by hand and in code;
# - why AUPR has several conventions, and which one this book reports;
# - which metrics reward calibration and which only ranking.

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
from IPython.display import display
from sklearn.metrics import precision_recall_curve, roc_curve

from segqual_lite import metrics
from segqual_lite.config import start_chapter
from segqual_lite.power import simulate_coverage
from segqual_lite.reference import load_reference
from segqual_lite.stats import compare
from segqual_lite.tables import display_frame
from segqual_lite.viz import error_overlay, fit_width, say, summary_text

# %% tags=["parameters"]
profile = "tiny"
# fields of the profile to change, e.g. {"epochs_f": 2, "seeds": [0]}
overrides = {}

# %%
P, device, seed = start_chapter(profile, overrides)

# %% [markdown]
# ## The Jaccard index
#
# For a predicted mask $\hat y$ and the true mask $y$, seen as sets of lesion pixels,
#
# $$
# J(\hat y, y) = \frac{|\hat y \cap y|}{|\hat y \cup y|},
# $$
#
# from 0 (no overlap) to 1 (identical). Two empty masks agree perfectly, so we set
# $J = 1$ there. ISIC 2017 counts a segmentation with $J < 0.7$ as a **failure**; $J = 0.7$
# passes. `metrics.jaccard` takes a batch of masks and returns one value per image:

# %% mystnb={"image": {"alt": "Three toy segmentations of a round lesion, perfect, shifted and too large, coloured green true positive, red false positive, blue false negative, with their Jaccard"}}
yy, xx = np.mgrid[:48, :48]
true_mask = (xx - 24) ** 2 + (yy - 24) ** 2 < 14**2
shifted = (xx - 29) ** 2 + (yy - 24) ** 2 < 14**2
bloated = (xx - 24) ** 2 + (yy - 24) ** 2 < 19**2
preds = np.stack([true_mask, shifted, bloated])
j = metrics.jaccard(preds, np.stack([true_mask] * 3))
skin = np.full((3, 48, 48), 0.85)
fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
for ax, pred, value, name in zip(
    axes, preds, j, ["perfect", "shifted", "too large"]
):
    ax.imshow(error_overlay(skin, pred, true_mask))
    ax.set_title(f"{name}: J = {value:.2f}", fontsize=9)
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# Green is a true positive, red a false positive, blue a false negative (the colours of
# the paper's Figure 2). A shift of five pixels already costs a third of the score: the
# Jaccard index is strict, which is why 0.7 is a reasonable bar.
#
# ## A worked example
#
# Suppose $g$ predicted $\hat v_t$ for ten test images whose true Jaccard indices are
# $v_t$. Six pass and four fail:

# %%
true_j = np.array(
    [0.93, 0.88, 0.85, 0.81, 0.74, 0.70, 0.66, 0.52, 0.35, 0.10]
)
pred_j = np.array(
    [0.86, 0.90, 0.70, 0.78, 0.62, 0.75, 0.72, 0.58, 0.55, 0.30]
)
passed = true_j >= metrics.FAILURE_THRESHOLD
print("passes:", passed.astype(int))

# %% [markdown]
# ### RMSE
#
# $$
# \mathrm{RMSE} = \sqrt{\frac{1}{n} \sum_{t=1}^{n} (\hat v_t - v_t)^2}
# $$
#
# It measures calibration: are the predicted values close to the true ones? It is the only
# metric of the five that is not about the 0.7 line.

# %%
by_hand = np.sqrt(np.mean((pred_j - true_j) ** 2))
print(
    f"by hand {by_hand:.4f} | metrics.rmse"
    f" {metrics.rmse(true_j, pred_j):.4f}"
)

# %% [markdown]
# ### Detection error
#
# Flag a segmentation as a pass when $\hat v \ge \delta$. The detection error is the
# smallest achievable misclassification rate when passes and failures count equally:
#
# $$
# \mathrm{DE} = \min_\delta \; \tfrac12 P_\text{pass}(\hat v < \delta)
#   + \tfrac12 P_\text{fail}(\hat v \ge \delta)
#   = \min \; \tfrac12 (1 - \mathrm{TPR}) + \tfrac12 \mathrm{FPR}.
# $$
#
# Only thresholds at the predicted values themselves can change the two rates, so the
# thresholds of `sklearn.metrics.roc_curve` are exactly the candidates: the minimum is
# exact, not a sweep over a hand-picked grid.

# %%
fpr, tpr, thresholds = roc_curve(passed, pred_j, drop_intermediate=False)
errors = 0.5 * (1 - tpr) + 0.5 * fpr
best = errors.argmin()
print(
    f"best threshold {thresholds[best]:.2f}: TPR {tpr[best]:.2f}, FPR"
    f" {fpr[best]:.2f}"
)
print(
    f"detection error {errors[best]:.4f} | metrics:"
    f" {metrics.detection_error(true_j, pred_j):.4f}"
)

# %% [markdown]
# ### AUROC
#
# The area under the ROC curve (TPR against FPR, passes positive) is the probability that
# a randomly chosen passing segmentation gets a higher predicted quality than a randomly
# chosen failure, ties counting one half:
#
# $$
# \mathrm{AUROC} = P(\hat v_\text{pass} > \hat v_\text{fail})
#   + \tfrac12 P(\hat v_\text{pass} = \hat v_\text{fail}).
# $$

# %%
wins = [
    1.0 if a > b else 0.5 if a == b else 0.0
    for a in pred_j[passed]
    for b in pred_j[~passed]
]
print(
    f"pairs won {np.mean(wins):.4f} | metrics.auroc"
    f" {metrics.auroc(true_j, pred_j):.4f}"
)

# %% [markdown]
# ### AUPR-Pass and AUPR-Fail
#
# The precision-recall curve depends on which class is positive, so the paper reports
# both: AUPR-Pass (passes positive, scored by $\hat v$) and AUPR-Fail (failures positive,
# scored by $-\hat v$). With few failures, AUPR-Fail is the harder and more telling number.
# This book computes the area as **average precision**, scikit-learn's step-wise sum over
# the thresholds $\delta_k$ from high to low,
#
# $$
# \mathrm{AP} = \sum_k (R_k - R_{k-1}) \, P_k ,
# $$
#
# the convention of the paper's reference code.

# %% mystnb={"image": {"alt": "The toy example's ROC curve and its two precision-recall curves, with passes as the positive class and with failures as the positive class"}}
print(f"AUPR-Pass {metrics.aupr_pass(true_j, pred_j):.4f}")
print(f"AUPR-Fail {metrics.aupr_fail(true_j, pred_j):.4f}")
fig, axes = plt.subplots(1, 3, figsize=fit_width(10, 3))
axes[0].plot(fpr, tpr, marker="o")
axes[0].plot([0, 1], [0, 1], ls=":", c="grey")
axes[0].set(xlabel="FPR", ylabel="TPR", title="ROC (pass positive)")
for ax, labels, score, name in [
    (axes[1], passed, pred_j, "PR, pass positive"),
    (axes[2], ~passed, -pred_j, "PR, fail positive"),
]:
    precision, recall, _ = precision_recall_curve(labels, score)
    ax.step(recall, precision, where="post", marker="o")
    ax.axhline(labels.mean(), ls=":", c="grey")
    ax.set(
        xlabel="recall", ylabel="precision", title=name, ylim=(0, 1.05)
    )
fig.tight_layout()

# %% [markdown]
# The dotted lines show chance: AUROC 0.5, and AUPR equal to the share of the positive
# class. An AUPR-Fail of 0.4 is good when 10% of the images fail and poor when 40% do.
#
# ## Why implementations disagree
#
# "Area under the PR curve" has at least three implementations in the literature, and on
# the same predictions they give different numbers. The trapezoidal rule joins operating
# points with straight lines, although precision does not change linearly between them
# (it can come out higher or lower than average precision, which steps instead); ODIN's
# evaluation code computes precision as if both classes were equally common.
# `metrics.aupr_conventions` computes all three, and the lines below say how far each
# lies from average precision on this example:

# %%
for positive in ("pass", "fail"):
    values = metrics.aupr_conventions(true_j, pred_j, positive=positive)
    say(
        f"{positive}:",
        ", ".join(
            f"{k.replace('_', ' ')} {v:.4f}" for k, v in values.items()
        ),
    )
    ap = values["average_precision"]
    for name, v in values.items():
        if name != "average_precision":
            print(
                f"  {name}: {'higher' if v > ap else 'lower'} than"
                f" average precision by {abs(v - ap):.4f}"
            )

# %% [markdown]
# Differences of a few points are as large as the gaps between rows of Table 1, so
# comparing numbers across papers needs the same convention. This book always reports
# average precision (and pins scikit-learn's version in `requirements.txt`).
#
# ## All five at once
#
# `metrics.summarize` returns the five metrics as fractions; tables print all but RMSE as
# percentages, as the paper does. A metric that needs both classes refuses a test set
# with only one, rather than returning a meaningless number:

# %%
summary = metrics.summarize(true_j, pred_j)
say(summary_text(summary, digits=2))
try:
    metrics.summarize(
        np.array([0.8, 0.9, 0.95]), np.array([0.7, 0.8, 0.9])
    )
except ValueError as err:
    say("ValueError:", err)

# %% [markdown]
# ## Comparing two rows: seeds and test images
#
# Table 1 compares rows: does giving $g$ an uncertainty map beat giving it none? Two
# things make a difference between rows uncertain. The **test images**: another 300
# images would give other numbers. The **training run** (the seed): another run of $f$
# and $g$ gives other networks, and on a small data set this moves the metrics far more
# than the test sample does. A mean $\pm$ std over two or three seeds cannot tell these
# apart, so the book compares rows this way:
#
# 1. **Paired, per seed.** For each seed $s$, both rows are scored on the same test
#    images and their difference is taken: $\Delta_s = m(\text{row}) - m(\text{control})$,
#    signed so that a positive $\Delta_s$ means the row is better (lower RMSE or
#    detection error, higher AUROC).
# 2. **An interval that counts the seeds.** The mean $\bar\Delta = \frac{1}{k}\sum_s
#    \Delta_s$ over $k$ seeds errs for two reasons. The training runs: the $\Delta_s$
#    scatter with standard deviation $\hat\sigma$, and their mean is known to
#    $t_{0.975,\,k-1}\, \hat\sigma/\sqrt{k}$ (the 97.5th percentile of Student's $t$ with
#    $k - 1$ degrees of freedom, since $\hat\sigma$ itself is estimated from only $k$
#    values). The test images: every seed is scored on the *same* images, so their luck
#    is shared by all seeds and does not average away; its variance $\omega^2$ is
#    estimated by resampling the test images (the same resample for every seed and both
#    rows) and recomputing $\bar\Delta$. The two half-widths add in quadrature:
#
#    $$\bar\Delta \pm \sqrt{\left(t_{0.975,\,k-1}\,\frac{\hat\sigma}{\sqrt k}\right)^2 + \left(1.96\,\omega\right)^2}.$$
#
# A difference is called *better* or *worse* only when its interval excludes 0.
#
# ```{admonition} The words of every comparison in this book
# - **Improvement** (also **gain**): $\bar\Delta$, the row's metric minus its
#   control's, signed so that a positive number means the row is better. It is given
#   in the metric's unit.
# - **Percentage points**, the unit of AUROC, AUPR and detection error improvements.
#   These metrics are percentages, and their difference is in percentage points: AUROC
#   85.0% against 82.5% is an improvement of +2.5 percentage points, not of 3%.
# - **A fraction of J**, the unit of RMSE improvements. RMSE is measured on the Jaccard
#   scale from 0 to 1, so +0.010 is one hundredth of that scale.
# - **Resolved**: the 95% interval excludes 0. The outcome is then *better* (all above
#   0) or *worse* (all below). Otherwise the comparison is **unresolved**: these seeds
#   and test images cannot tell the two rows apart, which is not evidence that the rows
#   are equal.
# - **Better on**: the share of seeds on which $\Delta_s > 0$, with its own interval.
#
# Chapter 10 builds its verdicts on these words; each is defined where it is first
# used, and all of them are in the [glossary](../book/glossary.md).
# ```
#
# Here on simulated predictions for three seeds, scored on the same 300 test images, where the
# row's predictions are less noisy than the control's by an amount that changes from
# seed to seed:

# %%
rng = np.random.default_rng(0)
ids = [f"ISIC_{i:07d}" for i in range(300)]
parts = []
true = rng.uniform(0.3, 1.0, 300)  # the same test images for every seed
# the row's noise is lower by `gain`
for s, gain in enumerate((0.01, 0.04, 0.07)):
    noise = rng.standard_normal(300)
    for method, scale in (
        ("no_uncertainty", 0.15),
        ("max_prob", 0.15 - gain),
    ):
        predicted = true + scale * noise
        parts.append(
            pd.DataFrame(
                {
                    "method": method,
                    "seed": s,
                    "image_id": ids,
                    "true_jaccard": true,
                    "predicted_jaccard": predicted,
                }
            )
        )
simulated = pd.concat(parts, ignore_index=True)
both_levels = compare(simulated, "max_prob", "no_uncertainty", "rmse")
say(both_levels.verdict(), indent="    ")

# %% [markdown]
# Resampling only the test images (one seed at a time) gives intervals for each seed
# that are much narrower than the spread of the seeds themselves, which is why a verdict
# from them flips when seeds are added:

# %%
for s in range(3):
    one_seed = simulated[simulated["seed"] == s]
    c = compare(one_seed, "max_prob", "no_uncertainty", "rmse")
    print(
        f"seed {s}: improvement {c.estimate:+.3f}, test images only"
        f" [{c.low:+.3f}, {c.high:+.3f}]"
    )
print(
    f"all seeds: [{both_levels.low:+.3f}, {both_levels.high:+.3f}]"
    f" ({both_levels.unit})"
)

# %% [markdown]
# Beside the mean, the verdict gives the share of seeds on which the row beats its
# control, with a 95% Wilson interval: the chance that the row wins one more paired
# training run {footcite}`bouthillier2021accounting`. With three seeds that interval is
# wide whatever happens.
#
# ## Does an interval keep its promise? Check it by simulation
#
# A 95% interval should miss the truth 5% of the time. Whether it does can be checked
# without any training: simulate many runs of $k$ seeds in which the row is **no better
# at all**, draw per-seed differences with the spreads measured on this book's data
# (from one training run to the next, and from the test images), and count how often
# each interval claims an effect, that is, excludes 0. Two intervals are compared: the
# one above, and the **percentile bootstrap** over seeds and test images that earlier
# editions of this book used (draw $k$ seeds with replacement, add each one's image
# noise, take the 2.5th and 97.5th percentiles of the mean). The spreads come from the
# book's reference run (chapter 10) when it is there, Max Probability against No
# Uncertainty on AUROC:

# %%
reference = load_reference(P)
if reference is not None:
    measured = compare(
        reference.predictions,
        "max_prob",
        "no_uncertainty",
        "auroc",
        n_boot=300,
    )
    seed_sd, image_sd, n_ref = (
        measured.seed_sd,
        measured.image_sd,
        len(reference.seeds),
    )
    source = f"the reference run, {n_ref} seeds"
else:  # no reference: the spreads the analysis plan started from
    seed_sd, image_sd, n_ref = 2.3, 0.46, 20
    source = "the analysis plan's figures"
say(
    f"per-seed sd {seed_sd:.2f}, test-image sd {image_sd:.2f} AUROC"
    f" points ({source})"
)
shares = {
    k: simulate_coverage(k, seed_sd, image_sd, n_sim=2000)
    for k in (3, n_ref)
}
claims = pd.DataFrame(
    {
        "interval": [
            "t interval, widened for the images",
            "percentile bootstrap",
        ],
        **{
            f"{k} seeds": [
                f"{1 - share[name]:.1%}" for name in ("t", "bootstrap")
            ]
            for k, share in shares.items()
        },
    }
)
say(
    "share of 2000 simulated comparisons with no effect that claim"
    " one (should be 5%; the interval's coverage is 100% minus it):",
)
display(display_frame(claims))

# %% [markdown]
# The bootstrap over three seeds excludes 0 roughly whenever all three differences
# share a sign, which with no effect happens for one comparison in four (one in eight
# in each direction) before the image noise is even counted: resampling three numbers
# cannot show how far a fourth might fall. Where it over-claims at many seeds too, the
# cause is the test images: it lets their luck average away over the seeds, although
# every seed is scored on the same images. The $t$ quantile for 2 degrees of freedom (4.30 instead of 1.96)
# is what pays for that. `power.simulate_coverage` runs this check, and the test suite
# runs it at 3 seeds and at the reference's number.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-metrics-constant
# A lazy predictor outputs the same $\hat v$ for every image. Which of the five metrics
# can it do well on? Compute them for a constant 0.75 on the worked example.
# ```
#
# ```{solution-start} ex-metrics-constant
# :class: dropdown
# ```

# %%
constant = metrics.summarize(true_j, np.full_like(true_j, 0.75))
say(summary_text(constant, digits=2))
# It cannot rank, so AUROC = 0.5 and detection error = 0.5; the AUPRs
# equal the class shares. Only RMSE can be fair, when the constant is close
# to the mean true Jaccard.

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-metrics-monotone
# Apply a strictly increasing transform to the predictions, for instance
# $\hat v \mapsto \hat v^3$. Which metrics change, and why?
# ```
#
# ```{solution-start} ex-metrics-monotone
# :class: dropdown
# ```

# %%
cubed = metrics.summarize(true_j, pred_j**3)
display(pd.DataFrame({"pred_j": summary, "pred_j ** 3": cubed}).round(4))
# Detection error, AUROC and both AUPRs depend only on the ranking of the
# predictions, so they are unchanged; RMSE measures the values themselves
# and gets worse.

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - $J = |\hat y \cap y| / |\hat y \cup y|$; a segmentation fails when $J < 0.7$.
# - RMSE judges the predicted values; detection error, AUROC and AUPR judge only how well
#   they separate passes from failures.
# - AUPR is average precision here; other conventions give different numbers.
# - Two rows are compared per seed on the same test images, with a 95% interval that
#   counts the seeds (Student's $t$) and the shared test images; a simulation with no
#   effect checks that it claims one about 5% of the time.
#
# ## References
#
# ```{footbibliography}
# ```
