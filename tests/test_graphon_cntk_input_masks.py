"""graphon_cntk(input_masks="bernoulli"): the input layer averaged over its Bernoulli masks (docs/graphon-cntk.md).

A conv net's input layer has the finite fan-in C_0 k^2, so a channel's sampled mask does not average out inside
the dual activation: E_m[dual(Sigma_m)] != dual(E_m Sigma_m). The references here enumerate the masks by hand.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gntk_fast.ntk import TapGraphons, graphon_cntk, graphon_cntk_reference
from gntk_fast.ntk.conv import prepare_conv_grid

F64 = torch.float64


def rel(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=F64), torch.as_tensor(b, dtype=F64)
    return float((a - b).norm() / b.norm())


def images(n, c, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=F64)


def relu_dual(q11, q22, q12):
    """E[relu(z) relu(z')] and E[relu'(z) relu'(z')] for (z, z') ~ N(0, [[q11, q12], [q12, q22]])."""
    s = np.sqrt(q11 * q22)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(s > 0, np.clip(q12 / np.where(s > 0, s, 1.0), -1.0, 1.0), 1.0)
    th = np.arccos(cos)
    S = np.where(s > 0, s * (np.sin(th) + (np.pi - th) * cos) / (2 * np.pi), 0.0)
    Sd = np.where(s > 0, (np.pi - th) / (2 * np.pi), 0.0)
    return S, Sd


def gauss01(n):
    z, w = np.polynomial.legendre.leggauss(n)
    return (z + 1) / 2, w / 2


def patches(x, k, padding):
    """x (C, H, W) -> (P, C, k^2): x_j(p + delta_t), tap t = a k + b, 0 outside for "same"."""
    C, H, W = x.shape
    r = (k - 1) // 2
    xp = np.pad(x, [(0, 0), (r, r), (r, r)], mode="wrap" if padding == "circular" else "constant")
    out = np.empty((H * W, C, k * k))
    for a in range(k):
        for b in range(k):
            out[:, :, a * k + b] = xp[:, a:a + H, b:b + W].reshape(C, H * W).T
    return out


def one_layer_reference(X, W1, R, k, padding, readout, nodes=8, per_tap=False):
    """Theta of a one-conv-layer net (trainable="mask", ReLU) with the input layer's masks enumerated:
    Theta(x, x') = avg over the read-out's pixel pairs of int R(v) E_m[S + Sd Sigma_m](p, q) dv with
    Sigma_m(p, q) = 1/(C_0 k^2) sum_{j, t} m_jt x_j(p + delta_t) x'_j(q + delta_t) and the bits m_jt
    independent Bernoulli(W1(v, (j - 1/2)/C_0))."""
    N, C0 = X.shape[:2]
    bits = C0 * k * k
    masks = np.array(list(itertools.product([0.0, 1.0], repeat=bits))).reshape(-1, C0, k * k)
    u, wu = gauss01(nodes)
    vj = (np.arange(C0) + 0.5) / C0
    if per_tap:  # W1(u, v, t)
        p_keep = np.array([[[W1(ui, v, t) for t in range(k * k)] for v in vj] for ui in u])  # (nodes, C0, k^2)
    else:  # every tap alike
        p_keep = np.array([[[W1(ui, v)] * (k * k) for v in vj] for ui in u])
    prob = np.prod(np.where(masks[None] == 1, p_keep[:, None], 1 - p_keep[:, None]), axis=(2, 3))  # (nodes, masks)
    weight = (wu * np.array([R(0.5, ui) for ui in u])) @ prob  # int R(v) P(m | v) dv, per mask
    pt = [patches(x, k, padding) for x in X]  # (P, C0, k^2) each
    P = pt[0].shape[0]
    diag = [np.einsum("pjt,mjt->mp", a * a, masks) / bits for a in pt]  # Sigma_m[x, x](p, p): (masks, P)
    theta = np.zeros((N, N))
    pairs = [(p, p) for p in range(P)] if readout == "flatten" else list(itertools.product(range(P), range(P)))
    pi, qi = np.array(pairs).T
    for i in range(N):
        for j in range(N):
            q12 = np.einsum("ejt,mjt->me", pt[i][pi] * pt[j][qi], masks) / bits  # (masks, pairs)
            S, Sd = relu_dual(diag[i][:, pi], diag[j][:, qi], q12)
            theta[i, j] = weight @ (S + Sd * q12).mean(1)
    return theta


@pytest.mark.parametrize("k, C0, padding, readout", [(3, 1, "same", "flatten"), (3, 1, "circular", "gap"),
                                                     (1, 3, "same", "gap"), (3, 1, "same", "gap")])
def test_one_layer_matches_hand_enumeration(k, C0, padding, readout):
    X = images(2, C0, 3, 3, seed=k + C0)
    W1 = lambda u, v: 0.15 + 0.5 * u + 0.3 * v  # noqa: E731
    R = lambda u, v: 0.3 + 0.6 * v  # noqa: E731
    ref = one_layer_reference(X.numpy(), W1, R, k, padding, readout)
    # the integrand is a polynomial of degree C_0 k^2 + 1 <= 10 in v: 8 Gauss-Legendre nodes are exact
    kw = dict(kernel_size=k, padding=padding, readout=readout, K=8)
    got = graphon_cntk([W1, R], X, input_masks="bernoulli", **kw)
    assert rel(got, ref) < 1e-10
    # the mean-graphon input layer is a different kernel: the masks do not average out in a finite fan-in
    assert rel(graphon_cntk([W1, R], X, **kw), ref) > 1e-3


def test_per_tap_graphons_match_hand_enumeration():
    """Per-tap input graphons: one probability per tap, some taps always or never kept (only the others are
    enumerated), callables of u among them."""
    X = images(2, 1, 3, 3, seed=12)
    taps = [lambda u, v: 0.3 + 0.4 * u, 1.0, 0.0, lambda u, v: 0.8 - 0.5 * u, 1.0, 0.5, 0.0, 1.0,
            lambda u, v: 0.2 + 0.6 * u * u]
    fn = lambda u, v, t: taps[t](u, v) if callable(taps[t]) else taps[t]  # noqa: E731
    R = lambda u, v: 0.3 + 0.6 * v  # noqa: E731
    for padding, readout in (("same", "flatten"), ("circular", "gap")):
        ref = one_layer_reference(X.numpy(), fn, R, 3, padding, readout, per_tap=True)
        got = graphon_cntk([TapGraphons(taps), R], X, padding=padding, readout=readout, K=8,
                           input_masks="bernoulli")
        assert rel(got, ref) < 1e-10
        assert rel(graphon_cntk([TapGraphons(taps), R], X, padding=padding, readout=readout, K=8), ref) > 1e-3


def test_two_layers_k1_matches_hand_enumeration():
    """k = 1 (pixels decouple), C_0 = 2, a hidden layer with a callable graphon: the hidden layer's integral
    reads the mask-averaged S and Sd Theta of every input-layer position."""
    X = images(3, 2, 2, 3, seed=4).numpy()
    W1 = lambda u, v: 0.2 + 0.6 * u * v  # noqa: E731
    W2 = lambda u, v: 0.1 + 0.8 * (u - v) ** 2  # noqa: E731
    R = lambda u, v: 0.4 + 0.5 * v  # noqa: E731
    masks = np.array(list(itertools.product([0.0, 1.0], repeat=2)))  # (4, C0)
    v1, w1 = gauss01(30)
    v2, w2 = gauss01(30)
    pk = W1(v1[:, None], np.array([0.25, 0.75])[None, :])  # (nodes, C0)
    prob = np.prod(np.where(masks[None] == 1, pk[:, None], 1 - pk[:, None]), axis=2)  # (nodes, masks)
    N, P = X.shape[0], X.shape[2] * X.shape[3]
    Z = X.reshape(N, 2, P)
    sig = np.einsum("mj,ajp,bjp->mabp", masks, Z, Z) / 2  # Sigma^1_m[a, b](p)
    var = np.einsum("maap->map", sig)
    S1, Sd1 = relu_dual(var[:, :, None], var[:, None, :], sig)
    ES = np.einsum("vm,mabp->vabp", prob, S1)  # E_m over the masks at each first-layer position
    EU = np.einsum("vm,mabp->vabp", prob, Sd1 * sig)
    W = W2(v2[:, None], v1[None, :]) * w1[None, :]
    sig2 = np.einsum("uv,vabp->uabp", W, ES)
    th2 = sig2 + np.einsum("uv,vabp->uabp", W, EU)
    var2 = np.einsum("uaap->uap", sig2)
    S2, Sd2 = relu_dual(var2[:, :, None], var2[:, None, :], sig2)
    r = R(0.5, v2) * w2
    ref = np.einsum("u,uabp->ab", r, S2 + Sd2 * th2) / P
    got = graphon_cntk([W1, W2, R], torch.from_numpy(X), kernel_size=1, readout="flatten", K=30,
                       input_masks="bernoulli")
    assert rel(got, ref) < 1e-9


def test_zero_one_graphons_and_dense_are_unchanged():
    X = images(3, 1, 4, 4, seed=2)
    for gs in ([1.0, 1.0, 1.0], [np.array([[1.0], [0.0], [1.0]]), lambda u, v: 0.2 + 0.5 * u * v, 0.7]):
        for readout in ("gap", "flatten"):
            a = graphon_cntk(gs, X, readout=readout, K=8)
            b = graphon_cntk(gs, X, readout=readout, K=8, input_masks="bernoulli")
            assert rel(b, a) < 1e-13


@pytest.mark.parametrize("readout, padding", [("gap", "same"), ("flatten", "circular")])
def test_fast_equals_twin(readout, padding):
    X, Y = images(2, 1, 3, 4, 7), images(2, 1, 3, 4, 8)
    first = TapGraphons([lambda u, v: 0.2 + 0.6 * u, 1.0, 0.0, 0.5, 1.0, lambda u, v: 0.7 - 0.5 * u, 1.0, 0.0, 1.0])
    gs = [first, lambda u, v: 0.15 + 0.7 * u * v, lambda u, v: 0.3 + 0.6 * v]
    kw = dict(padding=padding, readout=readout, K=4, n_outputs=2, input_masks="bernoulli")
    for trainable in ("mask", "all"):
        ref = graphon_cntk_reference(gs, X, Y, return_nngp=True, trainable=trainable, **kw)
        for backend in ("numba", "naive"):
            got = graphon_cntk(gs, X, Y, backend=backend, return_nngp=True, tile=3, trainable=trainable, **kw)
            assert rel(got.kernel, ref.kernel) < 1e-12
            assert rel(got.nngp, ref.nngp) < 1e-12


def test_bad_input_names_the_argument():
    X = images(2, 1, 4, 4)
    with pytest.raises(ValueError, match="input_masks"):
        graphon_cntk([0.5, 1.0], X, input_masks="exact")
    with pytest.raises(ValueError, match="input_masks"):
        graphon_cntk([0.5, 1.0], images(1, 2, 4, 4), input_masks="bernoulli")  # 2 * 9 = 18 bits
    with pytest.raises(ValueError, match="input_masks"):
        prepare_conv_grid([0.5, 1.0], 1, kernel_size=5, input_masks="bernoulli")
    for f in (graphon_cntk, graphon_cntk_reference):  # the input layer's kept weights have no law per mask
        with pytest.raises(ValueError, match="variance_graphons"):
            f([0.5, 1.0], X, input_masks="bernoulli", variance_graphons=[0.5, 1.0])


def test_sampled_nets_average_to_the_bernoulli_kernel():
    """One conv layer: the expected eNTK at any channel count C is the input-mask-averaged kernel (the channels
    are independent given nothing else), so the mean over nets approaches it; the mean-graphon kernel stays
    about 4 % away (measured at C = 1024, 16 nets: 0.007 against 0.045, sampling error 0.008)."""
    from gntk_fast.experiments.conv_checks import conv_kernel_mean_convergence

    rows = conv_kernel_mean_convergence([1024], 12, depth=1, readout="flatten", padding="same", n_images=3,
                                        kinds=("non-constant",), progress=False)
    err = {r["input_masks"]: r["err_mean"] for r in rows}
    se = rows[0]["se_mean"]
    assert err["bernoulli"] < max(3 * se, 0.02), (err, se)
    assert err["mean"] > 0.03 and err["mean"] > 2.5 * err["bernoulli"], (err, se)
    with pytest.raises(ValueError, match="nets"):
        conv_kernel_mean_convergence([8], 1, progress=False)
    with pytest.raises(ValueError, match="kind"):
        conv_kernel_mean_convergence([8], 2, kinds=("wavy",), progress=False)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 2), h=st.integers(1, 3), w=st.integers(1, 3),
       k=st.sampled_from([1, 3]), padding=st.sampled_from(["circular", "same"]),
       readout=st.sampled_from(["gap", "flatten"]), L=st.integers(1, 2), dens=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**16))
def test_hypothesis_entry_point(n, c, h, w, k, padding, readout, L, dens, seed):
    x = images(n, c, h, w, seed)
    gs = [lambda u, v: dens * (0.2 + 0.8 * u)] + [0.6] * (L - 1) + [0.5]
    kw = dict(kernel_size=k, padding=padding, readout=readout, K=2, input_masks="bernoulli")
    if c * k * k > 16:
        with pytest.raises(ValueError, match="input_masks"):
            graphon_cntk(gs, x, **kw)
        return
    if padding == "circular" and (k - 1) // 2 > min(h, w):
        with pytest.raises(ValueError, match="kernel_size"):
            graphon_cntk(gs, x, **kw)
        return
    got = graphon_cntk(gs, x, **kw)
    assert got.shape == (n, n) and torch.isfinite(got).all() and torch.equal(got, got.T)
    assert (torch.linalg.eigvalsh(got) > -1e-10 * max(1.0, float(got.abs().max()))).all()
    ref = graphon_cntk_reference(gs, x, **kw)
    assert float(got.norm()) == 0.0 == float(ref.norm()) or rel(got, ref) < 1e-10
