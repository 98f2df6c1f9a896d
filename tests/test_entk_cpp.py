"""The C++ backend of the masked eNTK layer term against the naive twin, plus the extension's own validation."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from _helpers import rel
from gntk_fast._backend import cpp_available
from gntk_fast.ntk import empirical_ntk, empirical_ntk_reference
from gntk_fast.ops.entk_layer import masked_ntk_layer
from gntk_fast.ops.entk_layer.cpp import masked_ntk_layer_cpp
from gntk_fast.ops.entk_layer.naive import masked_ntk_layer_naive as naive

pytestmark = pytest.mark.skipif(not cpp_available(), reason="C++ extension not built")

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def rand_problem(N1, N2, k, n_out, n_in, density, dtype, seed, relu=True):
    g = torch.Generator().manual_seed(seed)
    D1 = torch.randn(N1, k, n_out, generator=g, dtype=dtype)
    H1 = torch.randn(N1, n_in, generator=g, dtype=dtype)
    D2 = torch.randn(N2, k, n_out, generator=g, dtype=dtype)
    H2 = torch.randn(N2, n_in, generator=g, dtype=dtype)
    if relu:  # ReLU-like zeros (exercise row/column compaction)
        H1, H2 = H1.clamp_min(0), H2.clamp_min(0)
    M = torch.rand(n_out, n_in, generator=g) < density
    return D1, H1, D2, H2, M


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("complement", [False, True])
def test_layer_kernel_matches_twin(dtype, trace, sym, complement):
    D1, H1, D2, H2, M = rand_problem(35, 13, 4, 23, 31, 0.45, dtype, 0)
    if sym:
        D2 = H2 = None
    ours = masked_ntk_layer_cpp(D1, H1, D2, H2, M, trace=trace, complement=complement)
    ref = naive(D1, H1, D2, H2, M, trace=trace)
    assert rel(ours, ref) < TOL[dtype]
    if sym:  # exactly symmetric on the kernel and the complement (GEMM) path alike
        assert torch.equal(ours, ours.T if trace else ours.permute(1, 0, 3, 2))


def test_layer_kernel_dead_rows_cols_and_empty():
    D1, H1, D2, H2, M = rand_problem(17, 17, 2, 19, 21, 0.5, torch.float64, 1)
    D1[:, :, 4:9] = 0  # rows dead for every input of set 1
    H2[:, 3:10] = 0  # columns dead for every input of set 2
    M[:, 15:] = False
    M[0:2] = False
    for d2, h2 in ((None, None), (D2, H2)):
        ours = masked_ntk_layer_cpp(D1, H1, d2, h2, M, trace=False, complement=False)
        assert rel(ours, naive(D1, H1, d2, h2, M, trace=False)) < 1e-12
    zero = masked_ntk_layer_cpp(D1, H1, D2, H2, torch.zeros_like(M), complement=False)
    assert zero.shape == (17, 17) and torch.count_nonzero(zero) == 0
    dense = masked_ntk_layer_cpp(D1, H1, D2, H2, None)
    assert rel(dense, naive(D1, H1, D2, H2, None)) < 1e-12
    ones = torch.ones_like(M)  # an all-kept mask through the kernel itself, and as dense - kernel(empty)
    for comp in (False, True):
        for d2, h2 in ((None, None), (D2, H2)):
            got = masked_ntk_layer_cpp(D1, H1, d2, h2, ones, trace=False, complement=comp)
            assert rel(got, naive(D1, H1, d2, h2, None, trace=False)) < 1e-12, comp


def test_layer_kernel_validation():
    import gntk_fast._C as C

    D1, H1, D2, H2, M = rand_problem(5, 4, 2, 6, 7, 0.5, torch.float32, 2)
    with pytest.raises(ValueError, match="mask"):
        masked_ntk_layer(D1, H1, D2, H2, M[:, :3], backend="cpp")
    with pytest.raises(ValueError, match="mask"):
        masked_ntk_layer(D1, H1, D2, H2, M.float(), backend="cpp")
    with pytest.raises(ValueError, match="H2"):
        masked_ntk_layer(D1, H1, D2, H2.double(), M, backend="cpp")
    with pytest.raises(ValueError, match="D2"):
        masked_ntk_layer(D1, H1, D2, None, M, backend="cpp")
    with pytest.raises(ValueError, match="trace"):
        masked_ntk_layer(D1, H1, D2, H2, M, trace="no", backend="cpp")
    # the C++ entry point validates on its own (std::invalid_argument -> ValueError)
    a = [t.numpy() for t in (D1, H1, D2, H2, M)]
    with pytest.raises(ValueError, match="mask"):
        C.entk_masked_layer(a[0], a[1], a[2], a[3], a[4][:, :3].copy(), True)
    with pytest.raises(ValueError, match="mask must have dtype bool"):
        C.entk_masked_layer(a[0], a[1], a[2], a[3], a[4].astype(np.uint8), True)
    with pytest.raises(ValueError, match="H1"):
        C.entk_masked_layer(a[0], a[1][:4].copy(), a[2], a[3], a[4], True)
    with pytest.raises(ValueError, match="D1 must have dtype"):
        C.entk_masked_layer(a[0].astype(np.float16), a[1], a[2], a[3], a[4], True)
    with pytest.raises(ValueError, match="H2 must have the same dtype"):
        C.entk_masked_layer(a[0], a[1], a[2], a[3].astype(np.float64), a[4], True)
    with pytest.raises(ValueError, match="contiguous"):
        C.entk_masked_layer(a[0], np.asfortranarray(a[1]), a[2], a[3], a[4], True)
    with pytest.raises(ValueError, match="D2 and H2"):
        C.entk_masked_layer(a[0], a[1], a[2], None, a[4], True)


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 20), min_size=1, max_size=3),
    d=st.integers(1, 9),
    k=st.integers(1, 4),
    n1=st.integers(1, 21),
    n2=st.one_of(st.none(), st.integers(1, 9)),
    density=st.floats(0.0, 1.0),
    act=st.sampled_from(["relu", "erf", "tanh", "identity"]),
    trace=st.booleans(),
    trainable=st.sampled_from(["mask", "all"]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_cpp_equals_reference(widths, d, k, n1, n2, density, act, trace, trainable, bias, seed):
    m = gf.MLP(d, widths, None, k, activation=act, bias=bias, seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    m.set_masks([torch.rand(w.shape, generator=g) < density for w in m.weights])
    x1 = torch.randn(n1, d, generator=g, dtype=torch.float64)
    x2 = None if n2 is None else torch.randn(n2, d, generator=g, dtype=torch.float64)
    ours = empirical_ntk(m, x1, x2, trace=trace, trainable=trainable, backend="cpp")
    ref = empirical_ntk_reference(m, x1, x2, trace=trace, trainable=trainable)
    assert torch.isfinite(ours).all()
    scale = float(ref.norm())
    assert float((ours - ref).norm()) <= 1e-10 * scale + 1e-300


def test_both_instruction_sets_agree_with_twin():
    """The AVX-512 and baseline tile kernels are separate code: check each in a fresh process."""
    import os
    import subprocess
    import sys

    code = (
        "import torch, gntk_fast._C as C\n"
        "from gntk_fast.ops.entk_layer.cpp import masked_ntk_layer_cpp\n"
        "from gntk_fast.ops.entk_layer.naive import masked_ntk_layer_naive as ref\n"
        "g = torch.Generator().manual_seed(0)\n"
        "worst = 0.0\n"
        "for dt in (torch.float32, torch.float64):\n"
        "    D1 = torch.randn(37, 3, 29, generator=g, dtype=dt); H1 = torch.randn(37, 33, generator=g, dtype=dt)\n"
        "    D2 = torch.randn(11, 3, 29, generator=g, dtype=dt); H2 = torch.randn(11, 33, generator=g, dtype=dt)\n"
        "    M = torch.rand(29, 33, generator=g) < 0.3\n"
        "    for tr in (True, False):\n"
        "        for d2, h2 in ((None, None), (D2, H2)):\n"
        "            o = masked_ntk_layer_cpp(D1, H1, d2, h2, M, trace=tr, complement=False)\n"
        "            r = ref(D1, H1, d2, h2, M, trace=tr)\n"
        "            e = float((o - r).norm() / r.norm()) / (1e-5 if dt == torch.float32 else 1e-10)\n"
        "            worst = max(worst, e)\n"
        "print(C.entk_isa(), worst)\n"
    )
    seen = set()
    for isa in ("generic", "avx2", "auto"):
        env = dict(os.environ, GNTK_ENTK_ISA=isa)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        name, worst = res.stdout.split()
        assert float(worst) < 1.0, (isa, name, worst)  # error / tolerance
        seen.add(name)
    from gntk_fast._backend import build_info

    cpu = build_info()["cpu"]
    assert "generic" in seen  # every CPU runs the baseline tiles (GNTK_ENTK_ISA=generic honoured)
    if cpu["avx2"] and cpu["fma"]:
        assert "avx2" in seen  # run-time dispatch: the AVX2 tiles without any global -mavx2
    if all(cpu[f] for f in ("avx2", "fma", "avx512f", "avx512vl", "avx512dq")):
        assert "avx512" in seen


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_large_k_blocks_packed_in_parallel_match_twin(dtype, tol):
    """Inputs large enough for the kernel to pack its (k-fold larger) D blocks in parallel, with a tail
    block (203 inputs), dead rows and columns, k = 6; x2 None (float32 AVX-512: one packed copy serves
    both sides) and x2 given, traced and full, against the naive twin."""
    g = torch.Generator().manual_seed(7)
    N1, N2, k, n_out, n_in = 203, 77, 6, 400, 300
    D1 = torch.randn(N1, k, n_out, generator=g, dtype=dtype)
    H1 = torch.randn(N1, n_in, generator=g, dtype=dtype).clamp_min(0)
    D1[:, :, ::7] = 0  # dead rows
    H1[:, ::5] = 0  # dead columns
    D2 = torch.randn(N2, k, n_out, generator=g, dtype=dtype)
    H2 = torch.randn(N2, n_in, generator=g, dtype=dtype)
    M = torch.rand(n_out, n_in, generator=g) < 0.2
    for trace in (True, False):
        for d2, h2 in ((None, None), (D2, H2)):
            ours = masked_ntk_layer_cpp(D1, H1, d2, h2, M, trace=trace, complement=False)
            ref = naive(D1, H1, d2, h2, M, trace=trace)
            assert ours.shape == ref.shape
            assert float((ours - ref).norm() / ref.norm()) < tol, (trace, d2 is None)
            if d2 is None:
                assert torch.equal(ours, ours.transpose(0, 1) if trace else ours.permute(1, 0, 3, 2))


def _dense_backward(monkeypatch):
    import gntk_fast.ops.masked_backward as B

    monkeypatch.setattr(B, "_cpp_module", lambda: None)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_sparse_backward_pass_matches_dense_and_oracle(monkeypatch, act):
    """N k >= 256 rows and masks of density 0.2 take the C++ sparse backward product: its signals
    equal the dense GEMM's (float64, round-off only) and the eNTK the Jacobian oracle's."""
    import gntk_fast.ops.masked_backward as B
    from gntk_fast.ntk.empirical import forward_backward

    g = torch.Generator().manual_seed(3)
    m = gf.MLP(30, [70, 50, 40], None, 8, activation=act, seed=2, dtype=torch.float64)
    m.set_masks([torch.rand(w.shape, generator=g) < 0.2 for w in m.weights])
    x = torch.randn(37, 30, generator=g, dtype=torch.float64)  # 37 * 8 = 296 rows (not a multiple of a block)
    assert B._cpp_module() is not None
    monkeypatch.setattr(B, "SPARSE_MIN_MACS", 1)  # this small net takes the sparse product too
    real, calls = B._cpp_module(), []
    with monkeypatch.context() as mp:
        spy = types.SimpleNamespace(masked_backward=lambda *a: calls.append(1) or real.masked_backward(*a))
        mp.setattr(B, "_cpp_module", lambda: spy)
        Hs, Ds = forward_backward(m, x)
    assert len(calls) == 3  # every step through a masked hidden or read-out matrix
    ntk = empirical_ntk(m, x, backend="cpp")
    ntk_full = empirical_ntk(m, x[:9], x[9:20], trace=False, backend="cpp")
    with monkeypatch.context() as mp:
        _dense_backward(mp)
        Hd, Dd = forward_backward(m, x)
    for a, b in zip(Ds, Dd):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert float((a - b).abs().max()) <= 1e-12 * float(b.abs().max())
    for a, b in zip(Hs, Hd):
        assert torch.equal(a, b)
    ref = empirical_ntk_reference(m, x)
    assert float((ntk - ref).norm()) <= 1e-10 * float(ref.norm())
    ref_full = empirical_ntk_reference(m, x[:9], x[9:20], trace=False)
    assert float((ntk_full - ref_full).norm()) <= 1e-10 * float(ref_full.norm())


def test_masked_backward_kernel_direct():
    """The C++ product (X @ (W * M)) * G[r // k], float32 and float64, G None, a tail block, a
    non-contiguous mask handed in by forward_backward's caller; bad arguments name themselves."""
    import gntk_fast._C as C

    g = torch.Generator().manual_seed(5)
    for dt, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        R, k, n_out, n_in = 3 * 141, 3, 90, 130
        X = torch.randn(R, n_out, generator=g, dtype=dt)
        W = torch.randn(n_out, n_in, generator=g, dtype=dt)
        M = torch.rand(n_out, n_in, generator=g) < 0.25
        G = torch.randn(R // k, n_in, generator=g, dtype=dt)
        ref = (X.double() @ (W * M).double()).reshape(R // k, k, n_in)
        y = torch.from_numpy(C.masked_backward(X.numpy(), W.numpy(), M.numpy(), G.numpy(), k))
        assert y.dtype == dt
        assert float((y.double().reshape(R // k, k, n_in) - ref * G.double()[:, None]).abs().max()) < tol * 100
        y0 = torch.from_numpy(C.masked_backward(X.numpy(), W.numpy(), M.numpy()))
        assert float((y0.double() - ref.reshape(R, n_in)).abs().max()) < tol * 100
    with pytest.raises(ValueError, match="mask"):
        C.masked_backward(X.numpy(), W.numpy(), M.numpy()[:, :5])
    with pytest.raises(ValueError, match="k must"):
        C.masked_backward(X.numpy(), W.numpy(), M.numpy(), None, 2)
    with pytest.raises(ValueError, match="G must"):
        C.masked_backward(X.numpy(), W.numpy(), M.numpy(), G.numpy()[:, :3], k)
    with pytest.raises(ValueError, match="X must"):
        C.masked_backward(X.numpy()[:, :7], W.numpy(), M.numpy())
    with pytest.raises(ValueError, match="W must"):
        C.masked_backward(X.numpy(), W.float().numpy() if dt == torch.float64 else W.double().numpy(), M.numpy())


def test_sparse_backward_non_contiguous_mask(monkeypatch):
    """A model whose mask is a transposed view still takes the sparse product correctly."""
    import gntk_fast.ops.masked_backward as B
    from gntk_fast.ntk.empirical import forward_backward

    g = torch.Generator().manual_seed(9)
    m = gf.MLP(20, [40, 40], None, 10, activation="relu", seed=1, dtype=torch.float64)
    masks = [torch.rand(w.shape, generator=g) < 0.2 for w in m.weights]
    masks[1] = (torch.rand(40, 40, generator=g) < 0.2).T  # non-contiguous view
    m.set_masks(masks)
    x = torch.randn(30, 20, generator=g, dtype=torch.float64)
    monkeypatch.setattr(B, "SPARSE_MIN_MACS", 1)
    _, Ds = forward_backward(m, x)
    with monkeypatch.context() as mp:
        _dense_backward(mp)
        _, Dd = forward_backward(m, x)
    assert all(float((a - b).abs().max()) <= 1e-12 for a, b in zip(Ds, Dd))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_masked_backward_op_backends_match_the_twin(dtype):
    """Every backend of the masked_backward op equals its naive twin; "auto" takes the sparse C++
    product only for sparse masks in large steps, and a named backend that cannot serve raises."""
    import gntk_fast.ops.masked_backward as B
    from gntk_fast.ops import BackendError

    g = torch.Generator().manual_seed(4)
    N, k, n_out, n_in = 13, 3, 40, 25
    mask = torch.rand(n_out, n_in, generator=g) < 0.2
    W = torch.randn(n_out, n_in, generator=g, dtype=dtype) * mask
    delta = torch.randn(N * k, n_out, generator=g, dtype=dtype)
    grad = torch.rand(N, n_in, generator=g, dtype=dtype)
    # the twin against the definition, written out
    want = torch.stack([grad[r // k] * (delta[r] @ (W * mask)) for r in range(N * k)])
    naive = B.masked_backward(delta, W, mask, grad, k, backend="naive")
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert float((naive - want).abs().max()) <= tol * float(want.abs().max())
    old = B.SPARSE_MIN_MACS
    try:
        B.SPARSE_MIN_MACS = 1
        if B._cpp_module() is not None:
            assert B.OP.resolve("auto", "cpu", macs=N * k * n_out * n_in, density=0.2).name == "cpp"
            got = B.masked_backward(delta, W, mask, grad, k, backend="cpp")
            assert got.dtype == dtype and float((got - naive).abs().max()) <= tol * float(naive.abs().max())
        assert B.OP.resolve("auto", "cpu", macs=N * k * n_out * n_in, density=0.5).name == "naive"
        with pytest.raises(BackendError, match="backend 'cpp'.*keeps 0.50"):
            B.OP.resolve("cpp", "cpu", macs=10**9, density=0.5)
    finally:
        B.SPARSE_MIN_MACS = old
    assert B.OP.resolve("auto", "cpu", macs=100, density=0.1).name == "naive"  # one GEMM for small steps
    if B._cpp_module() is not None:  # a named backend that cannot serve the call says why, no silent switch
        with pytest.raises(BackendError, match="backend 'cpp'.*multiply-adds"):
            B.masked_backward(delta, W, mask, grad, k, backend="cpp")
    with pytest.raises(ValueError, match="do not fit"):
        B.masked_backward(delta[:, :3], W, mask, grad, k)
