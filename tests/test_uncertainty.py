import math

import pytest
import torch
from helpers import batch, bn_state, small_unet, trained_looking
from torch import nn
from torch.nn import functional as F

from segqual_lite.config import seed_everything
from segqual_lite.models import UNet
from segqual_lite.uncertainty import (
    METHODS,
    entropy,
    eval_with_dropout,
    hcnn_loss,
    hcnn_mean_softmax,
    lce_loss,
    predict,
    predicted_class,
    segmentation_loss,
    update_lambda,
)


# ---- predict -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_predict_shapes_and_ranges(method):
    net = small_unet(method)
    p = predict(net, batch(3), method, samples=4)
    assert p.probs.shape == (3, 2, 16, 16) and p.mask.shape == (3, 16, 16)
    assert p.uncertainty.shape == (3, 16, 16) and p.mask.dtype == torch.int64
    torch.testing.assert_close(p.probs.sum(1), torch.ones(3, 16, 16))
    if method != "hcnn":  # HCNN's mask is the argmax of its logits, not of the sampled mean
        assert torch.equal(p.mask, p.probs.argmax(1))
    assert torch.isfinite(p.uncertainty).all() and (p.uncertainty >= 0).all()
    if method in ("max_prob", "lce"):
        assert (p.uncertainty <= 1).all()
    if method == "max_prob":
        assert (p.uncertainty <= 0.5 + 1e-6).all()  # two classes: max p >= 1/2


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("training", [True, False])
def test_predict_leaves_batchnorm_and_modes_untouched(method, training):
    net = small_unet(method)
    net.train(training)
    net.decoders[0].train(not training)  # a mixed state must come back exactly
    before_modes = [m.training for m in net.modules()]
    before_bn = bn_state(net)
    predict(net, batch() * 5 + 3, method, samples=3)  # inputs far from BN's statistics
    assert [m.training for m in net.modules()] == before_modes
    after_bn = bn_state(net)
    assert all(torch.equal(before_bn[k], after_bn[k]) for k in before_bn)


def test_the_batchnorm_trap_is_real():
    """What predict avoids: model.train() for MC-dropout rewrites BN running stats."""
    net = small_unet()
    before = bn_state(net)
    net.train()
    with torch.no_grad():
        net(batch() * 5 + 3)
    after = bn_state(net)
    assert not all(torch.equal(before[k], after[k]) for k in before)


def test_mc_dropout_without_dropout_equals_one_pass():
    net = small_unet(dropout=0.0)
    x = batch()
    mc = predict(net, x, "mc_dropout", samples=5)
    one = predict(net, x, "max_prob")
    torch.testing.assert_close(mc.probs, one.probs)
    torch.testing.assert_close(mc.uncertainty, entropy(one.probs))


def test_mc_dropout_draws_the_masks_of_full_passes_and_matches_them():
    """The prefix once and the folded rest (BatchNorm in the convolutions) draw the
    dropout masks of T full passes in the same order: same mean up to float rounding."""
    net = trained_looking(small_unet())
    x = batch()
    seed_everything(3)
    fast = predict(net, x, "mc_dropout", samples=6)
    # Naive: six full passes with dropout on, BatchNorm in eval mode.
    seed_everything(3)
    with torch.no_grad(), eval_with_dropout(net, dropout_on=True):
        naive = torch.stack([net(x).softmax(1) for _ in range(6)]).mean(0)
    torch.testing.assert_close(fast.probs, naive, rtol=0, atol=1e-6)
    seed_everything(3)
    again = predict(net, x, "mc_dropout", samples=6)
    assert torch.equal(fast.probs, again.probs)


def test_mc_dropout_samples_differ():
    net = small_unet()
    a = predict(net, batch(), "mc_dropout", samples=1).probs
    b = predict(net, batch(), "mc_dropout", samples=1).probs
    assert not torch.equal(a, b)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("classes", [2, 3])
def test_predicted_class_is_argmax_with_its_ties_and_nans(classes, channels_last):
    scores = torch.randint(0, 3, (4, classes, 8, 8), generator=torch.Generator().manual_seed(0))
    scores = scores.float()  # many exact ties
    scores[0, 0, 0, 0] = scores[1, 1, 2, 2] = scores[2, :, 3, 3] = float("nan")
    if channels_last:
        scores = scores.contiguous(memory_format=torch.channels_last)
    mask = predicted_class(scores)
    assert mask.dtype == torch.int64 and torch.equal(mask, scores.argmax(1))
    assert mask[0, 0, 0] == 0 and mask[1, 2, 2] == 1 and mask[2, 3, 3] == 0


def test_entropy_bounds_and_zero_log_zero():
    p1 = torch.tensor([0.0, 1e-9, 0.3, 0.5, 1.0])
    probs = torch.stack([1 - p1, p1], dim=0)
    h = entropy(probs, dim=0)
    assert torch.isfinite(h).all()
    assert h[0] == 0 and h[-1] == 0
    assert (h >= 0).all() and (h <= math.log(2) + 1e-7).all()
    assert h[3] == pytest.approx(math.log(2))
    net = small_unet()
    mc = predict(net, batch(), "mc_dropout", samples=8)
    assert (mc.uncertainty >= 0).all() and (mc.uncertainty <= math.log(2) + 1e-6).all()


def test_hcnn_map_is_sigma_with_entropy_alternative():
    net = small_unet("hcnn")
    x = batch()
    p = predict(net, x, "hcnn", samples=10)
    with torch.no_grad():
        net.eval()
        _, sigma = net(x)
    torch.testing.assert_close(p.uncertainty, sigma[:, 0])
    assert (p.extras["entropy"] <= math.log(2) + 1e-6).all()


def test_wrong_head_is_a_clear_error():
    with pytest.raises(ValueError, match="head='sigma'"):
        predict(small_unet("max_prob"), batch(), "hcnn")
    with pytest.raises(ValueError, match="unknown method"):
        predict(small_unet(), batch(), "ensemble")


# ---- HCNN loss -----------------------------------------------------------------------------
def test_hcnn_loss_equals_cross_entropy_as_sigma_vanishes():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 5, 5) * 3
    target = torch.randint(0, 2, (2, 5, 5))
    ce = F.cross_entropy(logits, target)
    loss = hcnn_loss(logits, torch.full((2, 1, 5, 5), 1e-6), target, samples=7)
    torch.testing.assert_close(loss, ce, rtol=1e-5, atol=1e-5)


def test_hcnn_loss_is_finite_for_confidently_wrong_logits():
    logits = torch.zeros(1, 2, 4, 4)
    logits[:, 0] = 200.0  # certain of class 0
    target = torch.ones(1, 4, 4, dtype=torch.long)  # but the truth is class 1
    for sigma in (0.0, 0.5, 50.0):
        loss = hcnn_loss(logits, torch.full((1, 1, 4, 4), sigma), target, samples=10)
        assert torch.isfinite(loss)
    # Large noise makes a wrong pixel cheaper: the network can buy down its loss with sigma.
    small = hcnn_loss(logits, torch.full((1, 1, 4, 4), 0.1), target, samples=50)
    large = hcnn_loss(logits, torch.full((1, 1, 4, 4), 100.0), target, samples=50)
    assert large < small


def test_hcnn_loss_two_class_shortcut_matches_generic_formula():
    torch.manual_seed(1)
    logits = torch.randn(2, 2, 3, 3)
    sigma = torch.rand(2, 1, 3, 3) * 2
    target = torch.randint(0, 2, (2, 3, 3))
    torch.manual_seed(5)
    fast = torch.stack([hcnn_loss(logits, sigma, target, samples=2000) for _ in range(3)]).mean()
    # Generic: per-class noise, log-mean-softmax of the true class.
    torch.manual_seed(6)
    eps = torch.randn(6000, *logits.shape)
    p = (logits + sigma * eps).softmax(2).mean(0)
    generic = F.nll_loss(p.log(), target)
    torch.testing.assert_close(fast, generic, rtol=0.02, atol=0.01)


def test_hcnn_loss_gradient_flows_to_sigma():
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    sigma = torch.full((1, 1, 4, 4), 0.5, requires_grad=True)
    hcnn_loss(logits, sigma, torch.randint(0, 2, (1, 4, 4)), samples=5).backward()
    assert sigma.grad is not None and sigma.grad.abs().sum() > 0


# ---- LCE loss ----------------------------------------------------------------------------
def test_lce_loss_equals_cross_entropy_at_confidence_one():
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 4, 4)
    target = torch.randint(0, 2, (3, 4, 4))
    total, penalty = lce_loss(logits, torch.ones(3, 1, 4, 4), target, lam=0.1)
    torch.testing.assert_close(total, F.cross_entropy(logits, target), rtol=1e-5, atol=1e-6)
    assert penalty == pytest.approx(0.0, abs=1e-9)


def test_lce_hints_lower_the_task_loss():
    torch.manual_seed(0)
    logits = torch.randn(8, 2, 4, 4) * 2
    target = torch.randint(0, 2, (8, 4, 4))
    conf = torch.full((8, 1, 4, 4), 0.5)
    ce = F.cross_entropy(logits, target)
    no_hint, pen = lce_loss(logits, conf, target, lam=0.0, hint=False)
    torch.testing.assert_close(no_hint, ce)
    hinted, _ = lce_loss(logits, conf, target, lam=0.0, hint=True)
    assert hinted < ce
    assert pen == pytest.approx(math.log(2))
    total, pen = lce_loss(logits, conf, target, lam=2.0, hint=False)
    torch.testing.assert_close(total, ce + 2.0 * pen)


def test_lambda_moves_the_right_way_around_the_budget():
    lam = torch.tensor(0.1)
    # Penalty under the budget (confident enough): relax the penalty weight.
    assert update_lambda(lam, torch.tensor(0.1), budget=0.3) == pytest.approx(0.1 / 1.01)
    # Penalty over the budget: push confidence up by weighting the penalty more.
    assert update_lambda(lam, torch.tensor(0.5), budget=0.3) == pytest.approx(0.1 / 0.99)


# ---- Beyond the paper: TTA and deep ensembles ---------------------------------------------
def test_dihedral_views_are_eight_distinct_exact_symmetries_with_inverses():
    from segqual_lite.data import DIHEDRAL, dihedral, undo_dihedral

    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    views = [dihedral(x, i) for i in range(len(DIHEDRAL))]
    assert len(DIHEDRAL) == 8
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8  # all different
    for i, v in enumerate(views):
        assert torch.equal(undo_dihedral(v, i), x)  # the inverse undoes it exactly
    assert torch.equal(dihedral(x, 1), torch.rot90(x, 1, dims=(-2, -1)))
    assert torch.equal(dihedral(x, 4), x.flip(-1))
    # an image and its mask move together: the pixel at (0, 4) follows the same path
    mask = torch.zeros(5, 5)
    mask[0, 4] = 1
    for i in range(8):
        assert dihedral(x[0, 0], i)[dihedral(mask, i).bool()] == x[0, 0, 0, 4]
    with pytest.raises(ValueError, match="square"):
        dihedral(torch.zeros(1, 4, 6), 0)


class _PerPixel(nn.Module):
    """A 1x1 convolution: commutes with every flip and rotation."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.conv(x)


def test_tta_maps_every_view_back_to_the_original_pixels():
    from segqual_lite.data import dihedral, undo_dihedral
    from segqual_lite.uncertainty import predict_tta

    x = batch(size=8)
    # A per-pixel model sees the same pixel in every view: TTA must equal one pass.
    model = _PerPixel()
    plain, tta = predict(model, x, "max_prob"), predict_tta(model, x)
    torch.testing.assert_close(tta.probs, plain.probs)
    torch.testing.assert_close(tta.uncertainty, entropy(plain.probs))
    # A U-Net is not equivariant: TTA is the mean of the views mapped back by hand.
    unet = small_unet()
    with torch.no_grad():
        manual = sum(undo_dihedral(unet.eval()(dihedral(x, i)).softmax(1), i) for i in range(8)) / 8
    got = predict_tta(unet, x)
    torch.testing.assert_close(got.probs, manual, atol=1e-5, rtol=1e-5)
    assert torch.equal(got.mask, got.probs.argmax(1))
    assert not torch.allclose(got.probs, predict(unet, x, "max_prob").probs)


def test_ensemble_is_the_mean_softmax_of_its_members():
    from segqual_lite.uncertainty import predict_ensemble

    x = batch()
    members = [small_unet(), UNet(width=4, depth=3)]
    probs = [predict(m, x, "max_prob").probs for m in members]
    got = predict_ensemble(members, x)
    torch.testing.assert_close(got.probs, (probs[0] + probs[1]) / 2)
    torch.testing.assert_close(got.uncertainty, entropy(got.probs))
    one = predict_ensemble(members[:1], x)
    torch.testing.assert_close(one.probs, probs[0])
    with pytest.raises(ValueError, match="at least one"):
        predict_ensemble([], x)


# ---- eq. 7 sampling and the training loss per method -------------------------------------
def test_hcnn_mean_softmax_two_class_shortcut_matches_the_generic_sampler():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 4, 4, generator=g) * 2
    sigma = torch.rand(2, 1, 4, 4, generator=g) * 2
    torch.manual_seed(0)
    shortcut = hcnn_mean_softmax(logits, sigma, samples=20_000)
    # Three classes, the third never likely: the generic path on the same two logits.
    padded = torch.cat([logits, torch.full((2, 1, 4, 4), -1e4)], dim=1)
    generic = hcnn_mean_softmax(padded, sigma, samples=20_000)[:, :2]
    torch.testing.assert_close(shortcut, generic, atol=0.02, rtol=0)
    torch.testing.assert_close(shortcut.sum(1), torch.ones(2, 4, 4))


@pytest.mark.parametrize("classes", [2, 3])
def test_hcnn_mean_softmax_is_the_written_out_sampler_bit_for_bit(classes):
    """The in-place, chunked sampler draws the same eps in the same order as the formula
    written out (one chunk: T <= 25), and from channels_last logits too."""
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(2, classes, 8, 8, generator=g) * 2).contiguous(
        memory_format=torch.channels_last
    )
    sigma = torch.rand(2, 1, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(4)
    with torch.inference_mode():
        fast = hcnn_mean_softmax(logits, sigma, samples=20)
    torch.manual_seed(4)
    if classes == 2:
        d = logits[:, 1:2] - logits[:, 0:1]
        eps = torch.randn(20, *d.shape)
        p1 = torch.sigmoid(d + math.sqrt(2) * sigma * eps).sum(0) / 20
        reference = torch.cat([1 - p1, p1], dim=1)
    else:
        eps = torch.randn(20, *logits.shape)
        reference = (logits + sigma * eps).softmax(2).sum(0) / 20
    assert torch.equal(fast, reference)


def test_hcnn_loss_is_the_same_with_and_without_autograd():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 8, 8, generator=g, requires_grad=True)
    sigma = torch.rand(2, 1, 8, 8, generator=g).requires_grad_()
    target = torch.randint(0, 2, (2, 8, 8), generator=g)
    torch.manual_seed(1)
    with_grad = hcnn_loss(logits, sigma, target, samples=30)
    torch.manual_seed(1)
    with torch.no_grad():
        without = hcnn_loss(logits, sigma, target, samples=30)
    assert with_grad.requires_grad and torch.equal(with_grad.detach(), without)


def test_segmentation_loss_dispatches_by_the_unet_of_the_method():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 2, 8, 8, generator=g)
    aux = torch.rand(2, 1, 8, 8, generator=g) * 0.9 + 0.05
    target = (torch.rand(2, 8, 8, generator=g) > 0.5).long()
    for method in ("max_prob", "mc_dropout"):
        loss, extras = segmentation_loss(method, logits, target)
        assert loss == F.cross_entropy(logits, target) and extras == {}
    torch.manual_seed(0)
    loss, _ = segmentation_loss("hcnn", (logits, aux), target, hcnn_samples=7)
    torch.manual_seed(0)
    assert loss == hcnn_loss(logits, aux, target, samples=7)
    state = {"lam": torch.tensor(0.1)}
    torch.manual_seed(0)
    loss, extras = segmentation_loss("lce", (logits, aux), target, state)
    torch.manual_seed(0)
    expected, penalty = lce_loss(logits, aux, target, 0.1)
    assert loss == expected and extras["penalty"] == penalty
    assert state["lam"] == update_lambda(torch.tensor(0.1), penalty)  # lambda moved on


def test_hcnn_mask_is_the_argmax_of_the_logits():
    net = small_unet("hcnn").eval()
    x = batch(b=3)
    with torch.no_grad():
        logits, _ = net(x)
    torch.manual_seed(0)
    pred = predict(net, x, "hcnn", samples=5)  # few samples: the sampled argmax would differ
    assert torch.equal(pred.mask, logits.argmax(1))


# ---- chapter 12's extras -----------------------------------------------------------------
def test_mc_dropout_extras_split_its_entropy_and_measure_the_samples_agreement():
    from segqual_lite.metrics import pairwise_jaccard
    from segqual_lite.scores import expected_entropy, mutual_information
    from segqual_lite.uncertainty import mc_dropout_mean_softmax

    net, x = trained_looking(small_unet()), batch(b=3)
    seed_everything(3)
    got = predict(net, x, "mc_dropout", samples=5)
    seed_everything(3)  # the same draws, kept
    draws = []
    with torch.inference_mode(), eval_with_dropout(net):
        mean = mc_dropout_mean_softmax(net, x, 5, draws)
    torch.testing.assert_close(got.probs, mean, rtol=0, atol=0)  # keeping changes nothing
    stack = torch.stack(draws)
    torch.testing.assert_close(got.extras["expected_entropy"], expected_entropy(stack))
    torch.testing.assert_close(
        got.extras["mutual_information"], mutual_information(stack), atol=1e-6, rtol=0
    )
    masks = torch.stack([predicted_class(p) for p in draws])
    torch.testing.assert_close(
        got.extras["agreement"], torch.from_numpy(pairwise_jaccard(masks)).float()
    )
    assert (got.extras["mutual_information"] >= 0).all()


def test_ensemble_and_tta_agreement_is_the_pairwise_jaccard_of_their_masks():
    from segqual_lite.metrics import pairwise_jaccard
    from segqual_lite.uncertainty import predict_ensemble, predict_tta

    x = batch()
    members = [small_unet(), trained_looking(UNet(width=4, depth=3))]
    masks = torch.stack([predicted_class(predict(m, x, "max_prob").probs) for m in members])
    got = predict_ensemble(members, x).extras["agreement"]
    torch.testing.assert_close(got, torch.from_numpy(pairwise_jaccard(masks)).float())
    assert (predict_ensemble(members[:1], x).extras["agreement"] == 1).all()  # K = 1
    tta = predict_tta(members[1], x).extras["agreement"]
    assert tta.shape == (len(x),) and ((tta >= 0) & (tta <= 1)).all()
