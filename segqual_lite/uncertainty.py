"""The four uncertainty methods of the paper behind one interface (chapters 03-06).

Every method maps a trained U-Net and a batch of images to a :class:`Prediction`: the
class probabilities, the predicted mask and a per-pixel uncertainty map in which **high
means unsure** for every method:

* ``max_prob`` (eq. 4, chapter 03): ``1 - max_c softmax(rho)_c``;
* ``mc_dropout`` (eqs. 5-6, chapter 04): entropy of the mean softmax of T dropout samples;
* ``hcnn`` (eq. 7, chapter 05): the learned noise scale sigma (the paper's z in eq. 7);
  the entropy of the sampled mean softmax is in ``extras["entropy"]``; the mask is the
  argmax of the logits (eq. 2);
* ``lce`` (eq. 8, chapter 06): ``1 - c``, c the learned confidence.

Beyond the paper (chapter 11), two more maps from plain U-Nets, both the entropy of a
mean softmax like MC-dropout's: a deep ensemble (:func:`predict_ensemble`, several
independently trained U-Nets) and test-time augmentation (:func:`predict_tta`, the
eight flips and quarter turns of the image, each prediction turned back).

Every method that averages K softmaxes (MC-dropout's samples, the ensemble's members,
TTA's views) also returns, for chapter 12, ``extras["agreement"]`` [B]: the mean
pairwise Jaccard of the K masks (:func:`segqual_lite.metrics.pairwise_jaccard`); and
MC-dropout the split of its entropy map into ``extras["expected_entropy"]`` and
``extras["mutual_information"]`` (:func:`segqual_lite.scores.expected_entropy`).

:func:`predict` never changes a BatchNorm statistic or a module's train/eval mode.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .data.symmetries import DIHEDRAL, dihedral, undo_dihedral
from .metrics import pairwise_jaccard
from .rows import METHODS, get_method

__all__ = [
    "HEAD_OF",
    "Prediction",
    "predict",
    "predict_images",
    "predict_ensemble",
    "predict_tta",
    "max_probability_map",
    "predicted_class",
    "mc_dropout_mean_softmax",
    "entropy",
    "hcnn_mean_softmax",
    "eval_with_dropout",
    "hcnn_loss",
    "lce_loss",
    "update_lambda",
    "segmentation_loss",
    "LCE_LAMBDA0",
    "LCE_BUDGET",
]

# Which U-Net head each of the paper's methods trains; max_prob and mc_dropout share the
# plain U-Net (the registry, :mod:`segqual_lite.rows`, is the source).
HEAD_OF = {m: get_method(m).head for m in METHODS}
LCE_LAMBDA0 = 0.1
LCE_BUDGET = 0.3
_EPS = 1e-12


@dataclass
class Prediction:
    """``probs`` [B, C, H, W], ``mask`` [B, H, W] (int64), ``uncertainty`` [B, H, W]."""

    probs: torch.Tensor
    mask: torch.Tensor
    uncertainty: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


def max_probability_map(probs: torch.Tensor) -> torch.Tensor:
    """Eq. (4) as a map where high means unsure: ``1 - max_c p_c``, in [0, 1 - 1/C]."""
    return 1 - probs.max(1).values


def predicted_class(scores: torch.Tensor) -> torch.Tensor:
    """The mask: the class of highest score (dim 1), the first one on ties (eq. 2,
    chapter 02). ``scores.max(1).indices`` gives the indices of ``argmax(1)`` (ties and
    NaN alike) and was 5-20x faster on CPUs for [B, 2, H, W] (measured, one thread)."""
    return scores.max(1).indices


def entropy(probs: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """-sum_c p_c log p_c over ``dim`` with 0 log 0 = 0 (eq. 6); in [0, ln C]."""
    return -torch.special.xlogy(probs, probs).sum(dim)


@contextmanager
def eval_with_dropout(model: nn.Module, dropout_on: bool = True):
    """Context: ``eval()`` everywhere (BatchNorm uses its running statistics and never
    updates them), the dropout modules back in train mode when ``dropout_on``; every
    module's own mode is restored on exit. The right way to switch MC-dropout on
    (chapter 04); ``model.train()`` would also put BatchNorm in training mode."""
    saved = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        if dropout_on:
            for m in model.modules():
                if isinstance(m, nn.modules.dropout._DropoutNd):
                    m.train()
        yield
    finally:
        for m, mode in saved:
            m.training = mode


def _match_layout(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Give ``x`` the memory layout of the model's convolutions (channels_last is about
    twice as fast on CPUs, and what the trainer leaves its models in)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is not None and conv.weight.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _split(output):
    return output if isinstance(output, tuple) else (output, None)


def predict(
    model: nn.Module, x: torch.Tensor, method: str, samples: int | None = None
) -> Prediction:
    """Segment ``x`` [B, 3, H, W] and estimate per-pixel uncertainty with ``method``.

    ``samples`` is T for ``mc_dropout`` (default 20, the paper's) and ``hcnn`` (default
    100); other methods ignore it. Sampling draws from torch's global generator, so
    :func:`segqual_lite.config.seed_everything` makes it repeatable.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {METHODS}")
    samples = samples or get_method(method).default_samples
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    x = _match_layout(model, x)
    with torch.inference_mode(), eval_with_dropout(model, dropout_on=method == "mc_dropout"):
        if method == "mc_dropout":
            draws: list[torch.Tensor] = []
            pred = _mean_softmax_prediction(
                mc_dropout_mean_softmax(model, x, samples, draws), draws
            )
            expected = _expected_entropy(draws)
            pred.extras["expected_entropy"] = expected
            pred.extras["mutual_information"] = (pred.uncertainty - expected).clamp_min(0)
            return pred
        logits, aux = _split(model(x))
        logits = logits.float()
        if method == "max_prob":
            probs = logits.softmax(1)
            return Prediction(probs, predicted_class(probs), max_probability_map(probs))
        if aux is None:
            raise ValueError(f"method {method!r} needs a U-Net with head={HEAD_OF[method]!r}")
        aux = aux.float()
        if method == "hcnn":
            # The mask is the argmax of the logits (eq. 2), as for every other method; the
            # sampled mean softmax of eq. 7 gives the probabilities and the entropy map.
            mean = hcnn_mean_softmax(logits, aux, samples)
            mask = predicted_class(logits)
            return Prediction(mean, mask, aux[:, 0], extras={"entropy": entropy(mean)})
        probs = logits.softmax(1)  # LCE predicts with the un-interpolated softmax
        return Prediction(probs, predicted_class(probs), 1 - aux[:, 0])


def _mean_softmax_prediction(mean: torch.Tensor, parts: list[torch.Tensor]) -> Prediction:
    """Mask and map of a mean softmax: its argmax and its entropy (eq. 6); and the mean
    pairwise Jaccard of the masks of the K softmaxes ``parts`` it averages (chapter 12;
    1 when K = 1: a mask agrees with itself)."""
    if len(parts) < 2:
        agreement = torch.ones(len(mean), device=mean.device)
    else:
        masks = torch.stack([predicted_class(p) for p in parts]).cpu()
        agreement = torch.from_numpy(pairwise_jaccard(masks)).float().to(mean.device)
    return Prediction(mean, predicted_class(mean), entropy(mean), {"agreement": agreement})


def _average(parts: list[torch.Tensor]) -> torch.Tensor:
    """The mean of ``parts``, summed one at a time in their order (no stack)."""
    total = parts[0].clone()
    for p in parts[1:]:
        total.add_(p)
    return total / len(parts)


def _expected_entropy(parts: list[torch.Tensor]) -> torch.Tensor:
    """:func:`segqual_lite.scores.expected_entropy` of the K softmaxes ``parts``."""
    return _average([entropy(p) for p in parts])


@torch.inference_mode()
def predict_ensemble(models: list[nn.Module], x: torch.Tensor) -> Prediction:
    """Deep ensemble (Lakshminarayanan et al. 2017): the mean softmax of independently
    trained U-Nets, each used deterministically; uncertainty = its entropy (eq. 6 with
    members in place of dropout samples)."""
    if not models:
        raise ValueError("an ensemble needs at least one model")
    parts = [predict(model, x, "max_prob").probs for model in models]
    return _mean_softmax_prediction(_average(parts), parts)


@torch.inference_mode()
def predict_tta(model: nn.Module, x: torch.Tensor) -> Prediction:
    """Test-time augmentation: the U-Net segments each of the eight dihedral views of
    ``x`` (flips and quarter turns, :data:`~segqual_lite.data.DIHEDRAL`), each softmax is
    turned back onto the original image, and the mean softmax gives the mask and, by its
    entropy, the uncertainty. Needs square images."""
    parts = [
        undo_dihedral(predict(model, dihedral(x, i), "max_prob").probs, i)
        for i in range(len(DIHEDRAL))
    ]
    return _mean_softmax_prediction(_average(parts), parts)


def mc_dropout_mean_softmax(
    model: nn.Module, x: torch.Tensor, samples: int, keep: list | None = None
) -> torch.Tensor:
    """Eq. (5): the mean softmax of ``samples`` stochastic passes, dropout switched on by
    the caller (:func:`eval_with_dropout`). The layers before the first dropout are
    deterministic: a model with a ``sampler`` (:meth:`~segqual_lite.models.UNet.sampler`)
    runs them once for all samples, and the rest with BatchNorm folded into the
    convolutions; the same dropout masks as ``samples`` full passes, the same result up
    to floating-point rounding. ``keep``, a list, receives each sample's softmax."""
    rest = model.sampler(x) if hasattr(model, "sampler") else lambda: model(x)
    total = None
    for _ in range(samples):
        p = _split(rest())[0].float().softmax(1)
        if keep is not None:
            keep.append(p)
        total = p.clone() if total is None else total.add_(p)
    return total / samples


def _noisy(values: torch.Tensor, scale: torch.Tensor, samples: int) -> torch.Tensor:
    """``samples`` draws of ``values + scale * eps``, eps ~ N(0, 1): [T, *values.shape].

    The Gaussian logits of eq. (7). With two classes only the logit difference matters,
    and the difference of two independent N(0, sigma^2) draws is N(0, 2 sigma^2): callers
    pass the difference with ``scale = sqrt(2) * sigma`` (same distribution, half the
    random numbers). Without autograd the draws are scaled and shifted in place: the same
    values, without two temporaries of T times the input's size."""
    eps = torch.randn((samples, *values.shape), device=values.device, dtype=values.dtype)
    if torch.is_grad_enabled() and (values.requires_grad or scale.requires_grad):
        return values + scale * eps
    return eps.mul_(scale).add_(values)


def hcnn_mean_softmax(
    logits: torch.Tensor, sigma: torch.Tensor, samples: int, chunk: int = 25
) -> torch.Tensor:
    """Eq. (7) at test time: (1/T) sum_t softmax(rho + sigma * eps_t), drawn ``chunk``
    samples at a time to bound memory (vectorised over the samples of a chunk)."""
    two_class = logits.shape[1] == 2
    values = logits[:, 1:2] - logits[:, 0:1] if two_class else logits
    scale = math.sqrt(2) * sigma if two_class else sigma
    # Dense inputs (a slice of channels_last logits is strided) and in-place draws: the
    # same numbers, 1.1-1.4x faster than before (benchmarks/hcnn_sampling.py, 1 thread).
    values, scale = values.contiguous(), scale.contiguous()
    total = torch.zeros_like(values)
    for start in range(0, samples, chunk):
        noisy = _noisy(values, scale, min(chunk, samples - start))
        total += (noisy.sigmoid_() if two_class else noisy.softmax(2)).sum(0)
    if two_class:
        p1 = total / samples
        return torch.cat([1 - p1, p1], dim=1)
    return total / samples


def hcnn_loss(
    logits: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor, samples: int = 100
) -> torch.Tensor:
    """Heteroscedastic classification loss (eq. 7; Kendall & Gal 2017, eq. 12).

    Per pixel with true class y: ``-(logsumexp_t log_softmax(rho + sigma*eps_t)_y - log T)``,
    the negative log of the Monte-Carlo mean softmax computed stably (finite even for
    confidently wrong logits); the mean over pixels is returned. ``sigma`` [B, 1, H, W]
    is shared by the classes; ``target`` [B, H, W] holds class indices.
    """
    logits, sigma = logits.float(), sigma.float()
    if logits.shape[1] == 2:
        # log softmax(s)_y = logsigmoid(s_y - s_other), the margin of the true class.
        sign = target.unsqueeze(1).to(logits.dtype) * 2 - 1  # +1 for class 1, -1 for 0
        margin = sign * (logits[:, 1:2] - logits[:, 0:1])
        log_p = F.logsigmoid(_noisy(margin, math.sqrt(2) * sigma, samples))  # [T, B, 1, H, W]
        per_pixel = torch.logsumexp(log_p, dim=0)[:, 0] - math.log(samples)
    else:
        log_p = _noisy(logits, sigma, samples).log_softmax(2)  # [T, B, C, H, W]
        idx = target.unsqueeze(0).unsqueeze(2).expand(samples, -1, 1, -1, -1)
        per_pixel = torch.logsumexp(log_p.gather(2, idx)[:, :, 0], dim=0) - math.log(samples)
    return -per_pixel.mean()


def lce_loss(
    logits: torch.Tensor,
    confidence: torch.Tensor,
    target: torch.Tensor,
    lam: float | torch.Tensor,
    hint: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Learned confidence estimates loss (eq. 8; DeVries & Taylor 2018b).

    ``p' = c*softmax(rho) + (1 - c)*onehot(y)``; task loss ``NLL(log p', y)``; confidence
    penalty ``L_c = mean(-log c)``; returns ``(task + lam * L_c, L_c)``.

    Hints are given to a random half of the *images*: one Bernoulli(0.5) draw per image,
    and for the other half c is replaced by 1, so those images train the plain softmax.
    (The reference code draws one Bernoulli per *value* of c, which for a segmentation
    means per pixel; per image keeps whole images hint-free, a choice of this book.)
    ``hint=False`` skips the interpolation.
    """
    logits, confidence = logits.float(), confidence.float()
    probs = logits.softmax(1).clamp(_EPS, 1 - _EPS)
    c = confidence.clamp(_EPS, 1 - _EPS)
    if hint:
        b = torch.bernoulli(torch.full((c.shape[0], 1, 1, 1), 0.5, device=c.device))
        conf = c * b + (1 - b)
        onehot = F.one_hot(target, probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
        probs = conf * probs + (1 - conf) * onehot
    task = F.nll_loss(probs.log(), target)
    penalty = (-c.log()).mean()
    return task + lam * penalty, penalty


def update_lambda(lam: torch.Tensor, penalty: torch.Tensor, budget: float = LCE_BUDGET):
    """After each step: lambda /= 1.01 when the penalty is under the budget, else /= 0.99.

    Works on tensors without a host-device sync (``torch.where``), so the training loop
    never waits for the GPU.
    """
    return torch.where(penalty.detach() < budget, lam / 1.01, lam / 0.99)


def segmentation_loss(
    method: str,
    output,
    target: torch.Tensor,
    state: dict | None = None,
    hcnn_samples: int = 100,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss of the U-Net that ``method`` reads (chapters 02, 05, 06).

    ``output`` is the U-Net's forward output; returns ``(loss, extras)``. Plain U-Net:
    cross-entropy. HCNN: :func:`hcnn_loss` with ``hcnn_samples`` samples. LCE:
    :func:`lce_loss` at ``state["lam"]``, which is then updated (:func:`update_lambda`);
    ``extras`` holds its confidence penalty.
    """
    unet = get_method(method).unet
    if unet == "plain":
        return F.cross_entropy(output.float(), target), {}
    if unet == "hcnn":
        return hcnn_loss(*output, target, samples=hcnn_samples), {}
    loss, penalty = lce_loss(*output, target, state["lam"])
    state["lam"] = update_lambda(state["lam"], penalty)
    return loss, {"penalty": penalty}


def predict_images(
    model: nn.Module | list[nn.Module],
    images: torch.Tensor,
    method: str,
    samples: int | None = None,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> Prediction:
    """:func:`predict` over uint8 images ``[N, 3, H, W]`` in batches; results are gathered
    on the CPU. ``method`` may also be ``"tta"`` (:func:`predict_tta`) or ``"ensemble"``
    (:func:`predict_ensemble`; ``model`` is then a list)."""
    models = model if isinstance(model, list) else [model]
    device = device or next(models[0].parameters()).device
    if method == "ensemble":
        fn = lambda x: predict_ensemble(models, x)  # noqa: E731
    elif method == "tta":
        fn = lambda x: predict_tta(model, x)  # noqa: E731
    else:
        fn = lambda x: predict(model, x, method, samples)  # noqa: E731
    parts = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device).float().div_(255)
        p = fn(x)
        parts.append(
            Prediction(
                p.probs.cpu(),
                p.mask.cpu(),
                p.uncertainty.cpu(),
                {k: v.cpu() for k, v in p.extras.items()},
            )
        )
    return Prediction(
        torch.cat([p.probs for p in parts]),
        torch.cat([p.mask for p in parts]),
        torch.cat([p.uncertainty for p in parts]),
        {k: torch.cat([p.extras[k] for p in parts]) for k in parts[0].extras},
    )
