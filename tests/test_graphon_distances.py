"""Distances and homomorphism densities against brute force."""
from __future__ import annotations

from itertools import product

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gntk_fast.graphon import (
    FunctionGraphon,
    StepGraphon,
    cut_distance,
    cut_norm,
    cut_norm_reference,
    degree_profile,
    degree_profile_distance,
    hom_densities,
    hom_densities_reference,
    hom_distance,
    histogram_distance,
    sas,
)


def test_histogram_distance():
    a = np.zeros((4, 4))
    b = np.full((4, 4), 0.5)
    assert histogram_distance(a, b) == pytest.approx(2.0)
    assert histogram_distance(a, b, normalized=True) == pytest.approx(0.5)
    r = np.zeros((2, 8))
    assert histogram_distance(r, r + 0.25, normalized=True) == pytest.approx(0.25)
    M = np.random.default_rng(0).random((40, 40)) < 0.3
    e = sas(M, K=4)
    assert histogram_distance(e, e.H) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        histogram_distance(a, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="H_ref"):
        histogram_distance(a, np.full((4, 4), np.nan))


def brute_cut(D):
    best = 0.0
    for s in product((0, 1), repeat=D.shape[0]):
        for t in product((0, 1), repeat=D.shape[1]):
            best = max(best, abs(np.array(s) @ D @ np.array(t)))
    return best / D.size


@pytest.mark.parametrize("seed", range(8))
def test_cut_norm_exact_vs_brute_force(seed):
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(rng.integers(1, 7), rng.integers(1, 7)))
    exact = cut_norm(D)
    assert exact.exact and exact.method == "enumeration"
    assert exact.value == pytest.approx(brute_cut(D), rel=1e-12, abs=1e-15)
    assert cut_norm_reference(D) == pytest.approx(exact.value, rel=1e-12, abs=1e-15)
    # the returned sets achieve the value
    achieved = abs(exact.rows.astype(float) @ D @ exact.cols.astype(float)) / D.size
    assert achieved == pytest.approx(exact.value)
    bound = cut_norm(D, exact=False, restarts=5, seed=seed)
    assert not bound.exact and "lower bound" in bound.method
    assert bound.value <= exact.value + 1e-12


def test_cut_norm_bound_below_exact_medium():
    rng = np.random.default_rng(42)
    for _ in range(5):
        D = rng.normal(size=(12, 30))
        exact = cut_norm(D)
        assert exact.exact
        for restarts in (1, 3, 50):
            b = cut_norm(D, exact=False, restarts=restarts, seed=1)
            assert b.value <= exact.value + 1e-12
        assert cut_norm(D, exact=False, restarts=200).value >= 0.9 * exact.value
    # transposed orientation gives the same value
    D = rng.normal(size=(17, 5))
    assert cut_norm(D).value == pytest.approx(cut_norm(D.T).value)


def test_cut_norm_large_is_bound_and_rank_one_exact():
    rng = np.random.default_rng(0)
    D = rng.normal(size=(64, 64))
    c = cut_norm(D)
    assert not c.exact and 0 < c.value
    # for D = x y^T with x, y > 0 the cut norm is sum(D)/size, found by the bound too
    x, y = rng.random(64) + 0.1, rng.random(40) + 0.1
    D = np.outer(x, y)
    assert cut_norm(D).value == pytest.approx(D.mean())
    assert cut_distance(D, np.zeros_like(D), max_value=np.inf).value == pytest.approx(D.mean())
    with pytest.raises(ValueError, match="exact=False"):
        cut_norm(rng.normal(size=(30, 30)), exact=True)
    with pytest.raises(ValueError, match="D"):
        cut_norm(np.ones(4))
    with pytest.raises(TypeError, match="exact"):
        cut_norm(np.ones((3, 3)), exact="no")
    with pytest.raises(ValueError, match="too large"):
        cut_norm_reference(np.ones((13, 2)))


def brute_hom(A):
    """Counts homomorphisms by looping over every vertex map (pure Python)."""
    n, m = A.shape
    A = A.astype(int)
    edge = sum(A[i, j] for i in range(n) for j in range(m)) / (n * m)
    rc = sum(A[i, j] * A[i, k] for i in range(n) for j in range(m) for k in range(m)) / (n * m * m)
    cc = sum(A[i, j] * A[k, j] for i in range(n) for k in range(n) for j in range(m)) / (n * n * m)
    p3 = sum(
        A[i, l] * A[i, j] * A[k, j] for i in range(n) for k in range(n) for j in range(m) for l in range(m)
    ) / (n * n * m * m)
    c4 = sum(
        A[i, j] * A[i, l] * A[k, j] * A[k, l] for i in range(n) for k in range(n) for j in range(m) for l in range(m)
    ) / (n * n * m * m)
    return np.array([edge, rc, cc, p3, c4])


@pytest.mark.parametrize("shape,p,seed", [((5, 7), 0.5, 0), ((8, 3), 0.3, 1), ((6, 6), 0.8, 2), ((1, 4), 0.5, 3)])
def test_hom_densities_brute_force_masks(shape, p, seed):
    A = np.random.default_rng(seed).random(shape) < p
    expected = brute_hom(A)
    np.testing.assert_allclose(hom_densities(A).as_array(), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hom_densities_reference(A).as_array(), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hom_densities(torch.from_numpy(A)).as_array(), expected, rtol=1e-12)
    np.testing.assert_allclose(
        hom_densities(np.packbits(A, axis=1), n_in=shape[1]).as_array(), expected, rtol=1e-12
    )


def test_hom_densities_step_graphon():
    H = np.array([[0.9, 0.2, 0.1], [0.4, 0.5, 0.0]])
    g = StepGraphon(H, row_edges=[0, 0.3, 1], col_edges=[0, 0.5, 0.75, 1])
    # exact: a mask that repeats every block in proportion to its width is the same graphon
    A = np.repeat(np.repeat(H, [3, 7], axis=0), [2, 1, 1], axis=1)
    np.testing.assert_allclose(hom_densities(g).as_array(), hom_densities(A).as_array(), rtol=1e-12)
    np.testing.assert_allclose(hom_densities(g).as_array(), hom_densities_reference(g).as_array(), rtol=1e-12)
    # constant graphon: t(F) = c^{e(F)}
    c = 0.3
    h = hom_densities(StepGraphon([[c]])).as_array()
    np.testing.assert_allclose(h, [c, c**2, c**2, c**3, c**4])
    # a large sample of W converges to t(F, W) (sampling error ~ 1/n)
    W = StepGraphon(H)
    M = W.sample(1200, 900, seed=0)
    np.testing.assert_allclose(hom_densities(M).as_array(), hom_densities(W).as_array(), atol=0.01)
    d = hom_distance(M, W)
    assert set(d) == {"edge", "row_cherry", "col_cherry", "path3", "cycle4"} and max(d.values()) < 0.01


def test_degree_profile_distance():
    M = np.zeros((4, 6), bool)
    M[0] = True  # row degrees 6,0,0,0 -> 1, 0, 0, 0 ; column degrees 1 each -> 1/4
    prof = degree_profile(M)
    np.testing.assert_allclose(prof["rows"][0], [1, 0, 0, 0])
    np.testing.assert_allclose(prof["cols"][0], np.full(6, 0.25))
    # vs constant 0.25: rows: 0.5 * (0.25*0.75 + 0.75*0.25) = 0.1875 ; columns 0
    d = degree_profile_distance(M, StepGraphon([[0.25]]))
    assert d["rows"] == pytest.approx(0.1875) and d["cols"] == pytest.approx(0.0)
    # a sample is close to its graphon; a different graphon is not
    W = FunctionGraphon(lambda u, v: 0.2 + 0.6 * u)
    S = W.sample(2000, 500, seed=1)
    close = degree_profile_distance(S, sas(S, K=50))
    assert close["rows"] < 0.01
    far = degree_profile_distance(S, StepGraphon([[0.5]]))
    assert far["rows"] == pytest.approx(0.5 * 0.5 * 0.3, abs=0.01)  # 0.5 * int |0.2 + 0.6u - 0.5| du


@settings(max_examples=25, deadline=None)
@given(
    D=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.floats(-1, 1)),
    seed=st.integers(0, 1000),
)
def test_cut_norm_properties(D, seed):
    exact = cut_norm(D)
    assert exact.value == pytest.approx(brute_cut(D), abs=1e-12)
    assert cut_norm(D, exact=False, restarts=3, seed=seed).value <= exact.value + 1e-12
    assert exact.value <= np.abs(D).mean() + 1e-12
    assert cut_norm(-D).value == pytest.approx(exact.value)


@settings(max_examples=25, deadline=None)
@given(
    A=arrays(np.bool_, st.tuples(st.integers(1, 5), st.integers(1, 5))),
)
def test_hom_properties(A):
    h = hom_densities(A).as_array()
    np.testing.assert_allclose(h, brute_hom(A), atol=1e-12)
    e = h[0]
    # Cauchy-Schwarz / Sidorenko-type inequalities hold for every bipartite graph
    assert h[1] >= e**2 - 1e-12 and h[2] >= e**2 - 1e-12 and h[4] >= e**4 - 1e-12


_H = np.array([[0.2, 0.9], [0.4, 0.1]])


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda c: cut_norm(c), "D"),
        (lambda c: cut_norm(torch.as_tensor(c)), "D"),
        (lambda c: cut_norm([[0.1, 1j]]), "D"),
        (lambda c: cut_distance(c, _H), "H"),
        (lambda c: cut_distance(_H, c), "H_ref"),
        (lambda c: histogram_distance(c, _H), "H"),
        (lambda c: hom_densities(c), "obj"),
        (lambda c: hom_distance(_H, c), "obj"),
        (lambda c: degree_profile(c), "obj"),
    ],
)
def test_complex_input_is_a_type_error(call, name):
    import warnings

    c = _H + 1e-3j  # casting would silently drop the imaginary part
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning escaping the check fails the test
        with pytest.raises(TypeError, match=rf"^{name} must be real-valued"):
            call(c)


def test_non_numeric_input_is_a_type_error():
    with pytest.raises(TypeError, match="^D must be a real numeric array"):
        cut_norm(np.array([["a", "b"]]))


def test_cut_norm_seed_checked():
    D = np.random.default_rng(0).normal(size=(30, 30))
    with pytest.raises(ValueError, match="^seed must be >= 0"):
        cut_norm(D, exact=False, seed=-1)
    with pytest.raises(TypeError, match="^seed must be an int"):
        cut_norm(D, exact=False, seed=1.5)
