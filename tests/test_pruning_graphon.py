"""Pruning from graphons (docs/limit-graphons.md section 5): exact counts, twins, inclusion probabilities."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from gntk_fast.graphon import ConstantGraphon, FunctionGraphon, InputGraphon, StepGraphon
from gntk_fast.pruning.graphon import (
    graphon_masks,
    graphon_masks_reference,
    graphon_weights,
    inclusion_probabilities,
)

LINEAR = FunctionGraphon(lambda u, v: 0.05 + 0.9 * u * v)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=3),
       st.floats(0.0, 0.6), st.integers(0, 2**32), st.sampled_from(["layerwise", "global"]))
def test_property_exact_count_and_twin(shapes, d, seed, scope):
    rng = np.random.default_rng(seed)
    W = [0.01 + 0.99 * rng.random(s) for s in shapes]
    got = graphon_masks(W, d, scope, seed)
    ref = graphon_masks_reference(W, d, scope, seed)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    sizes = [int(np.prod(s)) for s in shapes]
    if scope == "global":
        assert sum(int(m.sum()) for m in got) == round(d * sum(sizes))
    else:
        assert [int(m.sum()) for m in got] == [round(d * n) for n in sizes]
    sysm = graphon_masks(W, d, scope, seed, sampler="systematic")
    assert sum(int(m.sum()) for m in sysm) == sum(int(m.sum()) for m in got)


def test_inclusion_probabilities_closed_form():
    w = np.array([1.0, 0.5, 0.5, 0.25, 0.0])
    # k = 1: proportional, c = 1/2.25
    np.testing.assert_allclose(inclusion_probabilities(w, 1), w / 2.25)
    # k = 3: the largest is capped at 1, the rest share 2: c = 2/1.25
    np.testing.assert_allclose(inclusion_probabilities(w, 3), [1.0, 0.8, 0.8, 0.4, 0.0])
    with pytest.raises(ValueError, match="sparsity"):
        inclusion_probabilities(w, 5)


def test_systematic_sampler_has_the_exact_inclusion_probabilities():
    W = [LINEAR.matrix(12, 10)]
    k = 30
    pi = inclusion_probabilities(W[0].ravel(), k).reshape(12, 10)
    T = 3000
    freq = np.mean([graphon_masks(W, k / 120, seed=s, sampler="systematic")[0] for s in range(T)], axis=0)
    se = np.sqrt(pi * (1 - pi) / T)
    assert np.all(np.abs(freq - pi) <= 5 * se + 1e-12)
    # pi itself is proportional to W (no entry capped here): the design is exact
    assert pi.max() < 1
    np.testing.assert_allclose(pi / W[0], k / W[0].sum())


def test_keys_sampler_follows_the_graphon_at_width():
    n, d = 800, 0.1
    M = graphon_masks([LINEAR.matrix(n, n)], d, seed=0)[0]
    est = gf.graphon.sas(M, 8, sort_cols=False, K_in=8)  # rows sorted, columns in position order
    assert M.sum() == round(d * n * n)
    # column blocks in position order: kept density increases with v like W's column means
    col = M.mean(0).reshape(8, -1).mean(1)
    truth = np.array([LINEAR.matrix(64, n)[:, i * 100:(i + 1) * 100].mean() for i in range(8)])
    assert np.corrcoef(col, truth)[0, 1] > 0.98
    assert est.density() == pytest.approx(d)


def test_prune_method_graphon_on_mlp_and_fc():
    m = gf.MLP(16, 64, 2, d_out=3, seed=0)
    gs = [InputGraphon(np.linspace(0.2, 1, 16)[None, :].repeat(4, 0)), LINEAR, ConstantGraphon(0.5)]
    res = gf.prune(m, "graphon", 0.7, graphons=gs, scope="layerwise", seed=1)
    for mask, layer in zip(res.masks, m.layers):
        assert int(mask.sum()) == round(0.3 * mask.numel())
        assert torch.equal(layer.weight_mask.bool(), mask)
    # input coordinates with larger graphon values keep more weights
    cols = res.masks[0].float().mean(0).numpy()
    assert np.corrcoef(cols, np.linspace(0.2, 1, 16))[0, 1] > 0.8
    res2 = gf.prune(gf.MLP(16, 64, 2, d_out=3, seed=0), "graphon", 0.7, graphons=gs, scope="layerwise", seed=1)
    for a, b in zip(res.masks, res2.masks):
        assert torch.equal(a, b)
    fc = gf.fc(16, 32, 2, 3, seed=0)
    r = gf.prune(fc, "graphon", 0.5, graphons=[0.5, LINEAR, 0.5], scope="global", seed=0)
    assert sum(int(x.sum()) for x in r.masks) == round(0.5 * sum(x.numel() for x in r.masks))


def test_positions_place_neurons():
    W = StepGraphon([[1.0, 0.0], [0.0, 1.0]])  # block diagonal: rows 0..n/2 with columns 0..n/2
    rp = np.arange(10)[::-1].copy()
    w = graphon_weights([(10, 10)], [W], [(rp, None)])[0]
    np.testing.assert_array_equal(w, W.matrix(10, 10)[::-1])
    masks = graphon_masks([w], 0.5, seed=0)
    assert masks[0][np.ix_(range(5), range(5))].sum() == 0  # reversed rows: the top-left block has weight 0


def test_bad_input():
    m = gf.MLP(4, 8, 1, seed=0)
    with pytest.raises(ValueError, match="graphons is required"):
        gf.prune(m, "graphon", 0.5)
    with pytest.raises(ValueError, match="one entry per prunable layer"):
        gf.prune(m, "graphon", 0.5, graphons=[0.5])
    with pytest.raises(ValueError, match="graphons\\[1\\]"):
        gf.prune(m, "graphon", 0.5, graphons=[0.5, 2.0])
    with pytest.raises(ValueError, match="sparsity"):
        gf.prune(m, "graphon", 0.2, graphons=[0.0, 0.5])  # the input layer has no positive weight
    with pytest.raises(ValueError, match="positions\\[0\\]\\[0\\]"):
        gf.prune(m, "graphon", 0.5, graphons=[0.5, 0.5], positions=[([0, 0, 1, 2, 3, 4, 5, 6], None), None])
    with pytest.raises(ValueError, match="iterations"):
        gf.prune(m, "graphon", 0.5, graphons=[0.5, 0.5], iterations=3)
    with pytest.raises(ValueError, match="graphons/positions"):
        gf.prune(m, "magnitude", 0.5, graphons=[0.5, 0.5])
