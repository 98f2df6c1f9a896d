"""Triton backend of the masked eNTK layer term against the naive twin.

Without a GPU the kernels run under TRITON_INTERPRET=1 on CPU tensors
(tests/conftest.py sets it before triton is imported); shapes stay tiny.
Tests marked ``cuda`` run the real kernels and skip without a GPU;
test_kernels_compile_for_sm90 compiles them for sm_90a without one.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("triton")

from gntk_fast.ops import BackendError  # noqa: E402
from gntk_fast.ops.entk_layer import masked_ntk_layer  # noqa: E402
from gntk_fast.ops.entk_layer import triton as te  # noqa: E402
from gntk_fast.ops.entk_layer.naive import masked_ntk_layer_naive  # noqa: E402
from gntk_fast.ops.entk_layer.triton import LAUNCHES, masked_ntk_layer_triton, prepare_mask  # noqa: E402
from _helpers import rel  # noqa: E402

DEV = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def oracle(D1, H1, D2, H2, mask, trace):
    """The naive twin in float64 on CPU."""
    D1, H1 = D1.double().cpu(), H1.double().cpu()
    if D2 is not None:
        D2, H2 = D2.double().cpu(), H2.double().cpu()
    return masked_ntk_layer_naive(D1, H1, D2, H2, None if mask is None else mask.cpu(), trace=trace)


def tri(D1, H1, D2=None, H2=None, mask=None, **kw):
    """The op's entry (validation included) with the triton backend named."""
    return masked_ntk_layer(D1, H1, D2, H2, mask, backend="triton", **kw)


def make(N1, N2, k, n_out, n_in, *, seed=0, dtype=torch.float32, sym=False):
    g = torch.Generator().manual_seed(seed)
    D1 = torch.randn(N1, k, n_out, generator=g, dtype=torch.float64)
    H1 = torch.randn(N1, n_in, generator=g, dtype=torch.float64).relu()
    D2 = torch.randn(N2, k, n_out, generator=g, dtype=torch.float64)
    H2 = torch.randn(N2, n_in, generator=g, dtype=torch.float64).relu()
    ts = [t.to(dtype).to(DEV) for t in (D1, H1, D2, H2)]
    if sym:
        ts[2] = ts[3] = None
    return ts


def make_mask(kind, n_out, n_in, seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind is None:
        return None
    if kind == "dense":
        m = torch.ones(n_out, n_in, dtype=torch.bool)
    elif kind == "empty":
        m = torch.zeros(n_out, n_in, dtype=torch.bool)
    elif kind == "sparse":
        m = torch.rand(n_out, n_in, generator=g) < 0.3
    elif kind == "high":  # density > 1/2: complement trick
        m = torch.rand(n_out, n_in, generator=g) < 0.8
    elif kind == "dead":  # dead rows and columns
        m = torch.rand(n_out, n_in, generator=g) < 0.5
        m[::3] = False
        m[:, 1::4] = False
    else:  # pragma: no cover
        raise AssertionError(kind)
    return m.to(DEV)


SHAPE = dict(N1=5, N2=7, n_out=11, n_in=13)  # divide no tile


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("sym", [False, True])
@pytest.mark.parametrize("kind", ["sparse", "high", "dense", "dead", None])
def test_float32_matches_oracle(k, trace, sym, kind):
    D1, H1, D2, H2 = make(SHAPE["N1"], SHAPE["N2"], k, SHAPE["n_out"], SHAPE["n_in"], sym=sym)
    M = make_mask(kind, SHAPE["n_out"], SHAPE["n_in"])
    before = LAUNCHES["sparse"] + LAUNCHES["dense"]
    out = tri(D1, H1, D2, H2, M, trace=trace)
    assert LAUNCHES["sparse"] + LAUNCHES["dense"] > before  # a Triton kernel ran
    N2 = SHAPE["N1"] if sym else SHAPE["N2"]
    expect_shape = (SHAPE["N1"], N2) if trace else (SHAPE["N1"], N2, k, k)
    assert out.shape == expect_shape and out.dtype == torch.float32 and out.device.type == DEV.type
    ref = oracle(D1, H1, D2, H2, M, trace)
    assert rel(out, ref, norm="max") < 1e-5
    if sym:  # exactly symmetric: T[a,b,c,c'] = T[b,a,c',c]
        o = out if trace else out.permute(0, 2, 1, 3).reshape(SHAPE["N1"] * k, -1)
        assert torch.equal(o, o.T)


def test_float64_named_triton_is_a_backend_error():
    """The kernels are float32 only and a named backend never hands the call to
    another one: float64 with backend="triton" is refused, naming the backend."""
    D1, H1, D2, H2 = make(5, 7, 2, 11, 13, dtype=torch.float64)
    before = dict(LAUNCHES)
    with pytest.raises(BackendError, match="backend 'triton'.*float32"):
        tri(D1, H1, D2, H2, make_mask("sparse", 11, 13))
    assert dict(LAUNCHES) == before


@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("sym", [False, True])
def test_all_false_mask_gives_exact_zeros(trace, sym):
    D1, H1, D2, H2 = make(5, 7, 2, 11, 13, sym=sym)
    M = make_mask("empty", 11, 13)
    out = tri(D1, H1, D2, H2, M, trace=trace)
    assert torch.isfinite(out).all()
    assert torch.count_nonzero(out) == 0


def test_complement_and_direct_agree():
    D1, H1, D2, H2 = make(6, 5, 2, 12, 9)
    M = make_mask("high", 12, 9)
    direct = prepare_mask(M, complement=False)
    comp = prepare_mask(M, complement=True)
    assert not direct.complement and comp.complement
    assert direct.rows.numel() == int(M.sum()) and comp.rows.numel() == M.numel() - int(M.sum())
    ref = oracle(D1, H1, D2, H2, M, True)
    a = masked_ntk_layer_triton(D1, H1, D2, H2, direct)
    b = masked_ntk_layer_triton(D1, H1, D2, H2, comp)
    assert rel(a, ref, norm="max") < 1e-5 and rel(b, ref, norm="max") < 1e-5


@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("sym", [False, True])
def test_split_k_partials(trace, sym):
    # several edge splits and tiles (R = 3*7 = 21 rows full) through the private launcher
    D1, H1, D2, H2 = make(7, 9, 3, 10, 12, sym=sym)
    M = make_mask("sparse", 10, 12)
    edges = prepare_mask(M)
    Dx, Hx = (D1, H1) if sym else (D2, H2)
    raw = te._launch(D1, H1, Dx, Hx, edges, trace, False, sym, config=dict(splits=3))
    if sym:
        raw = torch.triu(raw) + torch.triu(raw, 1).T
    if not trace:
        raw = raw.reshape(7, 3, -1, 3).permute(0, 2, 1, 3)
    assert rel(raw, oracle(D1, H1, D2, H2, M, trace), norm="max") < 1e-5


def test_more_than_one_tile_and_chunk():
    # 40 x 35 output = 3 x 3 tiles of 16; nnz ~ 0.3 * 23 * 29 = 200 edges = 13 chunks
    D1, H1, D2, H2 = make(40, 35, 1, 23, 29)
    M = make_mask("sparse", 23, 29)
    out = tri(D1, H1, D2, H2, M)
    assert rel(out, oracle(D1, H1, D2, H2, M, True), norm="max") < 1e-5
    sym = tri(D1, H1, mask=M)
    assert rel(sym, oracle(D1, H1, None, None, M, True), norm="max") < 1e-5


def test_each_path_launches_its_kernel():
    D1, H1, D2, H2 = make(5, 7, 2, 11, 13)
    M = make_mask("sparse", 11, 13)
    s0, d0 = LAUNCHES["sparse"], LAUNCHES["dense"]
    out = tri(D1, H1, D2, H2, M)
    assert LAUNCHES["sparse"] == s0 + 1 and LAUNCHES["dense"] == d0
    tri(D1, H1, D2, H2, None)
    assert LAUNCHES["dense"] == d0 + 1 and LAUNCHES["sparse"] == s0 + 1
    tri(D1, H1, D2, H2, make_mask("high", 11, 13))  # complement: dense minus sparse
    assert LAUNCHES["dense"] == d0 + 2 and LAUNCHES["sparse"] == s0 + 2
    assert rel(out, oracle(D1, H1, D2, H2, M, True), norm="max") < 1e-5


@pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter check (CPU tensors)")
def test_interpreter_runs_kernels_on_cpu_tensors():
    assert te.kernels_interpreted()
    D1, H1, _, _ = make(3, 3, 1, 4, 5)
    assert D1.device.type == "cpu"
    s0 = LAUNCHES["sparse"]
    tri(D1, H1, mask=make_mask("sparse", 4, 5))
    assert LAUNCHES["sparse"] == s0 + 1


def test_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(te, "kernels_interpreted", lambda: False)
    D1, H1, _, _ = make(3, 3, 1, 4, 5)
    D1, H1 = D1.cpu(), H1.cpu()
    with pytest.raises(BackendError, match="backend 'triton'.*CUDA"):
        tri(D1, H1, mask=None)


def test_prepare_mask_cache_and_invalidation():
    M = make_mask("sparse", 8, 9)
    e1 = prepare_mask(M)
    assert prepare_mask(M) is e1
    assert e1.nnz == int(M.sum()) and e1.rows.dtype == torch.int32
    # CSR (row-major) order
    flat = e1.rows.long() * 9 + e1.cols.long()
    assert torch.all(flat[1:] > flat[:-1])
    M[0, :] = True  # in-place change bumps the version: a fresh edge list
    e2 = prepare_mask(M)
    assert e2 is not e1 and e2.nnz == int(M.sum())
    assert torch.equal(te._edges_to_mask(e2), M)


def test_empty_batch_and_noncontiguous_inputs():
    D1, H1, D2, H2 = make(5, 7, 2, 11, 13)
    M = make_mask("sparse", 11, 13)
    out = tri(D1[:0], H1[:0], D2, H2, M, trace=False)
    assert out.shape == (0, 7, 2, 2)
    # transposed storage
    D1t = D1.transpose(0, 2).contiguous().transpose(0, 2)
    H1t = H1.T.contiguous().T
    assert not D1t.is_contiguous() and not H1t.is_contiguous()
    out = tri(D1t, H1t, D2, H2, M)
    assert rel(out, oracle(D1, H1, D2, H2, M, True), norm="max") < 1e-5


# ----------------------------------------------------------------------------- bad inputs
def test_bad_flags_and_prepare_mask_arguments():
    D1, H1, _, _ = make(4, 3, 2, 6, 5)
    with pytest.raises(TypeError, match="trace"):
        tri(D1, H1, trace=1)
    with pytest.raises(TypeError, match="tf32"):
        tri(D1, H1, tf32="yes")
    M = make_mask("sparse", 6, 5)
    for bad in ("maybe", "auto", 1):  # None decides by density; "auto" is a backend word only
        with pytest.raises(ValueError, match="complement"):
            prepare_mask(M, complement=bad)
    with pytest.raises(TypeError, match="mask"):
        prepare_mask(M.float())


@pytest.mark.cuda
def test_mask_on_another_device_is_named():
    D1, H1, _, _ = make(4, 3, 2, 6, 5)
    with pytest.raises(ValueError, match="mask"):
        tri(D1, H1, mask=make_mask("sparse", 6, 5).cpu())


# ----------------------------------------------------------------------------- property test
@settings(max_examples=25, deadline=None)
@given(
    N1=st.integers(1, 9), N2=st.integers(1, 9), k=st.integers(1, 3),
    n_out=st.integers(1, 12), n_in=st.integers(1, 12),
    density=st.floats(0.0, 1.0), trace=st.booleans(), sym=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_matches_oracle(N1, N2, k, n_out, n_in, density, trace, sym, seed):
    D1, H1, D2, H2 = make(N1, N2, k, n_out, n_in, seed=seed, sym=sym)
    g = torch.Generator().manual_seed(seed + 1)
    M = (torch.rand(n_out, n_in, generator=g) < density).to(DEV)
    out = tri(D1, H1, D2, H2, M, trace=trace)
    ref = oracle(D1, H1, D2, H2, M, trace)
    assert out.shape == ref.shape
    assert rel(out, ref, norm="max") < 1e-5
    # linear in the mask: kernel(M) + kernel(~M) = kernel(all kept)
    rest = tri(D1, H1, D2, H2, ~M, trace=trace)
    full = tri(D1, H1, D2, H2, None, trace=trace)
    assert rel(out + rest, full.double().cpu(), norm="max") < 1e-5


# ----------------------------------------------------------------------------- CUDA only
@pytest.mark.cuda
@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("sym", [False, True])
def test_cuda_large_exact_and_tf32(trace, sym):
    k = 3 if not trace else 2
    D1, H1, D2, H2 = make(300, 170, k, 257, 300, sym=sym)
    M = (torch.rand(257, 300, generator=torch.Generator().manual_seed(3)) < 0.2).cuda()
    ref = oracle(D1, H1, D2, H2, M, trace)
    exact = tri(D1, H1, D2, H2, M, trace=trace)
    assert rel(exact, ref, norm="max") < 1e-5
    fast = tri(D1, H1, D2, H2, M, trace=trace, tf32=True)
    assert rel(fast, ref, norm="max") < 5e-3
    high = (torch.rand(257, 300, generator=torch.Generator().manual_seed(4)) < 0.9).cuda()
    assert rel(tri(D1, H1, D2, H2, high, trace=trace), oracle(D1, H1, D2, H2, high, trace), norm="max") < 1e-5


@pytest.mark.cuda
def test_cuda_big_tiles_split_k_and_float64():
    D1, H1, _, _ = make(1100, 1, 1, 64, 96, sym=True)  # >= 1024 rows: 128-tiles
    M = (torch.rand(64, 96, generator=torch.Generator().manual_seed(5)) < 0.3).cuda()
    out = tri(D1, H1, mask=M)
    assert rel(out, oracle(D1, H1, None, None, M, True), norm="max") < 1e-5
    d64 = masked_ntk_layer(D1.double()[:50], H1.double()[:50], mask=M, trace=False)  # auto: the naive twin on CUDA
    assert d64.is_cuda and rel(d64, oracle(D1[:50], H1[:50], None, None, M, False), norm="max") < 1e-10


@pytest.mark.parametrize("col_block", [0, 4, 5, 64])
@pytest.mark.parametrize("kind", ["sparse", "high"])
def test_column_blocked_edge_order(col_block, kind):
    M = make_mask(kind, 11, 13)
    e = prepare_mask(M, col_block=col_block)
    assert e.col_block == col_block
    r, c = e.rows.long(), e.cols.long()
    cb = col_block if 0 < col_block < 13 else 13
    key = (c // cb) * (11 * 13) + r * 13 + c  # (j // cb, i, j) strictly increasing
    assert torch.all(key[1:] > key[:-1])
    assert torch.equal(te._edges_to_mask(e), M)
    D1, H1, D2, H2 = make(5, 7, 2, 11, 13)
    for trace in (True, False):
        out = masked_ntk_layer_triton(D1, H1, D2, H2, e, trace=trace)
        assert rel(out, oracle(D1, H1, D2, H2, M, trace), norm="max") < 1e-5
    with pytest.raises(ValueError, match="col_block"):
        prepare_mask(M, col_block=-1)


def test_end_to_end_through_empirical_ntk():
    """The whole-network eNTK with backend="triton" (kernels on D/H from the API's
    forward/backward) against the torch.func reference, k = 3, biases, x2 given and None."""
    empirical = pytest.importorskip("gntk_fast.ntk.empirical")
    reference = pytest.importorskip("gntk_fast.ntk.reference")
    from gntk_fast.models import MLP

    model = MLP(6, [9, 7], None, 3, "tanh", bias=True, seed=0).to(DEV)
    g = torch.Generator().manual_seed(2)
    model.set_masks([(torch.rand(tuple(m.shape), generator=g) < 0.4).to(DEV) for m in model.masks])
    x1 = torch.randn(5, 6, generator=g).to(DEV)
    x2 = torch.randn(3, 6, generator=g).to(DEV)
    s0 = LAUNCHES["sparse"]
    for xb in (x2, None):
        for trace in (True, False):
            ours = empirical.empirical_ntk(model, x1, xb, trace=trace, backend="triton")
            ref = reference.empirical_ntk_reference(model, x1, xb, trace=trace)
            assert rel(ours, ref.double().cpu(), norm="max") < 1e-5
    assert LAUNCHES["sparse"] >= s0 + 4 * 3  # three masked layers per call


# ----------------------------------------------------------------------------- real compile (no GPU needed)
_AOT_SCRIPT = r"""
import json, sys, torch, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from gntk_fast.ops.entk_layer import triton as te
PTR, IPTR = {"D1", "H1", "D2", "H2", "OUT"}, {"EI", "EJ", "TM", "TN"}
out = []
for kind, tf32, kloop, hdiv, rows in json.loads(sys.argv[1]):
    jf = te._K.sparse_entk_kernel if kind == "sparse" else te._K.dense_entk_kernel
    cfg = te._config(kind, tf32, rows, rows, torch.device("cuda"))
    const = dict(HDIV=hdiv, BM=cfg["BM"], BN=cfg["BN"], BK=cfg["BK"], PRECISION="tf32" if tf32 else "ieee")
    if kind == "sparse":
        const["KLOOP"] = kloop
    names = jf.arg_names
    sig = {n: "constexpr" if n in const else "*fp32" if n in PTR else "*i32" if n in IPTR else "i32" for n in names}
    src = ASTSource(jf, sig, {(names.index(n),): v for n, v in const.items()})
    cc = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                        options=dict(num_warps=cfg["num_warps"], num_stages=cfg["num_stages"]))
    out.append(dict(cubin=len(cc.asm["cubin"]), wgmma="wgmma" in cc.asm["ptx"]))
print(json.dumps(out))
"""

_AOT_CASES = [
    ("sparse", True, 1, 1, 1024),
    ("sparse", True, 1, 3, 100),
    ("sparse", False, 3, 1, 1024),
    ("dense", True, 1, 1, 1024),
    ("dense", False, 1, 3, 100),
]


def test_kernels_compile_for_sm90():
    """Ahead-of-time compile of the real (non-interpreted) kernels for an H100
    (sm_90a) with the configurations the launcher picks, in a subprocess without
    TRITON_INTERPRET (the interpreter patches triton.language in this process):
    catches what the interpreter forgives (types, layouts, constexpr use), and
    checks that tf32=True really puts tl.dot on tensor cores (wgmma) while the
    exact path does not."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    r = subprocess.run([sys.executable, "-c", _AOT_SCRIPT, json.dumps(_AOT_CASES)],
                       capture_output=True, text=True, env=env, timeout=300)
    if r.returncode != 0 and "ptxas" in r.stderr.lower() and "not found" in r.stderr.lower():
        pytest.skip("no ptxas for sm_90a in this triton install")  # pragma: no cover
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for (kind, tf32, *_), got in zip(_AOT_CASES, res):
        assert got["cubin"] > 0
        assert got["wgmma"] == tf32, (kind, tf32)


def test_prepared_complement_edges_and_tf32_flag():
    D1, H1, D2, H2 = make(5, 7, 2, 11, 13)
    M = make_mask("high", 11, 13)
    e = prepare_mask(M)  # complement edge list
    assert e.complement
    for trace in (True, False):
        out = masked_ntk_layer_triton(D1, H1, D2, H2, e, trace=trace)
        assert rel(out, oracle(D1, H1, D2, H2, M, trace), norm="max") < 1e-5
    f = tri(D1, H1, D2, H2, M, tf32=True)  # the TF32 dot (the interpreter rounds like TF32 or exactly)
    assert rel(f, oracle(D1, H1, D2, H2, M, True), norm="max") < 5e-3


def test_edge_cache_released_with_the_mask():
    import gc

    M = make_mask("sparse", 8, 9)
    key = id(M)
    prepare_mask(M)
    assert key in te._CACHE
    del M
    gc.collect()
    assert key not in te._CACHE
