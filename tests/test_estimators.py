"""USVT, network histogram, largest gap: twins, recovery on known graphons, SAS's interface, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gntk_fast.graphon import (
    FunctionGraphon,
    SASResult,
    StepGraphon,
    estimate,
    estimate_error,
    largest_gap,
    largest_gap_reference,
    network_histogram,
    network_histogram_reference,
    sas,
    usvt,
    usvt_reference,
)
from gntk_fast.graphon.estimators import usvt_matrix

SMOOTH = FunctionGraphon(lambda u, v: 0.15 + 0.7 * u * v)
# three blocks with well separated degrees (row means 0.6, 0.4, 0.18)
SBM = StepGraphon([[0.9, 0.6, 0.3], [0.6, 0.4, 0.2], [0.3, 0.2, 0.05]])


def _same(a: SASResult, b: SASResult, atol=1e-12):
    for f in ("row_perm", "col_perm", "row_degrees", "col_degrees", "row_edges", "col_edges"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    np.testing.assert_allclose(a.H, b.H, atol=atol, rtol=0)
    assert a.shape == b.shape


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 40), st.integers(3, 40), st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_property_twins_and_interface(n, m, p, seed):
    rng = np.random.default_rng(seed)
    M = rng.random((n, m)) < p * rng.random((n, 1)) ** 0.5
    K = min(n, m, 3)
    s = sas(M, K)
    for got, ref in [
        (usvt(M, K), usvt_reference(M, K)),
        (network_histogram(M), network_histogram_reference(M)),
        (largest_gap(M, K), largest_gap_reference(M, K)),
    ]:
        _same(got, ref, atol=1e-9)
        # SAS's order and degrees exactly
        np.testing.assert_array_equal(got.row_perm, s.row_perm)
        np.testing.assert_array_equal(got.col_perm, s.col_perm)
        assert np.all((got.H >= 0) & (got.H <= 1))
        assert got.row_edges[0] == 0 and got.row_edges[-1] == n and np.all(np.diff(got.row_edges) > 0)
    # block means of the mask itself keep its density exactly
    for est in (network_histogram(M), largest_gap(M, K)):
        assert abs(est.density() - M.mean()) < 1e-12


def test_usvt_full_matrix_and_rank_on_a_rank_one_graphon():
    g = FunctionGraphon(lambda u, v: 0.9 * u * v + 0.05)  # rank 2 (constant + uv)
    M = g.sample(600, 300, seed=0)
    P, rank = usvt_matrix(M)
    assert 1 <= rank <= 3
    u = (np.arange(600) + 0.5) / 600
    v = (np.arange(300) + 0.5) / 300
    truth = 0.9 * np.outer(u, v) + 0.05
    # well below the error of the best constant (the truth's own spread)
    assert np.sqrt(np.mean((P - truth) ** 2)) < 0.3 * truth.std()
    full = usvt(M, K=None)
    assert full.H.shape == (600, 300)
    np.testing.assert_allclose(full.H, P[np.ix_(full.row_perm, full.col_perm)])


@pytest.mark.parametrize("name,kwargs,graphon", [
    ("sas", {"K": 16}, SMOOTH),
    ("usvt", {"K": 16}, SMOOTH),
    ("network_histogram", {}, SMOOTH),
    ("network_histogram", {}, SBM),
    ("largest_gap", {"K": 3}, SBM),
])
def test_recovery_error_falls_with_n(name, kwargs, graphon):
    errs = []
    for n in (150, 1200):
        e = [estimate_error(estimate(name, graphon.sample(n, n // 2, seed=s), **kwargs), graphon) for s in (0, 1)]
        errs.append(np.mean(e))
    assert errs[1] < 0.75 * errs[0], errs


def test_largest_gap_finds_the_blocks():
    M = SBM.sample(900, 600, seed=3)
    est = largest_gap(M, 3)
    # rows of block b (positions [b/3, (b+1)/3)) are cut exactly at 300, 600
    assert est.row_edges.tolist() == [0, 300, 600, 900]
    assert est.col_edges.tolist() == [0, 200, 400, 600]
    np.testing.assert_allclose(est.H, SBM.H, atol=0.02)


def test_network_histogram_picks_more_blocks_for_more_data():
    k_small = network_histogram(SMOOTH.sample(120, 120, seed=0)).K_out
    k_large = network_histogram(SMOOTH.sample(1200, 1200, seed=0)).K_out
    assert k_large > k_small


def test_inputs_and_errors():
    M = SMOOTH.sample(64, 40, seed=0)
    t = torch.from_numpy(M)
    packed = np.packbits(M, axis=1)
    for f in (usvt, network_histogram, largest_gap):
        kw = {} if f is network_histogram else {"K": 8}
        a, b, c = f(M, **kw), f(t, **kw), f(packed, n_in=40, **kw)
        np.testing.assert_allclose(a.H, b.H)
        np.testing.assert_allclose(a.H, c.H)
    with pytest.raises(ValueError, match="K=100"):
        usvt(M, 100)
    with pytest.raises(ValueError, match="K_in"):
        largest_gap(M, 3, K_in=41)
    with pytest.raises(ValueError, match="K must be 'auto'"):
        network_histogram(M, "nope")
    with pytest.raises(ValueError, match="eta"):
        usvt(M, eta=-1)
    with pytest.raises(ValueError, match="0/1"):
        largest_gap(np.full((4, 4), 2))
    with pytest.raises(ValueError, match="method"):
        estimate("nope", M)
