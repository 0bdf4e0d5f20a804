# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The segmentation network: a U-Net with central dropout
#
# The first stage of the paper's system is a segmentation network $f$ that maps an image
# $x$ to per-pixel class scores (logits) $\rho$, from which the mask $\hat y$ is the most
# likely class of each pixel. Following {footcite}`devries2018leveraging`, $f$ is a U-Net
# {footcite}`ronneberger2015unet` with dropout in its central blocks, so that the same
# network can later give MC-dropout samples. This chapter builds it, trains it on the
# active profile, on a GPU when there is one, and looks at where it fails.

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/02_unet.ipynb)

# %% [markdown]
# **You will learn**
#
# - the U-Net's encoder, decoder and skip connections, and where its dropout sits;
# - how training picks a device and uses mixed precision on a GPU;
# - how checkpoints make training survive a Colab disconnect, and how models are cached;
# - how good the segmentations are, and what the failures look like.

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
import torch

from segqual_lite.config import seed_everything, start_chapter
from segqual_lite.data import (
    HARD_CASES,
    ISIC2017,
    prepare_data,
    read_hard_cases,
)
from segqual_lite.metrics import FAILURE_THRESHOLD, jaccard
from segqual_lite.models import UNet
from segqual_lite.training import fit_segmentation
from segqual_lite.uncertainty import predict_images
from segqual_lite.viz import (
    error_overlay,
    fit_width,
    plot_learning_curve,
    plot_unet,
    say,
    show_source,
    to_hwc,
)

# %% tags=["parameters"]
profile = "tiny"
# fields of the profile to change, e.g. {"epochs_f": 2, "seeds": [0]}
overrides = {}

# %%
P, device, seed = start_chapter(profile, overrides)

# %% [markdown]
# ## The architecture
#
# The encoder applies blocks of two $3 \times 3$ convolutions (each with batch
# normalisation and ReLU) and halves the resolution after each block, doubling the
# number of filters; the decoder mirrors it with transposed convolutions, and each
# decoder block also receives the encoder features of the same resolution (the skip
# connections), which keep the borders sharp. A $1 \times 1$ convolution gives the two
# logits $\rho = (\rho_\text{skin}, \rho_\text{lesion})$ of every pixel.
#
# For MC-dropout the paper follows Bayesian SegNet {footcite}`kendall2017bayesian` and
# places dropout with $p = 0.5$ in the *central* blocks only: after the two deepest
# encoder blocks, the bottleneck and the first two decoder blocks. Dropout near the input
# or output would mostly destroy fine detail; in the middle it perturbs the network's
# beliefs about *what* is lesion.

# %%
net = UNet(width=P.unet_width, depth=P.unet_depth)
n_params = sum(p.numel() for p in net.parameters())
print(
    f"U-Net width {P.unet_width}, depth {P.unet_depth}: {n_params:,}"
    " parameters"
)
for where, blocks in (
    ("encoder", net.encoder_dropout),
    ("decoder", net.decoder_dropout),
):
    say(
        f"after the {where} blocks:",
        ", ".join(type(m).__name__ for m in blocks),
    )
x = torch.rand(2, 3, P.image_size, P.image_size)
print("input", tuple(x.shape), "-> logits", tuple(net(x).shape))

# %% [markdown]
# The same network as a diagram: each box is a block of two convolutions with its number
# of filters and the resolution it works at, the orange ones are followed by dropout:

# %% mystnb={"image": {"alt": "Diagram of the U-Net: encoder blocks down the left, decoder blocks up the right, skip connections across, and the dropout sites of MC-dropout marked in the central blocks"}}
fig = plot_unet(net, P.image_size)

# %% [markdown]
# In the paper's notation, $f$ maps an image to the logits and, for the methods whose
# U-Net has a second head (chapters 05 and 06), a map of the same size:
#
# $$
# \rho, z = f(x), \tag{1}
# $$
#
# and the mask is the most likely class of each pixel,
#
# $$
# \hat y = \arg\max_c \rho_c . \tag{2}
# $$
#
# The U-Net's forward pass, in two halves split at the first dropout (chapter 04 runs the
# first half once for all its samples); eq. (2) is the `argmax` in
# {py:func}`~segqual_lite.uncertainty.predict`:

# %%
show_source(UNet.prefix, UNet.forward_from_prefix)

# %% [markdown]
# Everything before the first dropout is deterministic, so the network exposes that part
# separately (`net.prefix`) from the stochastic rest (`net.forward_from_prefix`); chapter
# 04 uses this to draw MC-dropout samples without recomputing the prefix.
#
# ## Training, on a GPU or the CPU
#
# `pick_device()` takes CUDA when present, then Apple's MPS, then the CPU
# (`SEGQUAL_DEVICE=cpu` forces a choice). The same code trains on each; the box below
# says what changes for speed, and can be skipped.
#
# ````{admonition} Making it fast (optional)
# :class: dropdown
# - On CUDA the forward pass runs under automatic mixed precision: convolutions in
#   float16 on the tensor cores, the loss in float32, with a gradient scaler so that
#   small gradients do not underflow.
# - On a CPU the profiles train in float32; `cpu_precision="bfloat16"` is a speed knob
#   for f (the forward pass in bfloat16 under `torch.autocast`, the loss, the weights
#   and Adam in float32), faster on CPUs with bfloat16 instructions, with other weights
#   for the same seed.
# - The model is kept in the `channels_last` memory layout, which both GPUs and CPUs
#   convolve faster.
# - The loop never asks the GPU for a number before the end of an epoch, so the GPU is
#   never left waiting.
# ````
#
# The loss is the pixel-wise cross-entropy
#
# $$
# \mathcal L(\rho, y) = -\frac{1}{|\Omega|} \sum_{i \in \Omega} \log \mathrm{softmax}(\rho_i)_{y_i},
# $$
#
# minimised with Adam at the profile's learning rate (the paper: $10^{-3}$, batches of 16,
# 120 epochs, random flips and 90-degree rotations).
#
# `fit_segmentation` writes a checkpoint after every epoch (weights, optimiser, random
# states) by writing a temporary file and renaming it, so a crash never leaves a broken
# one. If the session dies, calling it again resumes where it stopped and finishes with
# exactly the weights of an uninterrupted run. A finished model is stored under a key of
# everything that produced it, so the chapters that follow load it instead of training.

# %% mystnb={"image": {"alt": "Learning curve of the U-Net: training loss and validation Jaccard per epoch"}}
root = prepare_data(P)
f = fit_segmentation(P, "max_prob", seed, root, device)
print(f.path.name, "|", len(f.history), "epochs")
ax = plot_learning_curve(f.history, title=f"U-Net f, seed {seed}")

# %% [markdown]
# ## How good are the segmentations?
#
# On the test split, the Jaccard index of each image (chapter 08 defines it):

# %% mystnb={"image": {"alt": "Histogram of the test Jaccard index of the U-Net's masks, a dotted line at the failure threshold 0.7"}}
test = ISIC2017(root, "test", P.image_size)
pred = predict_images(f.model, test.images, "max_prob")
test_j = jaccard(pred.mask, test.masks)
fails = test_j < FAILURE_THRESHOLD
print(
    f"mean Jaccard {test_j.mean():.3f} | median {np.median(test_j):.3f} |"
    f" below {FAILURE_THRESHOLD}: {fails.sum()} of {len(test_j)}"
    f" ({fails.mean():.0%})"
)
fig, ax = plt.subplots(figsize=(5.5, 2.8))
ax.hist(test_j, bins=30, color="tab:green")
ax.axvline(FAILURE_THRESHOLD, color="k", ls=":")
ax.set(xlabel="Jaccard index", ylabel="test images")
fig.tight_layout()

# %% [markdown]
# Most segmentations are good, and some fail: exactly what a quality predictor needs to
# learn from. In the paper every U-Net scored $0.73 \pm 0.02$ mean Jaccard on ISIC 2017;
# the synthetic lesions are easier on average but keep a tail of failures. Where do they
# come from? On synthetic data we know which images are hard cases (an image can be
# several at once):

# %%
cases = read_hard_cases(root)
if cases:
    groups = {"typical (no hard case)": [not cases[i] for i in test.ids]}
    groups |= {
        name: [name in cases[i] for i in test.ids] for name in HARD_CASES
    }
    for name, member in groups.items():
        member = np.array(member)
        print(
            f"{name:24s} {fails[member].sum():3d} of {member.sum():3d}"
            " fail"
        )
    hard = np.array([bool(cases[i]) for i in test.ids])
    print(
        f"{fails[hard].sum()} of {fails.sum()} failures are hard cases"
        f" ({fails[hard].mean():.0%} of hard cases fail,"
        f" {fails[~hard].mean():.0%} of typical ones)"
    )
else:
    print("this data set has no hard-case labels (real ISIC 2017 images)")

# %% [markdown]
# Green marks correctly found lesion pixels, red false positives, blue missed lesion
# (the colours of the paper's Figure 2). From the best segmentation to the worst:

# %% mystnb={"image": {"alt": "Six test images above their segmentations (green true positive, red false positive, blue false negative): the best, a median one and the four worst, with their Jaccard"}}
order = np.argsort(test_j)
picks = [order[-1], order[len(order) // 2], *order[:4]]
fig, axes = plt.subplots(
    2, len(picks), figsize=fit_width(2.1 * len(picks), 4.3)
)
for col, i in enumerate(picks):
    axes[0, col].imshow(to_hwc(test.images[i]))
    axes[1, col].imshow(
        error_overlay(test.images[i], pred.mask[i], test.masks[i])
    )
    axes[0, col].set_title(test.ids[i], fontsize=8)
    axes[1, col].set_title(f"J = {test_j[i]:.2f}", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-unet-dropout-off
# Dropout is off at test time (`model.eval()`). How does a single *stochastic* pass, with
# dropout on, compare on the test Jaccard? Use `predict(..., "mc_dropout", samples=1)`,
# then the mean of the profile's `P.mc_samples`.
# ```
#
# ```{solution-start} ex-unet-dropout-off
# :class: dropdown
# ```

# %%
seed_everything(0)
one_sample = predict_images(f.model, test.images, "mc_dropout", samples=1)
print(
    f"deterministic {test_j.mean():.3f} | one dropout sample"
    f" {jaccard(one_sample.mask, test.masks).mean():.3f}"
)

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-unet-threshold
# The mask takes the most likely class, i.e. lesion probability above 0.5. Would another
# threshold give a better mean Jaccard on the test split? Try 0.3 to 0.7.
# ```
#
# ```{solution-start} ex-unet-threshold
# :class: dropdown
# ```

# %%
lesion_prob = pred.probs[:, 1]
for t in (0.3, 0.4, 0.5, 0.6, 0.7):
    print(t, round(float(jaccard(lesion_prob > t, test.masks).mean()), 4))

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - $f$ is a U-Net with dropout ($p = 0.5$) after the two deepest encoder blocks, the
#   bottleneck and the first two decoder blocks.
# - Training uses the profile's settings, mixed precision on CUDA, and a checkpoint per
#   epoch; finished models are cached for the chapters that follow.
# - Most test segmentations pass; on synthetic data the lines above say how many of the
#   failures are hard cases.
#
# ## References
#
# ```{footbibliography}
# ```
