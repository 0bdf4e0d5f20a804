import pytest
import torch
from helpers import batch, small_unet
from torch import nn

from segqual_lite.models import MCDropout, UNet


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
