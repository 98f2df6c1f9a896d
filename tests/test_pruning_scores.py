"""Pruning scores against independent computations (docs/docs/pruners.md "Scores")."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gntk_fast as gf
from gntk_fast.pruning import select_layer_masks, synflow_scores_reference


def _flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def _mlp(d_in, width, depth, d_out, activation="relu", seed=0):
    return gf.MLP(d_in, width, depth, d_out, activation=activation, seed=seed, dtype=torch.float64)


def _batches(d_in, classes, sizes=(5, 7), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, d_in, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g))
        for n in sizes
    ]


def _mlp_forward(x, weights, masks, scales, acts):
    h = x
    for l, (w, m, s) in enumerate(zip(weights, masks, scales)):
        h = F.linear(h, s * (w * m))
        if l < len(weights) - 1:
            h = acts(h)
    return h


# ------------------------------------------------------------------- SNIP
def test_snip_score_is_abs_theta_times_grad_by_finite_differences():
    model = _mlp(3, 4, 1, 3, activation="tanh")
    # an already-pruned entry: its score must still be |theta * dL/d(theta m)| (non-zero)
    with torch.no_grad():
        model.layers[0].weight_mask[1, 2] = False
    masks0 = [m.clone().to(torch.float64) for m in model.masks]
    weights = [w.detach().clone() for w in model.weights]
    scales = [l.weight_scale for l in model.layers]
    data = _batches(3, 3)

    def loss(masks):
        # gradient summed over the batches (before the abs): L = sum_b mean-CE_b
        return sum(F.cross_entropy(_mlp_forward(x, weights, masks, scales, torch.tanh), y) for x, y in data)

    eps = 1e-6
    fd = []
    for l, m in enumerate(masks0):
        g = torch.zeros_like(m)
        for idx in range(m.numel()):
            plus = [mm.clone() for mm in masks0]
            minus = [mm.clone() for mm in masks0]
            plus[l].view(-1)[idx] += eps
            minus[l].view(-1)[idx] -= eps
            g.view(-1)[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        fd.append(g.abs())
    res = gf.prune(model, "snip", 0.5, data=data)
    for got, want in zip(res.scores, fd):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)
    assert float(res.scores[0][1, 2]) > 1e-6  # dL/dm of a pruned weight is not 0
    # compat applies the reference's normalisation by the sum of all scores
    model2 = _mlp(3, 4, 1, 3, activation="tanh")
    with torch.no_grad():
        model2.layers[0].weight_mask[1, 2] = False
    res_c = gf.prune(model2, "snip", 0.5, data=data, compat="synaptic-flow")
    total = sum(float(s.sum()) for s in fd)
    for got, want in zip(res_c.scores, fd):
        torch.testing.assert_close(got, want / total, rtol=1e-6, atol=1e-10)


# ------------------------------------------------------------------ GraSP
def test_grasp_signed_score_matches_full_hessian_on_two_layer_net():
    model = _mlp(3, 4, 1, 2, activation="identity", seed=3)
    weights = [w.detach().clone() for w in model.weights]
    scales = [l.weight_scale for l in model.layers]
    ones = [torch.ones_like(w) for w in weights]
    shapes = [w.shape for w in weights]
    sizes = [w.numel() for w in weights]
    data = _batches(3, 2, sizes=(6, 4), seed=1)
    T = 200.0

    def unflat(v):
        return [p.view(s) for p, s in zip(torch.split(v, sizes), shapes)]

    def batch_loss(v, x, y):
        return F.cross_entropy(_mlp_forward(x, unflat(v), ones, scales, lambda z: z) / T, y)

    theta = _flat(weights)
    g = sum(torch.autograd.functional.jacobian(lambda v: batch_loss(v, x, y), theta) for x, y in data)
    H = sum(torch.autograd.functional.hessian(lambda v: batch_loss(v, x, y), theta) for x, y in data)
    want = theta * (H @ g)
    res = gf.prune(model, "grasp", 0.5, data=data)
    got = _flat(res.scores)
    torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-14)
    assert (want < 0).any() and (want > 0).any()
    # the highest signed scores are kept (not the highest |score|)
    k = round(0.5 * want.numel())
    keep = torch.zeros_like(want, dtype=torch.bool)
    keep[torch.argsort(want, descending=True)[:k]] = True
    assert torch.equal(_flat(res.masks), keep)
    by_abs = torch.zeros_like(keep)
    by_abs[torch.argsort(want.abs(), descending=True)[:k]] = True
    assert not torch.equal(keep, by_abs)


# ---------------------------------------------------------------- SynFlow
@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_synflow_conservation_law_on_a_chain(activation):
    """Sum of SynFlow scores is the same in every layer (= R) for a bias-free chain."""
    model = _mlp(6, 9, 3, 4, activation=activation, seed=2)
    res = gf.prune(model, "synflow", 0.5, iterations=1)
    sums = torch.stack([s.sum() for s in res.scores])
    torch.testing.assert_close(sums, sums[0].expand_as(sums), rtol=1e-12, atol=0)
    # R itself: the |.|-linearised output sum on an all-ones input
    R = torch.ones(6, dtype=torch.float64)
    for l in model.layers:
        R = l.weight_scale * l.weight.detach().abs() @ R
    torch.testing.assert_close(sums[0], R.sum(), rtol=1e-12, atol=0)


def test_synflow_conservation_on_bias_free_fc():
    model = gf.fc(12, 10, 3, 5, bias=False, seed=1)
    res = gf.prune(model, "synflow", 0.3, iterations=1)
    sums = torch.stack([s.sum().to(torch.float64) for s in res.scores])
    torch.testing.assert_close(sums, sums[0].expand_as(sums), rtol=1e-12, atol=0)


def test_synflow_matches_hand_twin_on_fc_with_biases_and_masks():
    model = gf.fc(10, 16, 3, 4, seed=5)
    r0 = gf.prune(model, "magnitude", 0.4)  # a pruned fc (weight_orig / weight_mask), density 0.6
    lins = [m for m in model if isinstance(m, nn.Linear)]
    res = gf.prune(model, "synflow", 0.8, iterations=1)  # scored on r0's masks
    want = synflow_scores_reference([l.weight_orig for l in lins], r0.masks, [l.bias for l in lins])
    for got, w in zip(res.scores, want):
        torch.testing.assert_close(got, w, rtol=1e-12, atol=1e-300)
    # pruned weights score exactly 0, and clean masks are nested in the previous ones
    assert all(bool((s[~m] == 0).all()) for s, m in zip(res.scores, r0.masks))
    assert all(bool((m1 <= m0).all()) for m0, m1 in zip(r0.masks, res.masks))
    assert sum(int(m.sum()) for m in res.masks) == round(0.2 * sum(m.numel() for m in res.masks))


def test_synflow_on_mlp_includes_ntk_scales():
    model = _mlp(5, 7, 2, 3, seed=4)
    res = gf.prune(model, "synflow", 0.5, iterations=1)
    want = synflow_scores_reference(
        [w for w in model.weights], [torch.ones_like(w) for w in model.weights],
        scales=[l.weight_scale for l in model.layers],
    )
    for got, w in zip(res.scores, want):
        torch.testing.assert_close(got, w, rtol=1e-12, atol=0)
    # without the scales the ranking across layers would be different
    plain = synflow_scores_reference([w for w in model.weights], [torch.ones_like(w) for w in model.weights])
    assert not torch.allclose(_flat(plain), _flat(res.scores))


def _deep_tiny_mlp():
    model = gf.MLP(8, 8, 14, 2, activation="relu", seed=0)
    with torch.no_grad():
        for l in model.layers:
            l.weight.mul_(1e-4)
    return model


def test_synflow_float32_underflow_ties_and_float64_default():
    # R ~ (8 * 1e-4 * 0.8 / sqrt(8))^15 ~ 1e-55: float32 underflows to 0, float64 does not
    r32 = gf.prune(_deep_tiny_mlp(), "synflow", 0.5, iterations=1, synflow_dtype=torch.float32)
    assert all(bool((s == 0).all()) for s in r32.scores)
    r64 = gf.prune(_deep_tiny_mlp(), "synflow", 0.5, iterations=1)
    assert all(bool((s > 0).all()) for s in r64.scores)
    n = sum(m.numel() for m in r32.masks)
    # clean mode: exact count even when every score ties (lowest flat indices kept)
    assert sum(int(m.sum()) for m in r32.masks) == round(0.5 * n)
    assert bool(_flat(r32.masks)[: n // 2].all()) and not bool(_flat(r32.masks)[n // 2 :].any())
    # compat mode follows the reference rule: threshold 0, every score <= 0 pruned
    rc = gf.prune(_deep_tiny_mlp(), "synflow", 0.5, iterations=1, synflow_dtype=torch.float32, compat="synaptic-flow")
    assert sum(int(m.sum()) for m in rc.masks) == 0
    assert rc.report["total"]["collapsed_layers"] == len(rc.masks)
    rc64 = gf.prune(_deep_tiny_mlp(), "synflow", 0.5, iterations=1, compat="synaptic-flow", synflow_dtype=torch.float64)
    assert sum(int(m.sum()) for m in rc64.masks) == n - int(0.5 * n)


# ------------------------------------------------- full loops vs plain twins
@pytest.mark.parametrize("compat", [None, "synaptic-flow"])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_iterative_synflow_equals_plain_reference_loop(compat, scope):
    E, d = 12, 0.15
    model = gf.fc(9, 14, 3, 4, seed=7)
    lins = [m for m in model if isinstance(m, nn.Linear)]
    weights = [l.weight.detach().clone() for l in lins]
    biases = [l.bias.detach().clone() for l in lins]
    masks = [torch.ones_like(w, dtype=torch.bool) for w in weights]
    for e in range(1, E + 1):
        scores = synflow_scores_reference(weights, masks, biases)
        masks = select_layer_masks(scores, masks, d ** (e / E), scope, rule=compat or "clean", backend="naive")
    # the hand twin computes in float64 (compat mode's default is float32, the reference's)
    res = gf.prune(model, "synflow", 1 - d, iterations=E, scope=scope, compat=compat, synflow_dtype=torch.float64)
    for got, want in zip(res.masks, masks):
        assert torch.equal(got, want)


def test_magnitude_and_random_compat_recompute_ignoring_the_mask():
    """compat: the mask is rebuilt from fresh scores each iteration (reference),
    so with random scores weights pruned at iteration 1 come back."""
    from gntk_fast.pruning.core import _generators

    model = gf.fc(10, 20, 2, 3, seed=0)
    res = gf.prune(model, "random", 0.5, iterations=2, compat="synaptic-flow", seed=11)
    gen, _ = _generators(11)
    n = sum(m.numel() for m in res.masks)
    s1, s2 = torch.randn(n, generator=gen), torch.randn(n, generator=gen)
    m1 = s1 > torch.kthvalue(s1, int((1 - 0.5**0.5) * n)).values
    m2 = s2 > torch.kthvalue(s2, int(0.5 * n)).values
    assert torch.equal(_flat(res.masks), m2)
    assert bool((m2 & ~m1).any())  # revived weights
    # clean mode never revives: the final mask is inside the first-iteration mask
    res_c = gf.prune(gf.fc(10, 20, 2, 3, seed=0), "random", 0.5, iterations=2, seed=11)
    k1 = torch.zeros(n, dtype=torch.bool)
    k1[torch.sort(s1, descending=True, stable=True).indices[: round(0.5**0.5 * n)]] = True
    assert not bool((_flat(res_c.masks) & ~k1).any())
    assert int(_flat(res_c.masks).sum()) == round(0.5 * n)


def test_magnitude_keeps_largest_abs_weights():
    model = gf.fc(30, 40, 2, 10, seed=3)
    res = gf.prune(model, "magnitude", 0.8)
    w = _flat([m.weight_orig.detach().abs() for m in model if isinstance(m, nn.Linear)])
    keep = _flat(res.masks)
    assert int(keep.sum()) == round(0.2 * w.numel())
    assert float(w[keep].min()) > float(w[~keep].max())
    torch.testing.assert_close(_flat(res.scores), w)


def test_random_scores_independent_of_weights_and_seeded():
    a = gf.prune(gf.fc(10, 20, 2, 3, seed=0), "random", 0.5, seed=3)
    b = gf.prune(gf.fc(10, 20, 2, 3, seed=1), "random", 0.5, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.masks, b.masks))
    s = _flat(a.scores)
    assert abs(float(s.mean())) < 0.1 and math.isclose(float(s.std()), 1.0, rel_tol=0.1)


def _chain_with_float32_tie():
    """1 -> 2 -> 1 bias-free ReLU chain whose SynFlow scores tie in float32 only.

    Scores (all-ones input, every weight positive): first layer (a c, b e),
    second layer (c a, e b). With a = c = 1 + 2**-12, b = 1 + 2**-11, e = 1:
    a c = 1 + 2**-11 + 2**-24 exactly in float64, but float32 keeps 23
    fraction bits and rounds it (half to even) to 1 + 2**-11 = b e.
    """
    a = c = 1 + 2.0**-12
    b, e = 1 + 2.0**-11, 1.0
    model = nn.Sequential(nn.Linear(1, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[a], [b]]))
        model[2].weight.copy_(torch.tensor([[c, e]]))
    return model


def test_compat_synflow_defaults_to_float32_the_reference_arithmetic():
    kw = dict(iterations=1, compat="synaptic-flow")
    r64 = gf.prune(_chain_with_float32_tie(), "synflow", 0.5, synflow_dtype=torch.float64, **kw)
    r32 = gf.prune(_chain_with_float32_tie(), "synflow", 0.5, synflow_dtype=torch.float32, **kw)
    default = gf.prune(_chain_with_float32_tie(), "synflow", 0.5, **kw)
    # k = int(0.5 * 4) = 2 pruned: float64 separates a c from b e and prunes the two b e weights ...
    assert [m.reshape(-1).tolist() for m in r64.masks] == [[True, False], [True, False]]
    # ... float32 ties all four scores at the threshold, so the reference rule prunes every weight
    assert all(s.dtype == torch.float32 for s in r32.scores)
    assert len(set(_flat(r32.scores).tolist())) == 1
    assert sum(int(m.sum()) for m in r32.masks) == 0
    # the default is float32 in compat mode (the reference's masks), float64 in clean mode
    assert all(torch.equal(x, y) for x, y in zip(default.masks, r32.masks))
    assert default.config["synflow_dtype"] == "float32"
    clean = gf.prune(_chain_with_float32_tie(), "synflow", 0.5, iterations=1)
    assert clean.config["synflow_dtype"] == "float64"
    assert [m.reshape(-1).tolist() for m in clean.masks] == [[True, False], [True, False]]


def test_compat_synflow_default_equals_float32_on_a_wide_fc():
    # a realistic net where float32 and float64 masks differ (near-ties at the layerwise thresholds)
    def run(**kw):
        return gf.prune(gf.fc(64, 256, 3, 10, seed=0), "synflow", 0.99, iterations=50, scope="layerwise",
                        compat="synaptic-flow", progress=False, **kw)

    r32, r64, default = run(synflow_dtype=torch.float32), run(synflow_dtype=torch.float64), run()
    assert not all(torch.equal(x, y) for x, y in zip(r32.masks, r64.masks))
    assert all(torch.equal(x, y) for x, y in zip(default.masks, r32.masks))
