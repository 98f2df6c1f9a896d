"""Graphon design (docs/limit-graphons.md section 5): the differentiable kernel, the density constraint, objectives."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from gntk_fast.graphon import InputGraphon, StepGraphon
from gntk_fast.pai.design import design, design_kernel, step_values


def _data(n=24):
    x, y = gf.data.load("digits", n=n, seed=0)
    return x.double(), y


@pytest.mark.parametrize("depth", [1, 3])
def test_kernel_equals_graphon_ntk(depth):
    X, _ = _data(20)
    rng = np.random.default_rng(depth)
    vals = [rng.uniform(0.05, 0.95, (3, 64))] + [rng.uniform(0.05, 0.95, (3, 3)) for _ in range(depth - 1)]
    vals.append(rng.uniform(0.05, 0.95, (1, 3)))
    got = design_kernel([torch.tensor(v) for v in vals], X)
    gs = [InputGraphon(vals[0])] + [StepGraphon(v) for v in vals[1:]]
    ref = gf.graphon_ntk(gs, X)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


def test_kernel_gradient_matches_finite_differences():
    X, _ = _data(6)
    vals = [torch.full((2, 64), 0.4, dtype=torch.float64), torch.full((2, 2), 0.5, dtype=torch.float64),
            torch.full((1, 2), 0.6, dtype=torch.float64)]
    vals = [v + 0.1 * torch.rand(v.shape, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
            for i, v in enumerate(vals)]
    for v in vals:
        v.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c: design_kernel([a, b, c], X).sum(), vals, eps=1e-6, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.floats(0.01, 0.99), st.integers(0, 2**31 - 1), st.floats(0.0, 5.0))
def test_property_step_values_density_exact(r, c, d, seed, scale):
    t = scale * torch.randn(r, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    v = step_values(t, d)
    assert abs(float(v.mean()) - d) < 1e-10
    assert float(v.min()) >= 0 and float(v.max()) <= 1
    # order preserved: a larger logit gets a larger value
    flat_t, flat_v = t.ravel(), v.ravel()
    order = torch.argsort(flat_t)
    assert bool((torch.diff(flat_v[order]) >= -1e-15).all())


def test_step_values_gradient_is_the_implicit_one():
    t = torch.tensor([[0.3, -1.0], [2.0, 0.1]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: step_values(z, 0.3), (t,), eps=1e-6, atol=1e-7)
    # moving every logit by the same amount changes nothing (the shift absorbs it)
    g = torch.autograd.grad(step_values(t, 0.3)[0, 0], t)[0]
    assert abs(float(g.sum())) < 1e-10


@pytest.mark.parametrize("objective", ["alignment", "loss", "generalisation"])
def test_design_improves_objective_at_fixed_density(objective):
    x, y = _data(24)
    r = design(x, y, 2, 0.2, K=3, objective=objective, steps=15, lr=0.1)
    assert r.final < r.initial
    assert len(r.history) == 16 and np.isfinite(r.history).all()
    for g in r.graphons:
        assert abs(g.integrate() - 0.2) < 1e-9
    assert r.graphons[0].H.shape == (3, 64) and r.graphons[-1].H.shape == (1, 3)
    # usable for pruning a real network at that density
    res = gf.prune(gf.fc(64, 30, 2, 10, seed=0), "graphon", 0.8, graphons=r.graphons, scope="layerwise", seed=0)
    assert all(int(m.sum()) == round(0.2 * m.numel()) for m in res.masks)


def test_bad_input():
    x, y = _data(8)
    with pytest.raises(ValueError, match="objective"):
        design(x, y, 1, 0.2, objective="nope", steps=1)
    with pytest.raises(ValueError, match="density"):
        design(x, y, 1, 1.0, steps=1)
    with pytest.raises(ValueError, match="density"):
        design(x, y, 2, [0.2, 0.3], steps=1)
    with pytest.raises(ValueError, match="y"):
        design(x, y[:5], 1, 0.2, steps=1)
    with pytest.raises(ValueError, match="depth"):
        design(x, y, 0, 0.2, steps=1)


def test_kernel_gradient_finite_when_a_block_is_empty():
    X, _ = _data(6)
    A = torch.full((3, 64), 0.3, dtype=torch.float64)
    A[0] = 0.0  # no input reaches the first row block: its signal is exactly 0
    A.requires_grad_(True)
    vals = [A, torch.full((3, 3), 0.4, dtype=torch.float64), torch.full((1, 3), 0.5, dtype=torch.float64)]
    K = design_kernel(vals, X)
    K.sum().backward()
    assert torch.isfinite(K).all() and torch.isfinite(A.grad).all()
    ref = gf.graphon_ntk([InputGraphon(A.detach().numpy()), StepGraphon(vals[1].numpy()),
                          StepGraphon(vals[2].numpy())], X)
    torch.testing.assert_close(K.detach(), ref, rtol=1e-10, atol=1e-12)


def test_step_values_extreme_logits():
    t = torch.tensor([[40.0, 3.7, -30.0, 0.0], [-5.0, 12.0, 2.0, -60.0]], dtype=torch.float64)
    for d in (0.01, 0.1, 0.5, 0.93):
        v = step_values(t, d)
        assert abs(float(v.mean()) - d) < 1e-10 and torch.isfinite(v).all()
