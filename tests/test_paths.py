"""Path densities (docs/limit-graphons.md sections 3 and 4.5): closed forms, finite counts, joint vs per-mask."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from gntk_fast.graphon import FunctionGraphon
from gntk_fast.pai.paths import path_counts, path_density, path_density_comparison

W1 = FunctionGraphon(lambda u, v: 0.2 + 0.6 * u * v)
W2 = FunctionGraphon(lambda u, v: 0.1 + 0.8 * (1 - u) * v)
R = FunctionGraphon(lambda u, v: 0.3 + 0.6 * v)


def test_closed_form_polynomial_graphons():
    # int R(u2) W2(u2, u1) du2 = 0.06 + 0.2 u1;  then int (0.06 + 0.2 u1) W1(u1, v) du1 = 0.032 + 0.058 v
    d = 16
    v = (np.arange(d) + 0.5) / d
    np.testing.assert_allclose(path_density([W1, W2, R], d), 0.032 + 0.058 * v, rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=5), st.integers(1, 9))
def test_property_constant_graphons_multiply(cs, d):
    np.testing.assert_allclose(path_density(cs, d), np.prod(cs), rtol=1e-12, atol=1e-300)


def test_path_counts_by_hand_and_dense():
    M1 = np.array([[1, 0], [1, 1], [0, 1]])  # 3 hidden x 2 inputs
    M2 = np.array([[1, 1, 0]])  # 1 output
    # paths from input 0: through hidden 0 and 1 -> 2; from input 1: through hidden 1 -> 1; dense count 3
    np.testing.assert_allclose(path_counts([M1, M2]), [2 / 3, 1 / 3])
    ones = [np.ones((7, 5)), np.ones((6, 7)), np.ones((3, 6))]
    np.testing.assert_allclose(path_counts(ones), 1.0)
    np.testing.assert_allclose(path_counts([torch.from_numpy(M1), torch.from_numpy(M2).bool()]), [2 / 3, 1 / 3])


def test_finite_counts_converge_to_the_integral():
    d = 16
    truth = path_density([W1, W2, R], d)
    errs = []
    for n in (100, 800):
        e = []
        for s in range(2):
            ms = [W1.sample(n, d, seed=s), W2.sample(n, n, seed=10 + s), R.sample(1, n, seed=20 + s)]
            e.append(np.linalg.norm(path_counts(ms) - truth) / np.linalg.norm(truth))
        errs.append(np.mean(e))
    assert errs[1] < 0.6 * errs[0], errs


def test_joint_estimate_keeps_paths_per_mask_sas_does_not():
    d, n = 16, 600
    ms = [W1.sample(n, d, seed=0), W2.sample(n, n, seed=1), R.sample(1, n, seed=2)]
    c = path_density_comparison(ms, K=32)
    assert c.err_joint < 0.05
    # per-mask SAS reverses W2's row order relative to W1's: a wrong coupling
    assert c.err_per_mask > 5 * c.err_joint


def test_pruned_network_and_errors():
    x, y = gf.data.pruning_batch("digits", seed=0)
    res = gf.prune(gf.fc(64, 128, 2, 10, seed=0), "snip", 0.8, data=(x, y), scope="layerwise", seed=0)
    c = path_density_comparison(res, K=16)
    assert c.finite.shape == (64,) and c.err_joint < c.err_per_mask
    dead = path_density_comparison([np.ones((4, 3)), np.zeros((4, 4)), np.ones((1, 4))], K=2)
    assert (dead.finite == 0).all() and np.isnan(dead.err_joint) and np.isnan(dead.err_per_mask)
    with pytest.raises(ValueError, match="masks\\[1\\]"):
        path_counts([np.ones((3, 2)), np.ones((1, 4))])
    with pytest.raises(TypeError, match="masks"):
        path_counts(np.ones((3, 2)))
    with pytest.raises(ValueError, match="0/1"):
        path_counts([np.full((3, 2), 2), np.ones((1, 3))])
