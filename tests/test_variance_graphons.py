"""graphon_ntk with variance graphons E[w^2 m] beside the mask graphons, and
network graphons (one order per hidden layer)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gntk_fast as gf
from _helpers import rel
from gntk_fast.graphon import ConstantGraphon, StepGraphon
from gntk_fast.pai.network import network_graphon, ordered_block_means
from gntk_fast.ntk import graphon_ntk, graphon_ntk_reference


@pytest.fixture(scope="module")
def x():
    g = torch.Generator().manual_seed(3)
    return torch.randn(5, 6, generator=g, dtype=torch.float64)


def test_constant_variance_closed_forms(x):
    # ReLU is positively homogeneous: V = c scales every forward covariance by c
    # per layer and every backward one likewise, while the mask graphon p counts
    # the parameters once: Theta = p c^L Theta_dense (mask convention).
    L = 3
    dense = graphon_ntk([1.0] * (L + 1), x)
    for p, c in [(1.0, 0.37), (0.6, 0.37), (0.5, 2.5)]:
        got = graphon_ntk([p] * (L + 1), x, variance_graphons=[c] * (L + 1))
        assert rel(got, p * c**L * dense, norm="max") < 1e-12
    # M = 1, V = c is the network whose every weight trains with variance c:
    # the "all" convention with the graphon c (docs/graphon-ntk.md section 4, fact 2: c^L Theta_dense)
    a = graphon_ntk([1.0] * (L + 1), x, variance_graphons=[0.3] * (L + 1))
    b = graphon_ntk([0.3] * (L + 1), x, trainable="all")
    assert rel(a, b, norm="max") < 1e-12


def test_variance_equal_to_graphons_changes_nothing(x):
    rng = np.random.default_rng(0)
    gs = [rng.uniform(0.1, 0.9, (4, 6)), rng.uniform(0.1, 0.9, (3, 4)), rng.uniform(0.1, 0.9, (1, 3))]
    for tr in ("mask", "all"):
        a = graphon_ntk(gs, x, trainable=tr, return_nngp=True)
        b = graphon_ntk(gs, x, trainable=tr, variance_graphons=gs, return_nngp=True)
        assert rel(b.kernel, a.kernel, norm="max") < 1e-13 and rel(b.nngp, a.nngp, norm="max") < 1e-13


@pytest.mark.parametrize("backend", ["numba", "naive"])
@pytest.mark.parametrize("trainable", ["mask", "all"])
def test_backends_match_reference_with_variance(x, backend, trainable):
    rng = np.random.default_rng(1)
    gs = [rng.uniform(0.1, 0.9, (4, 6)), rng.uniform(0.1, 0.9, (3, 4)), rng.uniform(0.1, 0.9, (5, 3)),
          rng.uniform(0.1, 0.9, (1, 5))]
    vs = [rng.uniform(0.0, 2.5, (2, 6)), rng.uniform(0.0, 2.0, (4, 2)), lambda u, v: 0.5 + 3 * u * v,
          rng.uniform(0.0, 3.0, (1, 3))]
    ref = graphon_ntk_reference(gs, x, variance_graphons=vs, trainable=trainable, K=16, return_nngp=True)
    got = graphon_ntk(gs, x, variance_graphons=vs, trainable=trainable, K=16, return_nngp=True, backend=backend)
    assert rel(got.kernel, ref.kernel, norm="max") < 1e-12
    assert rel(got.nngp, ref.nngp, norm="max") < 1e-12
    rect = graphon_ntk(gs, x, x[:3], variance_graphons=vs, trainable=trainable, K=16, backend=backend, tile=4)
    assert rel(rect, ref.kernel[:, :3], norm="max") < 1e-12
    # the variance graphons matter: a different V gives a different kernel
    other = graphon_ntk(gs, x, trainable=trainable, K=16, backend=backend)
    assert rel(other, ref.kernel, norm="max") > 1e-3


def test_finite_pruned_net_converges_to_variance_kernel():
    # masks M ~ Bernoulli(H), kept weights w ~ N(0, s^2) with a block profile s^2:
    # E[w^2 m] = H s^2. The eNTK of the finite net approaches the analytic kernel
    # with V = H s^2 (forward/backward) and M = H (parameter count) as width grows.
    d, L = 8, 2
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, d, generator=g, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True) * d**0.5
    H = [np.array([[0.9] * d, [0.3] * d]), np.array([[0.8, 0.2], [0.4, 0.6]]), np.array([[0.7, 0.3]])]
    S2 = [np.array([[2.0] * d, [0.5] * d]), np.array([[1.5, 3.0], [0.25, 1.0]]), np.array([[2.0, 0.5]])]
    V = [h * s for h, s in zip(H, S2)]
    target = graphon_ntk(H, x, variance_graphons=V)
    no_var = graphon_ntk(H, x)
    errs = {}
    for n in (64, 1024):
        ks = []
        for seed in range(3):
            model = gf.MLP(d, n, L, seed=seed, dtype=torch.float64)
            masks = []
            for l, layer in enumerate(model.layers):
                n_out, n_in = layer.weight.shape
                h = StepGraphon(H[l])
                masks.append(torch.from_numpy(h.sample(n_out, n_in, seed=100 * seed + l)))
                s = StepGraphon(S2[l], max_value=float("inf")).matrix(n_out, n_in)
                with torch.no_grad():
                    layer.weight.mul_(torch.from_numpy(np.sqrt(s)))
            model.set_masks(masks)
            ks.append(gf.empirical_ntk(model, x))
        mean = torch.stack(ks).mean(0)
        errs[n] = float(torch.linalg.norm(mean - target) / torch.linalg.norm(target))
    assert errs[1024] < errs[64] / 2.0, errs
    assert errs[1024] < 0.1, errs
    # and the kernel without the variance graphons is the wrong limit
    assert float(torch.linalg.norm(no_var - target) / torch.linalg.norm(target)) > 5 * errs[1024]


def test_variance_graphon_objects_and_errors(x):
    v = StepGraphon([[2.0, 0.5]], max_value=float("inf"))
    assert v.evaluate(0.5, 0.2) == 2.0
    with pytest.raises(ValueError, match="variance graphon"):
        v.sample(4, 4, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        StepGraphon([[2.0]])
    with pytest.raises(ValueError, match="max_value"):
        StepGraphon([[0.5]], max_value=3.0)
    with pytest.raises(ValueError, match="graphons\\[1\\].*variance graphon"):
        graphon_ntk([1.0, v], x)
    with pytest.raises(ValueError, match="variance_graphons\\[0\\]"):
        graphon_ntk([1.0, 1.0], x, variance_graphons=[-1.0, 1.0])
    with pytest.raises(ValueError, match="variance_graphons must have depth \\+ 1 = 2"):
        graphon_ntk([1.0, 1.0], x, variance_graphons=[1.0, 1.0, 1.0])
    assert ConstantGraphon(4.0, max_value=np.inf).integrate() == 4.0


# ------------------------------------------------------------- network graphons
def _chain_masks(n, d, seed, perm_seed=None):
    """Masks sampled from known decreasing graphons, hidden neurons optionally
    permuted consistently (rows of M^l and columns of M^{l+1})."""
    f_in = lambda u, v: 0.9 - 0.6 * u  # noqa: E731
    f_hid = lambda u, v: 0.95 * (1 - 0.6 * u) * (1 - 0.6 * v)  # noqa: E731
    f_out = lambda u, v: 0.9 - 0.7 * v  # noqa: E731
    gs = [gf.graphon.FunctionGraphon(f) for f in (f_in, f_hid, f_out)]
    ms = [gs[0].sample(n, d, seed=seed), gs[1].sample(n, n, seed=seed + 1), gs[2].sample(1, n, seed=seed + 2)]
    if perm_seed is not None:
        rng = np.random.default_rng(perm_seed)
        p1, p2 = rng.permutation(n), rng.permutation(n)
        ms = [ms[0][p1], ms[1][np.ix_(p2, p1)], ms[2][:, p2]]
    return gs, ms


def test_network_graphon_recovers_a_permuted_network():
    n, d, K = 1200, 64, 6
    gs, ms = _chain_masks(n, d, seed=4, perm_seed=9)
    ng = network_graphon(ms, K=K)
    # the true block means of the graphons on the same blocks
    e = np.arange(K + 1) / K
    mid = lambda lo, hi: np.linspace(lo, hi, 41)[1:-1:2]  # noqa: E731
    true_hid = np.array([[np.mean(0.95 * (1 - 0.6 * mid(e[a], e[a + 1]))[:, None]
                                  * (1 - 0.6 * mid(e[b], e[b + 1]))[None, :]) for b in range(K)] for a in range(K)])
    assert np.max(np.abs(ng.H(1) - true_hid)) < 0.05
    true_in = np.array([np.mean(0.9 - 0.6 * mid(e[a], e[a + 1])) for a in range(K)])
    assert np.max(np.abs(ng.H(0).mean(1) - true_in)) < 0.03  # per pixel: 200 rows a block, noise ~0.035
    assert ng.H(0).shape == (K, d) and ng.H(2).shape == (1, K)
    # one order per hidden layer: layer 1's order sorts M^1's rows AND M^2's columns
    o1 = ng.orders[0]
    assert np.all(np.diff(ms[0].sum(1)[o1]) <= 0)
    # the analytic kernel of the joint estimate is close to the true network's
    x = torch.randn(4, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert rel(graphon_ntk(ng, x), graphon_ntk(gs, x, K=64), norm="max") < 0.03


def test_network_graphon_orders_are_shared_where_per_mask_sas_is_not():
    # a hidden layer whose in-degree order is the reverse of its out-degree order:
    # per-mask SAS sorts it one way as rows and the other way as columns; the
    # joint estimate keeps one order, so the read-out sees the anti-correlation
    n, d = 400, 64
    u = (np.arange(n) + 0.5) / n
    rng = np.random.default_rng(0)
    m1 = (rng.random((n, d)) < (0.9 - 0.8 * u)[:, None]).astype(np.uint8)
    m2 = (rng.random((1, n)) < (0.1 + 0.8 * u)[None, :]).astype(np.uint8)
    ng = network_graphon([m1, m2], K=4)
    read = ng.H(1)[0]
    assert read[0] < 0.3 and read[-1] > 0.7  # high fan-in neurons have low fan-out
    own = ng.per_mask[1].H[0]
    assert own[0] > 0.7  # the per-mask SAS re-sorted the columns by their own degree
    assert ng.difference[1] > 0.3


def test_network_graphon_variance_and_block_means():
    n, d = 50, 4
    _, ms = _chain_masks(n, d, seed=1)
    w = [np.full(m.shape, 2.0) for m in ms]
    ng = network_graphon(ms, K=5, weights=w)
    for l in range(3):
        np.testing.assert_allclose(ng.variance_graphons[l].H, 4.0 * ng.graphons[l].H, rtol=0, atol=1e-15)
    # ordered_block_means against an explicit loop
    rng = np.random.default_rng(2)
    vals = rng.random((7, 9))
    ro, co = rng.permutation(7), rng.permutation(9)
    re, ce = np.array([0, 2, 5, 7]), np.array([0, 4, 9])
    got = ordered_block_means(vals, ro, co, re, ce)
    v = vals[ro][:, co]
    want = np.array([[v[re[a]:re[a + 1], ce[b]:ce[b + 1]].mean() for b in range(2)] for a in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # graphon_ntk accepts the variance graphons of a network graphon
    x = torch.randn(3, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    k = graphon_ntk(ng, x, variance_graphons=ng.variance_graphons)
    assert torch.isfinite(k).all()


def test_network_graphon_errors():
    m1, m2 = np.ones((4, 3), np.uint8), np.ones((1, 5), np.uint8)
    with pytest.raises(ValueError, match="chain"):
        network_graphon([m1, m2])
    with pytest.raises(ValueError, match="at least 2"):
        network_graphon([m1])
    ok2 = np.ones((1, 4), np.uint8)
    with pytest.raises(ValueError, match="orders\\[0\\] must be a permutation"):
        network_graphon([m1, ok2], orders=[np.array([0, 0, 1, 2])])
    with pytest.raises(ValueError, match="weights\\[1\\] has shape"):
        network_graphon([m1, ok2], weights=[np.ones((4, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="0 and 1"):
        network_graphon([m1 * 2, ok2])
    with pytest.raises(ValueError, match="order"):
        network_graphon([m1, ok2], order="random")


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(p=st.floats(0.05, 1.0), c=st.floats(0.05, 4.0), depth=st.integers(1, 4))
def test_property_constant_graphons(p, c, depth):
    # mask graphon p, variance graphon c on every layer: p c^L times the dense kernel
    x = torch.tensor([[1.0, 0.5, -0.3], [0.2, -1.0, 0.7]], dtype=torch.float64)
    dense = graphon_ntk([1.0] * (depth + 1), x)
    got = graphon_ntk([p] * (depth + 1), x, variance_graphons=[c] * (depth + 1))
    assert rel(got, p * c**depth * dense, norm="max") < 1e-11


@pytest.mark.parametrize("tile", [1, 3, 4, 7, None])
def test_rectangle_sharing_rows_with_x1_matches_symmetric_kernel(x, tile):
    # pairs of identical inputs sit at correlation 1, where the arc-cosine dual's
    # derivative is infinite: x2 that shares rows with x1 (in any order), or a
    # repeated row, must give the symmetric kernel's values, whatever the tiling
    rng = np.random.default_rng(4)
    gs = [rng.uniform(0.1, 0.9, (4, 6)), lambda u, v: 0.2 + 0.7 * u * v, rng.uniform(0.1, 0.9, (1, 5))]
    vs = [rng.uniform(0.0, 2.5, (2, 6)), lambda u, v: 0.5 + 3 * u * v, rng.uniform(0.0, 3.0, (1, 3))]
    for tr in ("mask", "all"):
        full = graphon_ntk(gs, x, variance_graphons=vs, trainable=tr, K=16)
        ref = graphon_ntk_reference(gs, x, variance_graphons=vs, trainable=tr, K=16)
        assert rel(full, ref, norm="max") < 1e-13
        cols = [3, 0, 3]
        rect = graphon_ntk(gs, x, x[cols], variance_graphons=vs, trainable=tr, K=16, tile=tile)
        assert rel(rect, ref[:, cols], norm="max") < 1e-13
        rep = x[[0, 1, 0, 2, 1]]
        k_rep = graphon_ntk(gs, rep, variance_graphons=vs, trainable=tr, K=16, tile=tile)
        assert rel(k_rep, ref[[0, 1, 0, 2, 1]][:, [0, 1, 0, 2, 1]], norm="max") < 1e-13
