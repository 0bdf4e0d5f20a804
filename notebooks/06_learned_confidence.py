# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Learned confidence estimates (LCE)
#
# The last map is learned too, but by a different bargain. DeVries and Taylor
# {footcite}`devries2018learning` give the network a confidence output $c$ and let it
# *ask for hints*: the lower its confidence, the more of the right answer is mixed into
# its prediction during training, at a price. The network learns to spend low confidence
# where it would otherwise be wrong. Extending this from one confidence per image to one
# per pixel is a contribution of {footcite}`devries2018leveraging` (eq. 8).

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/06_learned_confidence.ipynb)

# %% [markdown]
# **You will learn**
#
# - the interpolation with hints (eq. 8) and the confidence penalty;
# - the budget $\beta$ and how $\lambda$ adapts to it during training;
# - the per-pixel confidence map and whether it marks the network's errors.

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
    LCE_BUDGET,
    LCE_LAMBDA0,
    lce_loss,
    update_lambda,
)
from segqual_lite.viz import (
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
# ## Equation 8: hints at a price
#
# A sigmoid head gives a confidence $c \in (0, 1)$ per pixel. During training the
# prediction is pulled towards the one-hot target $y$ in proportion to $1 - c$:
#
# $$
# p' = c \cdot \mathrm{Softmax}(\rho) + (1 - c) \cdot \mathrm{Onehot}(y), \tag{8}
# $$
#
# and the loss is the negative log-likelihood of $p'$ plus a penalty on low confidence,
#
# $$
# \mathcal L = -\log p'_y + \lambda \, \mathcal L_c, \qquad \mathcal L_c = -\log c .
# $$
#
# Without the penalty the network would always ask for the answer ($c \to 0$). With it,
# asking is worth it only where the softmax would be badly wrong. Following the reference
# implementation, hints are given to a random half of the training examples (here: of
# the images, one coin flip per image); the other half train the plain softmax, and at
# test time the prediction is the un-interpolated softmax. Probabilities and $c$ are
# clamped to $[10^{-12}, 1 - 10^{-12}]$ before any logarithm.

# %% [markdown]
# In the package, eq. (8) and the loss are {py:func}`~segqual_lite.uncertainty.lce_loss`;
# the budget $\beta$ moves $\lambda$ in {py:func}`~segqual_lite.uncertainty.update_lambda`
# after each batch:

# %%
show_source(lce_loss)

# %%
# one pixel, fairly sure of class 0
rho = torch.tensor([[[[2.0]], [[-2.0]]]])
y = torch.tensor([[[1]]])  # the truth is class 1
p_true = rho.softmax(dim=1)[0, 1, 0, 0]
for c in (1.0, 0.5, 0.1):
    # With a hint, the prediction at the true class is c * p_y + (1 - c)
    hinted = -torch.log(c * p_true + (1 - c))
    _, penalty = lce_loss(
        rho, torch.full((1, 1, 1, 1), c), y, lam=LCE_LAMBDA0, hint=False
    )
    print(
        f"c = {c}: task loss {hinted:.3f} with the hint, penalty -log c ="
        f" {penalty:.3f}"
    )
print(
    "without any hint (plain cross-entropy):"
    f" {F.cross_entropy(rho, y):.3f}"
)

# %% [markdown]
# ## The budget and $\lambda$
#
# How much should confidence cost? Instead of fixing $\lambda$, the reference code fixes
# a *budget* $\beta$ for the penalty and adapts $\lambda$ after every step: when
# $\mathcal L_c < \beta$ the network is confident enough and $\lambda$ shrinks
# ($\lambda \leftarrow \lambda / 1.01$); otherwise it grows ($\lambda \leftarrow
# \lambda / 0.99$). The reference values, from the package:

# %%
print(f"budget beta = {LCE_BUDGET}, initial lambda = {LCE_LAMBDA0}")
lam = torch.tensor(LCE_LAMBDA0)
for where, penalty in (
    ("below", LCE_BUDGET / 2),
    ("above", LCE_BUDGET * 2),
):
    new = update_lambda(lam, torch.tensor(penalty)).item()
    print(
        f"penalty {where} the budget: lambda {LCE_LAMBDA0} -> {new:.4f}"
    )

# %% [markdown]
# Training the LCE U-Net (or loading it from the cache) and following the penalty and
# $\lambda$ epoch by epoch:

# %% mystnb={"image": {"alt": "Three curves per epoch of LCE training: the confidence penalty against its budget, the multiplier lambda on a log scale, and the validation Jaccard"}}
root = prepare_data(P)
f = fit_segmentation(P, "lce", seed, root, device)
epochs = [h["epoch"] for h in f.history]
fig, axes = plt.subplots(1, 3, figsize=fit_width(11, 2.8))
axes[0].plot(
    epochs,
    [h["penalty"] for h in f.history],
    label="penalty $\\mathcal{L}_c$",
)
axes[0].axhline(LCE_BUDGET, ls=":", c="k", label="budget $\\beta$")
axes[0].legend(fontsize=8)
axes[1].plot(epochs, [h["lambda"] for h in f.history], c="tab:purple")
axes[1].set(yscale="log", ylabel="$\\lambda$ (end of epoch)")
axes[2].plot(epochs, [h["val_jaccard"] for h in f.history], c="tab:blue")
axes[2].set(ylabel="validation Jaccard", ylim=(0, 1))
for ax in axes:
    ax.set_xlabel("epoch")
fig.tight_layout()
over = [h["epoch"] for h in f.history if h["penalty"] > LCE_BUDGET]
peak = max(f.history, key=lambda h: h["lambda"])
say(
    f"penalty above the budget in {len(over)} of {len(f.history)} epochs;"
    f" lambda peaked at {peak['lambda']:.3f} after epoch {peak['epoch']}"
)

# %% [markdown]
# While the network asks for many hints the penalty exceeds the budget and $\lambda$
# rises; once the penalty falls below $\beta$, $\lambda$ decays and the network may
# spend what is left of the budget where it pays off most. The line above says when
# that turn came in this run.
#
# ## The confidence map
#
# This book draws $z = 1 - c$ (high = unsure), like every other map.

# %% mystnb={"image": {"alt": "Good, typical and poor test segmentations beside their LCE maps, one minus the learned confidence, on one colour scale"}}
test = segment_split(P, "lce", seed, root, "test", device)
print(
    f"mean test Jaccard {test.jaccard.mean():.3f}; 1 - c ranges"
    f" {test.maps.min():.3f} to {test.maps.max():.3f}"
)
cases = pick_cases(test.jaccard)
fig = show_uncertainty_maps(
    test.images,
    test.true_masks,
    test.masks,
    {"1 - confidence": test.maps},
    cases,
    test.jaccard,
)

# %% mystnb={"image": {"alt": "Left: histograms of LCE's 1 - c on correct and on wrong pixels; right: each image's true Jaccard against its mean 1 - c"}}
fig = plot_uncertainty_vs_error(
    test.maps, test.masks, test.true_masks, test.jaccard, "1 - c"
)

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-lce-hints
# Check on the trained network that hints lower the task loss: compute the loss on a
# test batch with `hint=True` and `hint=False` and `lam=0`.
# ```
#
# ```{solution-start} ex-lce-hints
# :class: dropdown
# ```

# %%
x = (
    test.images[:16]
    .float()
    .div(255)
    .to(device)
    .contiguous(memory_format=torch.channels_last)
)
y = test.true_masks[:16].long().to(device)
f.model.eval()
with torch.no_grad():
    logits, conf = f.model(x)
seed_everything(0)
with_hints, _ = lce_loss(logits, conf, y, lam=0.0, hint=True)
without, _ = lce_loss(logits, conf, y, lam=0.0, hint=False)
print(f"task loss with hints {with_hints:.4f}, without {without:.4f}")

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-lce-threshold
# Use the confidence to *refuse* pixels: refuse the 5% of test pixels with the lowest
# confidence. What share of the wrong pixels do they catch?
# ```
#
# ```{solution-start} ex-lce-threshold
# :class: dropdown
# ```

# %%
wrong = test.masks != test.true_masks
# a subsample is enough
cutoff = torch.quantile(test.maps.flatten()[::7], 0.95)
refused = test.maps > cutoff
print(
    f"refuses {refused.float().mean():.1%} of pixels (1 - c >"
    f" {cutoff:.3f}), catching {refused[wrong].float().mean():.1%} of the"
    " wrong ones"
)

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - LCE mixes the target into the prediction in proportion to $1 - c$ (eq. 8) and charges
#   $\lambda (-\log c)$ for it.
# - $\lambda$ adapts so that the penalty stays near the budget $\beta$.
# - The map $1 - c$ is learned to be high where the softmax would be wrong.
#
# ## References
#
# ```{footbibliography}
# ```
