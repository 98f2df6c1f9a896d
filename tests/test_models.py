import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tprune

import gntk_fast as gf


def manual_forward(model, x):
    """docs/graphon-ntk.md section 1 written out by hand."""
    h = x
    L = len(model.layers)
    for l, layer in enumerate(model.layers):
        W = layer.weight * layer.weight_mask
        z = h @ W.T / math.sqrt(layer.in_features)
        h = torch.relu(z) if l < L - 1 else z
    return h


def test_mlp_ntk_forward_matches_spec():
    torch.manual_seed(0)
    m = gf.MLP(7, 13, 3, 2, seed=3, dtype=torch.float64)
    masks = [torch.rand_like(w) < 0.4 for w in m.weights]
    m.set_masks(masks)
    x = torch.randn(5, 7, dtype=torch.float64)
    assert torch.allclose(m(x), manual_forward(m, x), rtol=1e-12, atol=1e-12)
    assert m.widths == [7, 13, 13, 13, 2] and m.depth == 3
    # standard-normal init
    w = torch.cat([p.detach().flatten() for p in gf.MLP(50, 400, 2, 1, seed=0).weights])
    assert abs(float(w.std()) - 1.0) < 0.01 and abs(float(w.mean())) < 0.01


def test_mlp_list_widths_and_seed():
    a = gf.MLP(4, [5, 6], None, 3, seed=1)
    b = gf.MLP(4, [5, 6], None, 3, seed=1)
    c = gf.MLP(4, [5, 6], None, 3, seed=2)
    assert [tuple(w.shape) for w in a.weights] == [(5, 4), (6, 5), (3, 6)]
    assert all(torch.equal(u, v) for u, v in zip(a.weights, b.weights))
    assert not torch.equal(a.weights[0], c.weights[0])


@pytest.mark.parametrize("act,fn", [("erf", torch.erf), ("tanh", torch.tanh), ("identity", lambda z: z)])
def test_mlp_activations(act, fn):
    m = gf.MLP(3, 4, 1, 1, activation=act, seed=0, dtype=torch.float64)
    x = torch.randn(2, 3, dtype=torch.float64)
    W1, W2 = m.weights
    expect = fn(x @ W1.T / math.sqrt(3)) @ W2.T / 2.0
    assert torch.allclose(m(x), expect)


def test_custom_activation_derivative_by_autograd():
    m = gf.MLP(3, 4, 1, 1, activation=torch.sin, seed=0)
    z = torch.linspace(-2, 2, 9)
    assert torch.allclose(m.activations[0].grad(z), torch.cos(z), atol=1e-6)


def test_from_sequential_torch_pruned_matches():
    net = gf.fc(6, 10, 2, 3, seed=0)
    tprune.random_unstructured(net[1], "weight", amount=0.5)
    tprune.l1_unstructured(net[3], "weight", amount=0.3)
    net[5].register_buffer("weight_mask", (torch.rand_like(net[5].weight) < 0.5))
    m = gf.MLP.from_sequential(net)
    assert m.parameterization == "standard"
    x = torch.randn(4, 6)
    expect = net[:5](x)
    expect = expect @ (net[5].weight * net[5].weight_mask).T + net[5].bias
    assert torch.allclose(m(x), expect, atol=1e-6)
    assert torch.equal(m.masks[0], net[1].weight_mask.bool())
    assert int(m.masks[1].sum()) == round(0.7 * 100)


def test_to_sequential_roundtrip_plain_torch():
    m = gf.MLP(5, 8, 2, 2, seed=0, bias=True)
    m.set_masks([torch.rand_like(w) < 0.5 for w in m.weights])
    seq = m.to_sequential()
    x = torch.randn(3, 5)
    assert torch.allclose(seq(x), m(x), atol=1e-6)
    assert hasattr(seq[0], "weight_orig") and hasattr(seq[0], "weight_mask")
    assert torch.equal(seq[0].weight_mask.bool(), m.masks[0])


def test_fc_structure_and_depth_convention():
    net = gf.fc(784, 100, 5, 10, seed=0)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert len(linears) == 6  # Synaptic-Flow's L = depth + 1 Linear layers
    assert isinstance(net[0], nn.Flatten)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    same = gf.fc(784, 100, 5, 10, seed=0)
    assert torch.equal(linears[0].weight, same[1].weight)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(d_in=0, width=3, depth=1), "d_in"),
        (dict(d_in=3, width=0, depth=1), "width"),
        (dict(d_in=3, width=3, depth=-1), "depth"),
        (dict(d_in=3, width=3, depth=None), "depth"),
        (dict(d_in=3, width=3, depth=1, activation="swish"), "activation"),
        (dict(d_in=3, width=[3, 4], depth=3), "depth"),
        (dict(d_in=3, width=[3, 4], depth="2"), "depth"),
        (dict(d_in=3, width=3, depth=1, bias="yes"), "bias"),
        (dict(d_in=3, width=3, depth=1, seed=-1), "seed"),
        (dict(d_in=3, width=3, depth=1, seed=1.5), "seed"),
        (dict(d_in=3, width=3, depth=1, seed=2**64), "seed"),
    ],
)
def test_mlp_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gf.MLP(**kwargs)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(width=0), ValueError, "width"),
        (dict(depth=0), ValueError, "depth"),
        (dict(input_dim=2.0), TypeError, "input_dim"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(seed="a"), TypeError, "seed"),
        (dict(bias="no"), TypeError, "bias"),
    ],
)
def test_fc_bad_arguments(kwargs, exc, match):
    args = dict(input_dim=3, width=4, depth=1, num_classes=2) | kwargs
    with pytest.raises(exc, match=match):
        gf.fc(**args)


def test_mlp_bad_input_and_masks():
    m = gf.MLP(4, 5, 1, 1, seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4\)"):
        m(torch.randn(2, 5))
    with pytest.raises(ValueError, match="x must have 4 features"):
        m.check_input(torch.randn(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        m.check_input(torch.tensor([[0.0, float("nan"), 1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"masks\[1\] must have shape"):
        m.set_masks([torch.ones(5, 4, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool)])
    with pytest.raises(ValueError, match=r"masks\[0\] must be boolean"):
        m.set_masks([torch.full((5, 4), 0.5), torch.ones(1, 5)])
    with pytest.raises(ValueError, match="list of 2 tensors"):
        m.set_masks([torch.ones(5, 4)])


def test_from_sequential_rejects_non_mlp():
    with pytest.raises(ValueError, match="not an elementwise activation"):
        gf.MLP.from_sequential(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="no nn.Linear"):
        gf.MLP.from_sequential(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="module"):
        gf.MLP.from_sequential(np.zeros(3))


def test_activation_shared_by_name_and_function():
    assert gf.MLP(3, [4, 4], None, 1, activation=["relu", "relu"], seed=0).activation.name == "relu"
    seq = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1))
    assert gf.MLP.from_sequential(seq).activation.name == "tanh"
    assert gf.MLP.from_sequential(gf.fc(3, 4, 3, 2, seed=0)).activation.name == "relu"
    assert gf.MLP(3, [4, 4], None, 1, activation=[torch.sin, torch.sin], seed=0).activation.fn is torch.sin
    with pytest.raises(ValueError, match="per-layer activations"):
        gf.MLP(3, [4, 4], None, 1, activation=["relu", "tanh"], seed=0).activation
    with pytest.raises(ValueError, match="per-layer activations"):
        gf.MLP(3, [4, 4], None, 1, activation=[torch.sin, torch.cos], seed=0).activation


def test_masked_linear_initialises_itself():
    a = gf.MaskedLinear(300, 200, seed=5, dtype=torch.float64)
    b = gf.MaskedLinear(300, 200, seed=5, dtype=torch.float64)
    c = gf.MaskedLinear(300, 200, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.weight, c.weight)
    assert not torch.equal(a.weight, gf.MaskedLinear(300, 200, seed=6, dtype=torch.float64).weight)
    w = a.weight.detach()
    assert abs(float(w.mean())) < 0.01 and abs(float(w.std()) - 1.0) < 0.01  # N(0, 1)
    assert a.weight_scale == pytest.approx(1 / math.sqrt(300))
    assert bool(a.weight_mask.all())
    # forward is then the NTK layer: Var of each output ~ |x|^2 / fan_in
    x = torch.ones(300, dtype=torch.float64)
    assert abs(float(a(x).detach().var()) - 1.0) < 0.3
    with pytest.raises(TypeError, match="generator"):
        gf.MaskedLinear(3, 2, generator=5)


def test_seed_none_follows_global_rng():
    torch.manual_seed(11)
    a = gf.MLP(3, 4, 1, 1)
    torch.manual_seed(11)
    b = gf.MLP(3, 4, 1, 1)
    assert all(torch.equal(u, v) for u, v in zip(a.weights, b.weights))
    state = torch.get_rng_state()
    gf.MLP(3, 4, 1, 1, seed=3)
    assert torch.equal(state, torch.get_rng_state())  # an int seed leaves the global RNG alone


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.complex64])
def test_mlp_rejects_unsupported_dtype(dtype):
    with pytest.raises(ValueError, match="dtype"):
        gf.MLP(3, 4, 1, 1, seed=0, dtype=dtype)
    with pytest.raises(ValueError, match="dtype"):
        gf.MaskedLinear(3, 4, dtype=dtype)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: gf.fc(5, 3, 2**64, 3), "depth"),
        (lambda: gf.fc(5, 2**40, 2, 3), "width"),
        (lambda: gf.fc(2**40, 3, 2, 3), "input_dim"),
        (lambda: gf.fc(5, 3, 2, 2**40), "num_classes"),
        (lambda: gf.MLP(3, 4, 2**64, 1), "depth"),
        (lambda: gf.MLP(2**40, 4, 1, 1), "d_in"),
        (lambda: gf.MLP(3, 2**40, 1, 1), "width"),
        (lambda: gf.MLP(3, [4, 2**40], None, 1), r"width\[1\]"),
        (lambda: gf.MLP(3, 4, 1, 2**40), "d_out"),
        (lambda: gf.MLP(3, [8] * 2000, None, 1), "width"),
        (lambda: gf.MLP(3, 1 << 22, 4, 1), "parameters"),  # each size allowed, total too big
        (lambda: gf.MaskedLinear(1 << 22, 1 << 22), "MaskedLinear"),
    ],
)
def test_sizes_bounded_before_allocation(call, match):
    import time

    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        call()
    assert time.perf_counter() - t0 < 1.0
