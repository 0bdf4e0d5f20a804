"""Networks: the U-Net f with its uncertainty heads (chapter 02) and the quality
network g (chapter 07).

The U-Net follows Ronneberger et al. (2015) with batch normalisation; for MC-dropout it
places dropout (p = 0.5) where Bayesian SegNet does, in the central blocks: after the
two deepest encoder blocks, the bottleneck and the first two decoder blocks (section 3.2
of the paper). An optional extra 1x1 head gives HCNN's noise scale sigma (softplus,
eq. 7) or LCE's confidence c (sigmoid, eq. 8).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConvBlock", "MCDropout", "UNet", "HEADS", "QualityCNN"]

HEADS = (None, "sigma", "confidence")


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by batch normalisation and ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class MCDropout(nn.Dropout):
    """Element-wise dropout whose mask compares uniform draws with ``p``.

    The same distribution as :class:`torch.nn.Dropout`, but about 3x cheaper on CPUs
    than its ``bernoulli_`` (measured on 2 cores), which matters when MC-dropout runs the
    network T times (chapter 04). A subclass of ``nn.Dropout``, so everything that
    switches dropout on or off finds it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return torch.zeros_like(x)
        # In place on the fresh uniform draws: one allocation instead of four, the same
        # values as ``x * (u >= p) / (1 - p)`` bit for bit (also under autograd).
        return torch.rand_like(x).ge_(self.p).mul_(x).div_(1 - self.p)


class UNet(nn.Module):
    """U-Net segmentation network ``f`` (chapter 02).

    ``width`` is the number of filters of the first block; each of the ``depth``
    downsamplings doubles it. ``forward(x)`` returns the logits ``rho`` ``[B, C, H, W]``,
    or ``(logits, aux)`` with ``aux`` ``[B, 1, H, W]`` when ``head`` is ``"sigma"``
    (softplus, >= 0) or ``"confidence"`` (sigmoid, in (0, 1)). H and W must be
    divisible by ``2**depth``.

    The network splits at its first dropout: :meth:`prefix` computes everything before it
    (deterministic), :meth:`forward_from_prefix` the rest. MC-dropout runs the prefix once
    and the rest T times (chapter 04).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        width: int = 8,
        depth: int = 4,
        dropout: float = 0.5,
        head: str | None = None,
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if depth < 2:
            raise ValueError(
                f"depth must be >= 2 (dropout sits in the two deepest blocks), got {depth}"
            )
        self.depth, self.head_kind, self.num_classes = depth, head, num_classes
        widths = [width * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        prev = in_channels
        for w in widths[:-1]:
            self.encoders.append(ConvBlock(prev, w))
            prev = w
        self.bottleneck = ConvBlock(widths[-2], widths[-1])
        self.upsamples = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.upsamples.append(nn.ConvTranspose2d(w * 2, w, kernel_size=2, stride=2))
            self.decoders.append(ConvBlock(w * 2, w))
        # Dropout after the two deepest encoder blocks, the bottleneck and the first two
        # decoder blocks (Bayesian SegNet's "central" units).
        self.encoder_dropout = nn.ModuleList(
            [MCDropout(dropout) if i >= depth - 2 else nn.Identity() for i in range(depth)]
        )
        self.bottleneck_dropout = MCDropout(dropout)
        self.decoder_dropout = nn.ModuleList(
            [MCDropout(dropout) if i < 2 else nn.Identity() for i in range(depth)]
        )
        self.classifier = nn.Conv2d(widths[0], num_classes, kernel_size=1)
        self.aux_head = nn.Conv2d(widths[0], 1, kernel_size=1) if head else None

    @property
    def first_dropout_block(self) -> int:
        return self.depth - 2

    def _check(self, x: torch.Tensor) -> None:
        k = 2**self.depth
        if x.ndim != 4 or x.shape[-1] % k or x.shape[-2] % k:
            raise ValueError(
                f"UNet of depth {self.depth} needs [B, C, H, W] with H and W divisible by {k}, "
                f"got {tuple(x.shape)}"
            )

    def prefix(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The deterministic part: skips of the shallow blocks and the first block whose
        output is dropped, before its dropout."""
        self._check(x)
        skips = []
        for i in range(self.first_dropout_block):
            x = self.encoders[i](x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return skips, self.encoders[self.first_dropout_block](x)

    def forward_from_prefix(self, skips: list[torch.Tensor], h: torch.Tensor):
        """The stochastic rest of the network, from :meth:`prefix`'s output."""
        skips = list(skips)
        for i in range(self.first_dropout_block, self.depth):
            if i > self.first_dropout_block:
                h = self.encoders[i](h)
            h = self.encoder_dropout[i](h)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = self.bottleneck_dropout(self.bottleneck(h))
        for j, (up, dec) in enumerate(zip(self.upsamples, self.decoders, strict=True)):
            h = up(h)
            h = dec(torch.cat([h, skips[-1 - j]], dim=1))
            h = self.decoder_dropout[j](h)
        return self.heads(h)

    def heads(self, h: torch.Tensor):
        """The logits of the last decoder features ``h``, with the auxiliary map (sigma or
        confidence) when the network has one."""
        logits = self.classifier(h)
        if self.aux_head is None:
            return logits
        aux = self.aux_head(h)
        aux = F.softplus(aux) if self.head_kind == "sigma" else torch.sigmoid(aux)
        return logits, aux

    def forward(self, x: torch.Tensor):
        return self.forward_from_prefix(*self.prefix(x))

    def sampler(self, x: torch.Tensor) -> Callable[[], torch.Tensor | tuple]:
        """Run :meth:`prefix` on ``x`` once; return a function whose every call is one
        pass of the rest, with whatever dropout is switched on (MC-dropout, chapter 04).

        Under ``torch.no_grad``/``inference_mode`` with every BatchNorm in eval mode,
        the rest runs folded: each BatchNorm, then a fixed affine map, is folded into
        the convolution before it, and the decoder blocks that read a skip of the
        prefix split their first convolution into the half that sees the upsampled
        features and the half that sees the skip, the latter computed once for all
        passes (a convolution of a concatenation is the sum of the two halves'
        convolutions). The same dropout masks are drawn in the same order as by
        :meth:`forward_from_prefix`; the outputs differ from it only by floating-point
        rounding (sums in another order). Otherwise each call is
        :meth:`forward_from_prefix`."""
        skips, h = self.prefix(x)
        bns = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if torch.is_grad_enabled() or any(m.training or m.running_var is None for m in bns):
            return lambda: self.forward_from_prefix(skips, h)
        return _FoldedRest(self, skips, h)


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of the single convolution equal to ``bn(conv(x))`` with ``bn`` in
    eval mode: ``scale = gamma / sqrt(var + eps)`` multiplies each output channel."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = -bn.running_mean * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return conv.weight * scale.reshape(-1, 1, 1, 1), bias


class _FoldedRest:
    """:meth:`UNet.forward_from_prefix` for inference, with BatchNorm folded into the
    convolutions and the prefix skips' share of the decoders computed once
    (:meth:`UNet.sampler`). Called once per dropout sample."""

    def __init__(self, net: UNet, skips: list[torch.Tensor], h: torch.Tensor):
        self.net, self.h = net, h
        self.skips = list(skips)
        layout = (
            torch.channels_last
            if h.is_contiguous(memory_format=torch.channels_last) and h.shape[1] > 1
            else torch.contiguous_format
        )

        def block(seq: ConvBlock, split: int | None = None):
            conv1, bn1, _, conv2, bn2, _ = seq
            (w1, b1), (w2, b2) = _fold(conv1, bn1), _fold(conv2, bn2)
            pad1, pad2 = conv1.padding, conv2.padding
            if split is None:
                return [(w1.contiguous(memory_format=layout), b1, pad1), (w2, b2, pad2)]
            # The first ``split`` input channels are the upsampled features, the rest
            # the skip (the order of the torch.cat in forward_from_prefix).
            return [
                (w1[:, :split].contiguous(memory_format=layout), None, pad1),
                (w1[:, split:].contiguous(memory_format=layout), b1, pad1),
                (w2, b2, pad2),
            ]

        first = net.first_dropout_block
        self.encoders = [block(net.encoders[i]) for i in range(first + 1, net.depth)]
        self.bottleneck = block(net.bottleneck)
        self.decoders, self.skip_terms = [], []
        for j, (up, dec) in enumerate(zip(net.upsamples, net.decoders, strict=True)):
            skip = net.depth - 1 - j  # index of the skip this decoder reads
            if skip < first:  # a skip of the prefix: its half of the convolution, once
                u_half, s_half, second = block(dec, split=up.out_channels)
                w, b, pad = s_half
                self.skip_terms.append(F.conv2d(self.skips[skip], w, b, padding=pad))
                self.decoders.append([u_half, second])
            else:
                self.skip_terms.append(None)
                self.decoders.append(block(dec))

    @staticmethod
    def _conv_relu(x, weight, bias, padding, add=None):
        y = F.conv2d(x, weight, bias, padding=padding)
        if add is not None:
            y += add
        return y.relu_()

    def _block(self, x, convs, add=None):
        (w1, b1, p1), (w2, b2, p2) = convs
        return self._conv_relu(self._conv_relu(x, w1, b1, p1, add), w2, b2, p2)

    def __call__(self):
        net, h = self.net, self.h
        first = net.first_dropout_block
        skips = list(self.skips)
        for i in range(first, net.depth):
            if i > first:
                h = self._block(h, self.encoders[i - first - 1])
            h = net.encoder_dropout[i](h)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = net.bottleneck_dropout(self._block(h, self.bottleneck))
        for j, up in enumerate(net.upsamples):
            h = up(h)
            if self.skip_terms[j] is None:
                h = torch.cat([h, skips[-1 - j]], dim=1)
            h = self._block(h, self.decoders[j], add=self.skip_terms[j])
            h = net.decoder_dropout[j](h)
        return net.heads(h)


class QualityCNN(nn.Module):
    """The VGG-style quality network g (eq. 3, chapter 07).

    A stack of :class:`ConvBlock` s (two 3x3 convolutions each), each followed by 2x2
    max pooling, then global average pooling and a linear layer with a sigmoid:
    ``forward(x) -> [B]`` predicted Jaccard indices in [0, 1]. ``in_channels`` depends
    on the row of Table 1 (chapter 07): 3 for QualityNet, 4 for (x, y_hat), 5 for
    (x, y_hat, z).
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        blocks, prev = [], in_channels
        for w in widths:
            blocks += [ConvBlock(prev, w), nn.MaxPool2d(2)]
            prev = w
        self.features = nn.Sequential(*blocks)
        self.regressor = nn.Linear(prev, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).mean(dim=(2, 3))
        return torch.sigmoid(self.regressor(h))[:, 0]
