"""Segmentation and quality-prediction metrics (taught in chapter 08).

Conventions (DeVries & Taylor 2018, section 4.2, and DESIGN section 2):

* A segmentation *passes* when its Jaccard index is at least ``threshold`` (0.7 for
  ISIC 2017); J = 0.7 passes.
* The positive class is *pass* and the score is the predicted Jaccard index.
* AUPR-Pass is ``average_precision_score(pass, score)`` and AUPR-Fail is
  ``average_precision_score(fail, -score)``: scikit-learn's step-wise average precision,
  not the trapezoidal area under the PR curve.
* All values are fractions; tables multiply all but RMSE by 100, as the paper does.

Risk-coverage (chapter 11): the cases are accepted automatically from the highest
predicted Jaccard down; at coverage k/N the k accepted cases have a mean true Jaccard
and a *risk* of one minus it. Among equal predictions the order is random, and the
curve is its expectation (so a constant prediction gives the random order's curve).

Failure detection as the field measures it now (chapter 12). Each case has a *loss*:

* ``threshold=None``: ``1 - J``, the risk of :func:`aurc` (its default, unchanged);
* ``threshold=0.7``: the failure indicator ``J < 0.7``, the 0/1 loss for which AUGRC
  (Traub et al. 2024), E-AURC (Geifman et al. 2019) and NAURC (Cattelan & Silva 2024)
  were defined; the default of :func:`augrc`, :func:`excess_aurc` and
  :func:`normalized_aurc`.

Both losses share the ranking (highest predicted Jaccard accepted first) and the
treatment of ties (tied predictions enter together; equivalently, the expectation over
their random orders), so ``aurc(t, p, threshold=0.7)`` is the AURC of the failures.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = [
    "FAILURE_THRESHOLD",
    "METRICS",
    "jaccard",
    "pairwise_jaccard",
    "rmse",
    "detection_error",
    "detection_threshold",
    "balanced_error",
    "auroc",
    "aupr_pass",
    "aupr_fail",
    "summarize",
    "aupr_conventions",
    "AUTOMATION_TARGET",
    "RISK_METRICS",
    "risk_coverage",
    "aurc",
    "selective_risk_coverage",
    "automation_rate",
    "generalized_risk_coverage",
    "augrc",
    "excess_aurc",
    "normalized_aurc",
]


def _sklearn_metrics():
    """``sklearn.metrics``, imported on first use: it costs about 1 s of every kernel
    start, and chapters 02-06 compute no ranking metric."""
    import sklearn.metrics

    return sklearn.metrics


FAILURE_THRESHOLD = 0.7
METRICS = ("rmse", "detection_error", "auroc", "aupr_pass", "aupr_fail")
AUTOMATION_TARGET = 0.8
RISK_METRICS = ("aurc", "automation_at_0.8", "augrc", "naurc")


def _as_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor, on any device
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def jaccard(pred_mask, true_mask) -> np.ndarray:
    """Per-image Jaccard index ``|P ∩ T| / |P ∪ T|`` (chapter 08).

    Masks are ``[B, H, W]`` (or one ``[H, W]`` image) torch tensors or numpy arrays; any
    non-zero value is foreground. Two empty masks agree perfectly: J = 1.
    Returns a float64 array of shape ``[B]`` (shape ``[]`` for one image).
    """
    pred, true = _as_numpy(pred_mask).astype(bool), _as_numpy(true_mask).astype(bool)
    if pred.shape != true.shape:
        raise ValueError(f"mask shapes differ: predicted {pred.shape} vs true {true.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"masks must be [H, W] or [B, H, W], got shape {pred.shape}")
    axes = (-2, -1)
    inter = np.logical_and(pred, true).sum(axis=axes, dtype=np.int64)
    union = np.logical_or(pred, true).sum(axis=axes, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        j = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return j.astype(np.float64)


def _check_pair(true_j, pred_j) -> tuple[np.ndarray, np.ndarray]:
    t = _as_numpy(true_j).astype(np.float64)
    p = _as_numpy(pred_j).astype(np.float64)
    if t.ndim != 1 or p.ndim != 1:
        raise ValueError(
            f"true and predicted Jaccard must be 1-D, got shapes {t.shape} and {p.shape}"
        )
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true but {p.size} predicted Jaccard values")
    if t.size == 0:
        raise ValueError("no images: true and predicted Jaccard are empty")
    for name, a in (("true", t), ("predicted", p)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} Jaccard values contain NaN or inf")
    return t, p


def _pass_labels(true_j: np.ndarray, threshold: float) -> np.ndarray:
    passed = true_j >= threshold
    n_pass = int(passed.sum())
    if n_pass in (0, passed.size):
        which = "pass" if n_pass else "fail"
        raise ValueError(
            f"all {passed.size} images {which} (threshold {threshold}): detection error, "
            "AUROC and AUPR need both passing and failing segmentations; "
            "use a larger or harder test set"
        )
    return passed.astype(np.int64)


def rmse(true_j, pred_j, threshold: float = FAILURE_THRESHOLD) -> float:
    """Root mean squared error between true and predicted Jaccard over images.

    ``threshold`` is accepted (and ignored) so every metric has the same signature.
    """
    t, p = _check_pair(true_j, pred_j)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def detection_error(true_j, pred_j, threshold: float = FAILURE_THRESHOLD) -> float:
    """min over δ of 0.5·P_pass(score < δ) + 0.5·P_fail(score ≥ δ).

    The thresholds are exactly those of ``sklearn.metrics.roc_curve`` (every distinct
    score, plus +inf), so this equals ``min(0.5·(1 − TPR) + 0.5·FPR)`` over the ROC curve.
    """
    t, p = _check_pair(true_j, pred_j)
    labels = _pass_labels(t, threshold)
    fpr, tpr, _ = _sklearn_metrics().roc_curve(labels, p, drop_intermediate=False)
    return float(np.min(0.5 * (1.0 - tpr) + 0.5 * fpr))


def balanced_error(true_j, pred_j, delta: float, threshold: float = FAILURE_THRESHOLD) -> float:
    """0.5·P_pass(score < δ) + 0.5·P_fail(score ≥ δ) at one cut ``delta`` of the predicted
    J (at δ = 0.7: how often g's own verdict "fails" is wrong, both kinds weighted alike)."""
    t, p = _check_pair(true_j, pred_j)
    passes = _pass_labels(t, threshold).astype(bool)
    return float(0.5 * np.mean(p[passes] < delta) + 0.5 * np.mean(p[~passes] >= delta))


def detection_threshold(true_j, pred_j, threshold: float = FAILURE_THRESHOLD) -> float:
    """The cut δ of the predicted J at which :func:`detection_error` takes its minimum
    (the smallest such δ): detection error is read there, not at 0.7."""
    t, p = _check_pair(true_j, pred_j)
    labels = _pass_labels(t, threshold)
    fpr, tpr, cuts = _sklearn_metrics().roc_curve(labels, p, drop_intermediate=False)
    return float(cuts[int(np.argmin(0.5 * (1.0 - tpr) + 0.5 * fpr))])


def auroc(true_j, pred_j, threshold: float = FAILURE_THRESHOLD) -> float:
    """Area under the ROC curve, pass as the positive class (ties count one half)."""
    t, p = _check_pair(true_j, pred_j)
    return float(_sklearn_metrics().roc_auc_score(_pass_labels(t, threshold), p))


def aupr_pass(true_j, pred_j, threshold: float = FAILURE_THRESHOLD) -> float:
    """Average precision with passing segmentations as positives, scored by predicted J."""
    t, p = _check_pair(true_j, pred_j)
    return float(_sklearn_metrics().average_precision_score(_pass_labels(t, threshold), p))


def aupr_fail(true_j, pred_j, threshold: float = FAILURE_THRESHOLD) -> float:
    """Average precision with failures as positives, scored by the negated predicted J."""
    t, p = _check_pair(true_j, pred_j)
    return float(_sklearn_metrics().average_precision_score(1 - _pass_labels(t, threshold), -p))


def summarize(true_j, pred_j, threshold: float = FAILURE_THRESHOLD) -> dict[str, float]:
    """All five metrics of Table 1 as fractions, keyed as in :data:`METRICS`."""
    fns = {
        "rmse": rmse,
        "detection_error": detection_error,
        "auroc": auroc,
        "aupr_pass": aupr_pass,
        "aupr_fail": aupr_fail,
    }
    return {name: fns[name](true_j, pred_j, threshold) for name in METRICS}


def aupr_conventions(true_j, pred_j, positive: str = "pass", threshold: float = FAILURE_THRESHOLD):
    """One PR curve, three areas: why published AUPR numbers disagree (chapter 08).

    * ``average_precision``: scikit-learn's step-wise sum, the convention of this book;
    * ``trapezoid``: the trapezoidal area under (recall, precision), which interpolates
      linearly between operating points and is optimistic;
    * ``balanced_trapezoid``: the trapezoidal area with precision computed as if both
      classes were equally frequent, TPR / (TPR + FPR), as in the ODIN evaluation code.

    ``positive`` is ``"pass"`` (scored by the predicted Jaccard) or ``"fail"`` (scored
    by its negation).
    """
    t, p = _check_pair(true_j, pred_j)
    labels = _pass_labels(t, threshold)
    if positive == "fail":
        labels, p = 1 - labels, -p
    elif positive != "pass":
        raise ValueError(f"positive must be 'pass' or 'fail', got {positive!r}")
    skm = _sklearn_metrics()
    precision, recall, _ = skm.precision_recall_curve(labels, p)
    fpr, tpr, _ = skm.roc_curve(labels, p, drop_intermediate=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        balanced = np.where(tpr + fpr > 0, tpr / (tpr + fpr), 1.0)
    return {
        "average_precision": float(skm.average_precision_score(labels, p)),
        "trapezoid": float(skm.auc(recall, precision)),
        "balanced_trapezoid": float(skm.auc(tpr, balanced)),
    }


def _tie_means_in_rank_order(values: np.ndarray, pred_j: np.ndarray):
    """``values`` in the order of decreasing ``pred_j``, each group of tied predictions
    replaced by its mean (the expectation over the group's random orders), and a mask
    of the last case of each tie group."""
    order = np.argsort(-pred_j, kind="stable")
    values, p = values[order], pred_j[order]
    group = np.concatenate([[0], np.cumsum(p[1:] != p[:-1])])
    group_mean = np.bincount(group, weights=values) / np.bincount(group)
    return group_mean[group], np.concatenate([p[1:] != p[:-1], [True]])


def _losses(true_j: np.ndarray, threshold: float | None) -> np.ndarray:
    """Per-case loss: ``1 - J`` when ``threshold`` is None, else the failure indicator
    ``J < threshold`` as 0.0/1.0 (the module docstring says which metric uses which)."""
    if threshold is None:
        return 1.0 - true_j
    return (true_j < threshold).astype(np.float64)


def risk_coverage(true_j, pred_j) -> tuple[np.ndarray, np.ndarray]:
    """The risk-coverage curve as ``(coverage, accepted_jaccard)``, both of length N.

    ``coverage[k - 1] = k / N`` and ``accepted_jaccard[k - 1]`` is the mean true Jaccard
    of the k cases with the highest predicted Jaccard. Cases with equal predictions are
    accepted in random order and the curve is the expected one: each tied group counts
    with its mean true Jaccard.
    """
    t, p = _check_pair(true_j, pred_j)
    ranked, _ = _tie_means_in_rank_order(t, p)
    k = np.arange(1, t.size + 1)
    return k / t.size, np.cumsum(ranked) / k


def aurc(true_j, pred_j, threshold: float | None = None) -> float:
    """Area under the risk-coverage curve (Geifman et al. 2019): the mean selective risk
    of the accepted cases over the coverages 1/N, ..., N/N (lower is better).

    The risk is ``1 - Jaccard`` by default (chapter 11); with a ``threshold`` it is the
    share of failures (J < threshold) among the accepted cases.
    """
    if threshold is None:  # 1 - the mean accepted Jaccard, as chapter 11 computes it
        _, accepted = risk_coverage(true_j, pred_j)
        return float(np.mean(1.0 - accepted))
    _, risk = selective_risk_coverage(true_j, pred_j, threshold)
    return float(np.mean(risk))


def selective_risk_coverage(
    true_j, pred_j, threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The curve that :func:`aurc` averages, as ``(coverage, selective_risk)``, both of
    length N: after accepting the k cases of highest predicted Jaccard (ties in
    expectation, as :func:`risk_coverage`), the mean loss of the accepted, ``1 - J`` by
    default, the share of failures (J < ``threshold``) with a threshold. Chapter 12
    draws it beside :func:`generalized_risk_coverage`."""
    t, p = _check_pair(true_j, pred_j)
    ranked, _ = _tie_means_in_rank_order(_losses(t, threshold), p)
    k = np.arange(1, t.size + 1)
    return k / t.size, np.cumsum(ranked) / k


def automation_rate(true_j, pred_j, target: float = AUTOMATION_TARGET) -> float:
    """The largest share of cases that can be accepted automatically, highest predicted
    Jaccard first, while the accepted cases keep a mean true Jaccard of at least
    ``target`` (0 when even the single best-ranked case falls short)."""
    coverage, accepted = risk_coverage(true_j, pred_j)
    ok = accepted >= target - 1e-12
    return float(coverage[np.flatnonzero(ok)[-1]]) if ok.any() else 0.0


def generalized_risk_coverage(
    true_j, pred_j, threshold: float | None = FAILURE_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """The generalized risk-coverage curve of Traub et al. (NeurIPS 2024) as
    ``(coverage, generalized_risk)``, from coverage 0 (risk 0) to coverage 1.

    Cases are accepted from the highest predicted Jaccard down, and tied predictions
    enter together: one point per distinct prediction, as a threshold on the score
    would accept them. The generalized risk is the loss of the accepted cases summed
    and divided by *all* N cases: with the default ``threshold`` the share of all cases
    that are accepted **and** failures (J < 0.7); with ``threshold=None`` the summed
    ``1 - J`` of the accepted cases over N.
    """
    t, p = _check_pair(true_j, pred_j)
    ranked, last = _tie_means_in_rank_order(_losses(t, threshold), p)
    accepted = np.flatnonzero(last) + 1
    coverage = np.concatenate([[0.0], accepted / t.size])
    risk = np.concatenate([[0.0], np.cumsum(ranked)[last] / t.size])
    return coverage, risk


def augrc(true_j, pred_j, threshold: float | None = FAILURE_THRESHOLD) -> float:
    """Area under the generalized risk-coverage curve (AUGRC; Traub et al., NeurIPS
    2024): the average risk of an undetected failure over all coverages (lower
    is better; chapter 12).

    The curve of :func:`generalized_risk_coverage` is integrated with the trapezoidal
    rule, as in the authors' reference code. Within a tie group the generalized risk
    grows linearly in expectation, so the trapezoid over the groups equals the expected
    area over the random orders of tied cases. (:func:`aurc` instead averages its curve
    over the coverages 1/N, ..., N/N, as Geifman et al. do.) Known values, with a
    failure rate r: a ranking that puts every failure last gives r²/2, a constant
    prediction (a random ranking, in expectation) r/2, and all failures 1/2.
    """
    coverage, risk = generalized_risk_coverage(true_j, pred_j, threshold)
    return float(np.trapezoid(risk, coverage))


def excess_aurc(true_j, pred_j, threshold: float | None = FAILURE_THRESHOLD) -> float:
    """Excess AURC (E-AURC; Geifman et al., ICLR 2019, "Bias-reduced uncertainty
    estimation for deep neural classifiers"): :func:`aurc` minus the AURC of
    the optimal ranking of the same cases, which accepts them by their true Jaccard.
    0 for a perfect ranking, never negative; chapter 12."""
    t, p = _check_pair(true_j, pred_j)
    return aurc(t, p, threshold) - aurc(t, t, threshold)


def normalized_aurc(true_j, pred_j, threshold: float | None = FAILURE_THRESHOLD) -> float:
    """Normalised AURC (NAURC; Cattelan & Silva, UAI 2024, "How to fix a broken
    confidence estimator"): the excess AURC divided by that of a random ranking,

        (AURC - AURC_optimal) / (risk at full coverage - AURC_optimal),

    where the risk at full coverage (the mean loss) is the AURC of a random ranking in
    expectation. 0 is the optimal ranking, 1 a random one, above 1 worse than random.
    Raises ValueError when every case has the same loss (all failures, all passes):
    then every ranking is optimal and the ratio is undefined. Chapter 12.
    """
    t, p = _check_pair(true_j, pred_j)
    loss = _losses(t, threshold)
    if np.all(loss == loss[0]):
        raise ValueError(
            f"all {t.size} cases have the same loss ({loss[0]:g}; threshold {threshold}): "
            "every ranking is optimal and NAURC is undefined; use excess_aurc, or a "
            "test set with both passing and failing segmentations"
        )
    optimal = aurc(t, t, threshold)
    return (aurc(t, p, threshold) - optimal) / (float(np.mean(loss)) - optimal)


def pairwise_jaccard(masks) -> np.ndarray:
    """Mean Jaccard over all K(K-1)/2 pairs of K binary masks of each image: an
    agreement, hence a quality estimate (high = predicted better). ``masks`` is
    ``[K, B, H, W]``: MC-dropout samples, ensemble members or test-time augmentation
    views, each turned back onto the image. Two empty masks agree (J = 1, as in
    :func:`segqual_lite.metrics.jaccard`). Zenk et al. 2025 (pairwise Dice); chapter 12.
    """
    m = _as_numpy(masks).astype(bool)
    if m.ndim != 4:
        raise ValueError(f"masks must be [K, B, H, W], got shape {m.shape}")
    k = m.shape[0]
    if k < 2:
        raise ValueError(f"pairwise agreement needs K >= 2 masks per image, got K = {k}")
    pairs = itertools.combinations(range(k), 2)
    return np.mean([jaccard(m[a], m[b]) for a, b in pairs], axis=0)
