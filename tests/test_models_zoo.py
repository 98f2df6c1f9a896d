"""VGG-11/16 and ResNet-20 builders: parameter counts from the architecture, shapes, seeds."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import gntk_fast as gf


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def conv(c_in, c_out, k=3, bias=True):
    return c_out * c_in * k * k + (c_out if bias else 0)


def bn(c):
    return 2 * c  # scale and shift (running statistics are buffers)


def test_vgg11_parameter_count():
    # 3x3 convs with bias: 3->64, 64->128, 128->256, 256->256, 256->512, then three 512->512; classifier 512->10
    pairs = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
    plain = sum(conv(a, b) for a, b in pairs) + 512 * 10 + 10
    assert plain == 9_225_610
    assert n_params(gf.vgg("vgg11", batch_norm=False, seed=0)) == plain
    assert n_params(gf.vgg("vgg11", batch_norm=True, seed=0)) == plain + sum(bn(b) for _, b in pairs)


def test_vgg16_parameter_count():
    pairs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
             (256, 512)] + [(512, 512)] * 5
    plain = sum(conv(a, b) for a, b in pairs) + 512 * 10 + 10
    assert plain == 14_719_818  # + 8_448 BatchNorm parameters = the usual 14.73M of VGG-16-BN
    assert n_params(gf.vgg("vgg16", batch_norm=False, seed=0)) == plain
    assert n_params(gf.vgg("vgg16", seed=0)) == plain + sum(bn(b) for _, b in pairs)
    convs = [m for m in gf.vgg("vgg16", seed=0).modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [b for _, b in pairs]


def test_resnet20_parameter_count():
    W = 16

    def block(c_in, c_out, down):
        p = conv(c_in, c_out, bias=False) + bn(c_out) + conv(c_out, c_out, bias=False) + bn(c_out)
        return p + (conv(c_in, c_out, k=1, bias=False) + bn(c_out) if down else 0)

    stem = conv(3, W, bias=False) + bn(W)
    stage1 = 3 * block(W, W, False)
    stage2 = block(W, 2 * W, True) + 2 * block(2 * W, 2 * W, False)
    stage3 = block(2 * W, 4 * W, True) + 2 * block(4 * W, 4 * W, False)
    total = stem + stage1 + stage2 + stage3 + 4 * W * 10 + 10
    assert total == 272_474  # the well-known 0.27M of ResNet-20
    net = gf.resnet20(seed=0)
    assert n_params(net) == total
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 + 2  # 19 3x3 convs + 2 projection shortcuts
    assert sum(m.kernel_size == (1, 1) for m in convs) == 2


@pytest.mark.parametrize("builder", [lambda s: gf.vgg("vgg11", width=0.125, seed=s),
                                     lambda s: gf.resnet20(width=4, seed=s)])
def test_shapes_and_seed(builder):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    state = torch.random.get_rng_state()
    a, b, c = builder(1), builder(1), builder(2)
    assert torch.equal(torch.random.get_rng_state(), state)  # an int seed leaves the global RNG alone
    a.eval(), b.eval(), c.eval()
    assert a(x).shape == (2, 10)
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))
    for m in a.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert bool((m.weight == 1).all() and (m.bias == 0).all())
        elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            assert bool((m.bias == 0).all())


def test_kaiming_normal_init_and_global_rng_with_none():
    torch.manual_seed(3)
    a = gf.resnet20(width=16, seed=None)
    torch.manual_seed(3)
    b = gf.resnet20(width=16, seed=None)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    w = a.blocks[8].conv2.weight.detach()  # 64 x 64 x 3 x 3, fan-in 576: std sqrt(2 / 576)
    assert abs(float(w.std()) / (2 / 576) ** 0.5 - 1) < 0.03


def test_width_and_inputs():
    v = gf.vgg("vgg11", width=0.5, in_channels=1, n_out=4, image_size=64, batch_norm=False, seed=0)
    convs = [m for m in v.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [32, 64, 128, 128, 256, 256, 256, 256]
    assert v.fc.in_features == 256 * 2 * 2  # 64 / 32 = 2
    assert v(torch.randn(2, 1, 64, 64)).shape == (2, 4)
    r = gf.resnet20(in_channels=1, n_out=3, width=2, seed=0)
    assert r(torch.randn(2, 1, 28, 28)).shape == (2, 3) and r.fc.in_features == 8


def test_zoo_validation():
    with pytest.raises(ValueError, match="image_size must be >= 32"):
        gf.vgg("vgg11", image_size=28)
    with pytest.raises(ValueError, match="name must be one of"):
        gf.vgg("vgg19")
    with pytest.raises(ValueError, match="width"):
        gf.vgg("vgg11", width=0.0)
    with pytest.raises(TypeError, match="width"):
        gf.resnet20(width=1.5)
    with pytest.raises(ValueError, match="memory"):
        gf.resnet20(width=1 << 20)


def test_torch_prune_masks_install_on_every_layer():
    from torch.nn.utils import prune as tprune

    net = gf.resnet20(width=2, seed=0)
    layers = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    tprune.global_unstructured(layers, pruning_method=tprune.RandomUnstructured, amount=0.5)
    kept = sum(int(m.weight_mask.sum()) for m, _ in layers)
    total = sum(m.weight_mask.numel() for m, _ in layers)
    assert kept == total - round(0.5 * total)
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


@settings(max_examples=20, deadline=None)
@given(
    width=st.one_of(st.integers(-3, 0), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=2)),
    which=st.sampled_from(["vgg", "resnet"]),
)
def test_bad_width_is_named(width, which):
    if which == "vgg" and isinstance(width, float) and 0 < width <= 1024:
        return  # a valid multiplier
    with pytest.raises((TypeError, ValueError), match="width"):
        if which == "vgg":
            gf.vgg("vgg11", width=width)
        else:
            gf.resnet20(width=width)
