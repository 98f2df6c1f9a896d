"""Predicted limit graphons (docs/limit-graphons.md): the fit, closed forms, checks 1, 2, 3, 4 at small sizes."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, special

import gntk_fast as gf
from gntk_fast.pai.limit import (
    ResidualDistribution,
    block_means,
    factor_fit,
    limit_graphon,
    limit_graphon_from_scores,
    synflow_recursion,
)


# ------------------------------------------------------------------ the fit
def test_factor_fit_recovers_factors_and_r2():
    rng = np.random.default_rng(0)
    n, m = 300, 200
    a = rng.normal(0, 1.0, n)
    b = rng.normal(0, 0.5, m)
    eta = rng.normal(0, 0.7, (n, m))
    Y = 2.0 + a[:, None] + b[None, :] + eta
    alpha, beta, res, r2 = factor_fit(Y, np.ones_like(Y, dtype=bool))
    # centring: beta has mean 0, alpha carries the grand mean
    assert abs(beta.mean()) < 1e-12
    # each factor is a mean of m (or n) residuals of sd 0.7: within 5 standard errors
    np.testing.assert_allclose(alpha - alpha.mean(), a - a.mean(), atol=5 * 0.7 / np.sqrt(m))
    np.testing.assert_allclose(beta, b - b.mean(), atol=5 * 0.7 / np.sqrt(n))
    assert abs(res.mean()) < 1e-10 and abs(res.std() - 0.7) < 0.02
    # R^2 = var(a + b) / (var(a + b) + var(eta)) = 1.25 / (1.25 + 0.49)
    assert abs(r2 - 1.25 / 1.74) < 0.03


def test_factor_fit_with_missing_entries_is_least_squares():
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(30, 20))
    pos = rng.random((30, 20)) < 0.7
    alpha, beta, res, r2 = factor_fit(Y, pos, tol=1e-13)
    # the normal equations of the additive LS fit: every row and column residual sum is 0
    R = np.where(pos, Y - alpha[:, None] - beta[None, :], 0.0)
    np.testing.assert_allclose(R.sum(1), 0, atol=1e-8)
    np.testing.assert_allclose(R.sum(0), 0, atol=1e-8)
    # against scipy's least squares on the design matrix
    ii, jj = np.nonzero(pos)
    X = np.zeros((len(ii), 50))
    X[np.arange(len(ii)), ii] = 1
    X[np.arange(len(ii)), 30 + jj] = 1
    coef, *_ = np.linalg.lstsq(X, Y[pos], rcond=None)
    np.testing.assert_allclose(alpha[ii] + beta[jj], X @ coef, atol=1e-7)


def test_residual_distribution_tail_mass_of_lognormal():
    rng = np.random.default_rng(2)
    F = ResidualDistribution.from_sample(rng.normal(size=400_000), n_quantiles=8192)
    for t in (-1.0, 0.0, 1.0):
        assert abs(F.sf(t) - special.ndtr(-t)) < 2e-3
        # E[e^Z 1{Z > t}] = e^{1/2} Phi(1 - t)
        assert abs(F.tail_mass(np.array(t)) - np.exp(0.5) * special.ndtr(1 - t)) < 0.02


# --------------------------------------------------------- a known graphon
def test_prediction_matches_closed_form_with_logistic_residuals():
    """S = exp(A(u_i) + B(v_j) + eta), eta logistic: W(u, v) = expit(A(u) + B(v) - log tau)
    with tau from the density; both computed here without the library."""
    rng = np.random.default_rng(3)
    n_out, n_in, d = 800, 600, 0.2
    A = lambda u: 2.0 * (1 - u)  # noqa: E731  (decreasing: position 0 = highest factor)
    B = lambda v: 1.5 * (1 - v) ** 2  # noqa: E731
    u = (np.arange(n_out) + 0.5) / n_out
    v = (np.arange(n_in) + 0.5) / n_in
    perm_r, perm_c = rng.permutation(n_out), rng.permutation(n_in)
    logS = A(u)[perm_r][:, None] + B(v)[perm_c][None, :] + rng.logistic(size=(n_out, n_in))
    out = limit_graphon_from_scores([np.ones((n_in, 5)), np.exp(logS), np.ones((2, n_out))], d, resolution=128)
    g = out[1].graphon
    # the closed form: log tau solves int expit(A + B - T) = d (integral by scipy)
    f = lambda T: integrate.dblquad(lambda y, x: special.expit(A(x) + B(y) - T), 0, 1, 0, 1, epsabs=1e-10)[0] - d  # noqa: E731
    T = optimize.brentq(f, -10, 10)
    m = (np.arange(128) + 0.5) / 128
    truth = special.expit(A(m)[:, None] + B(m)[None, :] - T)  # already in decreasing-degree order
    pred = g.matrix(128, 128)
    assert np.sqrt(np.mean((pred - truth) ** 2)) < 0.02
    assert abs(g.integrate() - d) < 1e-6
    # all-equal scores (the input layer here): ties at the threshold share the density uniformly
    assert out[0].kind == "input" and np.allclose(out[0].feature_density, d)


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 40), st.integers(5, 40), st.floats(0.05, 0.95), st.integers(0, 2**31 - 1),
       st.sampled_from(["layerwise", "global"]))
def test_property_density_range_and_order(n1, n2, d, seed, scope):
    rng = np.random.default_rng(seed)
    scores = [rng.lognormal(size=(n1, 7)) * rng.lognormal(size=(n1, 1)),
              rng.lognormal(size=(n2, n1)) * rng.lognormal(size=(1, n1)),
              rng.lognormal(size=(3, n2))]
    out = limit_graphon_from_scores(scores, d, scope=scope, resolution=16)
    total = sum(s.size for s in scores)
    got = sum(l.density * s.size for l, s in zip(out.layers, scores)) / total
    assert abs(got - d) < 1e-6
    if scope == "layerwise":
        for l in out.layers:
            assert abs(l.density - d) < 1e-6
    for l in out.layers:
        H = l.graphon.H
        assert np.isfinite(H).all() and H.min() >= 0 and H.max() <= 1
        if l.kind == "hidden":
            assert np.all(np.diff(H.mean(1)) <= 1e-12) and np.all(np.diff(H.mean(0)) <= 1e-12)
        if l.kind == "input":
            np.testing.assert_allclose(l.feature_density, H.mean(0))


def test_zero_scores_kept_apart_dead_rows_and_columns():
    rng = np.random.default_rng(4)
    S = rng.lognormal(size=(60, 50))
    S[:20] = 0.0  # dead rows
    S[:, :10] = 0.0  # dead columns
    out = limit_graphon_from_scores([np.ones((50, 4)), S, np.ones((2, 60))], 0.3, resolution=64)
    lay = out[1]
    H = lay.graphon.matrix(60, 50)
    # rows/columns without a positive score get exactly 0 (the density goes to the live block)
    assert (H.sum(1) == 0).sum() == 20 and (H.sum(0) == 0).sum() == 10
    assert abs(lay.density - 0.3) < 1e-9 and lay.in_model
    assert (lay.positive_rows[:20] == 0).all() and np.isnan(lay.alpha[:20]).all()
    # asking for more than the positive fraction (40 x 40 / 3000 = 0.533): filled, flagged
    out = limit_graphon_from_scores([np.ones((50, 4)), S, np.ones((2, 60))], 0.7, resolution=64)
    assert not out[1].in_model and abs(out[1].density - 0.7) < 1e-9


def test_bad_input():
    S = [np.ones((4, 3)), np.ones((2, 4))]
    with pytest.raises(ValueError, match="density"):
        limit_graphon_from_scores(S, 0.0)
    with pytest.raises(ValueError, match="scores\\[1\\]"):
        limit_graphon_from_scores([np.ones((4, 3)), np.ones((2, 5))], 0.5)
    with pytest.raises(ValueError, match="scores\\[0\\]"):
        limit_graphon_from_scores([np.full((4, 3), np.nan), np.ones((2, 4))], 0.5)
    with pytest.raises(TypeError, match="scores"):
        limit_graphon_from_scores(np.ones((4, 3)), 0.5)
    with pytest.raises(ValueError, match="scope"):
        limit_graphon_from_scores(S, 0.5, scope="nope")
    m = gf.MLP(8, 16, 2, seed=0)
    with pytest.raises(ValueError, match="method"):
        limit_graphon(m, "nope", 0.5)
    with pytest.raises(ValueError, match="iterations"):
        limit_graphon(m, "magnitude", 0.5, iterations=3)
    with pytest.raises(ValueError, match="sparsity"):
        limit_graphon(m, "magnitude", 1.5)
    with pytest.raises(ValueError, match="data"):
        limit_graphon(m, "snip", 0.5)


# ------------------------------------------------------- docs/limit-graphons.md section 4
def _digits():
    return gf.data.pruning_batch("digits", seed=0)


def _pred_vs_sas(method, n, seed, data, K=16, depth=2, iterations=1):
    m = gf.fc(64, n, depth, 10, seed=seed)
    if iterations == 1:
        lg = limit_graphon(m, method, 0.8, data=data)
    else:
        lg = synflow_recursion(m, 0.2, iterations, resolution=128)
    res = gf.prune(copy.deepcopy(m), method, 0.8, data=data, scope="layerwise", iterations=iterations, seed=0,
                   progress=False)
    H = gf.graphon.sas(res.masks[1].numpy(), K).H
    return np.sqrt(np.mean((H - block_means(lg[1].graphon, n, n, K)) ** 2)), lg, res


@pytest.mark.parametrize("method", ["magnitude", "random"])
def test_check1_homogeneous_methods_predict_constant(method):
    dist = []
    for n in (96, 384):
        m = gf.fc(64, n, 2, 10, seed=1)
        lg = limit_graphon(m, method, 0.8, seed=1)
        d = 1.0 - 0.8
        # the limit is the constant d exactly, in every layer, whatever the realised weights
        assert np.abs(lg[1].graphon.H - d).max() < 1e-12
        assert np.abs(gf.pai.block_means(lg[1].graphon, n, n, 16) - d).max() < 1e-12
        assert np.abs(lg[0].feature_density - d).max() < 1e-12
        assert all(abs(l.density - d) < 1e-12 for l in lg.layers)
        res = gf.prune(copy.deepcopy(m), method, 0.8, scope="layerwise", seed=1)
        est = gf.graphon.sas(res.masks[1].numpy(), 16).H
        dist.append(np.sqrt(np.mean((est - d) ** 2)))
    # SAS of the real masks approaches it
    assert dist[1] < 0.7 * dist[0]
    if method == "random":  # i.i.d. scores: the constant in global scope too
        lg = limit_graphon(gf.fc(64, 50, 2, 10, seed=3), "random", 0.7, scope="global")
        assert np.abs(lg[1].graphon.H - (1.0 - 0.7)).max() < 1e-12


@pytest.mark.parametrize("method", ["snip", "synflow", "magnitude"])
def test_sparsity_zero_keeps_everything(method):
    x, y = _digits()
    lg = limit_graphon(gf.fc(64, 40, 2, 10, seed=0), method, 0.0, data=(x[:8], y[:8]))
    for layer in lg.layers:
        assert layer.density == 1.0 and np.isneginf(layer.log_tau)
        H = layer.graphon.H if hasattr(layer.graphon, "H") else None
        if H is not None:
            assert np.all(H == 1.0)


@pytest.mark.parametrize("method,batch", [("snip", 1), ("snip", 100), ("grasp", 100), ("synflow", None)])
def test_check2_distance_falls_with_width(method, batch):
    x, y = _digits()
    data = None if batch is None else (x[:batch], y[:batch])
    d_small = np.mean([_pred_vs_sas(method, 96, s, data)[0] for s in (0, 1)])
    d_large = np.mean([_pred_vs_sas(method, 384, s, data)[0] for s in (0, 1)])
    assert d_large < 0.7 * d_small, (d_small, d_large)


def test_check3_synflow_recursion_single_iteration_matches_fit_and_many_iterations_heterogeneous():
    m = gf.fc(64, 200, 2, 10, seed=0)
    rec = synflow_recursion(m, 0.2, 1, resolution=200)
    fit = limit_graphon(m, "synflow", 0.8)
    # the hidden layer (the finite sides are carried weight by weight in the recursion)
    a = block_means(rec[1].graphon, 200, 200, 8)
    b = block_means(fit[1].graphon, 200, 200, 8)
    assert np.sqrt(np.mean((a - b) ** 2)) < 0.04
    # 30 iterations: the real masks are far from homogeneous, and so is the recursion
    dist, lg, res = _pred_vs_sas("synflow", 200, 0, None, K=8, iterations=30)
    real = gf.graphon.sas(res.masks[1].numpy(), 8).H
    spread_real = np.sqrt(np.mean((real - 0.2) ** 2))
    assert spread_real > 0.08
    assert dist < 0.6 * spread_real


@pytest.mark.parametrize("method", ["snip", "grasp"])
def test_check4_input_layer_feature_selection_digits(method):
    x, y = _digits()
    m = gf.fc(64, 512, 2, 10, seed=0)
    lg = limit_graphon(m, method, 0.8, data=(x, y))
    res = gf.prune(copy.deepcopy(m), method, 0.8, data=(x, y), scope="layerwise", seed=0)
    measured = res.masks[0].numpy().mean(0)
    pred = lg[0].feature_density
    assert pred.shape == (64,)
    assert np.corrcoef(pred, measured)[0, 1] > 0.9
    # the least-kept quarter of the pixels: mostly the same in prediction and masks
    low_p, low_m = set(np.argsort(pred)[:16]), set(np.argsort(measured)[:16])
    assert len(low_p & low_m) / len(low_p | low_m) > 0.5


def test_check4_pruned_away_pixels_unnormalised_digits():
    """Raw pixels: a pixel that is 0 in every image of the batch has h_j = 0, so its
    SNIP scores are 0 and it is pruned away, in the prediction and in the masks."""
    x, y = gf.data.pruning_batch("digits", seed=0, normalize=False)
    blank = np.asarray((x == 0).all(0))
    assert blank.sum() >= 2
    m = gf.fc(64, 256, 2, 10, seed=0)
    lg = limit_graphon(m, "snip", 0.8, data=(x, y))
    res = gf.prune(copy.deepcopy(m), "snip", 0.8, data=(x, y), scope="layerwise", seed=0)
    measured = res.masks[0].numpy().mean(0)
    pred = lg[0].feature_density
    assert (pred[blank] == 0).all() and (measured[blank] == 0).all()
    assert np.corrcoef(pred, measured)[0, 1] > 0.9


def test_limit_graphons_usable_by_graphon_ntk_and_sample():
    x, y = _digits()
    m = gf.fc(64, 128, 2, 10, seed=0)
    lg = limit_graphon(m, "snip", 0.8, data=(x, y))
    K = gf.graphon_ntk(lg.graphons, x[:4].double(), n_outputs=10)
    assert K.shape == (4, 4) and torch.isfinite(K).all()
    M = lg[1].graphon.sample(300, 300, seed=0)
    assert abs(M.mean() - 0.2) < 0.01


# ------------------------------------------------------------- pooled predictions
@pytest.mark.parametrize("method,batch", [("synflow", None), ("snip", 1)])
def test_pooled_prediction_does_not_depend_on_the_test_network(method, batch):
    x, y = _digits()
    data = None if batch is None else (x[:batch], y[:batch])
    kw = dict(data=data, n_networks=3, resolution=16, seed=7,
              networks=lambda s: gf.fc(64, 48, 2, 10, seed=s))
    a = limit_graphon(gf.fc(64, 48, 2, 10, seed=1), method, 0.8, **kw)
    b = limit_graphon(gf.fc(64, 48, 2, 10, seed=2), method, 0.8, **kw)
    assert a.config["reference"] == "pooled" and a.config["n_networks"] == 3
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.graphon.H, lb.graphon.H) and la.error == lb.error
        assert abs(la.density - 0.2) < 1e-9
    # the same-network fit does depend on it, and says so
    s1 = limit_graphon(gf.fc(64, 48, 2, 10, seed=1), method, 0.8, data=data, resolution=16)
    s2 = limit_graphon(gf.fc(64, 48, 2, 10, seed=2), method, 0.8, data=data, resolution=16)
    assert s1.config["reference"] == "same network" and not np.array_equal(s1[1].graphon.H, s2[1].graphon.H)
    assert np.isnan(s1[1].error)


def test_pooled_error_shrinks_with_more_networks():
    # the error is an sd of K predictions over sqrt(K): from 3 to 12 networks it should fall by about 2
    x, y = _digits()
    err = {}
    for K in (3, 12):
        lg = limit_graphon(gf.fc(64, 48, 2, 10, seed=0), "snip", 0.8, data=(x[:1], y[:1]), n_networks=K,
                           resolution=16, seed=3, networks=lambda s: gf.fc(64, 48, 2, 10, seed=s))
        err[K] = np.array([l.error for l in lg.layers])
    assert np.all(err[3] > 0) and np.all(err[12] < 0.75 * err[3])


def test_pooled_default_networks_reinitialise_the_model_and_exact_limits_stay_exact():
    m = gf.fc(64, 40, 2, 10, seed=0)
    before = [p.detach().clone() for p in m.parameters()]
    lg = limit_graphon(m, "synflow", 0.8, n_networks=2, resolution=16, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(before, m.parameters()))  # the model is not touched
    assert lg[1].error > 0
    for method in ("random", "magnitude"):
        ex = limit_graphon(m, method, 0.8, n_networks=4)
        assert all(np.abs(l.graphon.H - 0.2).max() < 1e-12 and l.error == 0.0 for l in ex.layers)
    with pytest.raises(ValueError, match="n_networks"):
        limit_graphon(m, "synflow", 0.8, n_networks=0)
    with pytest.raises(TypeError, match="networks"):
        limit_graphon(m, "synflow", 0.8, n_networks=2, networks=3)
    with pytest.raises(ValueError, match="reset_parameters"):
        limit_graphon(torch.nn.Sequential(gf.MLP(8, 16, 1, 2, seed=0)), "synflow", 0.8, n_networks=2)


@pytest.mark.parametrize("method,batch", [("synflow", None), ("snip", 1), ("snip", 8)])
def test_pooled_exact_factors_where_the_scores_factorise(method, batch):
    # SynFlow and one-input SNIP scores are |w_ij| r_i c_j: log|S| - log|w| is exactly additive (R^2 = 1);
    # SNIP with a batch sums over inputs and is fitted
    x, y = _digits()
    data = None if batch is None else (x[:batch], y[:batch])
    lg = limit_graphon(gf.fc(64, 40, 2, 10, seed=0), method, 0.8, data=data, n_networks=2, resolution=16,
                       networks=lambda s: gf.fc(64, 40, 2, 10, seed=s))
    exact = batch in (None, 1)
    assert lg.config["factors"] == ("exact" if exact else "fitted")
    for layer in lg.layers:
        assert (abs(layer.r2 - 1.0) < 1e-9) == exact
