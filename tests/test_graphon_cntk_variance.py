"""graphon_cntk with variance graphons E[w^2 m] beside the mask graphons (docs/graphon-cntk.md section 3)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from gntk_fast.graphon import StepGraphon
from gntk_fast.ntk import TapGraphons, graphon_cntk, graphon_cntk_reference

F64 = torch.float64


def rel(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())


def images(n, c, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=F64)


@pytest.mark.parametrize("readout", ["gap", "flatten"])
def test_unit_mask_constant_variance_is_trainable_all(readout):
    # M = 1 counts every weight as a parameter and V = c carries the signal: that is the net whose every
    # weight trains with variance c, i.e. trainable="all" with the graphon c (= c^L x the dense CNTK for ReLU)
    x = images(3, 2, 5, 5)
    L, c = 2, 0.3
    a = graphon_cntk([1.0] * (L + 1), x, variance_graphons=[c] * (L + 1), readout=readout, return_nngp=True)
    b = graphon_cntk([c] * (L + 1), x, trainable="all", readout=readout, return_nngp=True)
    dense = graphon_cntk([1.0] * (L + 1), x, readout=readout, return_nngp=True)
    assert rel(a.kernel, b.kernel) < 1e-12 and rel(a.nngp, b.nngp) < 1e-12
    assert rel(a.kernel, c**L * dense.kernel) < 1e-12
    assert rel(a.nngp, c ** (L + 1) * dense.nngp) < 1e-12
    # the mask graphon p with V = c: p counts the parameters once, c scales every covariance (ReLU)
    p = 0.6
    got = graphon_cntk([p] * (L + 1), x, variance_graphons=[c] * (L + 1), readout=readout)
    assert rel(got, p * c**L * dense.kernel) < 1e-12
    ref = graphon_cntk_reference([1.0] * (L + 1), x, variance_graphons=[c] * (L + 1), readout=readout)
    assert rel(ref, b.kernel) < 1e-12


def _mixed():
    rng = np.random.default_rng(1)
    gs = [rng.uniform(0.1, 0.9, (3, 2)), rng.uniform(0.1, 0.9, (9, 2, 3)), rng.uniform(0.1, 0.9, (2, 2))]
    vs = [rng.uniform(0.0, 2.5, (2, 2)), TapGraphons([rng.uniform(0.0, 2.0, (3, 4)) for _ in range(9)]),
          lambda u, v: 0.5 + 3 * u * v]
    return gs, vs


@pytest.mark.parametrize("backend", ["numba", "naive"])
@pytest.mark.parametrize("trainable, readout, padding", [("mask", "gap", "circular"), ("mask", "flatten", "same"),
                                                         ("all", "gap", "same"), ("all", "flatten", "circular")])
def test_backends_equal_twin_with_variance(backend, trainable, readout, padding):
    x = images(3, 2, 5, 5, seed=4)
    gs, vs = _mixed()
    kw = dict(variance_graphons=vs, trainable=trainable, readout=readout, padding=padding, K=6, n_outputs=2,
              return_nngp=True)
    ref = graphon_cntk_reference(gs, x, **kw)
    got = graphon_cntk(gs, x, backend=backend, **kw)
    assert rel(got.kernel, ref.kernel) < 1e-12 and rel(got.nngp, ref.nngp) < 1e-12
    rect = graphon_cntk(gs, x, x[:2], backend=backend, tile=2, **kw)
    assert rel(rect.kernel, ref.kernel[:, :2]) < 1e-12
    # the variance graphons matter
    other = graphon_cntk(gs, x, trainable=trainable, readout=readout, padding=padding, K=6, n_outputs=2,
                         backend=backend)
    assert rel(other, ref.kernel) > 1e-3


def test_variance_equal_to_graphons_changes_nothing():
    x = images(3, 1, 4, 4, seed=2)
    gs, _ = _mixed()
    gs = [g[:, :1] if i == 0 else g for i, g in enumerate(gs)]
    for tr in ("mask", "all"):
        a = graphon_cntk(gs, x, trainable=tr, K=6)
        b = graphon_cntk(gs, x, trainable=tr, K=6, variance_graphons=gs)
        assert rel(b, a) < 1e-13


def test_variance_errors_name_the_argument():
    x = images(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"variance_graphons\[1\]"):
        graphon_cntk([0.5, 0.5, 1.0], x, variance_graphons=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="variance_graphons must have depth \\+ 1 = 3"):
        graphon_cntk([0.5, 0.5, 1.0], x, variance_graphons=[1.0, 1.0])
    with pytest.raises(ValueError, match="graphons\\[0\\].*variance graphon"):
        graphon_cntk([StepGraphon([[2.0]], max_value=np.inf), 1.0], x)


def test_finite_conv_net_with_weight_variances_converges():
    """Masks M ~ Bernoulli(H) on two channel blocks, kept weights N(0, s^2) with a block profile s^2:
    E[w^2 m] = H s^2. The eNTK of the finite ConvNet approaches the kernel with V = H s^2 (signal) and
    M = H (parameter count) as the channels grow; without V it is the wrong limit. Measured (mean of 4
    nets): 0.27 at C = 16, 0.12 at 64, 0.027 at 256; the kernel without V is 0.41 away."""
    x = gf.data.load("digits", n=4, seed=0)[0].to(F64).reshape(4, 1, 8, 8)
    H = [np.array([[0.9], [0.4]]), np.array([[0.8, 0.3], [0.5, 0.7]]), np.array([[0.6, 0.9]])]
    S2 = [np.array([[2.0], [0.5]]), np.array([[1.5, 3.0], [0.25, 1.0]]), np.array([[2.0, 0.5]])]
    V = [h * s for h, s in zip(H, S2)]
    kw = dict(readout="flatten", padding="same")
    target = graphon_cntk(H, x, variance_graphons=V, **kw)
    no_var = graphon_cntk(H, x, **kw)
    errs = {}
    for C in (16, 256):
        ks = []
        for seed in range(4):  # one net's eNTK fluctuates in overall scale
            net = gf.ConvNet(1, C, 2, 1, kernel_size=3, padding="same", readout="flatten", image_size=8,
                             seed=seed + 10 * C, dtype=F64)
            g = torch.Generator().manual_seed(1000 * C + seed)
            masks = []
            for l, layer in enumerate(net.layers):
                shape = layer.weight.shape
                n_out, n_in = shape[0], shape[1] if l < 2 else C
                h = StepGraphon(H[l]).matrix(n_out, n_in)
                s = StepGraphon(S2[l], max_value=np.inf).matrix(n_out, n_in)
                if l < 2:  # conv (C_out, C_in, 3, 3): every tap of a channel pair with the pair's value
                    h, s = (np.broadcast_to(a[:, :, None, None], shape) for a in (h, s))
                else:  # flatten read-out (1, C * 64), channel-major: a channel's pixels share its value
                    h, s = np.repeat(h, 64, axis=1), np.repeat(s, 64, axis=1)
                masks.append(torch.bernoulli(torch.from_numpy(np.ascontiguousarray(h)), generator=g))
                with torch.no_grad():
                    layer.weight.mul_(torch.from_numpy(np.sqrt(np.ascontiguousarray(s))))
            net.set_masks(masks)
            ks.append(gf.empirical_ntk(net, x))
        mean = torch.stack(ks).mean(0)
        errs[C] = float(torch.linalg.norm(mean - target) / torch.linalg.norm(target))
    assert errs[256] < errs[16] / 2, errs
    assert errs[256] < 0.1, errs
    assert float(torch.linalg.norm(no_var - target) / torch.linalg.norm(target)) > 3 * errs[256], errs


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=st.floats(0.05, 1.0), c=st.floats(0.05, 4.0), L=st.integers(1, 3), readout=st.sampled_from(["gap", "flatten"]),
       seed=st.integers(0, 100))
def test_hypothesis_constant_graphons_closed_form(p, c, L, readout, seed):
    # ReLU, constant mask graphon p and variance graphon c: Theta = p c^L Theta_dense, NNGP = c^(L+1) NNGP_dense
    x = images(2, 1, 3, 3, seed=seed)
    dense = graphon_cntk([1.0] * (L + 1), x, readout=readout, return_nngp=True)
    got = graphon_cntk([p] * (L + 1), x, variance_graphons=[c] * (L + 1), readout=readout, return_nngp=True)
    assert rel(got.kernel, p * c**L * dense.kernel) < 1e-11
    assert rel(got.nngp, c ** (L + 1) * dense.nngp) < 1e-11


@pytest.mark.parametrize("readout, padding", [("flatten", "circular"), ("gap", "same")])
def test_one_input_channel_mask_kernel_is_a_multiple_of_the_dense_cntk(readout, padding):
    # one input channel, ReLU, trainable="mask": by induction Sigma^l_u = a_l(u) Sigma^l_dense and
    # Theta^l_u = a_l(u) Theta^l_dense with a_1(u) = W_1(u, 1/2), a_{l+1}(u) = int W_{l+1}(u, v) a_l(v) dv,
    # so Theta_W = (int r(v) a_L(v) dv / n_out) Theta_dense for ANY channel graphons (docs/graphon-cntk.md)
    x = images(3, 1, 4, 4, seed=7)
    rng = np.random.default_rng(3)
    gs = [rng.uniform(0.05, 1, (4, 1)), rng.uniform(0.05, 1, (3, 4)), rng.uniform(0.05, 1, (2, 3))]
    a = gs[0][:, 0]
    a = gs[1] @ a / 4  # uniform blocks: int over v is the mean over the K_in blocks
    scalar = float(gs[2].sum(0) @ a / 3) / 2
    dense = graphon_cntk([1.0] * 3, x, readout=readout, padding=padding, n_outputs=2)
    got = graphon_cntk(gs, x, readout=readout, padding=padding, n_outputs=2)
    assert rel(got, scalar * dense) < 1e-12
    # variance graphons other than the mask graphons break the proportionality
    vs = [g * rng.uniform(0.2, 5.0, g.shape) for g in gs]
    gv = graphon_cntk(gs, x, readout=readout, padding=padding, n_outputs=2, variance_graphons=vs)
    c = float((gv * dense).sum() / (dense * dense).sum())
    assert rel(gv, c * dense) > 1e-4


def test_per_tap_network_graphon_of_a_pruned_conv_net():
    # a per-tap network graphon (a list of k^2 step graphons per conv layer) and its variance graphons go to
    # graphon_cntk as they are; on uniform blocks they equal the (k^2, K, K) arrays of their block values
    from gntk_fast.pai import network_graphon

    net = gf.ConvNet(1, 8, 2, 3, kernel_size=3, image_size=5, seed=0, dtype=F64)
    gf.prune(net, "snip", 0.7, data=(images(8, 1, 5, 5, seed=1), torch.arange(8) % 3), seed=0, progress=False)
    ng = network_graphon(net.masks, K=4, taps="per-tap", weights=net.weights)
    x = images(2, 1, 5, 5, seed=2)

    def arrays(entries):
        out = []
        for i, g in enumerate(entries):
            if isinstance(g, list):
                out.append(np.stack([t.H for t in g]))
            else:
                out.append(g.H)
        return out

    kw = dict(n_outputs=3, readout="gap")
    got = graphon_cntk(ng, x, variance_graphons=ng.variance_graphons, **kw)
    want = graphon_cntk_reference(arrays(ng.graphons), x, variance_graphons=arrays(ng.variance_graphons), **kw)
    assert rel(got, want) < 1e-12
    with pytest.raises(ValueError, match="per-tap graphons"):
        graphon_cntk([ng.graphons[0], ng.graphons[1][:4], ng.graphons[2]], x, n_outputs=3)
