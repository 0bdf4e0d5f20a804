# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Maximum softmax probability
#
# The cheapest uncertainty map needs no change to the network at all: read how sure the
# softmax is of its own choice at every pixel. This is the baseline of Hendrycks and
# Gimpel {footcite}`hendrycks2017baseline`, the first of the four maps compared in
# {footcite}`devries2018leveraging` (their eq. 4).

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/03_max_probability.ipynb)

# %% [markdown]
# **You will learn**
#
# - the maximum softmax probability map (eq. 4) and why it lights up at borders;
# - how to compute it with `segqual_lite.uncertainty.predict`;
# - whether it is higher where the segmentation is wrong, pixel by pixel and image by image.

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
import torch

from segqual_lite.config import start_chapter
from segqual_lite.data import prepare_data
from segqual_lite.segment import segment_split
from segqual_lite.training import fit_segmentation
from segqual_lite.uncertainty import (
    max_probability_map,
    predict,
    predict_images,
)
from segqual_lite.viz import (
    pick_cases,
    plot_uncertainty_vs_error,
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
# ## The map
#
# For the logits $\rho$ of a pixel, the softmax gives class probabilities and the map
# keeps the largest:
#
# $$
# z = \max_{c} \, \mathrm{Softmax}(\rho)_c . \tag{4}
# $$
#
# With two classes $z \in [0.5, 1]$: 1 when the network is certain, 0.5 when it cannot
# choose. That is a *confidence*; throughout the book every map is drawn as an
# *uncertainty*, high meaning unsure, so `predict` returns $1 - z \in [0, 0.5]$. The
# quality network of chapter 07 cannot tell the difference, but our figures can be read
# the same way for every method.

# %% [markdown]
# The package computes eq. (4) in {py:func}`~segqual_lite.uncertainty.max_probability_map`,
# turned into an uncertainty:

# %%
show_source(max_probability_map)

# %% [markdown]
# A quick check on three made-up pixels:

# %%
# three pixels, two classes
rho = torch.tensor([[4.0, -4.0], [0.3, 0.1], [-1.0, 2.0]])
z = rho.softmax(dim=1).max(dim=1).values
print("max probability z:  ", z.numpy().round(3))
print("uncertainty 1 - z:  ", (1 - z).numpy().round(3))

# %% [markdown]
# ## On the test images
#
# The map needs only the plain U-Net trained in chapter 02 (loaded from the cache when it
# exists, trained otherwise) and one deterministic pass. `segment_split` runs it over the
# test split once and caches the masks and maps: the very maps that $g$ learns from and
# is tested on in chapter 07. One batch again by hand, as a check:

# %%
root = prepare_data(P)
f = fit_segmentation(P, "max_prob", seed, root, device)
test = segment_split(P, "max_prob", seed, root, "test", device)
x = test.images[:4].float().div(255).to(device)
assert torch.equal(
    predict(f.model, x, "max_prob").mask.cpu(), test.masks[:4].long()
)
print(
    f"{len(test.ids)} test images, mean Jaccard {test.jaccard.mean():.3f}"
)

# %% [markdown]
# Beside a good segmentation and the poorest one (image, errors in colour, map):

# %% mystnb={"image": {"alt": "Good, typical and poor test segmentations beside their maximum-probability uncertainty maps on one colour scale"}}
cases = pick_cases(test.jaccard)
fig = show_uncertainty_maps(
    test.images,
    test.true_masks,
    test.masks,
    {"1 - max probability": test.maps},
    cases,
    test.jaccard,
)

# %% [markdown]
# On a good segmentation the map is a thin ring along the predicted border: the only
# place where the network hesitates is where skin turns into lesion. On a poor one the
# hesitation spreads over the regions it got wrong, though not always: a network can be
# confidently wrong, and then this map stays quiet.
#
# Two patterns in these maps (and in those of the next chapters) come from the network,
# not from the lesions. A faint **checkerboard** of 2-pixel period: the decoder doubles
# the resolution with $2 \times 2$ transposed convolutions of stride 2, so each output
# pixel is made by one of four kernel positions depending on its row and column parity,
# and neighbours are computed slightly differently {footcite}`odena2016deconvolution`.
# A **frame** along the image border: the $3 \times 3$ convolutions pad with zeros, so
# border pixels see an edge that no pixel inside does. Both come from the architecture,
# whatever the data. Bilinear upsampling followed by a convolution would remove the
# checkerboard; the book keeps the $2 \times 2$ up-convolutions of the original U-Net
# {footcite}`ronneberger2015unet`, the architecture the paper names.
#
# ## Does the map track the errors?

# %% mystnb={"image": {"alt": "Left: histograms of 1 - max probability on correct and on wrong pixels; right: each image's true Jaccard against its mean 1 - max probability"}}
fig = plot_uncertainty_vs_error(
    test.maps, test.masks, test.true_masks, test.jaccard, "1 - max p"
)

# %% [markdown]
# The line above measures the two things the quality network can exploit: how much more
# uncertainty sits on wrong pixels than on right ones, and how strongly an image's mean
# uncertainty goes with a low Jaccard index (a negative correlation).
#
# ## Exercises
#
# ```{exercise}
# :label: ex-maxprob-entropy
# With two classes, the entropy of the softmax, $-\sum_c p_c \log p_c$, carries the same
# information as $\max_c p_c$. Check that one is a monotone function of the other on
# the test predictions.
# ```
#
# ```{solution-start} ex-maxprob-entropy
# :class: dropdown
# ```

# %%
from segqual_lite.uncertainty import entropy

h = entropy(
    predict_images(f.model, test.images, "max_prob").probs
).flatten()
u = test.maps.flatten()
order = torch.argsort(u)
print(
    "entropy non-decreasing in 1 - max p:",
    bool((h[order].diff() >= -1e-6).all()),
)

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-maxprob-border
# How much of the uncertainty lies within two pixels of the predicted border? Compute the
# share of the total map inside that band for the test images.
# ```
#
# ```{solution-start} ex-maxprob-border
# :class: dropdown
# ```

# %%
m = test.masks.float()[:, None]
dilated = torch.nn.functional.max_pool2d(m, 5, stride=1, padding=2)
eroded = -torch.nn.functional.max_pool2d(-m, 5, stride=1, padding=2)
band = (dilated - eroded)[:, 0].bool()
share = (test.maps * band).sum() / test.maps.sum()
print(
    f"{band.float().mean():.1%} of the pixels hold {share:.1%} of the"
    " uncertainty"
)

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - Eq. 4: $z = \max_c \mathrm{Softmax}(\rho)_c$, free to compute from any trained network.
# - It concentrates on borders, and spreads over regions the network got wrong unless
#   the network is confidently wrong.
# - Drawn as $1 - z$, high means unsure, like every map in this book.
#
# ## References
#
# ```{footbibliography}
# ```
