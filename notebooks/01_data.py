# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Skin lesions: ISIC 2017 and synthetic look-alikes
#
# Everything in this book starts from pairs $(x, y)$: a dermoscopic photograph $x$ of a skin
# lesion and its expert mask $y$. The paper {footcite}`devries2018leveraging` uses the ISIC 2017
# segmentation challenge {footcite}`codella2018skin`; this chapter shows how that data is laid
# out, how the book reads and checks it, and the synthetic lesions that stand in for it
# when the book runs on a laptop or in CI.

# %% [markdown] tags=["remove-cell"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/segqual-lite/segqual-lite/blob/main/notebooks/01_data.ipynb)

# %% [markdown]
# **You will learn**
#
# - the ISIC 2017 Part 1 folder layout, and how `check_data` finds every fault in it;
# - how the synthetic lesions are drawn, and which *hard cases* make a network fail;
# - joint augmentation of image and mask with torchvision transforms v2;
# - how a split becomes a PyTorch `Dataset` ready for training.

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
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from segqual_lite.config import seed_everything, start_chapter
from segqual_lite.data import (
    HARD_CASES,
    ISIC2017,
    DataError,
    check_data,
    draw_lesion,
    joint_augmentation,
    list_pairs,
    prepare_data,
    read_hard_cases,
)
from segqual_lite.viz import say, show_grid

# %% tags=["parameters"]
profile = "tiny"
# fields of the profile to change, e.g. {"epochs_f": 2, "seeds": [0]}
overrides = {}
# your own data: overrides = {"data": "DIR"} (see book/own_data.md)

# %%
P, device, seed = start_chapter(profile, overrides)

# %% [markdown]
# ## The ISIC 2017 Part 1 layout
#
# The challenge publishes six zips, one image zip and one ground-truth zip for each of
# the three splits (2000 training, 150 validation and 600 test images). Unpacked, they
# give six folders named like the zips:
#
# | folder | holds |
# |---|---|
# | `ISIC-2017_Training_Data` | `ISIC_<7 digits>.jpg`, plus `*_superpixels.png` and a metadata CSV (skipped) |
# | `ISIC-2017_Training_Part1_GroundTruth` | `ISIC_<id>_segmentation.png`, 0 = skin, 255 = lesion |
# | `ISIC-2017_Validation_...`, `ISIC-2017_Test_v2_...` | the same for the other two splits |
#
# Photographs come in many sizes; the paper resizes everything to $224 \times 224$. Images
# are resized bilinearly, masks by nearest neighbour (then thresholded at $> 128$) so that
# a mask stays binary. `prepare_data` returns a folder in this layout for the active
# profile: the official zips for `colab` and `paper` (downloaded once, resumably), and
# synthetic lesions for `tiny`.

# %%
root = prepare_data(P)
layout, counts = check_data(root)
print(root.name, layout, counts)
sorted(p.name for p in root.iterdir())

# %% [markdown]
# `check_data` decodes every file, so it also catches what a directory listing cannot: a
# truncated image, a mask whose size differs from its image. It reports every fault at
# once, each with the file's path, and says how to fix it. (It reads the ISIC layout
# with `check_isic2017`, and a folder of your own, `train/images`, `train/masks` and so
# on, with `check_folder`: the page *Your own data* says more.) Here we damage a copy on
# purpose:

# %%
with tempfile.TemporaryDirectory() as tmp:
    broken = Path(tmp) / "broken"
    shutil.copytree(root, broken)
    # (id, image, mask), sorted by id
    pairs, _ = list_pairs(broken, "train")
    first_image = pairs[0][1]
    # truncate an image
    first_image.write_bytes(first_image.read_bytes()[:300])
    pairs[1][2].unlink()  # lose a mask
    try:
        check_data(broken)
    except DataError as err:
        for line in str(err).replace(str(broken), "<data>").splitlines():
            say(line, indent="      ")

# %% [markdown]
# ## Synthetic lesions
#
# Real ISIC images cannot be fetched inside CI, so the `tiny` profile draws its own. Each
# image is a skin-toned, blotchy background with one irregular lesion: a star-shaped blob
# whose radius wobbles with angle, coloured from two browns mixed by smooth noise, darker
# in the middle, with a soft edge; then hair strokes and the dark corners of a
# dermatoscope. The generator depends only on (seed, split, index), so the same seed
# writes the same bytes.
#
# A segmentation network would find such lesions too easy, and a quality predictor needs
# failures to learn from. So a share of images are **hard cases**, modelled on what goes
# wrong with real dermoscopy:

# %% mystnb={"image": {"alt": "Synthetic lesions drawn by the generator, two of each kind: typical, then each hard case, the ground-truth outline in yellow"}}
rng_seed = 11
drawn = [("typical", frozenset())] + [
    (case, frozenset({case})) for case in HARD_CASES
]
images, masks, titles = [], [], []
for title, cases in drawn:
    for k in range(2):
        image, mask = draw_lesion(
            np.random.default_rng([rng_seed, k]), 96, 128, cases
        )
        images.append(torch.from_numpy(image).permute(2, 0, 1))
        masks.append(mask)
        titles.append(title)
fig = show_grid(images, masks, titles, ncols=5, size=2.2)

# %% [markdown]
# The yellow line is the ground-truth outline. *Low contrast* lesions barely differ from
# the skin; *multi blob* images hold two or three lesions; *border cut* lesions run off the
# image; a *lazy mask* is a coarse polygon drawn around the lesion, the kind of annotation
# the paper finds behind most of its confident mistakes (its Figure 3). An *ambiguous
# rim* is a faint ring of pigment around the lesion that the annotator counted as lesion
# for a random half of the images (one coin flip per image, invisible in the image): as
# with real lesions whose border is a matter of judgement, a mask that looks right can
# score low, and a network trained on such labels stays unsure over the whole rim. This
# is the situation in which the paper's uncertainty maps help $g$, built openly into the
# `tiny` data; chapter 10 measures whether they do. How often each case occurs in the data
# the book uses:

# %%
cases = read_hard_cases(root)
if cases:
    tally = Counter(case for found in cases.values() for case in found)
    say(
        "share of the images:",
        ", ".join(
            f"{case} {tally[case] / len(cases):.0%}"
            for case in HARD_CASES
        ),
    )
else:
    print(
        "These data are not synthetic: hard cases are not labelled, they"
        " are simply there."
    )

# %% [markdown]
# ## A split as a PyTorch dataset
#
# `ISIC2017(root, split, size)` decodes and resizes a whole split once and keeps it in
# memory as `uint8` tensors (on two CPU cores, decoding JPEGs every epoch would cost more
# than training). Each item is a float image in $[0, 1]$ of shape $[3, S, S]$ and an
# integer mask in $\{0, 1\}$ of shape $[S, S]$, at the profile's size $S$.

# %% mystnb={"image": {"alt": "The first twelve training images with their ground-truth outlines in yellow, titled by image id"}}
train = ISIC2017(root, "train", P.image_size)
test = ISIC2017(root, "test", P.image_size)
image, mask = train[0]
# the folder's name only: its full path depends on the machine
for split in (train, test):
    print(
        f"{split.split}: {len(split)} images at {split.size} x"
        f" {split.size} px, from {root.name}/"
    )
print(
    "image",
    tuple(image.shape),
    image.dtype,
    "| mask",
    tuple(mask.shape),
    mask.dtype,
)
fig = show_grid(
    train.images[:12], train.masks[:12], train.ids[:12], ncols=6
)

# %% [markdown]
# How much of each image is lesion? ISIC lesions cover anything from a few percent of the
# photograph to nearly all of it; the synthetic ones span a similar, if narrower, range.

# %% mystnb={"image": {"alt": "Histogram of the share of each training image covered by the lesion"}}
area = train.masks.float().mean(dim=(1, 2)).numpy()
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.hist(area, bins=25, color="tab:brown")
ax.set(
    xlabel="lesion share of the image",
    ylabel="images",
    title=f"{train.split} split",
)
fig.tight_layout()

# %% [markdown]
# ## Joint augmentation
#
# The paper augments with random flips and rotations by multiples of 90 degrees. Image and
# mask must move together: wrapping them as `tv_tensors.Image` and `tv_tensors.Mask` lets
# one torchvision v2 pipeline transform both. A rotation by $k \cdot 90°$ is a pure
# permutation of pixels, so `RandomRot90` uses `torch.rot90` and never interpolates. The
# flips and rotations together give the 8 symmetries of the square:

# %% mystnb={"image": {"alt": "Twelve random augmentations of one training image, each flipped or rotated together with its mask outline"}}
augment = joint_augmentation()
print(augment)
seed_everything(0)
pairs = [augment(train.images[3], train.masks[3]) for _ in range(12)]
fig = show_grid([p[0] for p in pairs], [p[1] for p in pairs], ncols=6)

# %% [markdown]
# With `augment=True` the dataset applies this to every item it serves; the seed set by
# `seed_everything` makes the sequence repeatable.

# %%
augmented = ISIC2017(root, "train", P.image_size, augment=True)
loader = torch.utils.data.DataLoader(
    augmented, batch_size=P.batch_size, shuffle=True
)
images, masks = next(iter(loader))
print("batch:", tuple(images.shape), tuple(masks.shape))

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-data-area
# Augmentation must not change *what* is segmented, only where it is. Check that every
# augmented mask in a batch has exactly as many lesion pixels as its source mask.
# ```
#
# ```{solution-start} ex-data-area
# :class: dropdown
# ```

# %%
seed_everything(1)
for i in range(8):
    image_i, mask_i = augment(train.images[i], train.masks[i])
    assert mask_i.sum() == train.masks[i].sum()
    assert torch.equal(
        image_i.float().mean(), train.images[i].float().mean()
    )
print("lesion areas and mean intensities are preserved")

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise}
# :label: ex-data-contrast
# Low-contrast lesions are hard because lesion and skin look alike. Measure it: for each
# test image, compute the difference in mean brightness between skin and lesion, and
# compare the hard-case label `low_contrast` against the rest.
# ```
#
# ```{solution-start} ex-data-contrast
# :class: dropdown
# ```

# %%
brightness = test.images.float().mean(dim=1)
m = test.masks.float()
lesion = (brightness * m).sum((1, 2)) / m.sum((1, 2)).clamp(min=1)
skin = (brightness * (1 - m)).sum((1, 2)) / (1 - m).sum((1, 2)).clamp(
    min=1
)
contrast = (skin - lesion).numpy()
low = np.array(["low_contrast" in cases.get(i, ()) for i in test.ids])
if low.any() and (~low).any():
    print(
        f"low contrast: {contrast[low].mean():.1f}, others:"
        f" {contrast[~low].mean():.1f}"
    )
else:
    print(
        f"mean skin-lesion brightness difference: {contrast.mean():.1f}"
    )

# %% [markdown]
# ```{solution-end}
# ```
#
# ## Summary
#
# - ISIC 2017 Part 1 comes as six folders; `check_data` decodes every file and names
#   every fault; `prepare_data` gives each profile its data, synthetic for `tiny`.
# - Synthetic lesions include hard cases (low contrast, several blobs, cut by the border,
#   lazy masks), so that segmentations fail sometimes, as on real data.
# - Flips and 90-degree rotations, applied jointly with torchvision v2, are the paper's
#   augmentation.
#
# ## References
#
# ```{footbibliography}
# ```
