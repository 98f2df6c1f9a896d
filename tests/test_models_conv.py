"""MaskedConv2d and ConvNet: forward against hand-written loops, masks, validation, torch.func."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call, jacrev, vmap

import gntk_fast as gf
from gntk_fast.models import MaskedConv2d


def conv_loops(x, w, padding):
    """Cross-correlation with a centred odd window, written as explicit loops over
    pixels and taps (numpy, float64): out[n, o, p, q] = sum_{i,a,b} w[o,i,a,b] x[n, i, p+a-r, q+b-r],
    a pixel outside the image read wrapped around ("circular") or as 0 ("same")."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n, c_in, H, W = x.shape
    c_out, _, k, _ = w.shape
    r = (k - 1) // 2
    out = np.zeros((n, c_out, H, W))
    for p in range(H):
        for q in range(W):
            for a in range(k):
                for b in range(k):
                    pp, qq = p + a - r, q + b - r
                    if padding == "circular":
                        pp, qq = pp % H, qq % W
                    elif not (0 <= pp < H and 0 <= qq < W):
                        continue
                    out[:, :, p, q] += x[:, :, pp, qq] @ w[:, :, a, b].T
    return out


def convnet_loops(net, x):
    """The ConvNet formula of docs/models.md, from the raw weights and masks."""
    h = np.asarray(x, dtype=np.float64)
    k = net.kernel_size
    for layer in net.layers[:-1]:
        c_in = layer.weight.shape[1]
        w = (layer.weight * layer.weight_mask).detach().numpy()
        h = np.maximum(conv_loops(h, w, net.padding) / math.sqrt(c_in * k * k), 0.0)
    head = net.layers[-1]
    feats = h.mean(axis=(2, 3)) if net.readout == "gap" else h.reshape(h.shape[0], -1)
    wh = (head.weight * head.weight_mask).detach().numpy()
    return feats @ wh.T / math.sqrt(feats.shape[1])


@pytest.mark.parametrize("padding", ["circular", "same"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_masked_conv_matches_loops(padding, k):
    conv = MaskedConv2d(3, 4, k, padding=padding, seed=1, dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    conv.weight_mask.copy_(torch.rand(conv.weight.shape, generator=g) < 0.5)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    w = (conv.weight * conv.weight_mask).detach().numpy()
    expect = conv_loops(x.numpy(), w, padding) / math.sqrt(3 * k * k)
    np.testing.assert_allclose(conv(x).detach().numpy(), expect, rtol=1e-12, atol=1e-12)
    assert conv.fan_in == 3 * k * k and math.isclose(conv.weight_scale, 1 / math.sqrt(3 * k * k))


def test_masked_conv_bias_and_circular_wraps():
    conv = MaskedConv2d(1, 1, 3, bias=True, padding="circular", weight_scale=1.0, bias_scale=2.0, seed=0,
                        dtype=torch.float64)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 0] = 1.0  # tap reading the pixel one column to the left
        conv.bias.fill_(0.5)
    x = torch.arange(12, dtype=torch.float64).reshape(1, 1, 3, 4)
    expect = torch.roll(x, shifts=1, dims=-1) + 1.0  # column q reads column q-1 (wrapped), + 2 * 0.5
    torch.testing.assert_close(conv(x), expect, rtol=0, atol=0)
    same = MaskedConv2d(1, 1, 3, padding="same", weight_scale=1.0, seed=0, dtype=torch.float64)
    with torch.no_grad():
        same.weight.copy_(conv.weight)
    zero_left = torch.roll(x, 1, -1)
    zero_left[..., 0] = 0.0
    torch.testing.assert_close(same(x), zero_left, rtol=0, atol=0)


@pytest.mark.parametrize("readout,padding", [("gap", "circular"), ("gap", "same"), ("flatten", "circular"), ("flatten", "same")])
def test_convnet_forward_matches_formula(readout, padding):
    net = gf.ConvNet(2, [5, 4], None, 3, padding=padding, readout=readout, image_size=(4, 5), seed=3,
                     dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    net.set_masks([torch.rand(m.shape, generator=g) < 0.6 for m in net.masks])
    x = torch.randn(3, 2, 4, 5, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(net(x).detach().numpy(), convnet_loops(net, x.numpy()), rtol=1e-11, atol=1e-12)
    # one unbatched image gives the row of the batch
    torch.testing.assert_close(net(x[1]), net(x)[1], rtol=1e-12, atol=1e-12)
    assert net.widths == [2, 5, 4, 3] and net.depth == 2 and net.channels == [5, 4]


def test_convnet_init_and_seed():
    a = gf.ConvNet(3, 64, 2, 10, seed=7)
    b = gf.ConvNet(3, 64, 2, 10, seed=7)
    c = gf.ConvNet(3, 64, 2, 10, seed=8)
    assert all(torch.equal(u, v) for u, v in zip(a.weights, b.weights))
    assert not torch.equal(a.weights[1], c.weights[1])
    w = a.weights[1].detach().flatten()  # 64*64*9 standard normal draws
    assert abs(float(w.std()) - 1.0) < 0.02 and abs(float(w.mean())) < 0.02
    assert math.isclose(a.layers[1].weight_scale, 1 / math.sqrt(64 * 9))
    assert math.isclose(a.layers[-1].weight_scale, 1 / math.sqrt(64))
    f = gf.ConvNet(3, 8, 1, 2, readout="flatten", image_size=4, w_std=2.0, seed=0)
    assert f.layers[-1].in_features == 8 * 16 and math.isclose(f.layers[-1].weight_scale, 2 / math.sqrt(128))
    assert all(m.dtype == torch.bool and bool(m.all()) for m in a.masks) and a.density() == 1.0


def test_convnet_bias_parameterisation():
    net = gf.ConvNet(1, 3, 1, 2, bias=True, b_std=0.5, seed=0, dtype=torch.float64)
    with torch.no_grad():
        for w in net.weights:
            w.zero_()
    b1, b2 = net.layers[0].bias, net.layers[1].bias
    # zero weights: h = relu(0.5 b1) everywhere, GAP keeps it, head adds only 0.5 b2
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(net(x), (0.5 * b2).expand(2, 2), rtol=0, atol=1e-15)
    assert not torch.equal(b1, torch.zeros_like(b1))  # biases are drawn N(0, 1)


def test_set_masks_and_density():
    net = gf.ConvNet(1, 2, 1, 1, seed=0)
    m0 = torch.zeros(2, 1, 3, 3)
    m0[0, 0, 1, 1] = 1
    net.set_masks([m0, torch.tensor([[1.0, 0.0]])])
    assert net.density() == 2 / (18 + 2)
    assert net.masks[0].dtype == torch.bool and int(net.masks[0].sum()) == 1
    with pytest.raises(ValueError, match="masks must be a list of 2"):
        net.set_masks([m0])
    with pytest.raises(ValueError, match=r"masks\[0\] must have shape \(2, 1, 3, 3\)"):
        net.set_masks([torch.ones(2, 1, 3, 4), torch.ones(1, 2)])
    with pytest.raises(ValueError, match=r"masks\[1\] must be boolean or hold only 0 and 1"):
        net.set_masks([m0, torch.tensor([[0.5, 1.0]])])


def test_validation_errors():
    with pytest.raises(ValueError, match="image_size must be given"):
        gf.ConvNet(1, 4, 2, 1, readout="flatten")
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        gf.ConvNet(1, 4, 2, 1, kernel_size=2)
    with pytest.raises(ValueError, match="padding must be one of"):
        gf.ConvNet(1, 4, 2, 1, padding="valid")
    with pytest.raises(ValueError, match="readout must be one of"):
        gf.ConvNet(1, 4, 2, 1, readout="max")
    with pytest.raises(ValueError, match="depth must be given"):
        gf.ConvNet(1, 4, None, 1)
    with pytest.raises(ValueError, match="channels"):
        gf.ConvNet(1, 10**9, 2, 1)
    with pytest.raises(ValueError, match="image_size"):
        gf.ConvNet(1, 4, 1, 1, readout="flatten", image_size=(3, 4, 5))
    with pytest.raises(ValueError, match="memory"):
        gf.ConvNet(1, 1 << 20, 2, 1)
    with pytest.raises(ValueError, match="image_size must be at least"):
        gf.ConvNet(1, 4, 1, 1, kernel_size=7, image_size=2)
    with pytest.raises(ValueError, match="circular padding wraps once"):
        gf.ConvNet(1, 4, 1, 1, kernel_size=7, seed=0)(torch.randn(1, 1, 2, 8))
    net = gf.ConvNet(2, 4, 1, 1, readout="flatten", image_size=(3, 4), seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2, 3, 4\)"):
        net(torch.randn(1, 2, 4, 3))
    with pytest.raises(ValueError, match=r"x must have shape"):
        net(torch.randn(2, 24))
    with pytest.raises(ValueError, match="NaN"):
        net.check_input(torch.full((1, 2, 3, 4), float("nan")))
    assert net.check_input(torch.ones(1, 2, 3, 4, dtype=torch.int64)).dtype == torch.float32


def test_functional_call_and_vmap_jacrev():
    net = gf.ConvNet(1, 3, 2, 2, seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    net.set_masks([torch.rand(m.shape, generator=g) < 0.5 for m in net.masks])
    x = torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64)
    params = {k: v.detach() for k, v in net.named_parameters()}
    torch.testing.assert_close(functional_call(net, params, (x,)), net(x))
    jac = vmap(jacrev(lambda p, xi: functional_call(net, p, (xi,))), in_dims=(None, 0))(params, x)
    for i in range(4):
        for c in range(2):
            grads = torch.autograd.grad(net(x[i : i + 1])[0, c], list(net.parameters()))
            for (name, _), gr in zip(net.named_parameters(), grads):
                torch.testing.assert_close(jac[name][i, c], gr, rtol=1e-12, atol=1e-12)
    # pruned weights get no gradient
    for l, layer in enumerate(net.layers):
        assert bool((jac[f"layers.{l}.weight"][:, :, ~layer.weight_mask] == 0).all())


def test_torch_compile_captures_one_graph():
    """fullgraph=True fails on any graph break (data-dependent control flow); the
    aot_eager backend checks the capture without a C compiler in a few seconds."""
    torch._dynamo.reset()
    net = gf.ConvNet(1, 3, 2, 2, readout="flatten", image_size=5, seed=0)
    x = torch.randn(2, 1, 5, 5)
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), net(x), rtol=0, atol=0)


@settings(max_examples=15, deadline=None)
@given(
    c_in=st.integers(1, 3),
    chans=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    n_out=st.integers(1, 3),
    k=st.sampled_from([1, 3]),
    padding=st.sampled_from(["circular", "same"]),
    readout=st.sampled_from(["gap", "flatten"]),
    hw=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    seed=st.integers(0, 2**32),
)
def test_convnet_property_matches_formula(c_in, chans, n_out, k, padding, readout, hw, seed):
    net = gf.ConvNet(c_in, chans, None, n_out, kernel_size=k, padding=padding, readout=readout, image_size=hw,
                     seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    net.set_masks([torch.rand(m.shape, generator=g) < 0.5 for m in net.masks])
    x = torch.randn(2, c_in, *hw, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(net(x).detach().numpy(), convnet_loops(net, x.numpy()), rtol=1e-10, atol=1e-12)


@given(bad=st.one_of(st.integers(-5, 0), st.floats(allow_nan=True), st.text(max_size=3), st.none()))
@settings(max_examples=20, deadline=None)
def test_convnet_bad_channels_named(bad):
    with pytest.raises((TypeError, ValueError), match="channels|depth"):
        gf.ConvNet(1, bad, 2, 1)


def test_train_convnet_on_digit_images_keeps_masks():
    x, y = gf.data.load("digits", split="train", per_class=3, seed=0, shape="image")
    net = gf.ConvNet(1, 6, 2, 10, seed=0)
    g = torch.Generator().manual_seed(0)
    net.set_masks([torch.rand(m.shape, generator=g) < 0.5 for m in net.masks])
    before = [w.detach().clone() for w in net.weights]
    run = gf.train(net, (x, y), steps=4, lr=1e-2, optimizer="adam", seed=0)
    assert run.loss.shape == (4,) and np.all(np.isfinite(run.loss))
    for w, w0, m in zip(net.weights, before, net.masks):
        assert bool((w.detach()[~m] == 0).all())  # pruned weights held at exactly 0
        assert not torch.equal(w.detach()[m], w0[m])  # kept weights trained
