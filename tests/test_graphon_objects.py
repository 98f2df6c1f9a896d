"""Graphon objects: evaluate, integrate, matrix, streamed seeded sampling, coercion."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import gntk_fast as gf
from gntk_fast.graphon import (
    ConstantGraphon,
    FunctionGraphon,
    InputGraphon,
    StepGraphon,
    as_graphon,
    from_sas,
    neuron_positions,
    sas,
)


def W_spec(u, v):
    return 0.15 + 0.7 * u * v


def test_lazy_export():
    assert gf.graphon.StepGraphon is StepGraphon
    assert "sas" in dir(gf.graphon)


def test_neuron_positions():
    np.testing.assert_allclose(neuron_positions(4), [0.125, 0.375, 0.625, 0.875])


def test_constant():
    g = ConstantGraphon(0.25)
    assert g.integrate() == 0.25
    np.testing.assert_array_equal(g.matrix(3, 5), np.full((3, 5), 0.25))
    assert g.evaluate(np.zeros((2, 1)), np.ones(4)).shape == (2, 4)
    with pytest.raises(ValueError, match="c"):
        ConstantGraphon(1.5)


def test_function_graphon_values_and_integral():
    g = FunctionGraphon(W_spec)
    u = neuron_positions(7)
    v = neuron_positions(5)
    np.testing.assert_allclose(g.matrix(7, 5), 0.15 + 0.7 * np.outer(u, v))
    assert g.integrate() == pytest.approx(0.15 + 0.7 / 4, abs=1e-12)
    # a scalar-returning fn broadcasts
    assert FunctionGraphon(lambda u, v: 0.5).matrix(2, 3).shape == (2, 3)
    with pytest.raises(ValueError, match="fn"):
        FunctionGraphon(lambda u, v: 2 * u).matrix(4, 4)
    with pytest.raises(ValueError, match="fn"):
        FunctionGraphon(lambda u, v: np.full_like(u, np.nan)).matrix(2, 2)
    with pytest.raises(TypeError, match="fn"):
        FunctionGraphon(3)
    with pytest.raises(ValueError, match="u"):
        g.evaluate(1.5, 0.5)


def test_step_graphon_blocks_and_integral():
    H = np.array([[0.1, 0.9], [0.5, 0.2]])
    g = StepGraphon(H, row_edges=[0, 0.25, 1], col_edges=[0, 0.5, 1])
    assert g.integrate() == pytest.approx(0.25 * (0.1 + 0.9) / 2 + 0.75 * (0.5 + 0.2) / 2)
    m = g.matrix(4, 4)
    np.testing.assert_array_equal(m[0], [0.1, 0.1, 0.9, 0.9])
    np.testing.assert_array_equal(m[1:], np.tile([0.5, 0.5, 0.2, 0.2], (3, 1)))
    assert g.evaluate(1.0, 1.0) == 0.2  # the right end belongs to the last block
    assert g.evaluate(0.25, 0.0) == 0.5  # blocks are [e_a, e_{a+1})
    with pytest.raises(ValueError, match="row_edges"):
        StepGraphon(H, row_edges=[0, 0.7, 0.6])
    with pytest.raises(ValueError, match="col_edges"):
        StepGraphon(H, col_edges=[0, 1])
    with pytest.raises(ValueError, match="H"):
        StepGraphon(np.ones(3))
    with pytest.raises(ValueError, match="H"):
        StepGraphon([[1.2]])


def test_sample_marginals_and_determinism():
    g = FunctionGraphon(W_spec)
    a = g.sample(300, 200, seed=3)
    assert a.dtype == np.bool_ and a.shape == (300, 200)
    np.testing.assert_array_equal(a, g.sample(300, 200, seed=3, workers=1))
    assert not np.array_equal(a, g.sample(300, 200, seed=4))
    # density within 5 binomial SD of the mean of W over the grid
    p = g.matrix(300, 200).mean()
    assert abs(a.mean() - p) < 5 * np.sqrt(p * (1 - p) / a.size)
    # the row profile follows u: the top rows are denser than the bottom rows
    assert a[-50:].mean() > a[:50].mean() + 0.2


def test_sample_many_blocks_threads_deterministic(monkeypatch):
    import gntk_fast.graphon.objects as obj

    g = ConstantGraphon(0.4)
    monkeypatch.setattr(obj, "_BLOCK_ELEMS", 64)  # forces 1-row blocks for n_in=64
    small = g.sample(40, 64, seed=1, workers=2)
    assert small.shape == (40, 64)
    assert abs(small.mean() - 0.4) < 0.05
    np.testing.assert_array_equal(small, g.sample(40, 64, seed=1, workers=1))


def test_sample_packed_equals_bool():
    g = StepGraphon([[0.9, 0.1], [0.3, 0.6]])
    for n_in in (64, 67):
        b = g.sample(33, n_in, seed=5)
        p = g.sample(33, n_in, seed=5, packed=True)
        assert p.dtype == np.uint8 and p.shape == (33, (n_in + 7) // 8)
        np.testing.assert_array_equal(np.unpackbits(p, axis=1, count=n_in).astype(bool), b)
    with pytest.raises(TypeError, match="packed"):
        g.sample(4, 4, packed="yes")
    with pytest.raises(ValueError, match="n_out"):
        g.sample(0, 4)


def test_input_graphon_pixels():
    H = np.random.default_rng(0).random((4, 64))
    g = InputGraphon(H, row_edges=[0, 0.1, 0.5, 0.6, 1.0])
    dens = g.pixel_density()
    np.testing.assert_allclose(dens, np.array([0.1, 0.4, 0.1, 0.4]) @ H)
    assert g.image().shape == (8, 8)
    # pixel j sits at v_j = (j - 1/2)/d, inside column block j
    m = g.matrix(10, 64)
    np.testing.assert_array_equal(m[:, 17], H[g.row_block(neuron_positions(10)), 17])
    with pytest.raises(ValueError, match="shape"):
        InputGraphon(np.ones((2, 10)) * 0.5).image()


def test_from_sas_round_trip():
    rng = np.random.default_rng(1)
    M = rng.random((50, 40)) < 0.3
    est = sas(M, K=7, K_in=6)
    g = from_sas(est)
    assert isinstance(g, StepGraphon) and not isinstance(g, InputGraphon)
    # at the mask's own size every neuron lands in its own block
    mat = g.matrix(50, 40)
    expected = np.repeat(np.repeat(est.H, np.diff(est.row_edges), 0), np.diff(est.col_edges), 1)
    np.testing.assert_array_equal(mat, expected)
    assert g.integrate() == pytest.approx(M.mean())
    inp = from_sas(sas(M, K=5, sort_cols=False))
    assert isinstance(inp, InputGraphon) and inp.d == 40
    np.testing.assert_allclose(inp.pixel_density(), M.mean(axis=0))
    assert StepGraphon.from_estimate(est).K_out == 7


def test_as_graphon():
    assert isinstance(as_graphon(0.3), ConstantGraphon)
    assert isinstance(as_graphon(np.float32(0.3)), ConstantGraphon)
    assert isinstance(as_graphon(W_spec), FunctionGraphon)
    assert isinstance(as_graphon(np.full((2, 3), 0.5)), StepGraphon)
    assert isinstance(as_graphon(torch.full((2, 3), 0.5)), StepGraphon)
    g = ConstantGraphon(0.1)
    assert as_graphon(g) is g
    M = np.random.default_rng(0).random((20, 20)) < 0.5
    assert isinstance(as_graphon(sas(M, K=4)), StepGraphon)
    with pytest.raises(TypeError, match="obj"):
        as_graphon("dense")
    with pytest.raises(ValueError, match="obj"):
        as_graphon(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="estimate"):
        from_sas(object())


@settings(max_examples=25, deadline=None)
@given(
    H=arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.floats(0, 1)),
    n_out=st.integers(1, 30),
    n_in=st.integers(1, 30),
    seed=st.integers(0, 2**31),
)
def test_step_graphon_properties(H, n_out, n_in, seed):
    g = StepGraphon(H)
    m = g.matrix(n_out, n_in)
    assert m.shape == (n_out, n_in) and m.min() >= 0 and m.max() <= 1
    assert g.integrate() == pytest.approx(H.mean())
    # a 0/1 graphon samples deterministically to its own matrix
    B = StepGraphon((H > 0.5).astype(float))
    np.testing.assert_array_equal(B.sample(n_out, n_in, seed=seed), B.matrix(n_out, n_in) > 0.5)
    # when K divides n the matrix is the Kronecker expansion of H
    K0, K1 = H.shape
    np.testing.assert_array_equal(g.matrix(K0 * 3, K1 * 2), np.kron(H, np.ones((3, 2))))


@settings(max_examples=25, deadline=None)
@given(c=st.floats(0, 1), a=st.floats(0, 0.5), n_out=st.integers(1, 40), n_in=st.integers(1, 40))
def test_function_graphon_properties(c, a, n_out, n_in):
    g = FunctionGraphon(lambda u, v: c * (1 - a) + a * u * v * c)
    m = g.matrix(n_out, n_in)
    assert m.min() >= 0 and m.max() <= 1
    assert g.integrate(n=8) == pytest.approx(c * (1 - a) + a * c / 4, abs=1e-12)
    s = g.sample(n_out, n_in, seed=0)
    if c == 0:
        assert not s.any()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_out=2**40, n_in=3), "^n_out must be <="),
        (dict(n_out=3, n_in=2**40), "^n_in must be <="),
        (dict(n_out=1 << 22, n_in=1 << 22), "n_out x n_in"),  # each allowed, 2 TiB in all
        (dict(n_out=3, n_in=3, seed=2**64), "^seed must be <="),
        (dict(n_out=3, n_in=3, seed=-1), "^seed must be >="),
        (dict(n_out=3, n_in=3, seed=1.0), "^seed must be an int"),
    ],
)
def test_sample_sizes_and_seed_checked_before_allocation(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ConstantGraphon(0.5).sample(**kwargs)


def test_matrix_and_integrate_bounded():
    with pytest.raises(ValueError, match="n_out x n_in"):
        ConstantGraphon(0.5).matrix(1 << 22, 1 << 22)
    with pytest.raises(ValueError, match="^n must be <="):
        FunctionGraphon(lambda u, v: u * v).integrate(2**40)


def test_complex_block_values_rejected():
    with pytest.raises(TypeError, match="^H must be real-valued"):
        StepGraphon(np.full((2, 2), 0.5 + 0.1j))
    with pytest.raises(TypeError, match="^u must be real-valued"):
        ConstantGraphon(0.5).evaluate(np.array([0.5 + 0.2j]), 0.5)
    with pytest.raises(TypeError, match="^obj must be real-valued"):
        as_graphon(np.full((2, 2), 0.5 + 0.1j))
