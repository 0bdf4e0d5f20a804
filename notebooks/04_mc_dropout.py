# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MC-dropout
#
# Dropout, kept on at test time, turns one network into a family of networks. Gal and
# Ghahramani {footcite}`gal2016dropout` showed that averaging their predictions
# approximates a Bayesian neural network, so their disagreement is meant to measure
# *epistemic* uncertainty, the model's own ignorance. This is the second map of
# {footcite}`devries2018leveraging` (eqs. 5 and 6); whether this chapter's network
# shows much disagreement is measured below.

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/04_mc_dropout.ipynb)

# %% [markdown]
# **You will learn**
#
# - Monte-Carlo integration over dropout masks (eq. 5) and the entropy map (eq. 6);
# - how the map changes with the number of samples $T$;
# - the BatchNorm trap: why `model.train()` is the wrong way to switch dropout on;
# - how `predict` saves work by computing the deterministic prefix once.

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
import copy
import math

import matplotlib.pyplot as plt
import torch

from segqual_lite.config import seed_everything, start_chapter
from segqual_lite.data import ISIC2017, prepare_data
from segqual_lite.metrics import jaccard
from segqual_lite.segment import segment_split
from segqual_lite.training import fit_segmentation
from segqual_lite.uncertainty import (
    entropy,
    eval_with_dropout,
    mc_dropout_mean_softmax,
    predict_images,
)
from segqual_lite.viz import (
    PAGE_WIDTH,
    UNCERTAINTY_COLOURS,
    fit_width,
    pick_cases,
    plot_uncertainty_vs_error,
    say,
    show_source,
    show_uncertainty_maps,
)

# %% tags=["parameters"]
profile = "tiny"
# fields of the profile to change, e.g. {"epochs_f": 2, "seeds": [0]}
overrides = {}

# %%
P, device, seed = start_chapter(profile, overrides)

# %% [markdown]
# ## Equations 5 and 6
#
# Draw $T$ dropout masks, run the network once per mask to get logits $\rho_t$, and
# average the softmax outputs:
#
# $$
# p = \frac{1}{T} \sum_{t=1}^{T} \mathrm{Softmax}(\rho_t). \tag{5}
# $$
#
# The mask is $\arg\max_c p_c$ and the uncertainty is the entropy of the mean,
#
# $$
# z = -\sum_{c=1}^{C} p_c \log p_c , \tag{6}
# $$
#
# with $0 \log 0 = 0$, so $z \in [0, \log 2]$ for two classes. The entropy is high both
# when every sample hesitates and when confident samples disagree. The paper uses
# $T = 20$; the profile sets it (`P.mc_samples`), and the output below says which $T$
# this page was computed with.
#
# The network is the same plain U-Net as in chapters 02-03; only inference changes.

# %% [markdown]
# In the package, eq. (5) is {py:func}`~segqual_lite.uncertainty.mc_dropout_mean_softmax`
# (the layers before the first dropout run once for all $T$ samples, see below) and
# eq. (6) is {py:func}`~segqual_lite.uncertainty.entropy`:

# %%
show_source(mc_dropout_mean_softmax, entropy)

# %%
root = prepare_data(P)
f = fit_segmentation(P, "mc_dropout", seed, root, device)
test = ISIC2017(root, "test", P.image_size)
# segment_split runs predict_images(f.model, test.images, "mc_dropout",
# samples=P.mc_samples) with a seeded generator, and caches the masks and
# maps for chapters 07-11.
mc = segment_split(P, "mc_dropout", seed, root, "test", device)
test_j = mc.jaccard
print(
    f"T = {P.mc_samples}: mean Jaccard {test_j.mean():.3f}, entropy in"
    f" [{mc.maps.min():.3f}, {mc.maps.max():.3f}] (log 2 ="
    f" {math.log(2):.3f})"
)

# %% mystnb={"image": {"alt": "Good, typical and poor test segmentations beside their MC-dropout entropy maps on one colour scale"}}
cases = pick_cases(test_j)
fig = show_uncertainty_maps(
    test.images,
    test.masks,
    mc.masks,
    {"MC-dropout entropy": mc.maps},
    cases,
    test_j,
)

# %% [markdown]
# ## The samples behind the map
#
# Eq. (5) averages what single passes with dropout say. For the test image whose map is
# the most uncertain (the largest mean entropy): three of five passes (the lesion
# probability of each pixel, black 0, white 1), their mean $p$, how far the five passes
# spread (their standard deviation), and the entropy $z$ of the mean. $z$ is high
# wherever the mean is near 0.5, for one of two reasons: the passes *disagree*, or
# every pass is itself unsure. Which is it here?

# %% mystnb={"image": {"alt": "Three MC-dropout passes of the lesion probability for the test image with the most uncertain map, the mean of five, their standard deviation and the entropy of the mean, the last two in the book's uncertainty colours"}}
i = int(mc.maps.mean(dim=(1, 2)).argmax())
x = test.images[i : i + 1].float().div(255).to(device)
seed_everything(3)
with torch.no_grad(), eval_with_dropout(f.model, dropout_on=True):
    passes = [f.model(x).float().softmax(1)[0, 1].cpu() for _ in range(5)]
mean = torch.stack(passes).mean(0)
# eq. (6) on the mean of eq. (5)
z = entropy(torch.stack([1 - mean, mean]), dim=0)
spread = torch.stack(passes).std(0)
fig, axes = plt.subplots(
    1, 6, figsize=(PAGE_WIDTH, 2.3), layout="constrained"
)
shown = [*[(f"pass {t + 1}", p) for t, p in enumerate(passes[:3])]]
for ax, (name, p) in zip(axes, [*shown, ("mean p of 5", mean)]):
    p_im = ax.imshow(p, cmap="gray", vmin=0, vmax=1)
    ax.set_title(name, fontsize=8)
# the sd on its own scale, 0 to its largest, so small spreads show
sd_top = max(float(spread.max()), 1e-3)
sd_im = axes[4].imshow(
    spread, cmap=UNCERTAINTY_COLOURS, vmin=0, vmax=sd_top
)
axes[4].set_title("sd of the passes", fontsize=8)
z_im = axes[5].imshow(
    z, cmap=UNCERTAINTY_COLOURS, vmin=0, vmax=math.log(2)
)
axes[5].set_title("entropy z of the mean", fontsize=8)
for ax in axes:
    ax.axis("off")
bar = dict(location="bottom", shrink=0.9)
fig.colorbar(p_im, ax=axes[:4], label="lesion probability", **bar)
fig.colorbar(sd_im, ax=axes[4], label=f"sd (0 to {sd_top:.2f})", **bar)
_ = fig.colorbar(z_im, ax=axes[5], label="nats (0 to ln 2)", **bar)
unsure = z > 0.5 * math.log(2)
# z minus the passes' mean entropy: what their disagreement adds
each = torch.stack(
    [entropy(torch.stack([1 - q, q]), dim=0) for q in passes]
)
share = float((z - each.mean(0))[unsure].sum() / z[unsure].sum())
say(
    f"where z is above half its maximum ({unsure.float().mean():.0%} of"
    f" the pixels), the passes' sd is {spread[unsure].mean():.3f} on"
    f" average (at most {spread.max():.3f}), and their disagreement is"
    f" {f'{share:.0%}' if share >= 0.005 else 'under 1%'} of z: "
    + (
        "the passes barely differ; z is high because every pass is unsure"
        if share < 0.1
        else "the passes disagree"
    )
)

# %% [markdown]
# The printed share answers the question. Where it is small, the passes barely differ:
# $z$ is high where *every* pass puts the lesion probability near 0.5, so the map shows
# what each pass is unsure of rather than where they disagree.
# [Chapter 12](12_failure_detection.ipynb) names these two parts, the expected entropy
# of the passes and their disagreement (the mutual information), and measures the
# second on the test image whose samples disagree most.
#
# What does that mean for chapter 10, where MC-dropout's map is one of the rows $g$
# reads? Where the share is small, the map $g$ gets is mostly what each pass is unsure
# of, the same kind of information as Max Probability's map of a network trained with
# dropout, not a measure of the model's ignorance. So a gain of the MC-dropout row over
# its control in chapter 10 need not come from epistemic uncertainty, and chapter 12's
# mutual-information row is the one that isolates the disagreement.

# %% [markdown]
# ## How many samples?
#
# With one sample the map is just the entropy of one noisy softmax; more samples average
# out the noise of the masks themselves. Below, the same poor case with growing $T$,
# each titled with its *error*: the mean absolute difference, in nats, from a reference
# map with four times the profile's samples:

# %% mystnb={"image": {"alt": "MC-dropout entropy maps of one poor case with T = 1, 2, 5 and the profile's T samples, each titled with its mean error against a reference with four times as many samples"}}
i = cases["poor"]
x = test.images[i : i + 1]
seed_everything(1)
reference = predict_images(
    f.model, x, "mc_dropout", samples=4 * P.mc_samples
).uncertainty[0]
sample_counts = [1, 2, 5, P.mc_samples]
fig, axes = plt.subplots(
    1,
    len(sample_counts) + 1,
    figsize=fit_width(2.4 * (len(sample_counts) + 1), 3.0),
    layout="constrained",
)
for ax, T in zip(axes, sample_counts):
    seed_everything(2)
    z = predict_images(f.model, x, "mc_dropout", samples=T).uncertainty[0]
    ax.imshow(z, cmap=UNCERTAINTY_COLOURS, vmin=0, vmax=math.log(2))
    ax.set_title(
        f"T = {T}\nerror {(z - reference).abs().mean():.3f}", fontsize=9
    )
shown = axes[-1].imshow(
    reference, cmap=UNCERTAINTY_COLOURS, vmin=0, vmax=math.log(2)
)
axes[-1].set_title(f"T = {4 * P.mc_samples} (reference)", fontsize=9)
for ax in axes:
    ax.axis("off")
_ = fig.colorbar(
    shown,
    ax=axes,
    location="bottom",
    shrink=0.4,
    label="entropy z, nats (purple: unsure)",
)

# %% [markdown]
# Read each error against the maps' own range, 0 to $\ln 2 \approx 0.69$ nats: where the
# profile's $T$ leaves an error that small next to that range, a larger $T$ buys little,
# and a map's cost grows in proportion to $T$.
#
# ## The BatchNorm trap
#
# The tempting way to switch dropout on is `model.train()`. But that also puts every
# BatchNorm layer in training mode: it normalises with the statistics *of the test
# batch* (a single image, here) and, even under `torch.no_grad()`, overwrites its running
# statistics with them. The MC-dropout maps computed this way may even look plausible;
# the damage shows afterwards, in a model silently changed for every later use. On a
# copy:

# %%
victim = copy.deepcopy(f.model)  # a copy: the cached model stays intact
victim.train()  # the trap: dropout on, but BatchNorm in training mode too
first = test.images[:10]
wrong_way = []
with torch.no_grad():
    # one image at a time, T samples each, as one would for a reader
    for image in first:
        x = (
            image[None]
            .float()
            .div(255)
            .to(device)
            .contiguous(memory_format=torch.channels_last)
        )
        wrong_way.append(
            torch.stack(
                [victim(x).softmax(1) for _ in range(P.mc_samples)]
            )
            .mean(0)
            .argmax(1)
            .cpu()
        )
right_way = predict_images(
    f.model, first, "mc_dropout", samples=P.mc_samples
)
wrong_j = jaccard(torch.cat(wrong_way), test.masks[:10]).mean()
right_j = jaccard(right_way.mask, test.masks[:10]).mean()
print(
    f"MC-dropout Jaccard on {len(first)} images:\n"
    f"  {wrong_j:.3f} with model.train()\n  {right_j:.3f} with predict"
)
moved = (
    (
        victim.encoders[0][1].running_mean
        - f.model.encoders[0][1].running_mean
    )
    .abs()
    .max()
)
print(f"first BatchNorm's running mean moved by up to {moved:.3f}")
after_j = jaccard(
    predict_images(victim.eval(), test.images, "max_prob").mask,
    test.masks,
)
plain_j = jaccard(
    predict_images(f.model, test.images, "max_prob").mask, test.masks
)
print(
    f"deterministic test Jaccard afterwards:\n"
    f"  {plain_j.mean():.3f} intact\n  {after_j.mean():.3f} corrupted"
)
say(
    f"On these {len(first)} images the wrong way scores"
    f" {abs(wrong_j - right_j):.3f}"
    f" {'higher' if wrong_j > right_j else 'lower'} than the right way"
    + (
        ": its masks give no sign of the trap."
        if wrong_j > right_j - 0.02
        else "."
    )
    + " The lasting harm is the changed model:"
    " every later prediction of the copy uses running statistics of"
    " single test images, and its test Jaccard moves by"
    f" {after_j.mean() - plain_j.mean():+.3f}."
)

# %% [markdown]
# `predict` does it the right way, with the context manager `eval_with_dropout`:
# `model.eval()`, then only the dropout modules back in training mode, and every
# module's mode restored afterwards. The tests of the package
# check that no BatchNorm statistic changes.
#
# ## Sampling cheaply
#
# Everything before the first dropout (the two shallow encoder blocks and the third
# block's convolutions) gives the same result for every sample. `predict` computes that
# prefix once and runs only the rest $T$ times, for roughly a fifth less arithmetic. Two
# more savings change nothing mathematically: in eval mode each BatchNorm is a fixed affine
# map, folded into the convolution before it; and a decoder block that reads a skip of
# the prefix convolves a concatenation, which is the sum of the convolutions of its two
# halves, so the skip's half is computed once too. With the same seed the same dropout
# masks are drawn as by $T$ full passes; the sums run in another order, so the outputs
# agree up to floating-point rounding:

# %%
x = (
    test.images[:8]
    .float()
    .div(255)
    .to(device)
    .contiguous(memory_format=torch.channels_last)
)
net = f.model
seed_everything(3)
fast = predict_images(net, test.images[:8], "mc_dropout", samples=5).probs
seed_everything(3)
# dropout on, BatchNorm frozen
with torch.no_grad(), eval_with_dropout(net, dropout_on=True):
    naive = torch.stack([net(x).softmax(1) for _ in range(5)]).mean(0)
print(
    "largest difference to five full passes:"
    f" {(fast - naive.cpu()).abs().max():.1e}"
)

# %% [markdown]
# ## Does the map track the errors?

# %% mystnb={"image": {"alt": "Left: histograms of the MC-dropout entropy on correct and on wrong pixels; right: each image's true Jaccard against its mean entropy"}}
fig = plot_uncertainty_vs_error(
    mc.maps, mc.masks, test.masks, test_j, "MC entropy"
)

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-mc-mutual-information
# The entropy of the mean mixes two things: the average entropy of each sample
# (aleatoric) and the disagreement between samples, the *mutual information*
# $\mathcal H[\bar p] - \frac1T \sum_t \mathcal H[p_t]$ (epistemic). Compute both parts
# for the poor case and show where each is large.
# ```
#
# ```{solution-start} ex-mc-mutual-information
# :class: dropdown
# ```

# %% mystnb={"image": {"alt": "Three maps of one poor case on one colour scale: the entropy of the mean softmax, the mean entropy of the samples, and their difference, the mutual information"}}
i = cases["poor"]
x = (
    test.images[i : i + 1]
    .float()
    .div(255)
    .to(device)
    .contiguous(memory_format=torch.channels_last)
)
seed_everything(4)
with torch.no_grad(), eval_with_dropout(net, dropout_on=True):
    samples = torch.stack(
        [net(x).softmax(1)[0] for _ in range(P.mc_samples)]
    )
total = entropy(samples.mean(0), dim=0)
aleatoric = entropy(samples, dim=1).mean(0)
fig, axes = plt.subplots(1, 3, figsize=(7, 2.6), layout="constrained")
for ax, m, name in zip(
    axes,
    [total, aleatoric, total - aleatoric],
    ["entropy of mean", "mean entropy", "mutual information"],
):
    shown = ax.imshow(
        m.cpu(), cmap=UNCERTAINTY_COLOURS, vmin=0, vmax=math.log(2)
    )
    ax.set_title(name, fontsize=9)
    ax.axis("off")
_ = fig.colorbar(shown, ax=axes, shrink=0.8, label="nats (0 to ln 2)")

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-mc-jaccard
# Does averaging samples improve the *segmentation* itself? Compare the test Jaccard of
# the MC-dropout mask with that of the deterministic pass.
# ```
#
# ```{solution-start} ex-mc-jaccard
# :class: dropdown
# ```

# %%
print(
    f"deterministic {plain_j.mean():.4f} | MC-dropout mean of"
    f" {P.mc_samples} {test_j.mean():.4f}"
)

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - Eq. 5 averages the softmax over $T$ dropout samples; eq. 6 takes the entropy of the mean.
# - Switch on dropout only: `model.train()` corrupts BatchNorm's running statistics.
# - The deterministic prefix is computed once; the result equals $T$ full passes up to rounding.
#
# ## References
#
# ```{footbibliography}
# ```
