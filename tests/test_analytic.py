"""Tests of the analytic Graphon NTK (docs/graphon-ntk.md sections 3 and 4)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from _helpers import rel
from gntk_fast.graphon.objects import FunctionGraphon, InputGraphon, StepGraphon
from gntk_fast.ntk import graphon_ntk, graphon_ntk_reference
from gntk_fast.spectral import loglog_slope
from gntk_fast.activations import erf_dual, relu_dual
from gntk_fast.ntk import GraphonNTK
from gntk_fast.ops import BackendError
from gntk_fast.ops.dual import DUAL, pair_dual, plan_dual
from gntk_fast.ops.dual import naive as dual_naive
from gntk_fast.ops.dual.quadrature import hermite_dual, quadrature_dual

F64 = torch.float64


def inputs(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64)


def standard_relu_ntk(X: torch.Tensor, Y: torch.Tensor, L: int) -> torch.Tensor:
    """Dense ReLU NTK, NTK parameterization, no bias, L hidden layers (independent recursion).

    On the Gram matrix of Z = [X; Y]: Sigma^1 = Z Z^T / d; per layer the
    arc-cosine map of Sigma (variances from its own diagonal) and
    Theta <- Sigma_new + Theta * dot-Sigma. Returns the X-Y block.
    """
    Z = X if Y is X else torch.cat([X, Y])
    sig = Z @ Z.T / Z.shape[1]
    theta = sig.clone()
    for _ in range(L):
        var = torch.diagonal(sig)
        sin = torch.sqrt(torch.clamp(var[:, None] * var[None, :] - sig**2, min=0.0))
        ang = torch.atan2(sin, sig)
        new = (sin + (math.pi - ang) * sig) / (2 * math.pi)
        theta = new + theta * (math.pi - ang) / (2 * math.pi)
        sig = new
    return theta if Y is X else theta[: len(X), len(X):]


def lin(u, v):
    return 0.15 + 0.7 * u * v


def readout(u, v):
    return 0.3 + 0.6 * v + 0.0 * u


# ----------------------------------------------------------------- docs/graphon-ntk.md 4.1, 4.2
@pytest.mark.parametrize("L", [1, 2, 4])
@pytest.mark.parametrize("backend", ["naive", "numba", "reference"])
def test_all_ones_is_standard_ntk(L, backend):
    if backend == "reference":
        fn = graphon_ntk_reference
    else:
        def fn(*a, **k):
            return graphon_ntk(*a, backend=backend, **k)
    X, Y = inputs(9, 7, 1), inputs(5, 7, 2)
    std_sym = standard_relu_ntk(X, X, L)
    got = fn([1.0] * (L + 1), X)
    assert rel(got, std_sym) < 1e-10
    assert torch.equal(got, got.T)
    got2 = fn([np.ones((3, 7))] + [lambda u, v: np.ones_like(u)] * (L - 1) + [1.0], X, Y, K=8)
    assert rel(got2, standard_relu_ntk(X, Y, L)) < 1e-10
    # "all" with all-ones graphons is the same kernel
    assert rel(fn([1.0] * (L + 1), X, trainable="all"), std_sym) < 1e-10


@pytest.mark.parametrize("L", [1, 3])
@pytest.mark.parametrize("c", [0.3, 0.75])
def test_constant_graphon_scaling(L, c):
    X = inputs(6, 5, 3)
    std = standard_relu_ntk(X, X, L)
    mask = graphon_ntk([c] * (L + 1), X)
    allw = graphon_ntk([c] * (L + 1), X, trainable="all")
    assert rel(mask, c ** (L + 1) * std) < 1e-12
    assert rel(allw, c**L * std) < 1e-12
    # the NNGP of the output scales like c^(L+1) in both conventions
    res = graphon_ntk([c] * (L + 1), X, return_nngp=True)
    res1 = graphon_ntk([1.0] * (L + 1), X, return_nngp=True)
    assert isinstance(res, GraphonNTK) and torch.equal(res.kernel, mask)
    assert rel(res.nngp, c ** (L + 1) * res1.nngp) < 1e-12


# ----------------------------------------------------------------- docs/graphon-ntk.md 4.3
def _finite_width_error(gs, X, L, widths, seeds, trainable, n_outputs=1):
    ref = graphon_ntk(gs, X, K=64, trainable=trainable, n_outputs=n_outputs)
    d = X.shape[1]
    errs = []
    for n in widths:
        e = []
        for seed in seeds:
            m = gf.MLP(d, n, L, n_outputs, activation="relu", bias=False, seed=seed, dtype=F64)
            w = m.widths
            m.set_masks([torch.from_numpy(gs[l].sample(w[l + 1], w[l], seed=1000 * seed + l)) for l in range(L + 1)])
            th = gf.empirical_ntk(m, X, trainable=trainable)
            e.append(rel(th, ref))
        errs.append(float(np.mean(e)))
    return np.array(errs)


@pytest.mark.parametrize("trainable", ["mask", "all"])
def test_finite_width_converges_like_inverse_sqrt_width(trainable):
    """The setting of docs/graphon-ntk.md 4.3: d = 32, L = 3, six inputs of norm sqrt(d); measured earlier
    0.33, 0.16, 0.09 at widths 128, 512, 2048."""
    d, L = 32, 3
    gs = [FunctionGraphon(lin)] * L + [FunctionGraphon(readout)]
    X = inputs(6, d, 0)
    X = X / X.norm(dim=1, keepdim=True) * math.sqrt(d)
    widths = [128, 512, 2048]
    errs = _finite_width_error(gs, X, L, widths, range(4), trainable)
    slope = loglog_slope(widths, errs)
    assert -0.65 <= slope <= -0.35, (errs, slope)
    assert 0.05 < errs[-1] < 0.12 and 0.2 < errs[0] < 0.5, errs


def test_finite_width_converges_with_several_outputs():
    """k = 2 outputs, traced: the read-out graphon is evaluated at u_c = (c - 1/2)/k."""
    d, L = 12, 2
    ro = FunctionGraphon(lambda u, v: 0.1 + 0.8 * u**3 * (1 - v))
    gs = [FunctionGraphon(lin), FunctionGraphon(lin), ro]
    X = inputs(4, d, 5)
    errs = _finite_width_error(gs, X, L, [128, 2048], range(3), "mask", n_outputs=2)
    assert errs[1] < 0.6 * errs[0] and errs[1] < 0.12, errs
    # a wrong output position (u = 1/2 for both outputs) is visibly off at width 2048
    assert rel(graphon_ntk(gs, X, K=48, n_outputs=2), 2 * graphon_ntk(gs, X, K=48, n_outputs=1)) > 0.05


# ----------------------------------------------------------------- duals / quadrature
def _cov_samples():
    g = torch.Generator().manual_seed(7)
    a = torch.rand(40, generator=g, dtype=F64) * 3
    b = torch.rand(40, generator=g, dtype=F64) * 3
    rho = torch.rand(40, generator=g, dtype=F64) * 2 - 1
    rho[:4] = torch.tensor([1.0, -1.0, 0.0, 0.999999])
    a[4], b[5] = 0.0, 0.0
    return a, b, rho * torch.sqrt(a * b)


@pytest.mark.parametrize("name,closed", [("relu", relu_dual), ("erf", erf_dual)])
def test_quadrature_equals_closed_forms(name, closed):
    q11, q22, q12 = _cov_samples()
    S, Sd = closed(q11, q22, q12)
    Sq, Sdq = quadrature_dual(name, q11, q22, q12, 32)
    assert (S - Sq).abs().max() < 1e-6
    assert (Sd - Sdq).abs().max() < 1e-6


def test_gauss_hermite_rule_smooth_only():
    """The plain 2-D Gauss-Hermite rule converges for erf but stalls at relu's kink;
    the default polar rule is exact to round-off for both (see gntk_fast.ops.dual.quadrature)."""
    q11, q22, q12 = _cov_samples()
    S, Sd = erf_dual(q11, q22, q12)
    err = [max((S - a).abs().max().item(), (Sd - b).abs().max().item())
           for a, b in (hermite_dual("erf", q11, q22, q12, n) for n in (16, 48))]
    assert err[1] < 1e-4 and err[1] < 1e-2 * err[0]
    S, Sd = relu_dual(q11, q22, q12)
    Sh, Sdh = hermite_dual("relu", q11, q22, q12, 48)
    assert (Sd - Sdh).abs().max() > 1e-3
    X = inputs(4, 6, 8)
    a = graphon_ntk([lin, 0.7, readout], X, activation="erf", K=8)
    assert rel(graphon_ntk([lin, 0.7, readout], X, activation="erf", K=8, dual="hermite", quad_nodes=48), a) < 1e-5


def test_quadrature_path_of_graphon_ntk_equals_closed_form():
    X = inputs(5, 6, 8)
    gs = [lin, np.array([[0.9, 0.2], [0.4, 0.7]]), readout]
    for act in ("relu", "erf"):
        for tr in ("mask", "all"):
            a = graphon_ntk(gs, X, activation=act, trainable=tr, K=12)
            b = graphon_ntk(gs, X, activation=act, trainable=tr, K=12, dual="quadrature", quad_nodes=32)
            assert rel(b, a) < 1e-6


def test_relu_dual_known_values():
    q = torch.tensor([2.0, 0.5], dtype=F64)
    S, Sd = relu_dual(q, q, q)  # perfectly correlated: E[relu(z)^2] = q/2, P(z > 0) = 1/2
    assert torch.allclose(S, q / 2, rtol=0, atol=1e-15) and torch.allclose(Sd, torch.full_like(q, 0.5))
    S, Sd = relu_dual(q, q, -q)  # anti-correlated: never both positive
    assert S.abs().max() < 1e-15 and Sd.abs().max() < 1e-15
    S, Sd = relu_dual(q, q, 0 * q)  # independent: (E relu)^2 = q / (2 pi), 1/4
    assert torch.allclose(S, q / (2 * math.pi)) and torch.allclose(Sd, torch.full_like(q, 0.25))
    S, Sd = relu_dual(torch.zeros(1, dtype=F64), q[:1], torch.zeros(1, dtype=F64))  # z = 0: relu'(0) = 0
    assert S.item() == 0.0 and Sd.item() == 0.0


def _pairs_problem(dtype, P=37, K=19, seed=23):
    """Diagonals, pair indices and cross covariances (|correlation| <= 1, with the ends
    +1 and -1 and a zero variance), and a (K, 3) matrix BT; no size divides a block."""
    g = torch.Generator().manual_seed(seed)
    Da, Db = torch.rand(5, K, generator=g, dtype=F64) * 3, torch.rand(6, K, generator=g, dtype=F64) * 3
    Da[1, :4] = 0.0
    ii, jj = torch.randint(0, 5, (P,), generator=g), torch.randint(0, 6, (P,), generator=g)
    ii[:6] = torch.tensor([0, 0, 2, 2, 1, 1])
    jj[:6] = torch.tensor([0, 1, 2, 3, 4, 5])
    s = (torch.rand(P, K, generator=g, dtype=F64) * 2 - 1) * torch.sqrt(Da[ii] * Db[jj])
    s[:3] = torch.sqrt(Da[ii[:3]] * Db[jj[:3]])  # correlation exactly +1 ...
    s[3:5] = -torch.sqrt(Da[ii[3:5]] * Db[jj[3:5]])  # ... and -1: atan2 at its ends
    BT = torch.randn(K, 3, generator=g, dtype=F64)
    return tuple(t.to(dtype) for t in (Da, Db)) + (ii, jj) + tuple(t.to(dtype) for t in (s, BT))


def _fast_backends():
    """(backend name, whether it can run here) for the compiled dual backends."""
    from gntk_fast._backend import triton_available, triton_interpret

    return [("numba", True), ("triton", triton_available() and triton_interpret())]


@pytest.mark.parametrize("act", ["relu", "erf", "identity"])
@pytest.mark.parametrize("backend", ["numba", "triton"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dual_backends_equal_naive_twin(act, backend, dtype):
    """Every compiled backend of the dual op against the naive twin: S, Sd and S @ BT."""
    if not dict(_fast_backends())[backend]:
        pytest.skip(f"{backend} cannot run here (Triton runs on CPU only under TRITON_INTERPRET=1)")
    Da, Db, ii, jj, s, BT = _pairs_problem(dtype)
    want = pair_dual(act, Da.double(), Db.double(), ii, jj, s.double(), BT.double(), backend="naive")
    got = pair_dual(act, Da, Db, ii, jj, s, BT, backend=backend)
    # float32: relu's Sd has a sqrt(eps) sensitivity at correlation +-1 (rows 0..4)
    rows = slice(None) if dtype == F64 else slice(5, None)
    tol = 1e-13 if dtype == F64 else 2e-6
    for a, b in ((got.S, want.S), (got.Sd, want.Sd), (got.out, want.out)):
        assert a.dtype == dtype and a.shape == b.shape
        assert (a[rows].double() - b[rows]).abs().max() < tol * max(1.0, float(b.abs().max()))
    if act == "relu":  # q11 = 0 (Da[1, :4]): relu'(0) = 0 convention of the finite network
        zero = ii == 1
        assert torch.all(got.Sd[zero][:, :4] == 0) and torch.all(want.Sd[zero][:, :4] == 0)
    assert pair_dual(act, Da, Db, ii, jj, s, backend=backend).out is None


def test_dual_registry_auto_rule_and_errors():
    """Auto on CPU: numba for closed forms with a Numba piece, naive otherwise;
    a named backend that cannot serve the call is a BackendError naming the reason."""
    assert DUAL.names == ("triton", "numba", "naive")
    assert plan_dual("relu").backend == "numba" and plan_dual("erf").backend == "numba"
    assert plan_dual("tanh").backend == "naive" and plan_dual("tanh").rule == "quadrature"
    assert plan_dual("relu", dual="quadrature").backend == "naive"
    assert plan_dual("relu", dual="hermite").rule == "hermite"
    assert plan_dual(lambda z: torch.sin(z)).backend == "naive"
    with pytest.raises(BackendError, match="'tanh' has no Numba dual"):
        plan_dual("tanh", backend="numba")
    with pytest.raises(BackendError, match="dual='quadrature' requested"):
        plan_dual("relu", dual="quadrature", backend="numba")
    with pytest.raises(BackendError, match="'tanh' has no Triton dual"):
        plan_dual("tanh", backend="triton")
    with pytest.raises(BackendError, match="CPU tensors"):
        DUAL.resolve("numba", "cuda", act=gf.activations.resolve_activation("relu"), rule="closed")
    with pytest.raises(ValueError, match="dual must be one of"):
        plan_dual("relu", dual="auto")
    with pytest.raises(ValueError, match="dual='closed' but activation 'tanh'"):
        plan_dual("tanh", dual="closed")
    # through graphon_ntk
    X = inputs(3, 3, 0)
    with pytest.raises(BackendError, match="backend 'numba' cannot compute dual here: activation 'tanh'"):
        graphon_ntk([0.5, 0.5], X, activation="tanh", backend="numba")
    with pytest.raises(BackendError, match="dual='quadrature' requested"):
        graphon_ntk([0.5, 0.5], X, dual="quadrature", backend="numba")


def test_pair_dual_rejects_bad_arguments_by_name():
    Da, Db, ii, jj, s, BT = _pairs_problem(F64, P=6, K=4)
    with pytest.raises(TypeError, match="s must be a torch tensor"):
        pair_dual("relu", Da, Db, ii, jj, s.numpy())
    with pytest.raises(ValueError, match="Da must be 2-D"):
        pair_dual("relu", Da[0], Db, ii, jj, s)
    with pytest.raises(ValueError, match="Db must be float32 or float64"):
        pair_dual("relu", Da, Db.float(), ii, jj, s)
    with pytest.raises(ValueError, match="ii must index rows 0..4"):
        pair_dual("relu", Da, Db, ii + 5, jj, s)
    with pytest.raises(ValueError, match=r"jj must be an integer tensor of shape \(6,\)"):
        pair_dual("relu", Da, Db, ii, jj[:3], s)
    with pytest.raises(ValueError, match="Da and Db must have 4 columns"):
        pair_dual("relu", Da[:, :3], Db, ii, jj, s)
    with pytest.raises(ValueError, match=r"BT must be a \(4, NO\) tensor"):
        pair_dual("relu", Da, Db, ii, jj, s, BT[:3])


def test_naive_backward_step_is_the_recursion():
    g = torch.Generator().manual_seed(3)
    G, Bb, Sd = torch.randn(4, 3, generator=g, dtype=F64), torch.randn(3, 5, generator=g, dtype=F64), torch.rand(4, 5, generator=g, dtype=F64)
    w, pre = torch.rand(5, generator=g, dtype=F64), torch.randn(4, 5, generator=g, dtype=F64)
    Gn, vec = dual_naive.backward(G, Bb, Sd, w, pre)
    for p in range(4):
        for a in range(5):
            assert abs(Gn[p, a] - Sd[p, a] * sum(G[p, k] * Bb[k, a] for k in range(3))) < 1e-14
        assert abs(vec[p] - sum(w[a] * Gn[p, a] * pre[p, a] for a in range(5))) < 1e-14
    assert torch.allclose(dual_naive.backward(G, Bb, Sd, w, None)[1], Gn @ w, rtol=1e-15, atol=0)


# ----------------------------------------------------------------- discretisation
def test_step_graphon_midpoint_rule_is_exact():
    """A step graphon and the same graphon refined into 3x3 sub-blocks give the same kernel."""
    rng = np.random.default_rng(0)
    H = [rng.random((4, 6)), rng.random((5, 4)), rng.random((3, 5)), rng.random((1, 3))]
    X = inputs(6, 6, 9)
    fine = [np.kron(h, np.ones((3, 3))) if i else np.kron(h, np.ones((3, 1))) for i, h in enumerate(H)]
    fine[-1] = np.kron(H[-1], np.ones((1, 3)))
    a = graphon_ntk(H, X)
    b = graphon_ntk(fine, X)
    assert rel(b, a) < 1e-13
    # non-uniform edges: the common refinement of the row and column partitions
    e1, e2 = np.array([0, 0.1, 0.55, 1.0]), np.array([0, 0.3, 0.8, 1.0])
    g2 = StepGraphon(rng.random((3, 3)), row_edges=e2, col_edges=e1)
    gs = [StepGraphon(rng.random((3, 6)), row_edges=e1), g2, StepGraphon(rng.random((1, 3)), col_edges=e2)]
    exact = graphon_ntk(gs, X)
    # a very fine uniform midpoint rule of the same step functions converges to it
    approx = graphon_ntk([FunctionGraphon(g.evaluate) for g in gs[:1]] + gs[1:], X, K=2000, quadrature="midpoint")
    assert rel(approx, exact) < 5e-3
    assert rel(graphon_ntk_reference(gs, X), exact) < 1e-13


def test_callable_graphons_converge_in_K():
    X = inputs(5, 4, 10)
    gs = [lin, lambda u, v: 0.5 + 0.4 * np.sin(3 * u + v), lin, readout]
    k64 = graphon_ntk(gs, X, K=64)
    assert rel(graphon_ntk(gs, X, K=16), k64) < 1e-10  # Gauss-Legendre: spectral
    assert rel(graphon_ntk(gs, X, K=64, quadrature="midpoint"), k64) < 1e-4
    assert rel(graphon_ntk(gs, X, K=4), k64) > 1e-8  # K matters at all


def test_callable_and_step_graphons_on_one_layer_use_a_composite_rule():
    """A layer shared by a step graphon (jumps at 0.3, 0.65) and a callable one is
    integrated piecewise, so the rule converges spectrally in K."""
    rng = np.random.default_rng(21)
    step = StepGraphon(rng.random((3, 2)), row_edges=[0, 0.3, 0.65, 1.0], col_edges=[0, 0.5, 1.0])
    gs = [lin, step, lin, readout]
    X = inputs(5, 4, 22)
    k200 = graphon_ntk(gs, X, K=200)
    assert rel(graphon_ntk(gs, X, K=24), k200) < 1e-9
    grid = gf.ntk.analytic.prepare_grid(gs, 4, K=24)
    assert "3 step intervals" in grid.rules[1] and "2 step intervals" in grid.rules[0]
    assert all(abs(w.sum() - 1) < 1e-14 for w in grid.w)
    # a plain 24-node rule across the jumps would be visibly off
    smeared = graphon_ntk([lin, FunctionGraphon(step.evaluate), lin, readout], X, K=24)
    assert rel(smeared, k200) > 1e-4


def test_sas_estimate_gives_nearly_the_callable_kernel():
    """Spec: a SAS step estimate of a sampled mask ~ the callable graphon's kernel."""
    from gntk_fast.graphon import sas

    W = FunctionGraphon(lin)
    n = 1200
    est = gf.graphon.objects.from_sas(sas(W.sample(n, n, seed=3), K=24))
    X = 3.0 * inputs(6, 8, 11)
    # constant input/read-out: SAS's degree sort relabels both hidden layers
    # consistently, which leaves the kernel unchanged; erf is not homogeneous,
    # so the kernel sees the degree profile of W, not only its density
    kw = dict(activation="erf")
    true = graphon_ntk([0.6, W, 0.8], X, K=32, **kw)
    got = graphon_ntk([0.6, est, 0.8], X, **kw)
    flat = graphon_ntk([0.6, W.integrate(), 0.8], X, **kw)
    assert rel(got, true) < 0.01
    assert rel(flat, true) > 5 * rel(got, true)


# ----------------------------------------------------------------- backends agree
GRAPHON_SETS = {
    "callable": lambda d: [lin, lin, lambda u, v: 0.5 + 0.5 * np.cos(7 * u * v), readout],
    "step": lambda d: [np.random.default_rng(1).random((5, d)), np.random.default_rng(2).random((7, 5)),
                       np.random.default_rng(3).random((2, 7))],
    "mixed": lambda d: [InputGraphon(np.random.default_rng(4).random((3, d)), row_edges=[0, 0.2, 0.7, 1.0]),
                        lin, 0.6, np.random.default_rng(5).random((1, 4))],
}


@pytest.mark.parametrize("which", sorted(GRAPHON_SETS))
@pytest.mark.parametrize("backend", ["naive", "numba"])
@pytest.mark.parametrize("trainable", ["mask", "all"])
def test_fast_paths_equal_reference(which, backend, trainable):
    d = 5
    gs = GRAPHON_SETS[which](d)
    X, Y = inputs(7, d, 12), inputs(4, d, 13)
    for act in ("relu", "erf", "tanh", "identity"):
        if backend == "numba" and act in ("tanh", "identity"):
            continue
        kw = dict(activation=act, trainable=trainable, K=10, n_outputs=3, return_nngp=True, quad_nodes=10)
        ref = graphon_ntk_reference(gs, X, **kw)
        got = graphon_ntk(gs, X, backend=backend, tile=6, **kw)
        assert rel(got.kernel, ref.kernel) < 1e-12 and rel(got.nngp, ref.nngp) < 1e-12, act
        assert torch.equal(got.kernel, got.kernel.T) and torch.equal(got.nngp, got.nngp.T)
        ref2 = graphon_ntk_reference(gs, X, Y, **kw).kernel
        got2 = graphon_ntk(gs, X, Y, backend=backend, tile=5, **kw).kernel
        assert got2.shape == (7, 4) and rel(got2, ref2) < 1e-12, act
        got32 = graphon_ntk(gs, X, Y, backend=backend, dtype=torch.float32, tile=3, **kw).kernel
        assert got32.dtype == torch.float32 and rel(got32.to(F64), ref2) < 1e-5, act


def test_custom_callable_activation():
    X = inputs(4, 3, 14)
    gs = [0.7, lin, 0.9]
    leaky = lambda z: torch.where(z > 0, z, 0.1 * z)  # noqa: E731
    got = graphon_ntk(gs, X, activation=leaky, K=8)
    ref = graphon_ntk_reference(gs, X, activation=leaky, K=8)
    assert rel(got, ref) < 1e-12
    # leaky relu(0.1) kernel lies strictly between the relu and identity kernels' relations: not equal to relu
    assert rel(got, graphon_ntk(gs, X, K=8)) > 1e-3


def test_triton_interpreter_equals_reference():
    pytest.importorskip("triton")
    from gntk_fast._backend import triton_interpret

    if not triton_interpret():
        pytest.skip("TRITON_INTERPRET is not set (tests/conftest.py sets it without CUDA)")
    d = 5
    gs = GRAPHON_SETS["mixed"](d)
    X, Y = inputs(7, d, 15), inputs(3, d, 16)
    for act in ("relu", "erf", "identity"):
        for tr in ("mask", "all"):
            ref = graphon_ntk_reference(gs, X, activation=act, trainable=tr, K=20, return_nngp=True)
            got = graphon_ntk(gs, X, activation=act, trainable=tr, K=20, backend="triton", tile=11, return_nngp=True)
            assert rel(got.kernel, ref.kernel) < 1e-12 and rel(got.nngp, ref.nngp) < 1e-12, (act, tr)
    ref = graphon_ntk_reference(gs, X, Y, K=20)
    got32 = graphon_ntk(gs, X, Y, K=20, backend="triton", dtype=torch.float32, tile=7)
    assert rel(got32.to(F64), ref) < 1e-5


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triton_backward_step_equals_naive_twin(dtype):
    pytest.importorskip("triton")
    from gntk_fast._backend import triton_interpret

    if not triton_interpret():
        pytest.skip("TRITON_INTERPRET is not set (tests/conftest.py sets it without CUDA)")
    from gntk_fast.ops.dual.triton import triton_backward_step

    g = torch.Generator().manual_seed(23)
    P, KI, KO = 37, 19, 45  # no size divides a block
    G, Bb = torch.randn(P, KI, generator=g, dtype=dtype), torch.randn(KI, KO, generator=g, dtype=dtype)
    Sd, pre, w = (torch.rand(P, KO, generator=g, dtype=dtype), torch.randn(P, KO, generator=g, dtype=dtype),
                  torch.rand(KO, generator=g, dtype=dtype))
    tol = 1e-13 if dtype == torch.float64 else 1e-5
    for p in (pre, None):
        a, va = triton_backward_step(G, Bb, Sd, w, p)
        b, vb = dual_naive.backward(G, Bb, Sd, w, p)
        assert rel(a.double(), b.double()) < tol and rel(va.double(), vb.double()) < tol


@pytest.mark.cuda
@pytest.mark.parametrize("act", ["relu", "erf"])
def test_triton_cuda_equals_reference(act):
    gs = GRAPHON_SETS["step"](6)
    X = inputs(33, 6, 17)
    ref = graphon_ntk_reference(gs, X, activation=act)
    got = graphon_ntk(gs, X.cuda(), activation=act)
    assert got.is_cuda and rel(got.cpu(), ref) < 1e-11
    got32 = graphon_ntk(gs, X.cuda(), activation=act, dtype=torch.float32)
    assert rel(got32.cpu().to(F64), ref) < 1e-5


def test_public_api_and_progress():
    X = inputs(40, 3, 18)
    a = gf.graphon_ntk([0.5, lin, 0.5], X, K=6, tile=64, progress=True)
    b = graphon_ntk([0.5, lin, 0.5], X, K=6)
    assert torch.allclose(a, b, rtol=1e-13, atol=0)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(graphons=[0.5, lambda u, v: 1.5 + 0 * u, 0.5]), r"graphons\[1\].*\[0, 1\]"),
        (dict(graphons=[0.5, np.array([[0.2, -0.1]]), 0.5]), r"graphons\[1\].*\[0, 1\]"),
        (dict(graphons=[2.0, 0.5, 0.5]), r"graphons\[0\]"),
        (dict(graphons=[0.5, lambda u, v: np.full_like(u, np.nan), 0.5]), r"graphons\[1\].*non-finite"),
        (dict(graphons=[0.5]), r"graphons must list at least 2"),
        (dict(graphons=[0.5, 0.5, 0.5], depth=3), r"graphons must have depth \+ 1 = 4"),
        (dict(K=0, graphons=[lin, lin]), r"K must be >= 1"),
        (dict(x2=torch.zeros(3, 4, dtype=F64)), r"x2 must have as many features as x1"),
        (dict(x1=torch.tensor([[1.0, float("nan"), 0.0]])), r"x1 contains 1 non-finite"),
        (dict(x1=torch.zeros(3)), r"x1 must have 2 dimensions"),
        (dict(graphons=[InputGraphon(np.full((2, 5), 0.5)), 0.5]), r"x1 has 3 features but graphons\[0\] is an input graphon over 5"),
        (dict(trainable="some"), r"trainable must be one of"),
        (dict(backend="gpu"), r"backend must be one of"),
        (dict(activation="softsign"), r"activation must be one of"),
        (dict(quadrature="simpson", graphons=[lin, lin]), r"quadrature must be one of"),
        (dict(dtype=torch.float16), r"dtype must be"),
        (dict(dual="closed", activation="tanh"), r"dual='closed'"),
        (dict(backend="numba", activation="tanh"), r"backend 'numba' cannot compute dual here"),
        (dict(backend="reference"), r"backend must be one of"),
        (dict(backend="torch"), r"backend must be one of"),
        (dict(dual="auto"), r"dual must be one of"),
        (dict(K=(1 << 16) + 1, graphons=[lin, lin]), r"K must be <= 65536"),
        (dict(quad_nodes=1), r"quad_nodes must be >= 2"),
        (dict(quad_nodes=10**6, activation="tanh"), r"quad_nodes must be <= 1024"),
        (dict(tile=0), r"tile must be >= 1"),
        (dict(n_outputs=0), r"n_outputs must be >= 1"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    args = dict(graphons=[0.5, 0.5, 0.5], x1=inputs(3, 3, 0))
    args.update(kwargs)
    graphons, x1 = args.pop("graphons"), args.pop("x1")
    with pytest.raises(ValueError, match=match):
        graphon_ntk(graphons, x1, **args)


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="graphons"):
        graphon_ntk(0.5, inputs(2, 2))
    with pytest.raises(TypeError, match="x1"):
        graphon_ntk([0.5, 0.5], "data")
    with pytest.raises(TypeError, match=r"graphons\[1\]"):
        graphon_ntk([0.5, object()], inputs(2, 2))
    with pytest.raises(TypeError, match="return_nngp"):
        graphon_ntk([0.5, 0.5], inputs(2, 2), return_nngp="yes")


# ----------------------------------------------------------------- properties
@st.composite
def networks(draw):
    L = draw(st.integers(1, 3))
    d = draw(st.integers(2, 4))  # d = 1 makes every pair exactly (anti)parallel: the arc-cosine
    # angle is then 0 or pi up to sqrt(eps) rounding, beyond a 1e-10 comparison
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    shapes = [(draw(st.integers(1, 4)), d)] + [(draw(st.integers(1, 4)), draw(st.integers(1, 4))) for _ in range(L - 1)]
    shapes.append((draw(st.integers(1, 3)), draw(st.integers(1, 4))))
    gs = [rng.random(s) for s in shapes]
    n = draw(st.integers(1, 5))
    X = torch.from_numpy(rng.normal(size=(n, d)))
    return gs, X, draw(st.sampled_from(["mask", "all"])), draw(st.sampled_from(["relu", "erf"]))


@settings(max_examples=25, deadline=None)
@given(networks(), st.floats(0.1, 5.0))
def test_property_graphon_ntk(net, scale):
    gs, X, tr, act = net
    got = graphon_ntk(gs, X, trainable=tr, activation=act, tile=4)
    ref = graphon_ntk_reference(gs, X, trainable=tr, activation=act)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, ref, rtol=1e-11, atol=1e-13)
    assert torch.equal(got, got.T)
    ev = torch.linalg.eigvalsh(got)
    assert ev.min() >= -1e-10 * max(1.0, float(ev.abs().max()))
    if act == "relu":  # positive homogeneity: Theta(c x, c x') = c^2 Theta(x, x')
        assert torch.allclose(graphon_ntk(gs, scale * X, trainable=tr), scale**2 * got, rtol=1e-10, atol=1e-12)


def test_x2_equal_to_x1_is_the_symmetric_kernel():
    X = inputs(6, 4, 19)
    gs = [0.9, lin, np.array([[0.3, 0.8, 0.6]])]
    a = graphon_ntk(gs, X, K=8)
    b = graphon_ntk(gs, X, X.clone(), K=8)
    assert torch.equal(a, b)
    assert rel(graphon_ntk(gs, X, 2.0 * X, K=8), graphon_ntk(gs, X, K=8)) > 0.1


def test_number_of_inputs_is_bounded_before_allocating(monkeypatch):
    import gntk_fast.ntk.analytic_reference as ar

    monkeypatch.setattr(ar, "MAX_SAMPLES", 4)
    with pytest.raises(ValueError, match=r"x1 inputs \(rows\) must be <= 4"):
        graphon_ntk([0.5, 0.5], inputs(5, 2))
    with pytest.raises(ValueError, match=r"x2 inputs \(rows\) must be <= 4"):
        graphon_ntk_reference([0.5, 0.5], inputs(3, 2), inputs(5, 2))
    assert graphon_ntk([0.5, 0.5], inputs(4, 2)).shape == (4, 4)
