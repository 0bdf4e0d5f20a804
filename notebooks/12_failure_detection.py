# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Failure detection as the field measures it now
#
# The paper {footcite}`devries2018leveraging` trains a network $g$ to predict each
# segmentation's Jaccard index and judges it by RMSE, detection error and AUROC, a
# segmentation *failing* when its Jaccard index is below 0.7. Work since then asks four
# more questions, and this chapter answers each on the same run as
# Table 1 (same seeds, same U-Nets, same test images):
#
# 1. Does a *fixed rule* on the uncertainty map, with no $g$, do as well? A 2025
#    benchmark of segmentation failure detection {footcite}`zenk2025comparative` found
#    that the pairwise agreement of a deep ensemble's masks, a rule with no training,
#    gave the best AURC on all five of its data sets; ValUES {footcite}`kahl2024values`
#    showed that *how* a map is aggregated into one number matters as much as which map.
# 2. Which metric should rank the estimators? AUGRC {footcite}`traub2024augrc` fixes
#    known flaws of AURC.
# 3. Can $g$'s prediction come with a guarantee? Split conformal prediction
#    {footcite}`vovk2005algorithmic,angelopoulos2021gentle` turns it into an interval with
#    a stated coverage {footcite}`wundram2024conformal`.
# 4. What happens on images unlike the training ones {footcite}`hendrycks2019corruptions`?

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/12_failure_detection.ipynb)

# %% [markdown]
# **You will learn**
#
# - three aggregations of an uncertainty map into an image score, the agreement of
#   several masks, and the split of predictive entropy into expected entropy and mutual
#   information;
# - AURC's flaw, AUGRC and the normalised AURC;
# - split conformal intervals for a predicted Jaccard, and an acceptance policy built
#   on them;
# - how the quality estimators hold up when the test images are blurred, noisy, faded
#   or compressed.

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
from segqual_lite.conformal import (
    calibrate,
    conformal_intervals,
    coverage,
    coverage_band,
    min_calibration,
)
from segqual_lite.data import CORRUPTION_LEVELS, lesion_name, prepare_data
from segqual_lite.deployment import (
    CONFORMAL_ALPHA,
    SHIFT_ROWS,
    SHIFT_SEVERITIES,
    conformal_summary,
)
from segqual_lite.experiment import run_grid
from segqual_lite.metrics import (
    FAILURE_THRESHOLD,
    augrc,
    aurc,
    generalized_risk_coverage,
    selective_risk_coverage,
)
from segqual_lite.quality import predicted_quality
from segqual_lite.rows import SCORE_ROWS, get_row, label
from segqual_lite.scores import (
    band_width,
    boundary_band,
    boundary_excluded_mean,
    quality_from_uncertainty,
)
from segqual_lite.segment import segment_split
from segqual_lite.stats import compare
from segqual_lite.tables import (
    display_frame,
    display_table,
    per_seed_arrays,
    signed,
)
from segqual_lite.viz import (
    PAGE_WIDTH,
    UNCERTAINTY_COLOURS,
    plot_row_metric,
    plot_shift,
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
# ## One number per image, without $g$
#
# An uncertainty map $u$ of an image with $P$ pixels becomes a score by averaging it
# over a region $R$: over the whole image, over the predicted lesion
# $\hat Y = \{p : \hat y_p = 1\}$, or everywhere except a band $B_w$ of $w$ pixels on
# both sides of the predicted border (every mask, good or bad, is unsure along its
# edge, and that rim says little about whether the mask is right):
#
# $$s_{\text{image}} = \frac{1}{P}\sum_{p} u_p, \qquad
# s_{\text{lesion}} = \frac{1}{|\hat Y|}\sum_{p \in \hat Y} u_p, \qquad
# s_{\text{no border}} = \frac{1}{P - |B_w|}\sum_{p \notin B_w} u_p .$$
#
# A method that averages $K$ softmaxes (MC-dropout's $T$ samples, an ensemble's members,
# TTA's eight views) has $K$ masks too; how much they **agree** is a score of its own,
# the mean Jaccard over all pairs {footcite}`zenk2025comparative`:
#
# $$a = \binom{K}{2}^{-1} \sum_{k < l} J(\hat y^{(k)}, \hat y^{(l)}) .$$
#
# MC-dropout's entropy map (eq. 6 of the paper) also splits in two
# {footcite}`houlsby2011bald,kahl2024values`: the **expected entropy** of the single
# samples, $\frac{1}{T}\sum_t H(p_t)$ (what every sample is unsure about: ambiguity in
# the image), and the **mutual information**, the rest,
# $H\big(\frac{1}{T}\sum_t p_t\big) - \frac{1}{T}\sum_t H(p_t) \ge 0$ (where the
# samples disagree: the model's own doubt).
#
# Here are the maps behind these scores for the test image of the first seed whose
# MC-dropout samples agree least (outlines: yellow predicted, cyan true):

# %% mystnb={"image": {"alt": "One test image with its predicted and true outlines, MC-dropout's entropy map, the border band that the no-border mean leaves out, and the entropy map split into expected entropy and mutual information"}}
mc = segment_split(P, "mc_dropout", seed, root, "test", device)
i = int(np.argmin(mc.extras["agreement"].numpy()))
w = band_width(P.image_size)
band = boundary_band(mc.masks[i : i + 1], w)[0]
panels = {
    f"image, J = {mc.jaccard[i]:.2f}": to_hwc(mc.images[i]),
    "entropy (eq. 6)": mc.maps[i],
    f"border band, w = {w} px": band,
    "expected entropy": mc.extras["expected_entropy"][i],
    "mutual information": mc.extras["mutual_information"][i],
}
fig, axes = plt.subplots(1, len(panels), figsize=(PAGE_WIDTH, 1.9))
# entropy, expected entropy, MI: one colour scale
largest = float(mc.maps[i].max())
for ax, (name, picture) in zip(axes, panels.items(), strict=True):
    if picture.ndim == 3:
        ax.imshow(picture)
        ax.contour(
            mc.masks[i], levels=[0.5], colors="yellow", linewidths=0.8
        )
        ax.contour(
            mc.true_masks[i], levels=[0.5], colors="cyan", linewidths=0.8
        )
    else:
        # the three entropy maps: one scale; the band is a mask
        is_band = name == f"border band, w = {w} px"
        shown = ax.imshow(
            picture,
            cmap="gray" if is_band else UNCERTAINTY_COLOURS,
            vmin=0,
            vmax=1 if is_band else largest,
        )
        if not is_band:
            entropy_image = shown
    ax.set_title(name, fontsize=8)
    ax.axis("off")
fig.tight_layout()
_ = fig.colorbar(
    entropy_image,
    ax=axes,
    location="bottom",
    shrink=0.5,
    label="nats (purple: unsure)",
)
agree = mc.extras["agreement"][i]
say(
    f"Test image {lesion_name(mc.ids[i], P.data == 'synthetic')}: its"
    f" {P.mc_samples} MC-dropout masks agree"
    f" with a mean pairwise Jaccard of {agree:.2f}; the mutual"
    " information holds"
    f" {mc.extras['mutual_information'][i].sum() / mc.maps[i].sum():.0%}"
    " of its entropy."
)

# %% [markdown]
# Masks can disagree while their probabilities barely do. Where every sample puts the
# lesion probability near 0.5, a small wobble of $p$ flips a pixel's mask from one
# side of 0.5 to the other, so the masks' pairwise Jaccard drops. Yet each sample's own
# entropy stays near its maximum, and the mutual information, the entropy *added* by
# their disagreement about $p$, stays small. A low mask agreement with a small mutual
# information is that situation. Chapter 04 measures the same share on its most
# uncertain image.
#
# ## Which metric ranks the estimators
#
# Chapter 11's AURC averages the *selective risk* over every coverage: the mean loss of
# the accepted cases, there $1 - J$. With the loss of AUGRC instead, a failure (1) or
# not (0), the selective risk is the failure share among the accepted cases, and its
# area the *AURC of failures* (the blue curve below; the tables keep chapter 11's AURC
# of $1 - J$). Its first points rest on one or two cases: a single failure accepted
# first counts in every one of them, so AURC weights the most confident cases
# far more than a deployment does {footcite}`traub2024augrc`. The **generalized risk**
# instead divides the failures accepted by *all* $N$ cases, so that each case counts
# once, and AUGRC is the area under it:
#
# $$\text{AUGRC} = \int_0^1 \frac{\#\{\text{accepted failures at coverage } c\}}{N}\,dc .$$
#
# It reads as the average risk of an *undetected* failure. With a failure rate $r$ it
# is $r^2/2$ for a perfect ranking (every failure accepted last) and $r/2$ for a
# random one; it is 0 only when there are no failures. Since both depend on $r$, the **normalised AURC**
# {footcite}`cattelan2024fix` rescales the AURC of failures between the optimal
# ranking of the same cases (0) and a random one (1); the *excess* AURC
# {footcite}`geifman2019bias` is its numerator. Both curves for Max Probability's $g$,
# first seed:

# %% mystnb={"image": {"alt": "Two curves against coverage for the Max Probability row: the selective risk, which jumps at low coverage, and the generalized risk, which grows smoothly from zero"}}
result = run_grid(P, data_root=root, device=device, beyond=True)
predictions, table = result.predictions, result.beyond
true, pred = per_seed_arrays(predictions)["max_prob"][seed]
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot(
    *selective_risk_coverage(true, pred, FAILURE_THRESHOLD),
    label="selective risk: failures / accepted",
)
ax.plot(
    *generalized_risk_coverage(true, pred),
    label="generalized risk: failures / all N",
)
ax.set(xlabel="coverage", ylabel="risk", xlim=(0, 1))
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()
say(
    f"Max Probability, seed {seed}: AURC of failures"
    f" {aurc(true, pred, FAILURE_THRESHOLD):.4f}, AUGRC"
    f" {augrc(true, pred):.4f}, with"
    f" {np.mean(true < FAILURE_THRESHOLD):.0%} of the test images"
    " failing."
)

# %% [markdown]
# ## Every estimator on one scale
#
# `run_grid(..., beyond=True)` adds the training-free rows to `beyond.csv`: each
# aggregation of each map, and the agreements. A score only orders the images; for an
# RMSE it is mapped to a Jaccard by an isotonic (monotone) regression fitted on the
# training split's segmentations, the data $g$ learns from, and the ranking metrics see
# the score's own order. The rows with $g$ are the paper's Table 1 and chapter 11's.
# Sorted by AUGRC, one line per row, the bar spanning ± one standard deviation over
# seeds:

# %% mystnb={"image": {"alt": "Dot plot of AUGRC per quality estimator, best first, coloured by whether it is a quality network g or a training-free score"}}
g_rows = [m for m in dict.fromkeys(table["method"]) if get_row(m).inputs]
augrc_of = table[table["metric"] == "augrc"].set_index("method")["mean"]
free_rows = [m for m in SCORE_ROWS if m in set(table["method"])]
groups = {m: "g" for m in g_rows} | {
    m: "training-free" for m in free_rows
}
fig = plot_row_metric(table, [*g_rows, *free_rows], "augrc", groups)

# %% [markdown]
# The deep ensemble is one predictor made of every seed's U-Net (chapter 11), so its
# masks and its agreement score are the same in every seed: its training-free row has
# no spread over seeds, which says nothing about how a newly trained ensemble would do.
#
# The same rows with every metric (AURC of $1 - J$ as in chapter 11; AUGRC and NAURC of
# failures), in two tables, each sorted by AUGRC, best first: the quality networks $g$,
# then the training-free scores.

# %%
keep = ["rmse", "auroc", "aurc", "augrc", "naurc"]
for rows in (g_rows, free_rows):
    order = augrc_of[rows].sort_values().index
    part = table[table["method"].isin(rows) & table["metric"].isin(keep)]
    part = part.set_index("method").loc[order].reset_index()
    display(display_table(part))
say(
    f"data: {data_name(P)}, mean ± sd over this build's"
    f" {len(P.seeds)} seeds"
)

# %% [markdown]
# ## Which estimator ranks best, and by how much
#
# AUGRC depends on the masks as well as on the ranking: a row whose U-Net fails less
# scores lower even with the same ranking skill. So the comparisons below are made on
# the *same masks*, paired per seed on the same test images, with chapter 08's
# interval (improvement = the control's AUGRC minus the row's, a fraction of the test
# images; positive means the row is better). These rows are not in the book's reference
# run (its [analysis plan](../book/analysis_plan.md) fixes these pairs and says why), so
# they rest on this build's few seeds and decide little. The pairs are fixed in advance,
# not picked by their AUGRC on this test split (that would tune on it): the benchmark's
# question, each agreement against the $g$ that reads the same method's map and masks;
# ValUES's question, each aggregation of the Max Probability map against its image
# mean; and whether $g$ beats the plainest rule on its own map:

# %%
best = augrc_of[g_rows + free_rows].idxmin()
say(
    f"Lowest mean AUGRC over seeds: {label(best)} ({augrc_of[best]:.4f});"
    f" highest: {label(augrc_of[g_rows + free_rows].idxmax())}"
    f" ({augrc_of[g_rows + free_rows].max():.4f})."
)
pairs = [
    *((f"{m}_agreement", m) for m in ("mc_dropout", "ensemble", "tta")),
    ("max_prob_foreground_mean", "max_prob_image_mean"),
    ("max_prob_boundary_mean", "max_prob_image_mean"),
    ("max_prob", "max_prob_image_mean"),
]
comparisons = [
    compare(predictions, row, control, "augrc") for row, control in pairs
]
display(display_frame(comparisons_frame(comparisons)))
say(
    f"data: {data_name(P)}, paired over this build's {len(P.seeds)} seeds"
)
with_best = [c for c in comparisons if best in (c.row, c.control)]
say(
    f"The lowest-AUGRC row, {label(best)}, is compared on its own masks"
    " above."
    if with_best
    else (
        f"The lowest-AUGRC row, {label(best)}, is in none of these pairs."
    )
)

# %% [markdown]
# Which of these a reader can trust is what the interval says, not the sign of the
# mean. The benchmark's finding {footcite}`zenk2025comparative` (ensemble agreement
# best everywhere) came from large 3D data sets and fully trained networks; on this
# small run the summary is:

# %%
better = [c for c in comparisons if c.outcome == "better"]
worse = [c for c in comparisons if c.outcome == "worse"]
say(
    f"Of {len(comparisons)} comparisons on the same masks, {len(better)}"
    f" resolve the row as better and {len(worse)} as worse; the other"
    f" {len(comparisons) - len(better) - len(worse)} are not resolved at"
    f" {len(P.seeds)} seeds and {len(true)} test images."
    + "".join(
        f" Better: {label(c.row)} over {label(c.control)}."
        for c in better
    )
    + "".join(
        f" Worse: {label(c.row)} than {label(c.control)}." for c in worse
    )
)

# %% [markdown]
# ## A predicted Jaccard with a guarantee
#
# Say $g$ predicts 0.82 for an image; how far off can that be? **Split conformal prediction** answers with
# no assumption on $g$, only that the calibration and test cases are exchangeable. On
# $n$ held-out cases with residuals $s_i = |J_i - \hat J_i|$, take
#
# $$\hat q = s_{(\lceil (n+1)(1-\alpha) \rceil)}, \text{ the } \lceil (n+1)(1-\alpha)
# \rceil\text{-th smallest score},$$
#
# give each new case the interval
#
# $$C(x) = [\hat J - \hat q,\ \hat J + \hat q],$$
#
# and then $P(J \in C(x)) \ge 1 - \alpha$ over the draw of the calibration and test
# cases. With an uncertainty score $\sigma$ per case, the **normalised** residuals
# $s_i = |J_i - \hat J_i| / \sigma_i$ give intervals $\hat J \pm \hat q\,\sigma$, wide where
# the image is uncertain, narrow where it is not {footcite}`angelopoulos2021gentle`;
# here $\sigma$ is the image mean of the map of the method whose masks the row judges.
#
# The calibration cases are the **validation split**: neither $f$ nor $g$ trained on
# it, so $g$'s residuals there behave like its residuals on test images. $g$'s own
# training images would not do: $f$ segments them better than new ones, and $g$ fits
# them, so their residuals are too small and the interval would under-cover. The cost
# is that these images are not used to train $g$, and that a small split makes $\hat q$
# itself noisy. A policy follows {footcite}`wundram2024conformal`: **accept a
# segmentation automatically when the lower end of its interval is at least 0.7**.
# Each row at $1 - \alpha = 90\%$, mean ± std over seeds (coverage, width, the share
# accepted and the share of failures among the accepted, all on the test split):

# %%
if not (
    result.out / "conformal.csv"
).exists():  # too few validation images to calibrate on
    raise ValueError(
        f"no conformal intervals: {1 - CONFORMAL_ALPHA:.0%} coverage"
        f" needs at least {min_calibration(CONFORMAL_ALPHA)} validation"
        " images; make a larger val split"
    )
conformal = pd.read_csv(result.out / "conformal.csv")
display(
    Markdown(
        f"Conformal intervals ({P.name} profile; calibrated on"
        f" {conformal['n_calibration'].iloc[0]} validation images, judged"
        f" on {len(true)} test images; coverage and accepted in % of the"
        " test images, width in points of J, failures in % of the"
        " accepted images, – where none was accepted)"
    ),
    conformal_summary(conformal)
    .style.hide(axis="index")
    .set_table_attributes('class="dataframe"'),
)

# %% [markdown]
# Is the coverage what the theory promises? With $n$ calibration cases the coverage of
# one calibration, over test cases, follows a Beta distribution
# {footcite}`angelopoulos2021gentle` with mean $\lceil (n+1)(1-\alpha) \rceil / (n+1)$;
# a test split of $N$ images adds binomial noise. Against that band:

# %%
expected, low, high = coverage_band(
    int(conformal["n_calibration"].iloc[0]), len(true), CONFORMAL_ALPHA
)
inside = conformal["coverage"].between(low, high)
say(
    f"Expected coverage {expected:.1%}; 95% of single runs fall in"
    f" [{low:.1%}, {high:.1%}]. On this run {inside.sum()} of"
    f" {len(conformal)} (row, seed, form) coverages fall inside, from"
    f" {conformal['coverage'].min():.1%} to"
    f" {conformal['coverage'].max():.1%}."
)
policy = conformal.groupby(["row", "form"])[
    ["automation_rate", "accepted_failures"]
].mean()
most = policy["automation_rate"].idxmax()
say(
    f"The policy automates most with {label(most[0])} ({most[1]}"
    f" residuals): {policy.loc[most, 'automation_rate']:.0%} of the test"
    f" images accepted, {policy.loc[most, 'accepted_failures']:.1%} of"
    " them failures (means over seeds)."
    if policy.loc[most, "automation_rate"] > 0
    else (
        "The policy accepts no test image on this run: every interval"
        " reaches below 0.7."
    )
)

# %% [markdown]
# Coverage is a promise about the interval, not about the policy: it bounds the failures
# accepted among *all* images by $\alpha$, but among the accepted ones their share can be
# larger, and it depends on how narrow the intervals are where $g$ predicts high.
#
# ## When the images change
#
# A quality estimator is deployed on images from other scanners, other clinics, other
# compression settings. The shift test degrades the test images four ways at
# ImageNet-C's severities 2 and 4 {footcite}`hendrycks2019corruptions` (levels in the
# table below; severity 0 is the clean test split), reruns $f$ and the estimators on
# them, and retrains nothing. The figure shows the mean over seeds, the band ± one
# standard deviation over seeds. It covers
# the rows whose maps cost one pass of $f$ (MC-dropout's 20 passes per setting would
# dominate the book's time):

# %%
# ImageNet-C's blur sigma is in pixels at 224 px: scaled to this profile
scale = {"blur": P.image_size / 224}
levels = {
    k: [
        f"{values[s - 1] * scale.get(k, 1):.2g}" for s in SHIFT_SEVERITIES
    ]
    for k, values in CORRUPTION_LEVELS.items()
}
units = {
    "blur": f"blur: sigma, px at {P.image_size} px",
    "noise": "noise: std",
    "contrast": "contrast: factor kept",
    "jpeg": "jpeg: quality",
}
table_of_levels = pd.DataFrame(levels, index=list(SHIFT_SEVERITIES)).T
table_of_levels.columns.name = "severity"
display(display_frame(table_of_levels.rename(index=units), index=True))
shift = pd.read_csv(result.out / "shift.csv")
say("rows:", "; ".join(label(r) for r in SHIFT_ROWS))
say(f"data: {data_name(P)}, the test split shifted")

# %% mystnb={"image": {"alt": "Shift test: for blur, noise, contrast loss and JPEG compression, f's mean Jaccard falls with severity (top) and each estimator's AUROC changes (bottom)"}}
fig = plot_shift(shift, "auroc")

# %% [markdown]
# Per corruption at the strongest severity, the change from the clean test images
# (mean over seeds) and which estimator ranks best there by AUROC:

# %%
severest = max(shift["severity"])
clean = (
    shift[shift["severity"] == 0]
    .groupby("row")[["mean_jaccard", "auroc", "augrc"]]
    .mean()
)
ranking_clean = (
    clean["auroc"].idxmax() if clean["auroc"].notna().any() else None
)
say(
    "On the clean test images the best AUROC is"
    f" {label(ranking_clean)}'s."
    if ranking_clean
    else (
        "AUROC is undefined on the clean test images: no seed has both"
        " passes and failures."
    )
)
for kind in dict.fromkeys(shift["corruption"]):
    if kind == "none":
        continue
    part = shift[
        (shift["corruption"] == kind) & (shift["severity"] == severest)
    ]
    by_row = part.groupby("row")[
        ["mean_jaccard", "auroc", "augrc"]
    ].mean()
    leader = (
        by_row["auroc"].idxmax()
        if by_row["auroc"].notna().any()
        else None
    )
    change = by_row - clean
    moves = ", ".join(
        f"{label(r)} {signed(change.loc[r, 'auroc'])}" for r in SHIFT_ROWS
    )
    # one row per U-Net's masks
    masks = {get_row(r).method: r for r in SHIFT_ROWS}
    drop = ", ".join(
        f"{label(m)}'s {signed(change.loc[r, 'mean_jaccard'], '{:+.3f}')}"
        for m, r in masks.items()
    )
    say(
        f"{kind}, severity {severest}: mean J of the masks {drop}; AUROC "
        f"change (points) {moves}; "
        + (
            "AUROC undefined (no seed has both passes and failures)."
            if leader is None
            else f"best: {label(leader)}"
            + (
                " (as on clean images)."
                if leader == ranking_clean
                else " (the ranking moved)."
            )
        )
    )

# %% [markdown]
# Two effects mix here. A corruption that makes $f$ fail more often leaves more
# failures to find (AUGRC rises with the failure rate even for a perfect ranking, which
# is why the figure shows AUROC); and it moves the inputs of $g$ away from anything it
# was trained on, while a fixed rule on the map has nothing to overfit. With 3 seeds
# the bands are wide: treat a crossing of two lines as a question for a larger run
# (the `colab` and `paper` profiles), not an answer.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-failure-band
# The border band's width $w$ was fixed in advance at 1/32 of the image side. For
# Max Probability's map on the first seed, compute the AUGRC of the no-border mean for
# $w = 0, 1, 2, 4, 8$ pixels (with $w = 0$ it is the image mean). Does this run have a
# best width, and would choosing it on the test split be fair?
# ```
#
# ```{solution-start} ex-failure-band
# :class: dropdown
# ```

# %%
plain = segment_split(P, "max_prob", seed, root, "test", device)
lines = []
for width in (0, 1, 2, 4, 8):
    score = quality_from_uncertainty(
        boundary_excluded_mean(plain.maps, plain.masks, width)
    )
    lines.append(
        f"w = {width} px: AUGRC {augrc(plain.jaccard, score):.4f}"
    )
print("\n".join(lines))

# %% [markdown]
# Choosing $w$ by these numbers would tune on the test split: pick it on the
# validation split, or fix it in advance, as the rows do.

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-failure-alpha
# Calibrate Max Probability's $g$ on the validation split at 80%, 90% and 95% nominal
# coverage. How do the empirical coverage on the test split and the mean width move?
# ```
#
# ```{solution-start} ex-failure-alpha
# :class: dropdown
# ```

# %%
val, test = (
    segment_split(P, "max_prob", seed, root, s, device)
    for s in ("val", "test")
)
pred_val, pred_test = (
    predicted_quality(P, "max_prob", seed, root, s, device=device)
    for s in ("val", "test")
)
for alpha in (0.2, 0.1, 0.05):
    if len(val.ids) < np.ceil((1 - alpha) / alpha):
        print(
            f"{1 - alpha:.0%}: too few validation images ({len(val.ids)})"
        )
        continue
    lower, upper = conformal_intervals(
        calibrate(val.jaccard, pred_val, alpha), pred_test
    )
    print(
        f"nominal {1 - alpha:.0%}: coverage"
        f" {coverage(test.jaccard, lower, upper):.1%}, mean width"
        f" {100 * np.mean(upper - lower):.1f} points of J"
    )

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - An uncertainty map becomes an image score by an aggregation (image, lesion, no
#   border) or, for methods with several masks, by their agreement; MC-dropout's entropy
#   splits into expected entropy and mutual information. None of these needs training;
#   a monotone fit on the training split gives them a Jaccard scale.
# - AUGRC counts each case once and reads as the risk of an undetected failure; NAURC
#   puts AURC between the optimal (0) and a random ranking (1).
# - Split conformal intervals, calibrated on images neither network saw, give $g$'s
#   prediction a coverage guarantee and an acceptance policy with a measurable
#   automation rate and share of accepted failures.
# - Under blur, noise, contrast loss and compression $f$ fails more and the estimators'
#   rankings can move; the shift test shows by how much on this run.
# - Every verdict above is printed from the run: the comparisons of estimators with
#   paired intervals over seeds and test images, the conformal and shift numbers with
#   their spread over seeds.
#
# ## References
#
# ```{footbibliography}
# ```
