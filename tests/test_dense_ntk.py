"""The dense_ntk operation (every graphon constant) and graphon_ntk's use of it."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gntk_fast.ntk import graphon_ntk, graphon_ntk_reference
from gntk_fast.ops import BackendError
from gntk_fast.ops.dense_ntk import OP, dense_ntk

F64 = torch.float64


def rel(a, b) -> float:
    return float((a.to(F64) - b.to(F64)).norm() / b.to(F64).norm())


def inputs(n, d, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype)


def with_duplicates(seed=0):
    """x1 (9, 6) with a repeated row; x2 (5, 6) sharing a row with x1."""
    X, Y = inputs(9, 6, seed), inputs(5, 6, seed + 1)
    X[6] = X[2]
    Y[3] = X[2]
    return X, Y


def relu_terms(X: np.ndarray, Y: np.ndarray, L: int) -> list[np.ndarray]:
    """Independent numpy recursion of the dense bias-free ReLU NTK (unit variances).

    Returns the L + 1 terms of Theta = T_1 + ... + T_{L+1}: T_{L+1} is the
    output NNGP, T_l = Sigma^l o Sd^l o ... o Sd^L (the gradient of layer l's
    weights)."""
    Z = np.concatenate([X, Y])
    sig = Z @ Z.T / Z.shape[1]
    sigmas, dots = [sig], []
    for _ in range(L):
        var = np.diag(sig).copy()
        cos = np.clip(sig / np.sqrt(np.outer(var, var)), -1.0, 1.0)
        ang = np.arccos(cos)
        new = np.sqrt(np.outer(var, var)) * (np.sin(ang) + (math.pi - ang) * cos) / (2 * math.pi)
        dots.append((math.pi - ang) / (2 * math.pi))
        sigmas.append(new)
        sig = new
    terms = []
    for l in range(L):
        t = sigmas[l].copy()
        for m in range(l, L):
            t = t * dots[m]
        terms.append(t)
    terms.append(sigmas[L])
    n = len(X)
    return [t[:n, n:] for t in terms]


# ----------------------------------------------------------------- every backend against the twin
@pytest.mark.parametrize("act,dtype", [("relu", F64), ("erf", F64), ("relu", torch.float32)])
@pytest.mark.parametrize("trainable", ["mask", "all"])
def test_numba_backend_equals_naive_twin(act, dtype, trainable):
    X, Y = with_duplicates(3)
    X, Y = X.to(dtype), Y.to(dtype)
    v, c = [0.4, 1.3, 0.7, 2.1], [0.3, 0.9, 0.5, 1.2]
    tol = 1e-12 if dtype == F64 else 1e-5
    for x2 in (None, Y):
        kw = dict(own_scales=c, activation=act, trainable=trainable, n_outputs=3, return_nngp=True)
        got = dense_ntk(X, x2, v, backend="numba", **kw)
        want = dense_ntk(X, x2, v, backend="naive", **kw)
        assert got.kernel.dtype == dtype and got.kernel.shape == (9, 9 if x2 is None else 5)
        assert rel(got.kernel, want.kernel) < tol and rel(got.nngp, want.nngp) < tol
        if x2 is None:
            assert torch.equal(got.kernel, got.kernel.T) and torch.equal(got.nngp, got.nngp.T)
            assert torch.equal(want.kernel, want.kernel.T)


@pytest.mark.parametrize("backend", sorted(OP.backends))
def test_identical_inputs_take_the_diagonal_bit_for_bit(backend):
    X, Y = with_duplicates(5)
    K = dense_ntk(X, None, [1.0] * 5, backend=backend).kernel
    assert K[2, 6] == K[2, 2] == K[6, 6] == K[6, 2]
    R = dense_ntk(X, Y, [1.0] * 5, backend=backend).kernel
    assert R[2, 3] == K[2, 2] and R[6, 3] == K[2, 2]


# ----------------------------------------------------------------- closed forms (docs/graphon-ntk.md)
@pytest.mark.parametrize("backend", sorted(OP.backends))
def test_relu_scale_factors_closed_forms(backend):
    L = 3
    X, Y = inputs(6, 5, 7), inputs(4, 5, 8)
    T = relu_terms(X.numpy(), Y.numpy(), L)
    dense = sum(T)
    v, c = [0.5, 1.7, 0.8, 1.4], [0.3, 0.9, 0.6, 0.7]
    V = math.prod(v)
    mask = dense_ntk(X, Y, v, own_scales=c, backend=backend, return_nngp=True)
    want = V * sum((c[l] / v[l]) * T[l] for l in range(L + 1))
    assert rel(mask.kernel, torch.from_numpy(want)) < 1e-12
    assert rel(mask.nngp, torch.from_numpy(V * T[L])) < 1e-12
    allw = dense_ntk(X, Y, v, own_scales=c, backend=backend, trainable="all").kernel
    assert rel(allw, torch.from_numpy(sum((V / v[l]) * T[l] for l in range(L + 1)))) < 1e-12
    # one constant c on every layer: c^(L+1) and c^L times the dense NTK
    cst = 0.35
    assert rel(dense_ntk(X, Y, [cst] * (L + 1), backend=backend).kernel, torch.from_numpy(cst ** (L + 1) * dense)) < 1e-12
    assert rel(dense_ntk(X, Y, [cst] * (L + 1), backend=backend, trainable="all").kernel,
               torch.from_numpy(cst**L * dense)) < 1e-12


def test_quadrature_rule_of_the_twin_equals_closed_form():
    X = inputs(5, 4, 9)
    closed = dense_ntk(X, None, [0.8, 1.0, 0.6], backend="naive").kernel
    quad = dense_ntk(X, None, [0.8, 1.0, 0.6], backend="naive", dual="quadrature", quad_nodes=48).kernel
    assert rel(quad, closed) < 1e-10


# ----------------------------------------------------------------- graphon_ntk takes it for constant graphons
CONST = [0.3, 0.7, 0.5, 0.9]
VAR = [0.5, 1.3, 0.2, 2.0]


def _callable(cs):
    return [lambda u, v, c=c: np.full(np.broadcast(u, v).shape, c) for c in cs]


@pytest.mark.parametrize("act", ["relu", "erf"])
@pytest.mark.parametrize("trainable", ["mask", "all"])
@pytest.mark.parametrize("variance", [False, True])
def test_graphon_ntk_constant_graphons_equal_general_path_and_reference(act, trainable, variance):
    X, Y = with_duplicates(11)
    kw = dict(activation=act, trainable=trainable, n_outputs=2, return_nngp=True)
    for x2 in (None, Y):
        got = graphon_ntk(CONST, X, x2, variance_graphons=VAR if variance else None, **kw)
        # constant callables take the quadrature grid (K nodes per layer) and the tiled general path
        gen = graphon_ntk(_callable(CONST), X, x2, K=5, variance_graphons=_callable(VAR) if variance else None, **kw)
        assert rel(got.kernel, gen.kernel) < 1e-12 and rel(got.nngp, gen.nngp) < 1e-12
        ref = graphon_ntk_reference(CONST, X, x2, variance_graphons=VAR if variance else None, **kw)
        assert rel(got.kernel, ref.kernel) < 1e-12 and rel(got.nngp, ref.nngp) < 1e-12


@pytest.mark.parametrize("trainable", ["mask", "all"])
def test_graphon_ntk_constant_graphons_without_closed_form(trainable):
    """tanh (polar quadrature, naive twin) through the dense recursion equals the tiled path."""
    X, Y = inputs(4, 3, 17), inputs(3, 3, 18)
    kw = dict(activation="tanh", trainable=trainable, n_outputs=2, quad_nodes=8)
    for x2 in (None, Y):
        got = graphon_ntk(CONST, X, x2, variance_graphons=VAR, **kw)
        gen = graphon_ntk(_callable(CONST), X, x2, K=2, variance_graphons=_callable(VAR), **kw)
        assert rel(got, gen) < 1e-12


def test_graphon_ntk_one_node_grids_from_step_graphons():
    """1 x m block matrices (constant over the hidden nodes) give one node per layer too."""
    d = 6
    X = inputs(7, d, 13)
    gs = [np.full((1, d), 0.6), np.full((1, 1), 0.8), 0.7, np.full((2, 1), 0.5)]
    got = graphon_ntk(gs, X, n_outputs=2)
    ref = graphon_ntk_reference(gs, X, n_outputs=2)
    assert rel(got, ref) < 1e-12
    # an input graphon that varies over the pixels has one node but is not a constant layer: general path
    gs2 = [np.linspace(0.2, 1.0, d)[None, :], 0.8, 0.7, 0.5]
    assert rel(graphon_ntk(gs2, X), graphon_ntk_reference(gs2, X)) < 1e-12


# ----------------------------------------------------------------- bad input
def test_dense_ntk_rejects_bad_arguments_by_name():
    X = inputs(4, 3)
    with pytest.raises(ValueError, match="scales"):
        dense_ntk(X, None, [1.0, -0.5])
    with pytest.raises(ValueError, match="scales"):
        dense_ntk(X, None, [1.0])
    with pytest.raises(ValueError, match="scales"):
        dense_ntk(X, None, [1.0, float("nan")])
    with pytest.raises(ValueError, match="own_scales"):
        dense_ntk(X, None, [1.0, 1.0], own_scales=[1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="scales"):
        dense_ntk(X, None, "ab")
    with pytest.raises(ValueError, match="x2"):
        dense_ntk(X, inputs(2, 4), [1.0, 1.0])
    with pytest.raises(ValueError, match="x2"):
        dense_ntk(X, inputs(2, 3, dtype=torch.float32), [1.0, 1.0])
    with pytest.raises(TypeError, match="x1"):
        dense_ntk(X.numpy(), None, [1.0, 1.0])
    with pytest.raises(ValueError, match="x1"):
        dense_ntk(X.to(torch.int64), None, [1.0, 1.0])
    with pytest.raises(ValueError, match="trainable"):
        dense_ntk(X, None, [1.0, 1.0], trainable="some")
    with pytest.raises(ValueError, match="n_outputs"):
        dense_ntk(X, None, [1.0, 1.0], n_outputs=0)
    with pytest.raises(BackendError, match="numba"):
        dense_ntk(X, None, [1.0, 1.0], activation="tanh", backend="numba")
    with pytest.raises(BackendError, match="backend"):
        dense_ntk(X, None, [1.0, 1.0], backend="cpp")


def test_graphon_ntk_constant_fast_path_keeps_the_checks():
    X = inputs(4, 3)
    for kw, match in [(dict(K=0), "K"), (dict(n_outputs=0), "n_outputs"), (dict(quadrature="simpson"), "quadrature"),
                      (dict(depth=5), "depth"), (dict(tile=0), "tile")]:
        with pytest.raises(ValueError, match=match):
            graphon_ntk([1.0] * 4, X, **kw)
    with pytest.raises(ValueError, match=r"graphons\[1\]"):
        graphon_ntk([1.0, 1.5, 1.0], X)
    with pytest.raises(ValueError, match="variance_graphons"):
        graphon_ntk([1.0] * 3, X, variance_graphons=[1.0, -1.0, 1.0])


# ----------------------------------------------------------------- property
@settings(max_examples=25, deadline=None)
@given(n1=st.integers(1, 6), n2=st.integers(1, 5), d=st.integers(1, 5), L=st.integers(1, 4),
       scales=st.lists(st.floats(0.0, 3.0), min_size=5, max_size=5), sym=st.booleans(),
       trainable=st.sampled_from(["mask", "all"]), seed=st.integers(0, 2**16))
def test_property_dense_ntk(n1, n2, d, L, scales, sym, trainable, seed):
    X = inputs(n1, d, seed)
    Y = None if sym else inputs(n2, d, seed + 1)
    v = scales[: L + 1]
    got = dense_ntk(X, Y, v, trainable=trainable, backend="numba", return_nngp=True)
    want = dense_ntk(X, Y, v, trainable=trainable, backend="naive", return_nngp=True)
    assert got.kernel.shape == (n1, n1 if sym else n2)
    assert torch.isfinite(got.kernel).all() and torch.isfinite(got.nngp).all()
    scale = max(1.0, float(want.kernel.abs().max()))
    assert float((got.kernel - want.kernel).abs().max()) <= 1e-12 * scale
    assert float((got.nngp - want.nngp).abs().max()) <= 1e-12 * max(1.0, float(want.nngp.abs().max()))
    # ReLU's E[relu(z) relu(z')] is >= 0 entrywise
    assert float(got.nngp.min()) >= -1e-12 * max(1.0, float(want.nngp.abs().max()))


def test_blocks_of_rows_and_progress_bar(monkeypatch, capsys):
    """Calls longer than one block run in blocks of rows with a progress bar; same kernel."""
    from gntk_fast.ops.dense_ntk import numba as nb

    X, Y = with_duplicates(21)
    X = torch.cat([X, inputs(8, 6, 22)])  # 17 rows: an odd count, so the middle row of the triangle is alone
    want = dense_ntk(X, None, [0.7, 1.1, 0.9], backend="naive", return_nngp=True)
    want2 = dense_ntk(X, Y, [0.7, 1.1, 0.9], backend="naive").kernel
    monkeypatch.setattr(nb, "_BLOCK_PAIRS", 20)
    got = dense_ntk(X, None, [0.7, 1.1, 0.9], backend="numba", return_nngp=True, progress=True)
    assert "graphon_ntk pairs" in capsys.readouterr().err
    assert rel(got.kernel, want.kernel) < 1e-12 and rel(got.nngp, want.nngp) < 1e-12
    assert torch.equal(got.kernel, got.kernel.T)
    assert rel(dense_ntk(X, Y, [0.7, 1.1, 0.9], backend="numba", progress=False).kernel, want2) < 1e-12


def test_symmetric_gram_in_row_blocks():
    """N >= 256 with x2 = x1: the upper triangle by blocks of rows (identical rows in different blocks)."""
    from gntk_fast.ops.dense_ntk.numba import gram

    X = inputs(300, 4, 23)
    X[250] = X[10]
    G = torch.from_numpy(gram(X, None))
    full = X @ X.T
    assert torch.allclose(torch.triu(G), torch.triu(full), rtol=1e-13, atol=1e-13)
    got = dense_ntk(X, None, [0.9, 1.2, 0.8], backend="numba").kernel
    want = dense_ntk(X, None, [0.9, 1.2, 0.8], backend="naive").kernel
    assert rel(got, want) < 1e-12 and torch.equal(got, got.T)
    assert got[10, 250] == got[10, 10] == got[250, 250]


def test_gram_row_blocks_on_a_thread_pool_per_process(monkeypatch):
    """With two threads the row blocks run on a pool; a process with another id (a forked child,
    which has none of its parent's threads) gets its own pool."""
    from gntk_fast.ops.dense_ntk import numba as nb

    monkeypatch.setattr(nb, "threads_for", lambda work: 2)
    X = inputs(300, 5, 29)
    full = torch.triu(X @ X.T)
    assert torch.allclose(torch.triu(torch.from_numpy(nb.gram(X, None))), full, rtol=1e-13, atol=1e-13)
    pool = nb._POOLS[(nb.os.getpid(), 2)]
    monkeypatch.setattr(nb.os, "getpid", lambda: -1)
    assert torch.allclose(torch.triu(torch.from_numpy(nb.gram(X, None))), full, rtol=1e-13, atol=1e-13)
    assert nb._POOLS[(-1, 2)] is not pool
    nb._POOLS.pop((-1, 2)).shutdown()
