"""Figures of the segmentation network f (chapter 02): the U-Net's diagram and its
learning curve."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .style import PAGE_WIDTH

__all__ = ["plot_unet", "plot_learning_curve"]


def plot_unet(net, image_size: int | None = None):
    """The U-Net ``net`` as a diagram (chapter 02): encoder blocks down the left, the
    bottleneck at the bottom, decoder blocks up the right, one box per block of two 3x3
    convolutions with its number of filters (and resolution, given ``image_size``),
    skip connections across, and the blocks followed by dropout filled in orange."""
    from matplotlib.patches import Patch

    dropped = [not isinstance(m, torch.nn.Identity) for m in net.encoder_dropout]
    decoder_dropped = [not isinstance(m, torch.nn.Identity) for m in net.decoder_dropout]
    depth = net.depth

    def filters(block):
        return [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)][-1].out_channels

    blocks = []  # (x, level, filters, followed by dropout)
    for i, enc in enumerate(net.encoders):
        blocks.append((i, i, filters(enc), dropped[i]))
    blocks.append((depth, depth, filters(net.bottleneck), True))
    for j, dec in enumerate(net.decoders):
        blocks.append((depth + 1 + j, depth - 1 - j, filters(dec), decoder_dropped[j]))
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.4))
    for x, level, filters, drop in blocks:
        ax.add_patch(
            plt.Rectangle(
                (x - 0.38, -level - 0.3),
                0.76,
                0.6,
                facecolor="tab:orange" if drop else "0.88",
                edgecolor="k",
                lw=0.8,
            )
        )
        size = f"\n{image_size // 2**level} px" if image_size else ""
        ax.text(x, -level, f"{filters}{size}", ha="center", va="center", fontsize=8)
    for i in range(depth):  # skips, down (max-pool) and up (transposed convolution)
        ax.annotate(
            "",
            (2 * depth - i - 0.4, -i),
            (i + 0.4, -i),
            arrowprops=dict(arrowstyle="->", ls="--", color="0.5", lw=0.8),
        )
        ax.annotate(
            "",
            (i + 1 - 0.15, -i - 1 + 0.3),
            (i + 0.15, -i - 0.3),
            arrowprops=dict(arrowstyle="->", color="k", lw=0.8),
        )
        ax.annotate(
            "",
            (2 * depth - i + 0.15 - 0.3, -i - 0.3),
            (2 * depth - i - 1 + 0.15, -i - 1 + 0.3),
            arrowprops=dict(arrowstyle="->", color="k", lw=0.8),
        )
    ax.text(-0.5, 0.55, "image x", fontsize=8, ha="left")
    ax.text(2 * depth + 0.5, 0.55, "logits rho (1x1 conv)", fontsize=8, ha="right")
    ax.set(xlim=(-0.7, 2 * depth + 0.7), ylim=(-depth - 0.6, 0.9))
    ax.axis("off")
    ax.legend(
        handles=[
            Patch(facecolor="0.88", edgecolor="k", label="two 3x3 conv + BN + ReLU (filters)"),
            Patch(facecolor="tab:orange", edgecolor="k", label="... followed by dropout, p = 0.5"),
            Patch(facecolor="none", edgecolor="0.5", ls="--", label="skip connection (dashed)"),
        ],
        loc="lower left",
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    return fig


def plot_learning_curve(history: list[dict], ax=None, title: str | None = None):
    """Training loss and validation Jaccard per epoch (chapter 02)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["loss"] for h in history], color="tab:red", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:red")
    right = ax.twinx()
    right.plot(epochs, [h["val_jaccard"] for h in history], color="tab:blue", label="val J")
    right.set_ylabel("validation Jaccard", color="tab:blue")
    right.set_ylim(0, 1)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax
