"""Hypothesis property tests of gntk_fast.MLP: forward against a by-hand numpy
recursion in float64, set_masks validation, and the to_sequential /
from_sequential round trip."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf as np_erf
from torch import nn

import gntk_fast as gf

NP_ACT = {
    "relu": lambda z: np.maximum(z, 0.0),
    "erf": np_erf,
    "tanh": np.tanh,
    "identity": lambda z: z,
}


@st.composite
def mlp_configs(draw):
    depth = draw(st.integers(min_value=0, max_value=3))
    hidden = draw(st.lists(st.integers(min_value=1, max_value=7), min_size=depth, max_size=depth))
    per_layer = draw(st.booleans())
    if per_layer:
        act = draw(st.lists(st.sampled_from(sorted(NP_ACT)), min_size=depth, max_size=depth))
    else:
        act = draw(st.sampled_from(sorted(NP_ACT)))
    return dict(
        d_in=draw(st.integers(min_value=1, max_value=6)),
        hidden=hidden,
        d_out=draw(st.integers(min_value=1, max_value=3)),
        activation=act,
        bias=draw(st.booleans()),
        parameterization=draw(st.sampled_from(["ntk", "standard"])),
        w_std=draw(st.floats(min_value=0.25, max_value=2.0)),
        b_std=draw(st.floats(min_value=0.0, max_value=1.5)),
        seed=draw(st.integers(min_value=0, max_value=2**31 - 1)),
        density=draw(st.floats(min_value=0.0, max_value=1.0)),
        n=draw(st.integers(min_value=1, max_value=5)),
    )


def build(cfg) -> gf.MLP:
    m = gf.MLP(
        cfg["d_in"],
        cfg["hidden"],
        None,
        cfg["d_out"],
        activation=cfg["activation"],
        bias=cfg["bias"],
        parameterization=cfg["parameterization"],
        w_std=cfg["w_std"],
        b_std=cfg["b_std"],
        seed=cfg["seed"],
        dtype=torch.float64,
    )
    g = torch.Generator().manual_seed(cfg["seed"] + 1)
    m.set_masks([torch.rand(w.shape, generator=g, dtype=torch.float64) < cfg["density"] for w in m.weights])
    return m


def hand_forward(cfg, m: gf.MLP, x: np.ndarray) -> np.ndarray:
    """docs/graphon-ntk.md section 1, written out with numpy:
    ntk:      z = w_std/sqrt(fan_in) (W*M) h + b_std b,   W, b ~ N(0, 1)
    standard: z = (W*M) h + b,                             W ~ N(0, w_std^2/fan_in), b ~ N(0, b_std^2)
    """
    widths = [cfg["d_in"], *cfg["hidden"], cfg["d_out"]]
    acts = cfg["activation"] if isinstance(cfg["activation"], list) else [cfg["activation"]] * len(cfg["hidden"])
    h = x
    for l in range(len(widths) - 1):
        layer = m.layers[l]
        W = layer.weight.detach().numpy() * layer.weight_mask.numpy()
        ntk = cfg["parameterization"] == "ntk"
        z = h @ W.T * (cfg["w_std"] / math.sqrt(widths[l]) if ntk else 1.0)
        if cfg["bias"]:
            z = z + layer.bias.detach().numpy() * (cfg["b_std"] if ntk else 1.0)
        h = NP_ACT[acts[l]](z) if l < len(acts) else z
    return h


@settings(max_examples=25, deadline=None)
@given(cfg=mlp_configs())
def test_forward_matches_hand_recursion(cfg):
    m = build(cfg)
    assert m.widths == [cfg["d_in"], *cfg["hidden"], cfg["d_out"]] and m.depth == len(cfg["hidden"])
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["d_in"]))
    out = m(torch.from_numpy(x))
    assert out.dtype == torch.float64 and out.shape == (cfg["n"], cfg["d_out"])
    np.testing.assert_allclose(out.detach().numpy(), hand_forward(cfg, m, x), rtol=1e-12, atol=1e-12)
    # a single input (d_in,) gives (d_out,), the same as its batch row
    single = m(torch.from_numpy(x[0]))
    assert single.shape == (cfg["d_out"],)
    np.testing.assert_allclose(single.detach().numpy(), out[0].detach().numpy(), rtol=1e-12, atol=1e-12)
    # the initialisation scale lives where the parameterization says
    for layer, n_in in zip(m.layers, m.widths[:-1]):
        want = cfg["w_std"] / math.sqrt(n_in) if cfg["parameterization"] == "ntk" else 1.0
        assert layer.weight_scale == pytest.approx(want, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(cfg=mlp_configs())
def test_masked_weights_do_not_matter(cfg):
    """Changing weights where the mask is False leaves the function unchanged;
    changing one kept weight of the output layer changes it."""
    m = build(cfg)
    x = torch.from_numpy(np.random.default_rng(cfg["seed"]).standard_normal((cfg["n"], cfg["d_in"])))
    before = m(x).detach().clone()
    with torch.no_grad():
        for layer in m.layers:
            layer.weight.add_(torch.where(layer.weight_mask, 0.0, 100.0))
    torch.testing.assert_close(m(x), before, rtol=0, atol=0)
    last = m.layers[-1]
    kept = last.weight_mask.nonzero()
    # the change is visible when the kept weight's input activation is non-zero
    h = x
    for l, layer in enumerate(m.layers[:-1]):
        h = m.activations[l](layer(h))
    for i, j in kept.tolist():
        if bool((h[:, j].abs() > 1e-3).any()):
            with torch.no_grad():
                last.weight[i, j] += 1.0
            assert not torch.allclose(m(x), before, rtol=1e-9, atol=0)
            break


@settings(max_examples=25, deadline=None)
@given(cfg=mlp_configs(), data=st.data())
def test_set_masks_validation(cfg, data):
    m = build(cfg)
    original = [mk.clone() for mk in m.masks]
    shapes = [tuple(w.shape) for w in m.weights]
    L = len(shapes)
    i = data.draw(st.integers(min_value=0, max_value=L - 1))
    good = [torch.ones(s, dtype=torch.bool) for s in shapes]

    # wrong number of masks
    k = data.draw(st.integers(min_value=0, max_value=L + 2).filter(lambda v: v != L))
    with pytest.raises(ValueError, match=rf"masks must be a list of {L} tensors"):
        m.set_masks([torch.ones(shapes[j % L], dtype=torch.bool) for j in range(k)])

    # wrong shape for mask i
    r, c = shapes[i]
    bad_shape = data.draw(st.sampled_from([(r + 1, c), (r, c + 1), (c, r) if r != c else (r + 2, c)]))
    masks = list(good)
    masks[i] = torch.ones(bad_shape, dtype=torch.bool)
    with pytest.raises(ValueError, match=rf"masks\[{i}\] must have shape"):
        m.set_masks(masks)

    # values other than 0/1, NaN, wrong rank, not a tensor
    bad_value = data.draw(st.sampled_from([0.5, 2.0, -1.0, float("nan")]))
    masks = list(good)
    masks[i] = torch.ones(shapes[i], dtype=torch.float64)
    masks[i][0, 0] = bad_value
    with pytest.raises(ValueError, match=rf"masks\[{i}\]"):
        m.set_masks(masks)
    masks = list(good)
    masks[i] = torch.ones(shapes[i][0] * shapes[i][1], dtype=torch.bool)
    with pytest.raises(ValueError, match=rf"masks\[{i}\] must have 2 dimensions"):
        m.set_masks(masks)
    masks = list(good)
    masks[i] = [[True] * c] * r
    with pytest.raises(TypeError, match=rf"masks\[{i}\]"):
        m.set_masks(masks)

    # every failure above left the masks untouched (validation before copying)
    assert all(torch.equal(a, b) for a, b in zip(m.masks, original))

    # 0/1 floats, ints and numpy arrays are accepted and equal their boolean form
    g = torch.Generator().manual_seed(cfg["seed"] + 7)
    target = [torch.rand(s, generator=g) < 0.5 for s in shapes]
    form = data.draw(st.sampled_from(["float", "int", "numpy"]))
    conv = {
        "float": lambda t: t.to(torch.float32),
        "int": lambda t: t.to(torch.int64),
        "numpy": lambda t: t.numpy().astype(np.uint8),
    }[form]
    m.set_masks([conv(t) for t in target])
    assert all(mk.dtype == torch.bool and torch.equal(mk, t) for mk, t in zip(m.masks, target))
    assert m.density() == pytest.approx(sum(int(t.sum()) for t in target) / sum(t.numel() for t in target))


@settings(max_examples=25, deadline=None)
@given(cfg=mlp_configs())
def test_sequential_round_trip(cfg):
    m = build(cfg)
    x = torch.from_numpy(np.random.default_rng(cfg["seed"] + 3).standard_normal((cfg["n"], cfg["d_in"])))
    seq = m.to_sequential()
    # plain torch: Linear layers pruned the torch.nn.utils.prune way
    lins = [mod for mod in seq if isinstance(mod, nn.Linear)]
    assert len(lins) == len(m.layers)
    for lin, mk in zip(lins, m.masks):
        assert hasattr(lin, "weight_orig") and torch.equal(lin.weight_mask != 0, mk)
    torch.testing.assert_close(seq(x), m(x), rtol=1e-12, atol=1e-12)

    back = gf.MLP.from_sequential(seq)
    assert back.parameterization == "standard"
    assert back.widths == m.widths
    assert all(torch.equal(a, b) for a, b in zip(back.masks, m.masks))
    torch.testing.assert_close(back(x), m(x), rtol=1e-12, atol=1e-12)
    # the named activations survive the trip (closed-form derivatives stay available)
    assert [a.name for a in back.activations] == [a.name for a in m.activations]
    z = torch.linspace(-2, 2, 11, dtype=torch.float64)
    for a, b in zip(back.activations, m.activations):
        torch.testing.assert_close(a.grad(z), b.grad(z))
    # and again: the function is a fixed point of the round trip
    again = gf.MLP.from_sequential(back.to_sequential())
    torch.testing.assert_close(again(x), m(x), rtol=1e-12, atol=1e-12)
