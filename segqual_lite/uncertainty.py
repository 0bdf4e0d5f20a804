"""The four uncertainty methods of the paper behind one interface (chapters 03-06).

Every method maps a trained U-Net and a batch of images to a :class:`Prediction`: the
class probabilities, the predicted mask and a per-pixel uncertainty map in which **high
means unsure** for every method:

* ``max_prob`` (eq. 4, chapter 03): ``1 - max_c softmax(rho)_c``;
* ``mc_dropout`` (eqs. 5-6, chapter 04): entropy of the mean softmax of T dropout samples;
* ``hcnn`` (eq. 7, chapter 05): the learned noise scale sigma (the paper's z in eq. 7);
  the entropy of the sampled mean softmax is in ``extras["entropy"]``;
* ``lce`` (eq. 8, chapter 06): ``1 - c``, c the learned confidence.

Beyond the paper (chapter 11), two more maps from plain U-Nets, both the entropy of a
mean softmax like MC-dropout's: a deep ensemble (:func:`predict_ensemble`, several
independently trained U-Nets) and test-time augmentation (:func:`predict_tta`, the
eight flips and quarter turns of the image, each prediction turned back).

:func:`predict` never changes a BatchNorm statistic or a module's train/eval mode.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .data.transforms import DIHEDRAL, dihedral, undo_dihedral

__all__ = [
    "METHODS",
    "HEAD_OF",
    "Prediction",
    "predict",
    "predict_ensemble",
    "predict_tta",
    "entropy",
    "eval_with_dropout",
    "hcnn_loss",
    "lce_loss",
    "update_lambda",
    "LCE_LAMBDA0",
    "LCE_BUDGET",
]

METHODS = ("max_prob", "mc_dropout", "hcnn", "lce")
# Which U-Net head each method trains; max_prob and mc_dropout share the plain U-Net.
HEAD_OF = {"max_prob": None, "mc_dropout": None, "hcnn": "sigma", "lce": "confidence"}
DEFAULT_SAMPLES = {"mc_dropout": 20, "hcnn": 100}
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
    samples = samples or DEFAULT_SAMPLES.get(method, 1)
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    x = _match_layout(model, x)
    with torch.inference_mode(), eval_with_dropout(model, dropout_on=method == "mc_dropout"):
        if method == "mc_dropout":
            return _mc_dropout(model, x, samples)
        logits, aux = _split(model(x))
        logits = logits.float()
        if method == "max_prob":
            probs = logits.softmax(1)
            return Prediction(probs, probs.argmax(1), 1 - probs.max(1).values)
        if aux is None:
            raise ValueError(f"method {method!r} needs a U-Net with head={HEAD_OF[method]!r}")
        aux = aux.float()
        if method == "hcnn":
            mean = _hcnn_mean_softmax(logits, aux, samples)
            return Prediction(mean, mean.argmax(1), aux[:, 0], extras={"entropy": entropy(mean)})
        probs = logits.softmax(1)  # LCE predicts with the un-interpolated softmax
        return Prediction(probs, probs.argmax(1), 1 - aux[:, 0])


def _mean_softmax_prediction(mean: torch.Tensor) -> Prediction:
    return Prediction(mean, mean.argmax(1), entropy(mean))


@torch.inference_mode()
def predict_ensemble(models: list[nn.Module], x: torch.Tensor) -> Prediction:
    """Deep ensemble (Lakshminarayanan et al. 2017): the mean softmax of independently
    trained U-Nets, each used deterministically; uncertainty = its entropy (eq. 6 with
    members in place of dropout samples)."""
    if not models:
        raise ValueError("an ensemble needs at least one model")
    total = None
    for model in models:
        p = predict(model, x, "max_prob").probs
        total = p if total is None else total.add_(p)
    return _mean_softmax_prediction(total / len(models))


@torch.inference_mode()
def predict_tta(model: nn.Module, x: torch.Tensor) -> Prediction:
    """Test-time augmentation: the U-Net segments each of the eight dihedral views of
    ``x`` (flips and quarter turns, :data:`~segqual_lite.data.DIHEDRAL`), each softmax is
    turned back onto the original image, and the mean softmax gives the mask and, by its
    entropy, the uncertainty. Needs square images."""
    total = None
    for i in range(len(DIHEDRAL)):
        p = undo_dihedral(predict(model, dihedral(x, i), "max_prob").probs, i)
        total = p if total is None else total.add_(p)
    return _mean_softmax_prediction(total / len(DIHEDRAL))


def _mc_dropout(model: nn.Module, x: torch.Tensor, samples: int) -> Prediction:
    if hasattr(model, "prefix"):
        # The layers before the first dropout are deterministic: run them once (eq. 5).
        skips, h = model.prefix(x)
        rest = lambda: model.forward_from_prefix(skips, h)  # noqa: E731
    else:
        rest = lambda: model(x)  # noqa: E731
    total = None
    for _ in range(samples):
        p = _split(rest())[0].float().softmax(1)
        total = p if total is None else total.add_(p)
    return _mean_softmax_prediction(total / samples)


def _hcnn_mean_softmax(logits, sigma, samples: int, chunk: int = 25) -> torch.Tensor:
    """(1/T) sum_t softmax(rho + sigma * eps_t), eps_t ~ N(0, 1) per class (eq. 7)."""
    if logits.shape[1] == 2:
        # Two classes: only the logit difference matters, and the difference of two
        # independent N(0, sigma^2) draws is N(0, 2 sigma^2).
        diff = logits[:, 1:2] - logits[:, 0:1]
        total = torch.zeros_like(diff)
        for start in range(0, samples, chunk):
            t = min(chunk, samples - start)
            eps = torch.randn((t, *diff.shape), device=diff.device, dtype=diff.dtype)
            total += torch.sigmoid(diff + math.sqrt(2) * sigma * eps).sum(0)
        p1 = total / samples
        return torch.cat([1 - p1, p1], dim=1)
    total = torch.zeros_like(logits)
    for start in range(0, samples, chunk):
        t = min(chunk, samples - start)
        eps = torch.randn((t, *logits.shape), device=logits.device, dtype=logits.dtype)
        total += (logits + sigma * eps).softmax(2).sum(0)
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
        # log softmax(s)_y = logsigmoid(s_y - s_other); the noise on the difference has
        # scale sqrt(2)*sigma. Same distribution, half the random numbers.
        sign = target.unsqueeze(1).to(logits.dtype) * 2 - 1  # +1 for class 1, -1 for 0
        margin = sign * (logits[:, 1:2] - logits[:, 0:1])
        eps = torch.randn((samples, *margin.shape), device=margin.device, dtype=margin.dtype)
        log_p = F.logsigmoid(margin + math.sqrt(2) * sigma * eps)  # [T, B, 1, H, W]
        per_pixel = torch.logsumexp(log_p, dim=0)[:, 0] - math.log(samples)
    else:
        eps = torch.randn((samples, *logits.shape), device=logits.device, dtype=logits.dtype)
        log_p = (logits + sigma * eps).log_softmax(2)  # [T, B, C, H, W]
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

    Hints are given to a random half of the *images* (one Bernoulli(0.5) draw per image,
    as the reference code draws one per sample): for the other half c is replaced by 1,
    so those images train the plain softmax. ``hint=False`` skips the interpolation.
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
