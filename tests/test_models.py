import pytest
import torch
from helpers import batch, small_unet, trained_looking
from torch import nn

from segqual_lite.config import seed_everything
from segqual_lite.models import MCDropout, UNet, _FoldedRest
from segqual_lite.rows import get_method
from segqual_lite.uncertainty import eval_with_dropout


# ---- U-Net ---------------------------------------------------------------------------------
def test_unet_outputs_and_heads():
    x = batch()
    assert small_unet("max_prob")(x).shape == (2, 2, 16, 16)
    logits, sigma = small_unet("hcnn")(x)
    assert logits.shape == (2, 2, 16, 16) and sigma.shape == (2, 1, 16, 16)
    assert (sigma >= 0).all()
    _, conf = small_unet("lce")(x)
    assert ((conf > 0) & (conf < 1)).all()
    with pytest.raises(ValueError, match="divisible by 8"):
        small_unet()(torch.rand(1, 3, 12, 12))
    with pytest.raises(ValueError, match="head"):
        UNet(head="variance")


def test_dropout_sits_in_the_central_blocks():
    net = UNet(width=4, depth=4)
    drop = [type(m).__name__ for m in net.encoder_dropout]
    assert drop == ["Identity", "Identity", "MCDropout", "MCDropout"]
    assert [type(m).__name__ for m in net.decoder_dropout] == [
        "MCDropout",
        "MCDropout",
        "Identity",
        "Identity",
    ]
    assert isinstance(net.bottleneck_dropout, nn.Dropout) and net.bottleneck_dropout.p == 0.5
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 5


def test_prefix_then_rest_equals_forward():
    net = small_unet().eval()
    x = batch()
    with torch.no_grad():
        assert torch.equal(net(x), net.forward_from_prefix(*net.prefix(x)))


def _outputs(output) -> tuple:
    return output if isinstance(output, tuple) else (output,)


@pytest.mark.parametrize("method", ["max_prob", "hcnn", "lce"])
@pytest.mark.parametrize("depth", [3, 4])
@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_sampler_draws_the_same_passes_as_forward_from_prefix(method, depth, channels_last):
    """Same seed, same dropout masks: the folded rest (BatchNorm in the convolutions, the
    prefix skips' half of the decoder convolutions computed once) equals the module
    path up to float rounding, and repeats itself exactly."""
    seed_everything(0)
    net = trained_looking(UNet(width=4, depth=depth, head=get_method(method).head))
    x = batch(3, 32)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), eval_with_dropout(net):
        draw = net.sampler(x)
        assert isinstance(draw, _FoldedRest)  # the folded path is the one under test
        skips, h = net.prefix(x)
        for seed in (1, 2):
            torch.manual_seed(seed)
            folded = [draw() for _ in range(3)]
            torch.manual_seed(seed)
            modules = [net.forward_from_prefix(skips, h) for _ in range(3)]
            torch.manual_seed(seed)
            again = draw()
            for a, b in zip(folded, modules, strict=True):
                torch.testing.assert_close(_outputs(a), _outputs(b), rtol=1e-5, atol=1e-5)
            assert all(map(torch.equal, _outputs(folded[0]), _outputs(again)))
        assert not torch.equal(_outputs(folded[0])[0], _outputs(folded[1])[0])  # dropout is on
    with torch.inference_mode(), eval_with_dropout(net, dropout_on=False):
        plain = net(x)
        folded = net.sampler(x)()
    torch.testing.assert_close(_outputs(folded), _outputs(plain), rtol=1e-5, atol=1e-5)


def test_sampler_falls_back_to_the_module_path_with_autograd_or_batchnorm_training():
    net = trained_looking(small_unet())
    x = batch()
    with eval_with_dropout(net):
        draw = net.sampler(x)  # autograd on: the folded weights would not train BatchNorm
        assert not isinstance(draw, _FoldedRest)
        torch.manual_seed(0)
        a = draw()
        torch.manual_seed(0)
        assert torch.equal(a, net.forward_from_prefix(*net.prefix(x)))
    net.decoders[0][1].train()  # one BatchNorm on batch statistics: nothing to fold
    with torch.inference_mode():
        assert not isinstance(net.sampler(x), _FoldedRest)


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_mc_dropout_module_draws_the_reference_mask_bit_for_bit(p):
    """The in-place form is ``x * (u >= p) / (1 - p)`` exactly, forward and backward, so
    models trained before it was introduced are reproduced."""
    drop = MCDropout(p).train()
    x = torch.randn(4, 8, 5, 5, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    (y * torch.arange(5.0)).sum().backward()
    grad, x.grad = x.grad, None
    torch.manual_seed(0)
    ref = x * (torch.rand_like(x) >= p) / (1 - p)
    (ref * torch.arange(5.0)).sum().backward()
    assert torch.equal(y, ref) and torch.equal(grad, x.grad)


def test_mc_dropout_module_matches_dropout_in_distribution():
    drop = MCDropout(0.5).train()
    x = torch.ones(200_000)
    torch.manual_seed(0)
    y = drop(x)
    kept = (y != 0).float().mean().item()
    assert kept == pytest.approx(0.5, abs=0.01)
    assert set(y.unique().tolist()) == {0.0, 2.0}  # survivors scaled by 1 / (1 - p)
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)  # unbiased
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(MCDropout(1.0).train()(x), torch.zeros_like(x))
    assert isinstance(drop, nn.Dropout)
