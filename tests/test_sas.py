"""SAS: the documented numbers, ties, partitions, numba == numpy reference, inputs, errors."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gntk_fast.graphon import ConstantGraphon, FunctionGraphon, SASResult, sas, sas_reference, sas_trials, tv_smooth

FIELDS = ("H", "row_perm", "col_perm", "row_degrees", "col_degrees", "row_edges", "col_edges")


def assert_same(a: SASResult, b: SASResult):
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype, f
        np.testing.assert_array_equal(x, y, err_msg=f)  # bit-identical
    assert a.shape == b.shape


def random_mask(shape, p=0.3, seed=0):
    return np.random.default_rng(seed).random(shape) < p


def test_spec_numbers_0p15_plus_0p7uv():
    W = FunctionGraphon(lambda u, v: 0.15 + 0.7 * u * v)
    M = W.sample(4096, 4096, seed=0)
    est = sas(M, K=64)
    m = (np.arange(64) + 0.5) / 64
    # descending degree order reverses a monotone W
    target = W.evaluate(1 - m[:, None], 1 - m[None, :])
    rms = np.sqrt(np.mean((est.H - target) ** 2))
    assert rms < 0.015
    # and the unreversed orientation is far off (the test can fail)
    assert np.sqrt(np.mean((est.H - W.evaluate(m[:, None], m[None, :])) ** 2)) > 0.1


def test_ties_stable_descending():
    M = np.array(
        [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 1, 0]], dtype=bool
    )  # row degrees 2 3 2 3 1; column degrees 3 4 4 0
    est = sas(M, K=5, K_in=4)
    np.testing.assert_array_equal(est.row_perm, [1, 3, 0, 2, 4])
    np.testing.assert_array_equal(est.col_perm, [1, 2, 0, 3])
    np.testing.assert_array_equal(est.row_degrees, [2, 3, 2, 3, 1])
    np.testing.assert_array_equal(est.H, M[[1, 3, 0, 2, 4]][:, [1, 2, 0, 3]].astype(float))
    # all-equal degrees keep index order
    full = sas(np.ones((6, 5), bool), K=3, K_in=5)
    np.testing.assert_array_equal(full.row_perm, np.arange(6))
    np.testing.assert_array_equal(full.col_perm, np.arange(5))
    # repeated calls are identical
    R = random_mask((60, 40), 0.5, 3)
    assert_same(sas(R, 6), sas(R, 6))


def test_exact_partition_when_K_does_not_divide_n():
    M = random_mask((10, 7), 0.5, 1)
    est = sas(M, K=3, K_in=2)
    np.testing.assert_array_equal(est.row_edges, [0, 3, 6, 10])
    np.testing.assert_array_equal(est.col_edges, [0, 3, 7])
    assert est.block_sizes().sum() == 70
    S = M[est.row_perm][:, est.col_perm]
    for a in range(3):
        for b in range(2):
            blk = S[est.row_edges[a] : est.row_edges[a + 1], est.col_edges[b] : est.col_edges[b + 1]]
            assert est.H[a, b] == blk.mean()
    assert est.density() == pytest.approx(M.mean())
    assert est.K_out == 3 and est.K_in == 2


@pytest.mark.parametrize("shape,K,K_in", [((37, 53), 5, 7), ((300, 17), 8, 17), ((256, 512), 64, 64), ((1, 9), 1, 3)])
def test_numba_equals_reference_all_inputs(shape, K, K_in):
    M = random_mask(shape, 0.35, shape[0])
    ref = sas_reference(M, K, K_in)
    assert_same(sas(M, K, K_in), ref)
    assert_same(sas(M.astype(np.uint8), K, K_in), ref)
    assert_same(sas(M.astype(np.float32), K, K_in), ref)
    assert_same(sas(M.astype(np.int64), K, K_in), ref)
    assert_same(sas(torch.from_numpy(M), K, K_in), ref)
    assert_same(sas(torch.from_numpy(M).float(), K, K_in), ref)
    assert_same(sas(np.asfortranarray(M), K, K_in), ref)
    P = np.packbits(M, axis=1)
    assert_same(sas(P, K, K_in, n_in=shape[1]), ref)
    assert_same(sas_reference(P, K, K_in, n_in=shape[1]), ref)
    # input-layer form (columns unsorted)
    assert_same(sas(M, K, K_in, sort_cols=False), sas_reference(M, K, K_in, sort_cols=False))
    assert_same(sas(P, K, sort_cols=False, n_in=shape[1]), sas_reference(M, K, sort_cols=False))


@pytest.mark.parametrize("parallel_min,stream_max", [(0, 1 << 40), (1 << 40, 1 << 40), (0, 0), (1 << 40, 0)])
def test_threaded_streaming_and_per_block_kernels_equal_reference(monkeypatch, parallel_min, stream_max):
    """Every kernel path (1 or several threads; streaming or per-block block sums) is exact."""
    import importlib

    mod = importlib.import_module("gntk_fast.ops.sas_blocks.numba")
    monkeypatch.setattr(mod, "PARALLEL_MIN_BYTES", parallel_min)
    monkeypatch.setattr(mod, "STREAM_ACC_MAX_BYTES", stream_max)
    for shape, K, K_in in [((301, 77), 9, 5), ((64, 1000), 3, 64), ((700, 2), 64, 2), ((600, 33), 2, 4)]:
        M = random_mask(shape, 0.45, shape[1])
        ref = sas_reference(M, K, K_in)
        for threads in (None, 1, 3):
            assert_same(sas(M, K, K_in, threads=threads), ref)
            assert_same(sas(np.packbits(M, axis=1), K, K_in, n_in=shape[1], threads=threads), ref)
    with pytest.raises(ValueError, match="0/1"):
        sas(np.full((5, 5), 3, np.uint8), K=1, threads=2)
    with pytest.raises(ValueError, match="threads"):
        sas(np.ones((5, 5), bool), K=1, threads=0)


# ------------------------------------------------------- the sas_blocks operation
def _tied_mask(n_out, n_in, seed):
    """Rows drawn from 3 patterns and columns from 2 patterns: nearly every degree is tied."""
    rng = np.random.default_rng(seed)
    row_pat = rng.random((3, n_in)) < 0.5
    M = row_pat[rng.integers(0, 3, n_out)]
    M[:, rng.random(n_in) < 0.3] = True
    return M


@pytest.mark.parametrize("shape,K,K_in,sort_cols", [((40, 33), 7, 5, True), ((64, 17), 8, 17, False), ((9, 70), 3, 9, True)])
def test_sas_blocks_numba_equals_naive_with_ties(shape, K, K_in, sort_cols):
    from gntk_fast.ops.sas_blocks import sas_blocks

    M = _tied_mask(*shape, seed=shape[0])
    # ties are the point: stable order must put equal-degree rows in index order
    assert len(np.unique(M.sum(1))) < shape[0] // 2
    want = sas_blocks(M, K, K_in, sort_cols, backend="naive")
    tied = np.flatnonzero(M.sum(1) == M.sum(1)[want.row_perm[0]])
    np.testing.assert_array_equal(want.row_perm[: len(tied)], tied)
    P = np.packbits(M, axis=1)
    for backend in ("numba", "naive"):
        for got in (sas_blocks(M, K, K_in, sort_cols, backend=backend),
                    sas_blocks(P, K, K_in, sort_cols, n_in=shape[1], backend=backend),
                    sas_blocks(M.astype(np.uint8), K, K_in, sort_cols, backend=backend)):
            for field in ("H", "row_perm", "col_perm", "row_degrees", "col_degrees", "row_edges", "col_edges"):
                np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    # block means by hand
    S = M[want.row_perm][:, want.col_perm]
    re, ce = want.row_edges, want.col_edges
    assert want.H[0, 0] == S[re[0] : re[1], ce[0] : ce[1]].mean()
    assert want.H[-1, -1] == S[re[-2] : re[-1], ce[-2] : ce[-1]].mean()


def test_sas_blocks_registry_and_backend_argument():
    from gntk_fast.ops import BackendError
    from gntk_fast.ops.sas_blocks import OP

    assert OP.names == ("numba", "naive")
    assert OP.resolve("auto", "cpu").name == "numba"
    M = _tied_mask(20, 12, 0)
    with pytest.raises(BackendError, match="backend"):
        sas(M, 2, backend="cuda")
    with pytest.raises(BackendError, match="backend"):
        sas([M, M], 2, backend="triton")
    np.testing.assert_array_equal(sas(M, 4, backend="naive").H, sas(M, 4, backend="numba").H)
    trials = sas([M, M[::-1]], 4, backend="naive")
    np.testing.assert_array_equal(trials.H_trials, sas([M, M[::-1]], 4, backend="numba").H_trials)


def test_block_counts_are_bounded_before_any_work():
    from gntk_fast._validation import MAX_BLOCKS

    # a bit-packed mask with more rows (and columns) than MAX_BLOCKS costs a few KiB
    tall = np.zeros((MAX_BLOCKS + 2, 1), np.uint8)
    with pytest.raises(ValueError, match=f"K must be <= {MAX_BLOCKS}"):
        sas(tall, K=MAX_BLOCKS + 1, K_in=1, n_in=8)
    wide = np.zeros((1, MAX_BLOCKS // 8 + 1), np.uint8)
    with pytest.raises(ValueError, match=f"K_in must be <= {MAX_BLOCKS}"):
        sas(wide, K=1, K_in=MAX_BLOCKS + 1, n_in=MAX_BLOCKS + 8)
    with pytest.raises(ValueError, match="K must be <="):
        sas_reference(tall, K=MAX_BLOCKS + 1, K_in=1, n_in=8)


def test_many_rows_flush_counters():
    # > 255 rows per block and per chunk exercise the uint8 lane flushes
    M = random_mask((2000, 70), 0.9, 7)
    assert_same(sas(M, 2, 3), sas_reference(M, 2, 3))
    assert_same(sas(np.packbits(M, axis=1), 2, 3, n_in=70), sas_reference(M, 2, 3))
    ones = np.ones((1500, 9), bool)
    est = sas(ones, 1, 1)
    assert est.H[0, 0] == 1.0 and est.col_degrees.tolist() == [1500] * 9


def test_input_layer_keeps_pixel_order():
    M = random_mask((100, 16), 0.2, 2)
    M[:, 3] = True
    est = sas(M, K=4, sort_cols=False)
    assert est.K_in == 16  # one block per pixel by default
    np.testing.assert_array_equal(est.col_perm, np.arange(16))
    np.testing.assert_array_equal(est.H[:, 3], 1.0)
    np.testing.assert_allclose(np.diff(est.row_edges) @ est.H / 100, M.mean(axis=0))


def test_constant_graphon_estimate_flat():
    c = 0.3
    M = ConstantGraphon(c).sample(1024, 1024, seed=11)
    est = sas(M, K=64)
    sd = np.sqrt(c * (1 - c) / est.block_sizes())
    z = np.abs(est.H - c) / sd
    assert z.max() < 5
    # a structured graphon is not flat at the same scale
    S = FunctionGraphon(lambda u, v: 0.15 + 0.3 * u).sample(1024, 1024, seed=11)
    e2 = sas(S, K=64)
    assert (np.abs(e2.H - S.mean()) / np.sqrt(S.mean() * (1 - S.mean()) / e2.block_sizes())).max() > 5


def test_trials_average():
    masks = [random_mask((40, 30), 0.2 + 0.1 * t, t) for t in range(3)]
    tr = sas_trials(masks, K=4, K_in=3)
    single = [sas(m, K=4, K_in=3) for m in masks]
    np.testing.assert_allclose(tr.H, np.mean([s.H for s in single], axis=0))
    assert tr.n_trials == 3 and tr.H_trials.shape == (3, 4, 3)
    assert tr.row_perm.shape == (3, 40)
    np.testing.assert_array_equal(tr.row_perm[1], single[1].row_perm)
    # the list / 3-D array forms of sas dispatch to trials
    np.testing.assert_array_equal(sas(masks, K=4, K_in=3).H, tr.H)
    np.testing.assert_array_equal(sas(np.stack(masks), K=4, K_in=3).H, tr.H)
    np.testing.assert_array_equal(sas_trials(torch.from_numpy(np.stack(masks)), K=4, K_in=3).H, tr.H)
    nested = [[1, 0, 1], [0, 0, 1]]  # a nested list of numbers is one mask, not trials
    assert sas(nested, K=2, K_in=3).n_trials == 1
    packed = [np.packbits(m, axis=1) for m in masks]
    np.testing.assert_array_equal(sas_trials(packed, K=4, K_in=3, n_in=30).H, tr.H)
    with pytest.raises(ValueError, match=r"masks\[1\]"):
        sas_trials([masks[0], masks[1][:, :20]], K=4)
    with pytest.raises(ValueError, match="masks"):
        sas_trials([], K=4)


def test_smoothing():
    pytest.importorskip("skimage", reason="SAS smoothing needs scikit-image (the 'smooth' extra)")
    M = FunctionGraphon(lambda u, v: 0.2 + 0.6 * u * v).sample(400, 400, seed=0)
    raw = sas(M, K=20)
    sm = sas(M, K=20, smooth=0.05)
    smoother = sas(M, K=20, smooth=0.5)
    np.testing.assert_array_equal(sm.H_raw, raw.H)
    tv = lambda H: np.abs(np.diff(H, axis=0)).sum() + np.abs(np.diff(H, axis=1)).sum()
    assert tv(smoother.H) < tv(sm.H) < tv(raw.H)
    assert sas(M, K=20, smooth=0).smooth is None
    np.testing.assert_allclose(tv_smooth(raw.H, 0.05), sm.H)
    with pytest.raises(ValueError, match="smooth"):
        sas(M, K=20, smooth=-1)


@pytest.mark.parametrize(
    "bad,kwargs,match",
    [
        (np.array([[0, 2], [1, 0]], dtype=np.uint8), {}, "0/1"),
        (np.array([[0, 2], [1, 0]]), {}, "0/1"),
        (np.array([[0.5, 1.0], [1, 0]]), {}, "0/1"),
        (np.array([[np.nan, 1.0], [1, 0]]), {}, "0/1"),
        (np.ones((3, 3), bool), {"K": 4}, "K=4 is larger"),
        (np.ones((3, 3), bool), {"K": 2, "K_in": 5}, "K_in=5 is larger"),
        (np.ones(5, bool), {}, "2-D"),
        (np.ones((0, 4), bool), {}, "empty"),
        (np.ones((2, 2, 2, 2, 2), bool), {}, "2-D"),
        (np.ones((4, 1), np.uint8), {"n_in": 9}, "2 byte columns"),
        (np.full((4, 1), 255, np.uint8), {"n_in": 7}, "padding"),
    ],
)
def test_bad_input(bad, kwargs, match):
    kwargs = {"K": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        sas(bad, **kwargs)
    with pytest.raises(ValueError, match=match):
        sas_reference(bad, **kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="mask"):
        sas("mask")
    with pytest.raises(TypeError, match="K"):
        sas(np.ones((3, 3), bool), K=2.5)
    with pytest.raises(ValueError, match="K"):
        sas(np.ones((3, 3), bool), K=0)
    with pytest.raises(TypeError, match="sort_cols"):
        sas(np.ones((3, 3), bool), K=1, sort_cols="no")
    with pytest.raises(TypeError, match="packed uint8"):
        sas(np.ones((3, 3), bool), K=1, n_in=3)
    with pytest.raises(TypeError, match="mask"):
        sas(np.ones((3, 3), dtype=complex), K=1)


@settings(max_examples=25, deadline=None)
@given(
    n_out=st.integers(1, 40),
    n_in=st.integers(1, 40),
    p=st.floats(0, 1),
    seed=st.integers(0, 2**31),
    data=st.data(),
)
def test_sas_properties(n_out, n_in, p, seed, data):
    M = np.random.default_rng(seed).random((n_out, n_in)) < p
    K = data.draw(st.integers(1, n_out))
    K_in = data.draw(st.integers(1, n_in))
    sort_cols = data.draw(st.booleans())
    est = sas(M, K, K_in, sort_cols=sort_cols)
    assert_same(est, sas_reference(M, K, K_in, sort_cols=sort_cols))
    assert_same(est, sas(np.packbits(M, axis=1), K, K_in, sort_cols=sort_cols, n_in=n_in))
    assert est.H.shape == (K, K_in) and est.H.min() >= 0 and est.H.max() <= 1
    assert est.density() == pytest.approx(M.mean())
    assert sorted(est.row_perm.tolist()) == list(range(n_out))
    assert np.all(np.diff(est.row_degrees[est.row_perm]) <= 0)
    np.testing.assert_array_equal(est.row_degrees, M.sum(1))
    np.testing.assert_array_equal(est.col_degrees, M.sum(0))
    assert np.all(np.diff(est.row_edges) >= 1) and est.row_edges[-1] == n_out


def test_smoothing_without_scikit_image_names_the_extra(monkeypatch):
    # an absent optional dependency is one clear ImportError, never a traceback deep inside
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.restoration", None)
    M = FunctionGraphon(lambda u, v: 0.2 + 0.6 * u * v).sample(60, 60, seed=0)
    with pytest.raises(ImportError, match=r"gntk_fast\[smooth\]"):
        sas(M, K=6, smooth=0.1)
    assert sas(M, K=6).smooth is None
