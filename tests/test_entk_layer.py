"""The masked eNTK layer term as one operation: every backend against the naive
twin, the naive twin against the literal definition, and the backend registry.

Sizes are odd on purpose (they divide no tile of the C++ or Triton kernels).
The Triton kernels run under the CPU interpreter (tests/conftest.py).
"""
from __future__ import annotations

import pytest
import torch

import gntk_fast as gf
from _helpers import rel
from gntk_fast import _backend
from gntk_fast.ops import BackendError
from gntk_fast.ops.entk_layer import COMPLEMENT_DENSITY, ENTK_LAYER, masked_ntk_layer
from gntk_fast.ops.entk_layer.naive import masked_ntk_layer_naive


def problem(N1=9, N2=7, k=3, n_out=13, n_in=11, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    D1 = torch.randn(N1, k, n_out, generator=g, dtype=dtype)
    H1 = torch.randn(N1, n_in, generator=g, dtype=dtype).clamp_min(0)
    D2 = torch.randn(N2, k, n_out, generator=g, dtype=dtype)
    H2 = torch.randn(N2, n_in, generator=g, dtype=dtype).clamp_min(0)
    return D1, H1, D2, H2


def make_mask(kind, n_out=13, n_in=11, seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind is None:
        return None
    density = {"sparse": 0.3, "dense": 0.85}[kind]
    return torch.rand(n_out, n_in, generator=g) < density


def literal(D1, H1, D2, H2, mask, trace):
    """The definition as one float64 einsum over the expanded mask."""
    D2, H2 = (D1, H1) if D2 is None else (D2, H2)
    M = torch.ones(D1.shape[2], H1.shape[1], dtype=torch.float64) if mask is None else mask.double()
    args = (M, D1.double(), D2.double(), H1.double(), H2.double())
    if trace:
        return torch.einsum("ij,aci,bci,aj,bj->ab", *args)
    return torch.einsum("ij,aci,bdi,aj,bj->abcd", *args)


def available(backend):
    if backend == "cpp" and not _backend.cpp_available():
        pytest.skip("C++ extension not built")
    if backend == "triton":
        pytest.importorskip("triton")


# ------------------------------------------------------------------ the twin
@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("kind", [None, "sparse", "dense"])
def test_naive_twin_is_the_definition(trace, sym, kind):
    D1, H1, D2, H2 = problem()
    if sym:
        D2 = H2 = None
    M = make_mask(kind)
    ref = literal(D1, H1, D2, H2, M, trace)
    for block in (None, 1, 4):  # one block, single edges, ragged blocks
        out = masked_ntk_layer_naive(D1, H1, D2, H2, M, trace=trace, block_edges=block)
        assert out.dtype == torch.float64 and out.shape == ref.shape
        assert rel(out, ref) < 1e-13, block
    if sym:
        assert torch.equal(out, out.T if trace else out.permute(1, 0, 3, 2))


# --------------------------------------------------------- every backend vs twin
@pytest.mark.parametrize("backend", ["cpp", "triton", "naive"])
@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("kind", [None, "sparse", "dense"])
def test_backend_matches_naive_twin(backend, trace, sym, kind):
    available(backend)
    dtype = torch.float32 if backend == "triton" else torch.float64
    D1, H1, D2, H2 = problem(dtype=dtype)
    if sym:
        D2 = H2 = None
    M = make_mask(kind)
    if kind == "dense":
        assert float(M.float().mean()) > COMPLEMENT_DENSITY  # the complement path
    out = masked_ntk_layer(D1, H1, D2, H2, M, trace=trace, backend=backend)
    twin = masked_ntk_layer_naive(*(t if t is None else t.double() for t in (D1, H1, D2, H2)), M, trace=trace)
    assert out.dtype == dtype and out.shape == twin.shape
    assert rel(out, twin) < (1e-5 if dtype == torch.float32 else 1e-12)
    if sym:  # x2 = x1: exactly symmetric on every backend and path
        assert torch.equal(out, out.T if trace else out.permute(1, 0, 3, 2))


@pytest.mark.parametrize("backend", ["cpp", "naive"])
def test_float32_backends_match_twin(backend):
    available(backend)
    D1, H1, D2, H2 = problem(dtype=torch.float32, seed=3)
    for kind in (None, "sparse", "dense"):
        M = make_mask(kind, seed=4)
        out = masked_ntk_layer(D1, H1, D2, H2, M, trace=False, backend=backend)
        twin = masked_ntk_layer_naive(D1.double(), H1.double(), D2.double(), H2.double(), M, trace=False)
        assert out.dtype == torch.float32 and rel(out, twin) < 1e-5


def test_empty_batches_and_all_pruned_mask_give_zeros():
    D1, H1, D2, H2 = problem()
    out = masked_ntk_layer(D1[:0], H1[:0], D2, H2, make_mask("sparse"), trace=False)
    assert out.shape == (0, 7, 3, 3)
    for backend in ("auto", "naive"):
        z = masked_ntk_layer(D1, H1, D2, H2, torch.zeros(13, 11, dtype=torch.bool), backend=backend)
        assert z.shape == (9, 7) and torch.count_nonzero(z) == 0


# ------------------------------------------------------------------ registry
def test_registry_order_and_auto_rule(monkeypatch):
    assert ENTK_LAYER.names == ("triton", "cpp", "naive")
    if _backend.cpp_available():
        assert ENTK_LAYER.resolve("auto", "cpu", dtype=torch.float64).name == "cpp"
        assert ENTK_LAYER.resolve("auto", "cpu", dtype=torch.float32).name == "cpp"
    monkeypatch.setattr(_backend, "triton_available", lambda: True)
    assert ENTK_LAYER.resolve("auto", "cuda", dtype=torch.float32).name == "triton"
    assert ENTK_LAYER.resolve("auto", "cuda", dtype=torch.float64).name == "naive"  # float64 on CUDA


def test_auto_is_cpp_on_cpu_and_naive_without_the_extension(monkeypatch):
    if not _backend.cpp_available():
        pytest.skip("C++ extension not built")
    D1, H1, D2, H2 = problem()
    M = make_mask("sparse")
    seen = []
    cpp = ENTK_LAYER.backends["cpp"].load()
    monkeypatch.setattr(ENTK_LAYER.backends["cpp"], "_fn", lambda *a, **kw: seen.append("cpp") or cpp(*a, **kw))
    auto = masked_ntk_layer(D1, H1, D2, H2, M)
    assert seen == ["cpp"]
    monkeypatch.setattr(_backend, "cpp_available", lambda: False)
    assert ENTK_LAYER.resolve("auto", "cpu", dtype=torch.float64).name == "naive"
    again = masked_ntk_layer(D1, H1, D2, H2, M)
    assert seen == ["cpp"]  # the C++ kernel did not run
    assert rel(again, auto) < 1e-12
    with pytest.raises(BackendError, match="'cpp'.*not built"):
        masked_ntk_layer(D1, H1, D2, H2, M, backend="cpp")


def test_explicit_triton_with_float64_is_an_error():
    """A named backend never switches silently: float64 was once routed to a torch fallback."""
    pytest.importorskip("triton")
    D1, H1, D2, H2 = problem(dtype=torch.float64)
    with pytest.raises(BackendError, match="backend 'triton'.*float32"):
        masked_ntk_layer(D1, H1, D2, H2, make_mask("sparse"), backend="triton")
    with pytest.raises(BackendError, match="backend 'triton'"):
        ENTK_LAYER.resolve("triton", "cuda", dtype=torch.float64)


def test_explicit_cpp_off_cpu_and_triton_off_cuda_are_errors(monkeypatch):
    with pytest.raises(BackendError, match="backend 'cpp'.*CPU"):
        ENTK_LAYER.resolve("cpp", "cuda", dtype=torch.float32)
    pytest.importorskip("triton")
    from gntk_fast.ops.entk_layer import triton as te

    monkeypatch.setattr(te, "kernels_interpreted", lambda: False)
    D1, H1, _, _ = problem(dtype=torch.float32)
    with pytest.raises(BackendError, match="backend 'triton'.*CUDA"):
        masked_ntk_layer(D1, H1, mask=make_mask("sparse"), backend="triton")
    monkeypatch.setattr(_backend, "triton_available", lambda: False)
    with pytest.raises(BackendError, match="triton does not import"):
        ENTK_LAYER.resolve("triton", "cuda", dtype=torch.float32)


def test_tf32_is_a_permission_for_exact_backends():
    D1, H1, D2, H2 = problem()
    M = make_mask("sparse")
    exact = masked_ntk_layer(D1, H1, D2, H2, M, backend="naive")
    for backend in ("naive", "auto"):
        assert torch.equal(masked_ntk_layer(D1, H1, D2, H2, M, backend=backend, tf32=True),
                           masked_ntk_layer(D1, H1, D2, H2, M, backend=backend))
    assert rel(masked_ntk_layer(D1, H1, D2, H2, M, tf32=True), exact) < 1e-12


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "change, exc, match",
    [
        (lambda a: a.update(D1=a["D1"][0]), ValueError, "D1"),
        (lambda a: a.update(H1=a["H1"][:3]), ValueError, "D1 and H1"),
        (lambda a: a.update(H2=None), ValueError, "D2 and H2"),
        (lambda a: a.update(D2=a["D2"][:, :1]), ValueError, "D2"),
        (lambda a: a.update(H2=a["H2"][:, :4]), ValueError, "H2"),
        (lambda a: a.update(D1=a["D1"].half()), TypeError, "D1"),
        (lambda a: a.update(H2=a["H2"].float()), ValueError, "H2"),
        (lambda a: a.update(mask=a["mask"][:, :4]), ValueError, "mask"),
        (lambda a: a.update(mask=a["mask"].float()), TypeError, "mask"),
        (lambda a: a.update(mask=a["mask"].to("meta")), ValueError, "mask is on meta"),
        (lambda a: a.update(mask=[[True]]), TypeError, "mask"),
        (lambda a: a["H1"].__setitem__((0, 0), float("nan")), ValueError, "H1"),
        (lambda a: a["D2"].__setitem__((0, 0, 0), float("inf")), ValueError, "D2"),
        (lambda a: a.update(trace=1), TypeError, "trace"),
        (lambda a: a.update(tf32="yes"), TypeError, "tf32"),
        (lambda a: a.update(backend="torch"), ValueError, "backend"),
    ],
)
def test_bad_inputs_name_the_argument(change, exc, match):
    D1, H1, D2, H2 = problem()
    args = dict(D1=D1, H1=H1, D2=D2, H2=H2, mask=make_mask("sparse"), trace=True, tf32=False, backend="auto")
    change(args)
    with pytest.raises(exc, match=match):
        masked_ntk_layer(args.pop("D1"), args.pop("H1"), args.pop("D2"), args.pop("H2"), args.pop("mask"), **args)


def test_per_layer_result_is_a_dataclass_that_sums_to_the_kernel():
    m = gf.MLP(5, [9, 8], None, 2, activation="tanh", bias=True, seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    m.set_masks([torch.rand(w.shape, generator=g) < 0.4 for w in m.weights])
    x = torch.randn(7, 5, generator=g, dtype=torch.float64)
    for fn in (gf.empirical_ntk, gf.ntk.empirical_ntk_reference):
        for trace in (True, False):
            res = fn(m, x, trace=trace, per_layer=True)
            assert isinstance(res, gf.EmpiricalNTK)
            assert len(res.per_layer) == len(m.layers)
            assert all(t.shape == res.kernel.shape for t in res.per_layer)
            total = sum(res.per_layer[1:], res.per_layer[0].clone())
            assert rel(total, res.kernel) < 1e-14
            assert torch.equal(res.kernel, fn(m, x, trace=trace))
