"""Tests of the analytic Graphon CNTK (docs/graphon-cntk.md)."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from _helpers import rel
from gntk_fast.ntk import TapGraphons, graphon_cntk, graphon_cntk_reference
from gntk_fast.ops import BackendError
from gntk_fast.ops.cntk_step import CNTK_STEP, cntk_step
from gntk_fast.spectral import loglog_slope

F64 = torch.float64


def images(n, c, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=F64)


# ----------------------------------------------------------------- an independent dense CNTK
def dense_cntk(X: np.ndarray, Y: np.ndarray, L: int, k: int, padding: str, readout: str):
    """Arora et al.'s CNTK (ReLU, no bias, NTK parameterisation) on the joint Gram of [X; Y].

    Covariances Sigma[n, m, ph, pw, qh, qw] over every pair of images and pixel
    pair; the conv is the k x k window average of the zero- or wrap-padded
    covariance along the diagonal direction (p + d, q + d). Returns (NTK, NNGP)
    of the X-Y block.
    """
    Z = np.concatenate([X, Y])
    n = len(X)
    N, C, H, W = Z.shape
    r = (k - 1) // 2

    def conv(S):
        mode = "wrap" if padding == "circular" else "constant"
        Sp = np.pad(S, [(0, 0), (0, 0), (r, r), (r, r), (r, r), (r, r)], mode=mode)
        out = np.zeros_like(S)
        for a in range(k):
            for b in range(k):
                out += Sp[:, :, a:a + H, b:b + W, a:a + H, b:b + W]
        return out / k**2

    sig = conv(np.einsum("ncab,mcde->nmabde", Z, Z) / C)
    theta = sig.copy()
    for layer in range(L):
        var = np.einsum("nnabab->nab", sig)  # Sigma[n, n, p, p]
        q11 = var[:, None, :, :, None, None]
        q22 = var[None, :, None, None, :, :]
        det = np.maximum(q11 * q22 - sig**2, 0.0)
        ang = np.arctan2(np.sqrt(det), sig)
        S = (np.sqrt(det) + (np.pi - ang) * sig) / (2 * np.pi)
        Sd = (np.pi - ang) / (2 * np.pi)
        if layer + 1 < L:
            sig = conv(S)
            theta = sig + conv(theta * Sd)
    P = H * W
    S, U = S.reshape(N, N, P, P), (theta * Sd).reshape(N, N, P, P)
    if readout == "gap":
        nngp, back = S.mean(axis=(2, 3)), U.mean(axis=(2, 3))
    else:
        nngp, back = np.einsum("nmpp->nmp", S).mean(2), np.einsum("nmpp->nmp", U).mean(2)
    ntk = nngp + back
    return ntk[:n, n:], nngp[:n, n:]


@pytest.mark.parametrize("padding", ["circular", "same"])
@pytest.mark.parametrize("readout", ["gap", "flatten"])
def test_all_ones_is_dense_cntk(padding, readout):
    X, Y = images(3, 2, 5, 4, 1), images(2, 2, 5, 4, 2)
    L = 3
    ntk, nngp = dense_cntk(X.numpy(), Y.numpy(), L, 3, padding, readout)
    ntk_xx, _ = dense_cntk(X.numpy(), X.numpy(), L, 3, padding, readout)
    for backend in ("numba", "naive"):
        got = graphon_cntk([1.0] * (L + 1), X, Y, padding=padding, readout=readout, backend=backend,
                           return_nngp=True)
        assert rel(got.kernel, torch.from_numpy(ntk)) < 1e-10
        assert rel(got.nngp, torch.from_numpy(nngp)) < 1e-10
        sym = graphon_cntk([1.0] * (L + 1), X, padding=padding, readout=readout, backend=backend)
        assert rel(sym, torch.from_numpy(ntk_xx)) < 1e-10
        assert torch.equal(sym, sym.T)
    # graphons equal to 1 in other forms (per-tap step, callable) take quadrature grids: same kernel
    ones = [np.ones((9, 2, 2)), lambda u, v: np.ones_like(u), TapGraphons([1.0] * 9), 1.0]
    got = graphon_cntk(ones, X, Y, padding=padding, readout=readout, K=5)
    assert rel(got, torch.from_numpy(ntk)) < 1e-10
    assert rel(graphon_cntk_reference(ones, X, Y, padding=padding, readout=readout, K=5), torch.from_numpy(ntk)) < 1e-10
    # "all" with graphons 1 is the same kernel
    assert rel(graphon_cntk([1.0] * (L + 1), X, Y, padding=padding, readout=readout, trainable="all"),
               torch.from_numpy(ntk)) < 1e-10


@pytest.mark.parametrize("readout", ["gap", "flatten"])
def test_constant_graphon_scaling(readout):
    X = images(4, 1, 4, 4, 3)
    for L in (1, 3):
        base = graphon_cntk([1.0] * (L + 1), X, readout=readout)
        for c in (0.3, 0.8):
            assert rel(graphon_cntk([c] * (L + 1), X, readout=readout), c ** (L + 1) * base) < 1e-12
            assert rel(graphon_cntk([c] * (L + 1), X, readout=readout, trainable="all"), c**L * base) < 1e-12


def lin(u, v):
    return 0.15 + 0.7 * u * v


def per_tap_fn(u, v, t):
    return 0.1 + 0.08 * t * (0.5 + 0.5 * u) * (1.0 - 0.5 * v)


def graphon_sets():
    rng = np.random.default_rng(5)
    return {
        "step-shared": [rng.random((3, 2)), rng.random((4, 3)), rng.random((1, 4))],
        "function-shared": [lambda u, v: 0.3 + 0.5 * u, lin, lambda u, v: 0.3 + 0.6 * v],
        "step-per-tap": [rng.random((9, 3, 2)), rng.random((9, 2, 3)), rng.random((2, 2))],
        "function-per-tap": [TapGraphons(per_tap_fn, kernel_size=3), TapGraphons([lin] * 4 + [0.5] + [lin] * 4), 0.9],
    }


@pytest.mark.parametrize("kind", ["step-shared", "function-shared", "step-per-tap", "function-per-tap"])
@pytest.mark.parametrize("padding", ["circular", "same"])
@pytest.mark.parametrize("readout", ["gap", "flatten"])
def test_fast_equals_twin(kind, padding, readout):
    gs = graphon_sets()[kind]
    X, Y = images(2, 2, 3, 4, 7), images(2, 2, 3, 4, 8)
    kw = dict(padding=padding, readout=readout, K=4, n_outputs=2)
    ref = graphon_cntk_reference(gs, X, Y, return_nngp=True, **kw)
    for backend in ("numba", "naive"):
        got = graphon_cntk(gs, X, Y, backend=backend, return_nngp=True, tile=3, **kw)
        assert rel(got.kernel, ref.kernel) < 1e-12
        assert rel(got.nngp, ref.nngp) < 1e-12


@pytest.mark.parametrize("kind", ["function-shared", "step-per-tap"])
def test_fast_equals_twin_trainable_all_symmetric(kind):
    gs = graphon_sets()[kind]
    X = images(3, 2, 3, 4, 9)
    for readout, padding in (("gap", "same"), ("flatten", "circular")):
        kw = dict(padding=padding, readout=readout, K=4, trainable="all")
        ref = graphon_cntk_reference(gs, X, **kw)
        for backend in ("numba", "naive"):
            got = graphon_cntk(gs, X, backend=backend, **kw)
            assert rel(got, ref) < 1e-12
            assert torch.equal(got, got.T)


def test_other_activations_and_kernel_sizes():
    X = images(2, 1, 3, 3, 9)
    gs = [0.7, lin, 0.8]
    kw = dict(K=3, readout="flatten", padding="same")
    ref = graphon_cntk_reference(gs, X, activation="erf", **kw)
    assert rel(graphon_cntk(gs, X, activation="erf", backend="naive", **kw), ref) < 1e-12
    ref = graphon_cntk_reference(gs, X, activation="tanh", quad_nodes=6, **kw)
    assert rel(graphon_cntk(gs, X, activation="tanh", quad_nodes=6, **kw), ref) < 1e-12  # auto: naive
    X = images(3, 1, 5, 5, 9)
    for k in (1, 5):
        gs = [0.7, 0.6, 0.8]
        assert rel(graphon_cntk(gs, X, kernel_size=k), graphon_cntk_reference(gs, X, kernel_size=k)) < 1e-12
    # float32 agrees to single precision
    gs = [0.7, lin, 0.8]
    g32 = graphon_cntk(gs, X, K=4, dtype=torch.float32, backend="naive")
    assert g32.dtype == torch.float32
    assert rel(g32.double(), graphon_cntk(gs, X, K=4)) < 1e-5
    with pytest.raises(BackendError, match="numba"):
        graphon_cntk(gs, X, activation="tanh", backend="numba")


def test_identical_inputs_rectangle_matches_symmetric():
    X = images(3, 1, 3, 4, 11)
    Y = torch.cat([X[2:], images(1, 1, 3, 4, 12), X[:1]])
    gs = [0.6, lin, 0.9]
    sym = graphon_cntk(gs, X, K=3)
    rect = graphon_cntk(gs, X, Y, K=3)
    assert torch.equal(rect[2, 0], sym[2, 2]) and torch.equal(rect[0, 2], sym[0, 0])
    assert rel(rect, graphon_cntk_reference(gs, X, Y, K=3)) < 1e-12


def test_cntk_step_entry_matches_backends():
    g = torch.Generator().manual_seed(0)
    B, E, K, T, P = 3, 6, 4, 9, 6
    Y = torch.rand(B, E, 2, T * K + 1, generator=g, dtype=F64)
    nbr = torch.randint(-1, E, (E, T), generator=g)
    e1 = torch.randint(0, P, (E,), generator=g)
    e2 = e1.clone()
    e2[:3] = torch.randint(0, P, (3,), generator=g)
    D = torch.rand(2, P, K, generator=g, dtype=F64) + 1.0
    ii, jj = torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1])
    same = ii == jj
    for trainable in ("mask", "all"):
        a = cntk_step(Y, nbr, e1, e2, D, D, ii, jj, same, groups=T, trainable=trainable, backend="numba")
        b = cntk_step(Y, nbr, e1, e2, D, D, ii, jj, same, groups=T, trainable=trainable, backend="naive")
        assert torch.allclose(a, b, rtol=1e-13, atol=1e-15)
    assert CNTK_STEP.names == ("numba", "naive")
    with pytest.raises(ValueError, match="groups"):
        cntk_step(Y, nbr, e1, e2, D, D, ii, jj, same, groups=2)
    with pytest.raises(ValueError, match="columns"):
        cntk_step(Y[..., :-1], nbr, e1, e2, D, D, ii, jj, same, groups=T)


# ----------------------------------------------------------------- the finite net converges
def _entk(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """eNTK of a masked ConvNet by a plain torch.func Jacobian: only kept weights are parameters
    (the masked entries get a zero gradient through weight * weight_mask)."""
    params = {k: v.detach() for k, v in net.named_parameters()}

    def f(p, xi):
        return torch.func.functional_call(net, p, (xi[None],))[0, 0]

    J = torch.func.vmap(torch.func.jacrev(f), in_dims=(None, 0))(params, x)
    J = torch.cat([j.reshape(x.shape[0], -1) for j in J.values()], dim=1)
    return J @ J.T


@pytest.mark.parametrize("readout, padding, measured", [("gap", "circular", "0.57, 0.19, 0.145 (slope -0.50)"),
                                                       ("flatten", "same", "0.23, 0.078, 0.060 (slope -0.48)")])
def test_finite_conv_net_converges_to_graphon_cntk(readout, padding, measured):
    """gf.ConvNet with masks sampled per tap from a non-constant channel graphon (the flatten read-out's
    mask per (output, channel, pixel) from the channel's read-out graphon value): its eNTK approaches
    graphon_cntk as the channels grow (relative error falls roughly like C^-1/2)."""
    x = gf.data.load("digits", n=4, seed=0)[0].to(F64).reshape(4, 1, 8, 8)
    g_in = lambda u, v: 0.4 + 0.5 * u  # noqa: E731
    g_out = lambda u, v: 0.3 + 0.6 * v  # noqa: E731
    limit = graphon_cntk([g_in, lin, g_out], x, K=32, readout=readout, padding=padding)
    errs = []
    for C in (16, 64, 256):
        e = []
        for seed in range(4):  # the eNTK of one net fluctuates a lot (its overall scale): 4 nets per width
            net = gf.ConvNet(1, C, 2, 1, kernel_size=3, padding=padding, readout=readout, image_size=8,
                             seed=seed + 10 * C, dtype=F64)
            g = torch.Generator().manual_seed(1000 * C + seed)
            u = (np.arange(C) + 0.5) / C
            out = g_out(np.full((1, 1), 0.5), u[None, :])  # (1, C)
            probs = [np.broadcast_to(g_in(u[:, None], np.full((1, 1), 0.5))[:, :, None, None], (C, 1, 3, 3)),
                     np.broadcast_to(lin(u[:, None], u[None, :])[:, :, None, None], (C, C, 3, 3)),
                     out if readout == "gap" else np.repeat(out, 64, axis=1)]  # flatten: (channel, row, col) order
            net.set_masks([torch.bernoulli(torch.from_numpy(np.ascontiguousarray(p)), generator=g) for p in probs])
            e.append(rel(_entk(net, x), limit))
        errs.append(float(np.mean(e)))
    slope = loglog_slope([16, 64, 256], errs)
    assert errs[0] > errs[1] > errs[2] and errs[2] < errs[0] / 2, (errs, measured)
    assert -0.9 < slope < -0.25, (errs, slope, measured)


# ----------------------------------------------------------------- bad input
def test_bad_input_names_the_argument():
    X = images(2, 1, 4, 4)
    gs = [0.5, 0.5, 1.0]
    with pytest.raises(ValueError, match="x1"):
        graphon_cntk(gs, X.reshape(2, 16))
    with pytest.raises(ValueError, match="x2"):
        graphon_cntk(gs, X, images(2, 2, 4, 4))
    with pytest.raises(ValueError, match="x1"):
        graphon_cntk(gs, torch.full((1, 1, 3, 3), float("nan")))
    with pytest.raises(ValueError, match="depth"):
        graphon_cntk(gs, X, depth=3)
    with pytest.raises(ValueError, match="at least 2"):
        graphon_cntk([0.5], X)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        graphon_cntk(gs, X, kernel_size=4)
    with pytest.raises(ValueError, match="kernel_size"):
        graphon_cntk(gs, X, kernel_size=10**9)
    with pytest.raises(ValueError, match="kernel_size"):
        graphon_cntk(gs, X, kernel_size=11, padding="circular")
    with pytest.raises(ValueError, match="padding"):
        graphon_cntk(gs, X, padding="valid")
    with pytest.raises(ValueError, match="readout"):
        graphon_cntk(gs, X, readout="max")
    with pytest.raises(ValueError, match="trainable"):
        graphon_cntk(gs, X, trainable="some")
    with pytest.raises(ValueError, match=r"graphons\[1\]"):
        graphon_cntk([0.5, 1.5, 1.0], X)
    with pytest.raises(ValueError, match=r"graphons\[0\].*kernel_size\^2"):
        graphon_cntk([np.ones((4, 2, 1)), 1.0], X)
    with pytest.raises(ValueError, match="read-out"):
        graphon_cntk([0.5, np.ones((9, 1, 1))], X)
    with pytest.raises(ValueError, match="TapGraphons"):
        graphon_cntk([TapGraphons([0.5] * 25), 1.0], X)
    with pytest.raises(ValueError, match="k\\^2"):
        TapGraphons([0.5] * 8)
    with pytest.raises(ValueError, match="kernel_size"):
        TapGraphons(per_tap_fn)
    with pytest.raises(ValueError, match="K"):
        graphon_cntk([lin, 1.0], X, K=0)
    with pytest.raises(ValueError, match="dtype"):
        graphon_cntk(gs, X, dtype=torch.int32)
    with pytest.raises(BackendError, match="backend"):
        graphon_cntk(gs, X, backend="cuda-magic")
    with pytest.raises(TypeError, match="graphons"):
        graphon_cntk(0.5, X)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 2), h=st.integers(1, 4), w=st.integers(1, 4),
       k=st.sampled_from([1, 3]), padding=st.sampled_from(["circular", "same"]),
       readout=st.sampled_from(["gap", "flatten"]), L=st.integers(1, 3), dens=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**16))
def test_hypothesis_entry_point(n, c, h, w, k, padding, readout, L, dens, seed):
    x = images(n, c, h, w, seed)
    gs = [dens] + [lin] * (L - 1) + [0.5]
    if padding == "circular" and (k - 1) // 2 > min(h, w):
        with pytest.raises(ValueError, match="kernel_size"):
            graphon_cntk(gs, x, kernel_size=k, padding=padding, readout=readout)
        return
    got = graphon_cntk(gs, x, kernel_size=k, padding=padding, readout=readout, K=3)
    assert got.shape == (n, n) and torch.isfinite(got).all()
    assert torch.equal(got, got.T)
    assert (torch.linalg.eigvalsh(got) > -1e-10 * max(1.0, float(got.abs().max()))).all()
    assert rel(got, graphon_cntk_reference(gs, x, kernel_size=k, padding=padding, readout=readout, K=3)) < 1e-10 \
        or float(got.norm()) == 0.0


def test_digits_with_identical_background_patches_match_twin():
    """Digits have identical background patches: pixel pairs with correlation exactly 1, where the ReLU
    angle turns a rounding difference of Sigma into ~1e-8; the fast path rounds like the twin."""
    x = gf.data.load("digits", n=3, seed=1)[0].to(F64).reshape(3, 1, 8, 8)
    gs = [lambda u, v: 0.4 + 0.5 * u, lin, 0.7]
    for readout in ("gap", "flatten"):
        ref = graphon_cntk_reference(gs, x, K=3, readout=readout)
        assert rel(graphon_cntk(gs, x, K=3, readout=readout), ref) < 1e-12


@pytest.mark.parametrize("tile", [None, 1])
@pytest.mark.parametrize("groups", [1, 9])
@pytest.mark.parametrize("padding", ["circular", "same"])
def test_variance_gather_adds_the_taps_in_order(groups, padding, tile, monkeypatch):
    """The variances' tap gather is the plain loop over the k^2 neighbours, bit for bit: the taps are
    added in order from 0 (the per-pair twin's order), zero where a tap reads the padding."""
    from gntk_fast.ntk._conv_grid import geometry
    from gntk_fast.ntk.conv import _gather

    if tile is not None:  # a working budget below one image: one image per chunk
        monkeypatch.setattr("gntk_fast.ntk.conv._TILE_BYTES", tile)
    H, W, k, K = 3, 4, 3, 2
    sh = geometry(H, W, k, padding, "flatten").diag
    g = torch.Generator().manual_seed(3)
    Y = torch.randn(2, H * W, groups * K + 1, generator=g, dtype=F64)
    want = np.zeros((2, H * W, K))
    Yn = Y.numpy()
    for n in range(2):
        for p in range(H * W):
            for t in range(k * k):
                q = sh[p, t]
                c0 = (t if groups > 1 else 0) * K
                want[n, p] += Yn[n, q, c0:c0 + K] if q >= 0 else 0.0
    want /= k * k
    assert np.array_equal(_gather(Y, torch.from_numpy(sh), groups, K).numpy(), want)


def test_variance_gather_stays_within_its_working_budget():
    """Many input-layer nodes (input_masks="bernoulli" multiplies them by 2^9) on 28 x 28 images: the
    gather works through chunks of images, never all k^2 neighbours of every image at once (measured
    as the peak resident memory of a child process)."""
    import subprocess
    import sys

    code = """
import resource, torch
from gntk_fast.ntk._conv_grid import geometry
from gntk_fast.ntk.conv import _gather
sh = torch.from_numpy(geometry(28, 28, 3, "circular", "flatten").diag)
Y = torch.ones(40, 784, 513, dtype=torch.float64)
out = torch.empty(40, 784, 512, dtype=torch.float64)
out.fill_(0.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = _gather(Y, sh, 1, 512)
assert bool((out == 1.0).all())
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""
    whole = 40 * 784 * 9 * 512 * 8  # every image's neighbours at once: 1.16 GB
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    grew = int(r.stdout.strip().splitlines()[-1])
    assert grew < whole / 2, (grew, whole)
