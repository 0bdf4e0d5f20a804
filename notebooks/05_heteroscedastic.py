# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Heteroscedastic logits (HCNN)
#
# MC-dropout asks how unsure the *model* is. The heteroscedastic classifier of Kendall and
# Gal {footcite}`kendall2017uncertainties` asks instead how noisy the *data* is at each
# pixel, *aleatoric* uncertainty, by learning it: a second output head predicts a noise
# scale $\sigma$ that corrupts the logits during training. This is the third map of
# {footcite}`devries2018leveraging` (eq. 7).

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/05_heteroscedastic.ipynb)

# %% [markdown]
# **You will learn**
#
# - the heteroscedastic loss (eq. 7) and how to compute it stably with `logsumexp`;
# - why two tempting shortcuts compute something else;
# - the two candidate maps, $\sigma$ and the entropy of the sampled softmax, and the
#   one this book uses.

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
import torch
from torch.nn import functional as F

from segqual_lite.config import seed_everything, start_chapter
from segqual_lite.data import prepare_data
from segqual_lite.segment import segment_split
from segqual_lite.training import fit_segmentation
from segqual_lite.uncertainty import (
    eval_with_dropout,
    hcnn_loss,
    hcnn_mean_softmax,
    predict_images,
)
from segqual_lite.viz import (
    pick_cases,
    plot_learning_curve,
    plot_uncertainty_vs_error,
    say,
    show_source,
    show_uncertainty_maps,
    uncertainty_error_summary,
)

# %% tags=["parameters"]
profile = "tiny"
# fields of the profile to change, e.g. {"epochs_f": 2, "seeds": [0]}
overrides = {}

# %%
P, device, seed = start_chapter(profile, overrides)

# %% [markdown]
# ## Equation 7
#
# The U-Net gets a second $1 \times 1$ head whose output, through a softplus, is a
# non-negative $\sigma$ per pixel. During training the logits are corrupted with Gaussian
# noise of that scale, $T$ times, and the softmax outputs are averaged:
#
# $$
# p = \frac{1}{T} \sum_{t=1}^{T} \mathrm{Softmax}(\rho + \sigma \varepsilon_t),
# \qquad \varepsilon_t \sim \mathcal N(0, I). \tag{7}
# $$
#
# The loss is the negative log of $p$ at the true class $y$. Where the image is
# ambiguous, a large $\sigma$ lets the network hedge, spreading probability over both
# classes instead of paying the full price of a confident mistake; where the image is
# clear, $\sigma$ costs accuracy, so it stays small. The paper uses $T = 100$.
#
# Computed naively, $\log p$ breaks: for a confidently wrong pixel every sampled softmax
# underflows to 0 at the true class and $\log 0 = -\infty$. Written with log-softmax and
# `logsumexp` it stays finite:
#
# $$
# -\log p_y = -\Big( \operatorname{logsumexp}_t \, \log \mathrm{Softmax}(\rho + \sigma\varepsilon_t)_y - \log T \Big).
# $$

# %% [markdown]
# In the package, the sampled mean softmax of eq. (7) at test time is
# {py:func}`~segqual_lite.uncertainty.hcnn_mean_softmax`, and the training loss, written
# with `logsumexp`, is {py:func}`~segqual_lite.uncertainty.hcnn_loss`
# (both draw the noise with `_noisy`):

# %%
show_source(hcnn_mean_softmax, hcnn_loss)

# %%
# one pixel, sure of class 0 ...
rho = torch.tensor([[[[120.0]], [[-120.0]]]])
y = torch.tensor([[[1]]])  # ... but the truth is class 1
sigma = torch.full((1, 1, 1, 1), 0.5)
torch.manual_seed(0)
eps = torch.randn(100, 1, 2, 1, 1)
naive = -(rho + sigma * eps).softmax(2).mean(0)[0, 1].log()
per_sample_ce = -(rho + sigma * eps).log_softmax(2)[:, 0, 1].mean()
print(f"log of the averaged softmax: {naive.item()}")
print(
    "hcnn_loss (logsumexp):      "
    f" {hcnn_loss(rho, sigma, y, samples=100).item():.2f}"
)
print(
    f"mean per-sample CE:          {per_sample_ce.item():.2f}  (a"
    " different objective)"
)

# %% [markdown]
# The mean of per-sample cross-entropies is finite too, but by Jensen's inequality it is
# an upper bound on the loss above, and it rewards $\sigma$ differently: it is not
# eq. 7. With two classes `hcnn_loss` samples only the difference of the two logits
# (the noise on it has scale $\sqrt2\,\sigma$), the same distribution for half the random
# numbers. Training may use fewer samples than testing, a profile knob
# (`P.hcnn_train_samples`); this page says how many it used:

# %% mystnb={"image": {"alt": "Learning curve of the HCNN U-Net: training loss and validation Jaccard per epoch"}}
root = prepare_data(P)
f = fit_segmentation(P, "hcnn", seed, root, device)
print(
    f"trained with T = {P.hcnn_train_samples} samples in the loss; maps"
    f" use T = {P.hcnn_samples}"
)
ax = plot_learning_curve(f.history, title="HCNN U-Net")

# %% [markdown]
# ## Two candidate maps
#
# What should the uncertainty map be? Eq. 7 calls the noise scale itself $z$, so the
# paper's map is **$\sigma$ of each pixel**, and that is what `predict(..., "hcnn")`
# returns as `uncertainty`. A second candidate is the entropy of the sampled mean
# softmax $p$ of eq. 7, which combines $\sigma$ with how close the logits are; `predict`
# returns it in `extras["entropy"]`. `segment_split` stores both with the test masks
# (the maps $g$ is given in chapter 07). Both, on a good and a poor segmentation:

# %% mystnb={"image": {"alt": "Good, typical and poor test segmentations beside two HCNN maps: the noise scale sigma and the entropy of the sampled softmax"}}
test = segment_split(P, "hcnn", seed, root, "test", device)
cases = pick_cases(test.jaccard)
fig = show_uncertainty_maps(
    test.images,
    test.true_masks,
    test.masks,
    {
        "sigma (used)": test.maps,
        "entropy of sampled p": test.extras["entropy"],
    },
    cases,
    test.jaccard,
)
print(
    f"mean test Jaccard {test.jaccard.mean():.3f}; sigma ranges"
    f" {test.maps.min():.2f} to {test.maps.max():.2f}"
)

# %% [markdown]
# ## One pixel's noisy logits
#
# What eq. (7) does at one pixel: the two logits $\rho$ plus Gaussian noise of scale
# $\sigma$, sampled $T$ times, each sample turned into a lesion probability. Below, the
# pixel of the poor case where $\sigma$ is largest, beside a pixel in its corner. The
# larger $\sigma$, the wider the samples spread and the further their mean $p$ moves from
# the logits' own answer towards 0.5; with $\sigma = 0$ every sample is the same:

# %% mystnb={"image": {"alt": "Two histograms of the lesion probability over the T noisy logit samples of one pixel: the pixel with the largest sigma, spread across the range, and a corner pixel, concentrated at one value"}}
i = cases["poor"]
x = test.images[i : i + 1].float().div(255).to(device)
with torch.no_grad(), eval_with_dropout(f.model, dropout_on=False):
    rho, sigma = f.model(x)
rho, sigma = rho[0].float().cpu(), sigma[0, 0].float().cpu()
pixels = {
    "largest sigma": divmod(int(sigma.argmax()), sigma.shape[1]),
    "corner": (2, 2),
}
torch.manual_seed(0)
fig, axes = plt.subplots(1, 2, figsize=(7, 2.6), sharey=True)
for ax, (name, (r, c)) in zip(axes, pixels.items(), strict=True):
    # T samples of rho
    noisy = rho[:, r, c] + sigma[r, c] * torch.randn(P.hcnn_samples, 2)
    p_lesion = noisy.softmax(1)[:, 1]
    ax.hist(p_lesion, bins=20, range=(0, 1), color="tab:purple")
    ax.axvline(
        p_lesion.mean(),
        c="k",
        ls="--",
        label=f"mean p = {p_lesion.mean():.2f}",
    )
    ax.set_title(
        f"{name}, pixel ({r}, {c}): sigma = {sigma[r, c]:.2f}\n"
        f"rho = ({rho[0, r, c]:.1f}, {rho[1, r, c]:.1f}) (skin, lesion)"
    )
    ax.set_xlabel("lesion probability of one sample")
    ax.legend(loc="upper center")
axes[0].set_ylabel(f"samples (of T = {P.hcnn_samples})")
fig.tight_layout()

# %% [markdown]
# $\sigma$ is learned where the *labels* are hard to predict from the image. The paper
# notes that HCNN tends to mark a narrow band around its prediction rather than the
# regions it got wrong, and found it the least useful of the four for predicting
# quality. How much of $\sigma$ lies within two pixels of the predicted border on this
# run, against the share of pixels there:

# %%
m = test.masks.float()[:, None]
band = (
    F.max_pool2d(m, 5, stride=1, padding=2)
    + F.max_pool2d(-m, 5, stride=1, padding=2)
)[:, 0].bool()
share = float((test.maps * band).sum() / test.maps.sum())
say(
    f"the border band holds {share:.0%} of sigma on"
    f" {band.float().mean():.0%} of the pixels: "
    + (
        "sigma concentrates on the border"
        if share > 2 * band.float().mean()
        else "sigma is spread well beyond the border"
    )
)

# %% [markdown]
# Both maps are compared with the errors below.

# %% mystnb={"image": {"alt": "Left: histograms of HCNN's sigma on correct and on wrong pixels; right: each image's true Jaccard against its mean sigma"}}
fig = plot_uncertainty_vs_error(
    test.maps, test.masks, test.true_masks, test.jaccard, "sigma"
)
alt = uncertainty_error_summary(
    test.extras["entropy"], test.masks, test.true_masks, test.jaccard
)
say(
    f"sampled entropy: {alt['ratio']:.1f}x on wrong pixels; correlation"
    f" with the Jaccard index {alt['image_correlation']:.2f}"
)

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-hcnn-sigma-zero
# Show numerically that `hcnn_loss` becomes the ordinary cross-entropy as $\sigma \to 0$,
# using the trained network's logits on a few test images.
# ```
#
# ```{solution-start} ex-hcnn-sigma-zero
# :class: dropdown
# ```

# %%
x = (
    test.images[:4]
    .float()
    .div(255)
    .to(device)
    .contiguous(memory_format=torch.channels_last)
)
y = test.true_masks[:4].long().to(device)
f.model.eval()
with torch.no_grad():
    logits, s = f.model(x)
for scale in (1.0, 0.1, 0.0):
    print(
        scale,
        round(hcnn_loss(logits, s * scale, y, samples=50).item(), 5),
    )
print("cross-entropy", round(F.cross_entropy(logits, y).item(), 5))

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-hcnn-samples
# How many samples does the sampled entropy map need? Compare $T = 10$ and $T = 100$
# with a reference of $T = 1000$ on the poor case.
# ```
#
# ```{solution-start} ex-hcnn-samples
# :class: dropdown
# ```

# %%
i = cases["poor"]
seed_everything(0)
ref = predict_images(
    f.model, test.images[i : i + 1], "hcnn", samples=1000
).extras["entropy"]
for T in (10, 100):
    z = predict_images(
        f.model, test.images[i : i + 1], "hcnn", samples=T
    ).extras["entropy"]
    print(T, f"mean absolute difference {(z - ref).abs().mean():.4f}")

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - HCNN learns a per-pixel noise scale $\sigma$ and trains on the log of the
#   Monte-Carlo mean softmax (eq. 7), computed with `logsumexp`.
# - The map used here is $\sigma$, the paper's $z$; the sampled entropy is the alternative.
# - $\sigma$ captures aleatoric noise, which is not the same as the network's mistakes.
#
# ## References
#
# ```{footbibliography}
# ```
