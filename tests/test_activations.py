"""Tests of the activation objects and their registry (gntk_fast.activations).

A new activation is ONE call to ``register_activation``: the tests below add
"sin" that way and check that every consumer (the MLP, the eNTK, the analytic
Graphon NTK and each backend of the dual operation) serves it or refuses it
with a BackendError naming the reason.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import gntk_fast as gf
from _helpers import rel
from gntk_fast.activations import NAMED_ACTIVATIONS, Activation, register_activation, resolve_activation
from gntk_fast.ntk import graphon_ntk, graphon_ntk_reference
from gntk_fast.ops import BackendError
from gntk_fast.ops.dual import DUAL, pair_dual, plan_dual
from gntk_fast.ops.dual.quadrature import quadrature_dual

F64 = torch.float64

try:  # a user's Triton piece is an ordinary @triton.jit function
    import triton
    import triton.language as tl

    @triton.jit
    def _sin_dual_triton(q11, q22, c):
        e = tl.exp(-0.5 * (q11 + q22))
        ep, em = tl.exp(c), tl.exp(-c)
        return 0.5 * e * (ep - em), 0.5 * e * (ep + em)

except ImportError:  # pragma: no cover - triton is a dependency
    _sin_dual_triton = None


def _sin_dual(q11, q22, q12):
    e = torch.exp(-0.5 * (q11 + q22))
    return e * torch.sinh(q12), e * torch.cosh(q12)


def _sin_dual_scalar(q11, q22, c):
    e = math.exp(-0.5 * (q11 + q22))
    return e * math.sinh(c), e * math.cosh(c)


@pytest.fixture
def sin_act():
    """'sin' (E[sin z sin z'] = e^{-(q11+q22)/2} sinh(q12), E[cos z cos z'] = ... cosh(q12)),
    registered in one call with a torch closed form and a Numba piece, no Triton piece."""
    act = register_activation(Activation("sin", torch.sin, torch.cos, _sin_dual, _sin_dual_scalar))
    yield act
    gf.activations._REGISTRY.pop("sin")


def _cov_samples(n=60, seed=7):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, generator=g, dtype=F64) * 3
    b = torch.rand(n, generator=g, dtype=F64) * 3
    rho = torch.rand(n, generator=g, dtype=F64) * 2 - 1
    rho[:4] = torch.tensor([1.0, -1.0, 0.0, 0.999999])
    a[4], b[5] = 0.0, 0.0
    return a, b, rho * torch.sqrt(a * b)


# ----------------------------------------------------------------- the named activations
def test_named_activations_are_one_registry():
    assert set(NAMED_ACTIVATIONS) >= {"relu", "erf", "tanh", "identity"}
    for name, act in NAMED_ACTIVATIONS.items():
        assert act.name == name and resolve_activation(name) is act and resolve_activation(name.upper()) is act
    assert resolve_activation(nn.ReLU()) is NAMED_ACTIVATIONS["relu"]
    assert resolve_activation(nn.Tanh()) is NAMED_ACTIVATIONS["tanh"]
    assert NAMED_ACTIVATIONS["tanh"].dual is None  # no closed form: the quadrature is used
    custom = resolve_activation(nn.GELU())
    assert custom.name == "custom" and custom.dual is None and custom.numba_dual is None
    z = torch.linspace(-2, 2, 9, dtype=F64)
    assert torch.allclose(custom.grad(z), torch.autograd.functional.jacobian(nn.GELU(), z).diagonal())
    with pytest.raises(TypeError):
        NAMED_ACTIVATIONS["x"] = NAMED_ACTIVATIONS["relu"]  # read-only view


@pytest.mark.parametrize("name", ["relu", "erf", "identity"])
def test_closed_forms_equal_quadrature(name):
    act = NAMED_ACTIVATIONS[name]
    q11, q22, q12 = _cov_samples()
    S, Sd = act.dual(q11, q22, q12)
    Sq, Sdq = quadrature_dual(act, q11, q22, q12, 48)
    assert (S - Sq).abs().max() < 1e-10
    # relu: Sd = 0 where a variance is 0 (relu'(0) = 0); the quadrature agrees
    assert (Sd - Sdq).abs().max() < 1e-10


def test_derivatives_are_exact():
    z = torch.linspace(-3, 3, 13, dtype=F64) + 0.01
    for name in ("relu", "erf", "tanh", "identity"):
        act = NAMED_ACTIVATIONS[name]
        auto = torch.autograd.functional.jacobian(act.fn, z).diagonal()
        assert torch.allclose(act.grad(z), auto, rtol=1e-14, atol=1e-14), name


def test_numba_scalar_pieces_equal_torch_closed_forms():
    q11, q22, q12 = _cov_samples()
    for name in ("relu", "erf", "identity"):
        act = NAMED_ACTIVATIONS[name]
        S, Sd = act.dual(q11, q22, q12)
        for i in range(len(q11)):
            s, sd = act.numba_dual(float(q11[i]), float(q22[i]), float(q12[i]))
            assert abs(s - S[i]) < 1e-14 and abs(sd - Sd[i]) < 1e-14, (name, i)


def test_register_activation_validates():
    relu = NAMED_ACTIVATIONS["relu"]
    with pytest.raises(TypeError, match="act must be an Activation"):
        register_activation("relu")
    with pytest.raises(ValueError, match="already registered"):
        register_activation(Activation("relu", torch.relu, relu.grad))
    with pytest.raises(ValueError, match="act.name"):
        register_activation(Activation("Sin", torch.sin, torch.cos))
    with pytest.raises(ValueError, match="act.name"):
        register_activation(Activation("custom", torch.sin, torch.cos))
    with pytest.raises(TypeError, match="act.dual"):
        register_activation(Activation("bad", torch.sin, torch.cos, dual=3))
    with pytest.raises(TypeError, match="act.triton_dual"):
        register_activation(Activation("bad", torch.sin, torch.cos, triton_dual="no_colon"))
    assert "bad" not in NAMED_ACTIVATIONS
    assert register_activation(relu) is relu  # the same object again is a no-op


# ----------------------------------------------------------------- adding one activation
def test_new_activation_mlp_entk_equals_jacobian_reference(sin_act):
    X = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    m = gf.MLP(4, 16, 2, 2, activation="sin", bias=False, seed=3, dtype=F64)
    assert all(a is sin_act for a in m.activations)
    # the forward pass applies sin
    h = X
    for i, layer in enumerate(m.layers):
        h = h @ (layer.weight * layer.weight_mask).T / math.sqrt(layer.in_features)
        if i < 2:
            h = torch.sin(h)
    assert torch.allclose(m(X), h, rtol=1e-12, atol=1e-12)
    got = gf.empirical_ntk(m, X)
    ref = gf.ntk.empirical_ntk_reference(m, X)
    assert rel(got, ref) < 1e-12
    m_relu = gf.MLP(4, 16, 2, 2, activation="relu", bias=False, seed=3, dtype=F64)
    assert rel(gf.empirical_ntk(m_relu, X), ref) > 1e-2


def test_new_activation_closed_form_equals_quadrature(sin_act):
    q11, q22, q12 = _cov_samples()
    S, Sd = sin_act.dual(q11, q22, q12)
    Sq, Sdq = quadrature_dual("sin", q11, q22, q12, 48)
    assert (S - Sq).abs().max() < 1e-10 and (Sd - Sdq).abs().max() < 1e-10


def test_new_activation_graphon_ntk(sin_act):
    d = 3
    X = torch.randn(6, d, generator=torch.Generator().manual_seed(2), dtype=F64)
    # one hidden layer, all graphons 1: Theta = S(x, y) + Sd(x, y) x.y/d with
    # S = e^{-(|x|^2+|y|^2)/(2d)} sinh(x.y/d), Sd = ... cosh(x.y/d)
    n2 = (X * X).sum(1) / d
    dot = X @ X.T / d
    e = torch.exp(-0.5 * (n2[:, None] + n2[None, :]))
    want = e * torch.sinh(dot) + e * torch.cosh(dot) * dot
    for backend in ("auto", "numba", "naive"):
        assert rel(graphon_ntk([1.0, 1.0], X, activation="sin", backend=backend), want) < 1e-13, backend
    assert plan_dual("sin").backend == "numba"  # auto on CPU: the Numba kernel built from numba_dual
    gs = [lambda u, v: 0.2 + 0.7 * u * v, np.array([[0.9, 0.3], [0.5, 0.8]]), 0.7, lambda u, v: 0.4 + 0.5 * v]
    ref = graphon_ntk_reference(gs, X, activation="sin", K=6, return_nngp=True)
    got = graphon_ntk(gs, X, activation="sin", K=6, return_nngp=True, tile=5)
    assert rel(got.kernel, ref.kernel) < 1e-12 and rel(got.nngp, ref.nngp) < 1e-12
    quad = graphon_ntk(gs, X, activation="sin", K=6, dual="quadrature", quad_nodes=40)
    assert rel(quad, ref.kernel) < 1e-10
    got32 = graphon_ntk(gs, X, activation="sin", K=6, dtype=torch.float32, backend="numba")
    assert got32.dtype == torch.float32 and rel(got32.double(), ref.kernel) < 1e-5


def test_new_activation_without_triton_piece_is_refused_by_name_and_skipped_by_auto(sin_act):
    X = torch.randn(3, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
    with pytest.raises(BackendError, match="'sin' has no Triton dual"):
        graphon_ntk([0.5, 0.5], X, activation="sin", backend="triton")
    # on a CUDA device "auto" skips triton for it (and numba: not native there)
    assert DUAL.resolve("auto", "cuda", act=sin_act, rule="closed").name == "naive"
    if DUAL.backends["triton"].check(device="cuda", act=NAMED_ACTIVATIONS["relu"], rule="closed") is None:
        assert DUAL.resolve("auto", "cuda", act=NAMED_ACTIVATIONS["relu"], rule="closed").name == "triton"


def test_new_activation_with_a_triton_piece_runs_in_the_fused_kernel():
    from gntk_fast._backend import triton_interpret

    if _sin_dual_triton is None or not triton_interpret():
        pytest.skip("needs triton and TRITON_INTERPRET=1 (tests/conftest.py sets it without CUDA)")
    act = register_activation(Activation("sin_t", torch.sin, torch.cos, _sin_dual, _sin_dual_scalar, _sin_dual_triton))
    try:
        g = torch.Generator().manual_seed(5)
        Da, Db = torch.rand(4, 9, generator=g, dtype=F64), torch.rand(3, 9, generator=g, dtype=F64)
        ii, jj = torch.tensor([0, 1, 3, 2, 0]), torch.tensor([2, 0, 1, 1, 0])
        s = (torch.rand(5, 9, generator=g, dtype=F64) * 2 - 1) * torch.sqrt(Da[ii] * Db[jj])
        BT = torch.randn(9, 2, generator=g, dtype=F64)
        want = pair_dual(act, Da, Db, ii, jj, s, BT, backend="naive")
        got = pair_dual("sin_t", Da, Db, ii, jj, s, BT, backend="triton")
        for a, b in ((got.S, want.S), (got.Sd, want.Sd), (got.out, want.out)):
            assert (a - b).abs().max() < 1e-14
        X = torch.randn(4, 3, generator=g, dtype=F64)
        gs = [0.8, lambda u, v: 0.3 + 0.6 * u * v, 0.9]
        assert rel(graphon_ntk(gs, X, activation="sin_t", K=5, backend="triton"),
                   graphon_ntk_reference(gs, X, activation="sin_t", K=5)) < 1e-12
    finally:
        gf.activations._REGISTRY.pop("sin_t")


def test_relu_numba_dual_matches_atan2_form_everywhere():
    """The polynomial angle of the scalar ReLU dual against torch's atan2 form, compiled as the kernels use it:
    every quadrant, correlations at +-1 and 0, signed zeros, degenerate variances and scales 1e-150..1e150."""
    numba = pytest.importorskip("numba")
    relu = NAMED_ACTIVATIONS["relu"]
    f = numba.njit(error_model="numpy")(relu.numba_dual)

    @numba.njit(error_model="numpy")
    def run(a, b, c, s, sd):  # pragma: no cover - compiled
        for i in range(a.shape[0]):
            s[i], sd[i] = f(a[i], b[i], c[i])

    g = torch.Generator().manual_seed(3)
    n = 20000
    q11 = torch.rand(n, generator=g, dtype=F64) * 3
    q22 = torch.rand(n, generator=g, dtype=F64) * 3
    rho = torch.cat([torch.rand(n // 2, generator=g, dtype=F64) * 2 - 1,
                     (1 - 10.0 ** (-16 * torch.rand(n // 2, generator=g, dtype=F64)))
                     * torch.where(torch.rand(n // 2, generator=g) < 0.5, -1.0, 1.0).to(F64)])
    rho[:8] = torch.tensor([1.0, -1.0, 0.0, -0.0, 1.5, -1.5, 1e-300, -1e-300], dtype=F64)
    q12 = rho * (q11 * q22).sqrt()
    q11[8:12] = 0.0
    q12[8:10] = torch.tensor([0.0, -0.0], dtype=F64)
    scale = 10.0 ** torch.randint(-150, 151, (n,), generator=g).to(F64)
    scale[:100] = 1.0
    q11, q22, q12 = q11 * scale, q22 * scale, q12 * scale
    s, sd = np.empty(n), np.empty(n)
    run(q11.numpy(), q22.numpy(), q12.numpy(), s, sd)
    S, Sd = relu.dual(q11, q22, q12)
    assert np.abs(sd - Sd.numpy()).max() < 1e-15  # Sd in [0, 1/2]: absolute
    ref = (q11 * q22).sqrt().numpy()
    assert (np.abs(s - S.numpy()) <= 1e-15 * ref + 1e-300).all()
    assert np.array_equal(np.signbit(sd), np.signbit(Sd.numpy()))
