"""gntk_fast.prune: mask rules, schedules, scopes, seeds, shuffle/invert,
torch interop, report, files, bad input (docs/pruners.md); the mask_select
operation's backends against its naive twin."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune as tprune

import gntk_fast as gf
from gntk_fast.ops import BackendError
from gntk_fast.ops.mask_select import OP as SELECT_OP
from gntk_fast.pruning import load_masks, mask_report, select_layer_masks, select_masks


def _flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def _linear_with(weight: torch.Tensor) -> nn.Sequential:
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(weight)
    return nn.Sequential(lin)


def _data(d_in, n=20, classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_in, generator=g), torch.randint(0, classes, (n,), generator=g)


# ------------------------------------------------------------ counts & ties
@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.65, 0.9, 0.99])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_clean_keeps_exactly_round_dN(sparsity, scope):
    model = gf.fc(13, 11, 2, 3, seed=0)
    res = gf.prune(model, "magnitude", sparsity, scope=scope)
    d = 1.0 - sparsity
    if scope == "global":
        n = sum(m.numel() for m in res.masks)
        assert int(_flat(res.masks).sum()) == round(d * n)
    else:
        for m in res.masks:
            assert int(m.sum()) == round(d * m.numel())


def test_clean_rounding_is_half_to_even_not_truncation():
    # 10 weights: d = 0.35 -> 3.5 -> 4 (int() would give 3); d = 0.25 -> 2.5 -> 2
    w = torch.arange(1.0, 11.0).reshape(2, 5)
    assert int(gf.prune(_linear_with(w), "magnitude", 0.65).masks[0].sum()) == round(0.35 * 10) == 4
    assert int(gf.prune(_linear_with(w), "magnitude", 0.75).masks[0].sum()) == 2


def test_magnitude_ties_clean_vs_compat():
    # 20 weights, five each of |w| = 1, 2, 3, 4 (signs mixed), interleaved
    vals = torch.tensor([1.0, 2.0, 3.0, 4.0]).repeat(5)
    signs = torch.tensor([1.0, -1.0]).repeat(10)
    w = (vals * signs).reshape(4, 5)
    # sparsity 0.3: compat prunes k = int((1 - 0.7) * 20) = 6 -> kthvalue(6) = 2 -> every |w| <= 2 pruned
    rc = gf.prune(_linear_with(w), "magnitude", 0.3, compat="synaptic-flow")
    assert torch.equal(rc.masks[0], w.abs() > 2)
    assert int(rc.masks[0].sum()) == 10
    # clean keeps exactly round(0.7 * 20) = 14: all 3s and 4s plus the first four 2s by flat index
    r = gf.prune(_linear_with(w), "magnitude", 0.3)
    want = w.abs().reshape(-1) > 2
    twos = torch.nonzero(w.abs().reshape(-1) == 2).reshape(-1)[:4]
    want[twos] = True
    assert torch.equal(r.masks[0].reshape(-1), want)
    # compat with k < 1 leaves the masks unchanged
    r0 = gf.prune(_linear_with(w), "magnitude", 0.04, compat="synaptic-flow")
    assert bool(r0.masks[0].all())


def _tied_scores(g, shapes, signed):
    scores = [torch.randint(0, 4, s, generator=g).to(torch.float64) for s in shapes]
    if signed:
        scores = [s * torch.randn(s.shape, generator=g, dtype=torch.float64) for s in scores]
    return scores


@pytest.mark.parametrize("backend", ["histogram", "numpy", "naive"])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_selection_backends_equal_naive_twin_with_ties(scope, backend):
    g = torch.Generator().manual_seed(1)
    shapes = [(5, 7), (6, 5), (3, 6)]
    for trial in range(20):
        scores = _tied_scores(g, shapes, signed=trial % 2 == 1)
        cur = [torch.rand(s, generator=g) < 0.9 for s in shapes]
        for d in (0.1, 0.33, 0.5, 0.71):
            for rule in ("synaptic-flow", "clean"):
                got = select_layer_masks(scores, cur, d, scope, rule=rule, backend=backend)
                want = select_layer_masks(scores, cur, d, scope, rule=rule, backend="naive")
                assert all(torch.equal(x, y) for x, y in zip(got, want))
            assert all(bool((x <= c).all()) for x, c in zip(got, cur))  # clean masks are nested


def test_naive_selection_by_hand():
    # flat scores with ties; two layers of 4
    s = torch.tensor([3.0, 1.0, 2.0, 2.0, 2.0, 0.0, 5.0, 2.0])
    cur = torch.tensor([True, True, True, True, True, True, True, False])
    sizes = [4, 4]
    for backend in ("histogram", "numpy", "naive"):
        # clean global d = 0.5: keep 4 of the 7 unpruned: 5, 3, then the first two 2s (indices 2, 3)
        got = select_masks(s, cur, sizes, 0.5, "global", backend=backend)
        assert got.tolist() == [True, False, True, True, False, False, True, False]
        # clean layerwise d = 0.5: 2 per layer: {0, 2} and {6, 4} (index 7 is pruned)
        got = select_masks(s, cur, sizes, 0.5, "layerwise", backend=backend)
        assert got.tolist() == [True, False, True, False, True, False, True, False]
        # synaptic-flow global d = 0.5: k = 4, 4th smallest = 2, every score <= 2 pruned (pruned index 7 too)
        got = select_masks(s, cur, sizes, 0.5, "global", rule="synaptic-flow", backend=backend)
        assert got.tolist() == [True, False, False, False, False, False, True, False]
        # ... and it revives: d = 0.9 -> k = int(0.1 * 8) = 0 < 1: unchanged
        got = select_masks(s, cur, sizes, 0.9, "global", rule="synaptic-flow", backend=backend)
        assert torch.equal(got, cur)
        # layerwise d = 0.75: k = int(0.25 * 4) = 1 per layer; layer 2's min 0.0 pruned, index 7 (2.0) comes back
        got = select_masks(s, cur, sizes, 0.75, "layerwise", rule="synaptic-flow", backend=backend)
        assert got.tolist() == [True, False, True, True, True, False, True, True]


@pytest.mark.parametrize("backend", ["histogram", "numpy", "naive"])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_selection_final_false_caps_at_unpruned_count(scope, backend):
    s = torch.arange(12, dtype=torch.float64)
    cur = torch.zeros(12, dtype=torch.bool)
    cur[[0, 1, 6, 7]] = True  # 2 unpruned per layer of 6
    # d = 0.5 asks for 6 (global) / 3 per layer: more than unpruned
    with pytest.raises(ValueError, match="sparsity"):
        select_masks(s, cur, [6, 6], 0.5, scope, backend=backend)
    got = select_masks(s, cur, [6, 6], 0.5, scope, final=False, backend=backend)
    assert torch.equal(got, cur)
    # under the cap final=False selects as usual: 1 of 2 per layer / 2 of 4 global, highest scores
    got = select_masks(s, cur, [6, 6], 1 / 6, scope, final=False, backend=backend)
    assert got.nonzero().reshape(-1).tolist() == ([1, 7] if scope == "layerwise" else [6, 7])


def test_selection_registry_and_bad_arguments():
    assert SELECT_OP.names == ("histogram", "numpy", "naive")
    assert SELECT_OP.resolve("auto", "cpu").name == "numpy"
    s, cur = torch.rand(6, dtype=torch.float64), torch.ones(6, dtype=torch.bool)
    with pytest.raises(BackendError, match="backend"):
        select_masks(s, cur, [6], 0.5, "global", backend="numba")
    with pytest.raises(ValueError, match="rule"):
        select_masks(s, cur, [6], 0.5, "global", rule="tanaka")
    with pytest.raises(ValueError, match="sizes"):
        select_masks(s, cur, [5], 0.5, "global")
    with pytest.raises(TypeError, match="current"):
        select_masks(s, cur.float(), [6], 0.5, "global")
    with pytest.raises(ValueError, match="density"):
        select_masks(s, cur, [6], 1.5, "global")
    with pytest.raises(ValueError, match="scope"):
        select_masks(s, cur, [6], 0.5, "everything")


def test_global_vs_layerwise():
    model = gf.fc(64, 32, 2, 10, seed=0)
    lins = [m for m in model if isinstance(m, nn.Linear)]
    w = [l.weight.detach().abs().clone() for l in lins]
    rg = gf.prune(copy.deepcopy(model), "magnitude", 0.8, scope="global")
    rl = gf.prune(copy.deepcopy(model), "magnitude", 0.8, scope="layerwise")
    # layerwise: every layer keeps round(0.2 * N_l)
    assert [int(m.sum()) for m in rl.masks] == [round(0.2 * m.numel()) for m in rl.masks]
    # global: one threshold: every kept |w| beats every pruned |w| across layers ...
    kept, pruned = _flat([x[m] for x, m in zip(w, rg.masks)]), _flat([x[~m] for x, m in zip(w, rg.masks)])
    assert float(kept.min()) >= float(pruned.max())
    # ... so the layers end up with different densities (fc's first layer has the smallest init scale)
    dens = rg.layer_densities
    assert dens[0] < 0.2 < dens[-1]
    # which layerwise violates
    kept, pruned = _flat([x[m] for x, m in zip(w, rl.masks)]), _flat([x[~m] for x, m in zip(w, rl.masks)])
    assert float(kept.min()) < float(pruned.max())


@pytest.mark.parametrize("schedule", ["exponential", "linear"])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_iterative_schedule_hits_each_target(schedule, scope):
    E, d = 7, 0.05
    res = gf.prune(gf.fc(20, 16, 2, 4, seed=1), "synflow", 1 - d, iterations=E, schedule=schedule, scope=scope)
    sizes = [m.numel() for m in res.masks]
    n = sum(sizes)
    assert len(res.history) == E
    for e, h in enumerate(res.history, start=1):
        want_d = d ** (e / E) if schedule == "exponential" else 1 - (1 - d) * e / E
        assert h["target_density"] == pytest.approx(want_d, rel=1e-15)
        want_k = round(want_d * n) if scope == "global" else sum(round(want_d * s) for s in sizes)
        assert h["kept"] == want_k
        assert res.densities[e - 1] == want_k / n
    assert res.history[-1]["target_density"] == pytest.approx(d)


def test_compat_iterative_counts_follow_int_rule():
    E, d = 5, 0.2
    res = gf.prune(gf.fc(20, 16, 2, 4, seed=1), "random", 1 - d, iterations=E, compat="synaptic-flow", seed=0)
    n = sum(m.numel() for m in res.masks)
    for e, h in enumerate(res.history, start=1):
        assert h["kept"] == n - int((1.0 - d ** (e / E)) * n)  # continuous scores: no ties


def test_default_iterations():
    assert gf.prune(gf.fc(8, 6, 1, 2, seed=0), "synflow", 0.5).config["iterations"] == 100
    for m in ("random", "magnitude"):
        assert gf.prune(gf.fc(8, 6, 1, 2, seed=0), m, 0.5).config["iterations"] == 1


def test_compression_equals_density_power_of_ten():
    res = gf.prune(gf.fc(20, 20, 2, 5, seed=0), "magnitude", compression=1.0)
    n = sum(m.numel() for m in res.masks)
    assert int(_flat(res.masks).sum()) == round(0.1 * n)
    assert res.config["density"] == pytest.approx(0.1)


# ------------------------------------------------------------ randomness
def test_random_masks_uniform_chi_square_rows_and_columns():
    model = nn.Sequential(nn.Linear(120, 90, bias=False))
    res = gf.prune(model, "random", 0.7, seed=123)
    m = res.masks[0].to(torch.int64)
    rows, cols = m.sum(1).numpy(), m.sum(0).numpy()
    assert scipy.stats.chisquare(rows).pvalue > 1e-3
    assert scipy.stats.chisquare(cols).pvalue > 1e-3
    # the test has teeth: a mask biased towards low indices fails it
    biased = torch.zeros(90 * 120, dtype=torch.bool)
    biased[torch.randperm(90 * 120, generator=torch.Generator().manual_seed(0))[: int(0.3 * 90 * 120)]] = True
    biased = biased.reshape(90, 120)
    biased[:10] = True
    assert scipy.stats.chisquare(biased.sum(1).numpy()).pvalue < 1e-6


@pytest.mark.parametrize("method", ["random", "magnitude", "synflow", "snip", "grasp"])
def test_same_seed_same_masks(method):
    data = _data(16, classes=4)
    kw = dict(data=data, iterations=3, seed=9)
    a = gf.prune(gf.fc(16, 12, 2, 4, seed=0), method, 0.7, **kw)
    b = gf.prune(gf.fc(16, 12, 2, 4, seed=0), method, 0.7, **kw)
    assert all(torch.equal(x, y) for x, y in zip(a.masks, b.masks))


def test_different_seeds_differ():
    a = gf.prune(gf.fc(16, 12, 2, 4, seed=0), "random", 0.7, seed=1)
    b = gf.prune(gf.fc(16, 12, 2, 4, seed=0), "random", 0.7, seed=2)
    assert not all(torch.equal(x, y) for x, y in zip(a.masks, b.masks))
    a = gf.prune(gf.fc(16, 12, 2, 4, seed=0), "magnitude", 0.7, seed=1, shuffle=True)
    b = gf.prune(gf.fc(16, 12, 2, 4, seed=0), "magnitude", 0.7, seed=2, shuffle=True)
    assert not all(torch.equal(x, y) for x, y in zip(a.masks, b.masks))


def test_global_rng_untouched_and_no_side_effects_on_the_model():
    model = gf.fc(16, 12, 2, 4, seed=0)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    data = _data(16, classes=4)
    for method in ("random", "snip", "grasp", "synflow"):
        gf.prune(copy.deepcopy(model), method, 0.5, data=data, iterations=2, seed=None)
    res = gf.prune(model, "synflow", 0.5, data=data, iterations=3, seed=None)
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    # weights (signs included) unchanged; only the masks were added
    for k, v in before.items():
        k2 = k.replace("weight", "weight_orig") if k.endswith("weight") else k
        assert torch.equal(model.state_dict()[k2], v)
    assert isinstance(res.config["seed"], int)


def test_shuffle_keeps_layer_counts_moves_positions_and_writes_back():
    model = gf.fc(30, 25, 2, 5, seed=0)
    plain = gf.prune(copy.deepcopy(model), "magnitude", 0.8)
    res = gf.prune(model, "magnitude", 0.8, shuffle=True, seed=4)
    assert [int(m.sum()) for m in res.masks] == [int(m.sum()) for m in plain.masks]
    for a, b in zip(res.masks, plain.masks):
        assert not torch.equal(a, b)
    installed = [m.weight_mask != 0 for m in model if isinstance(m, nn.Linear)]
    assert all(torch.equal(a, b) for a, b in zip(installed, res.masks))


def test_invert_flips_rank_order_not_reciprocal():
    x, y = _data(12, classes=3)
    model = gf.fc(12, 10, 1, 3, seed=2)
    res = gf.prune(copy.deepcopy(model), "grasp", 0.5, data=(x, y), invert=True)
    s, keep = _flat(res.scores), _flat(res.masks)
    assert (s < 0).any() and (s > 0).any()
    # the LOWEST signed scores are kept
    assert float(s[keep].max()) <= float(s[~keep].min())
    assert int(keep.sum()) == round(0.5 * s.numel())
    # 1/score would not flip a mixed-sign ranking
    recip = torch.zeros_like(keep)
    recip[torch.argsort(1.0 / s, descending=True)[: int(keep.sum())]] = True
    assert not torch.equal(recip, keep)
    # compat invert also flips the order
    rc = gf.prune(copy.deepcopy(model), "grasp", 0.5, data=(x, y), invert=True, compat="synaptic-flow")
    sc, kc = _flat(rc.scores), _flat(rc.masks)
    assert float(sc[kc].max()) <= float(sc[~kc].min())


# ------------------------------------------------------------ torch interop
def test_pruned_fc_loads_and_runs_in_plain_pytorch():
    x, y = _data(20, classes=5)
    model = gf.fc(20, 16, 3, 5, seed=0)
    res = gf.prune(model, "snip", 0.8, data=(x, y))
    sd = model.state_dict()
    assert {k for k in sd if k.endswith("weight_orig")} and {k for k in sd if k.endswith("weight_mask")}
    fresh = nn.Sequential(nn.Flatten(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 5))
    for m in fresh:
        if isinstance(m, nn.Linear):
            tprune.identity(m, "weight")
    fresh.load_state_dict(sd)
    torch.testing.assert_close(fresh(x), model(x))
    lins = [m for m in fresh if isinstance(m, nn.Linear)]
    assert all(torch.equal(l.weight_mask != 0, m) for l, m in zip(lins, res.masks))
    assert all(bool((l.weight[~m] == 0).all()) for l, m in zip(lins, res.masks))
    # prune.remove makes it permanent; the network's function is unchanged
    out = fresh(x)
    for l in lins:
        tprune.remove(l, "weight")
    torch.testing.assert_close(fresh(x), out)
    # and the project's MLP reads it back
    mlp = gf.MLP.from_sequential(model)
    assert all(torch.equal(a, b) for a, b in zip(mlp.masks, res.masks))
    torch.testing.assert_close(mlp(x), model(x))


def test_pruning_a_pruned_fc_overwrites_its_mask_and_deepcopies():
    model = gf.fc(16, 12, 2, 4, seed=0)
    r1 = gf.prune(model, "magnitude", 0.5)
    r2 = gf.prune(model, "random", 0.8, seed=0)
    lin = model[1]
    assert isinstance(lin._forward_pre_hooks[next(iter(lin._forward_pre_hooks))], tprune.CustomFromMask)
    assert all(torch.equal(m.weight_mask != 0, r) for m, r in zip([model[i] for i in (1, 3, 5)], r2.masks))
    assert all(bool((b <= a).all()) for a, b in zip(r1.masks, r2.masks))  # clean: nested
    clone = copy.deepcopy(model)
    x = torch.randn(3, 16)
    torch.testing.assert_close(clone(x), model(x))
    with pytest.raises(ValueError, match="sparsity"):
        gf.prune(model, "magnitude", 0.1)  # would need to revive weights


def test_mlp_masks_written_into_weight_mask():
    mlp = gf.MLP(10, 12, 2, 3, seed=0)
    x, y = _data(10, classes=3)
    res = gf.prune(mlp, "grasp", 0.6, data=(x, y))
    assert all(torch.equal(a, b) for a, b in zip(mlp.masks, res.masks))
    assert all(m.dtype == torch.bool for m in mlp.masks)
    assert mlp.density() == pytest.approx(0.4, abs=1e-3)


def test_data_as_iterable_of_batches_and_dataloader():
    x, y = _data(10, n=30, classes=3)
    batches = [(x[:10], y[:10]), (x[10:], y[10:])]
    a = gf.prune(gf.MLP(10, 8, 1, 3, seed=0), "snip", 0.5, data=batches)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=10)
    b = gf.prune(gf.MLP(10, 8, 1, 3, seed=0), "snip", 0.5, data=loader)
    c = gf.prune(gf.MLP(10, 8, 1, 3, seed=0), "snip", 0.5, data=(x, y))
    # gradients summed over batches of mean losses: the loader's 3 batches differ from 2 batches and from 1
    assert not torch.allclose(_flat(a.scores), _flat(c.scores))
    assert not torch.allclose(_flat(a.scores), _flat(b.scores))
    numpy_data = gf.prune(gf.MLP(10, 8, 1, 3, seed=0), "snip", 0.5, data=(x.numpy(), y.numpy()))
    assert all(torch.equal(p, q) for p, q in zip(numpy_data.masks, c.masks))


# ---------------------------------------------------------------- report
def test_report_dead_neurons_by_hand():
    m0 = torch.ones(4, 3, dtype=torch.bool)
    m0[1] = False  # hidden unit 1: zero fan-in
    m0[:, 2] = False  # input 2 disconnected
    m1 = torch.ones(2, 4, dtype=torch.bool)
    m1[:, 3] = False  # hidden unit 3: zero fan-out
    m1[:, 1] = False  # unit 1 also zero fan-out (counted once)
    m1[0] = False  # output 0: zero fan-in
    rep = mask_report([m0, m1], ["a", "b"])
    l0, l1 = rep["layers"]
    assert (l0["zero_fan_in"], l0["zero_fan_out"], l0["dead_neurons"], l0["inputs_disconnected"]) == (1, 2, 2, 1)
    assert l0["kept"] == 6 and l0["density"] == 0.5
    assert (l1["zero_fan_in"], l1["zero_fan_out"], l1["dead_neurons"]) == (1, None, 1)
    assert rep["total"] == {"weights": 20, "kept": 8, "density": 0.4, "dead_hidden_neurons": 2,
                            "dead_outputs": 1, "collapsed_layers": 0}


def test_save_npz_and_json_report(tmp_path):
    res = gf.prune(gf.fc(16, 12, 2, 4, seed=0), "synflow", 0.9, iterations=5)
    p = res.save_npz(tmp_path / "m.npz")
    with np.load(p, allow_pickle=False) as z:
        assert sorted(z.files) == ["layer0", "layer1", "layer2"]
        assert z["layer0"].dtype == bool and z["layer0"].shape == (12, 16)
    assert all(torch.equal(a, b) for a, b in zip(load_masks(p), res.masks))
    j = res.save_report(tmp_path / "m.json")
    rep = json.loads(j.read_text())
    assert rep["total"]["kept"] == int(_flat(res.masks).sum())
    assert rep["config"]["method"] == "synflow" and len(rep["history"]) == 5


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(method="magnitude", sparsity=1.0), ValueError, "sparsity"),
        (dict(method="magnitude", sparsity=-0.1), ValueError, "sparsity"),
        (dict(method="magnitude", sparsity=float("nan")), ValueError, "sparsity"),
        (dict(method="magnitude"), ValueError, "sparsity"),
        (dict(method="magnitude", sparsity=0.5, compression=1.0), ValueError, "sparsity"),
        (dict(method="magnitude", compression=-1.0), ValueError, "compression"),
        (dict(method="magnitude", compression=400.0), ValueError, "compression"),  # 10**-400 underflows to 0
        (dict(method="l1", sparsity=0.5), ValueError, "method"),
        (dict(method="magnitude", sparsity=0.5, scope="everything"), ValueError, "scope"),
        (dict(method="magnitude", sparsity=0.5, schedule="cosine"), ValueError, "schedule"),
        (dict(method="magnitude", sparsity=0.5, compat="tanaka"), ValueError, "compat"),
        (dict(method="magnitude", sparsity=0.5, iterations=0), ValueError, "iterations"),
        (dict(method="magnitude", sparsity=0.5, seed=-1), ValueError, "seed"),
        (dict(method="magnitude", sparsity=0.5, seed=2**64), ValueError, "seed"),  # beyond the generators' range
        (dict(method="magnitude", sparsity=0.5, seed=1.5), TypeError, "seed"),
        (dict(method="magnitude", sparsity=0.5, seed=True), TypeError, "seed"),
        (dict(method="synflow", sparsity=0.5, synflow_dtype=torch.float16), ValueError, "synflow_dtype"),
        (dict(method="snip", sparsity=0.5), ValueError, "data"),
        (dict(method="grasp", sparsity=0.5), ValueError, "data"),
    ],
)
def test_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        gf.prune(gf.fc(8, 6, 1, 3, seed=0), **kwargs)


def test_bad_model_and_data():
    with pytest.raises(TypeError, match="model"):
        gf.prune("fc", "magnitude", 0.5)
    with pytest.raises(ValueError, match="model"):
        gf.prune(nn.Sequential(nn.ReLU()), "magnitude", 0.5)
    bad = gf.fc(8, 6, 1, 3, seed=0)
    with torch.no_grad():
        bad[1].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="model"):
        gf.prune(bad, "magnitude", 0.5)
    x, y = _data(8, classes=3)
    xn = x.clone()
    xn[0, 0] = float("nan")
    with pytest.raises(ValueError, match="data"):
        gf.prune(gf.fc(8, 6, 1, 3, seed=0), "snip", 0.5, data=(xn, y))
    with pytest.raises(ValueError, match="data.*width"):
        gf.prune(gf.fc(8, 6, 1, 3, seed=0), "snip", 0.5, data=_data(9, classes=3))
    with pytest.raises(ValueError, match="data.*width"):
        gf.prune(gf.MLP(8, 6, 1, 3, seed=0), "grasp", 0.5, data=_data(7, classes=3))
    with pytest.raises(ValueError, match="data.*width"):
        gf.prune(gf.MLP(8, 6, 1, 3, seed=0), "synflow", 0.5, data=_data(7, classes=3))
    with pytest.raises(ValueError, match="data"):
        gf.prune(gf.fc(8, 6, 1, 3, seed=0), "snip", 0.5, data=(x, y + 5))  # label >= classes
    with pytest.raises(TypeError, match="data"):
        gf.prune(gf.fc(8, 6, 1, 3, seed=0), "snip", 0.5, data=(x, y.float()))
    with pytest.raises(TypeError, match="data"):
        gf.prune(gf.fc(8, 6, 1, 3, seed=0), "snip", 0.5, data=42)
    with pytest.raises(TypeError, match="shuffle"):
        gf.prune(gf.fc(8, 6, 1, 3, seed=0), "magnitude", 0.5, shuffle="yes")
    with pytest.raises(TypeError, match="progress"):
        gf.prune(gf.fc(8, 6, 1, 3, seed=0), "magnitude", 0.5, progress="no")


def test_nan_scores_name_the_layer():
    from gntk_fast.pruning.masks import check_scores

    shapes = [(2, 3), (4, 2)]
    flat = torch.arange(14, dtype=torch.float64)
    check_scores(flat, shapes, ["a", "b"])  # fine
    flat[9] = float("nan")
    with pytest.raises(ValueError, match=r"layer 1 \('b'\)"):
        check_scores(flat, shapes, ["a", "b"])


# ------------------------------------------------------------ property test
@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    d_in=st.integers(1, 6),
    d_out=st.integers(1, 4),
    sparsity=st.floats(0.0, 0.99),
    method=st.sampled_from(["random", "magnitude", "synflow", "snip", "grasp"]),
    scope=st.sampled_from(["global", "layerwise"]),
    iterations=st.integers(1, 4),
    seed=st.integers(0, 2**31),
)
def test_property_prune_counts_and_shapes(widths, d_in, d_out, sparsity, method, scope, iterations, seed):
    model = gf.MLP(d_in, widths, None, d_out, seed=seed % 1000)
    data = _data(d_in, n=6, classes=d_out, seed=seed % 7)
    res = gf.prune(model, method, sparsity, data=data, scope=scope, iterations=iterations, seed=seed)
    d = 1.0 - sparsity
    assert len(res.masks) == len(model.layers)
    for m, layer in zip(res.masks, model.layers):
        assert m.dtype == torch.bool and m.shape == layer.weight.shape
    if scope == "global":
        assert int(_flat(res.masks).sum()) == round(d * sum(m.numel() for m in res.masks))
    else:
        assert [int(m.sum()) for m in res.masks] == [round(d * m.numel()) for m in res.masks]
    assert all(torch.equal(a, b) for a, b in zip(model.masks, res.masks))
    assert res.report["total"]["kept"] == int(_flat(res.masks).sum())


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    sparsity=st.floats(0.0, 0.99),
    scope=st.sampled_from(["global", "local"]),
    iterations=st.integers(1, 3),
    seed=st.integers(0, 2**31),
)
def test_property_compat_random_follows_int_rule(widths, sparsity, scope, iterations, seed):
    """Random scores are continuous (no ties): compat keeps N - int((1 - d) N),
    or everything when that k < 1 (per layer for the "local" = layerwise scope)."""
    model = gf.fc(5, widths[0], len(widths), 3, seed=seed % 1000)
    res = gf.prune(model, "random", sparsity, scope=scope, iterations=iterations, seed=seed, compat="synaptic-flow")
    d = 1.0 - sparsity
    assert res.config["scope"] == ("global" if scope == "global" else "layerwise")
    groups = [res.masks] if scope == "global" else [[m] for m in res.masks]
    for g in groups:
        n = sum(m.numel() for m in g)
        k = int((1.0 - d) * n)
        assert sum(int(m.sum()) for m in g) == (n - k if k >= 1 else n)


def test_compat_snip_with_all_zero_scores_prunes_everything_without_nan():
    # one output class: the cross-entropy is 0 for any weights, so every SNIP score is 0;
    # the reference would divide by 0 - here the scores stay 0 and the <= rule prunes all
    model = gf.MLP(4, 5, 1, 1, seed=0)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    res = gf.prune(model, "snip", 0.5, data=(x, torch.zeros(6, dtype=torch.int64)), compat="synaptic-flow")
    assert all(bool((s == 0).all()) for s in res.scores)
    assert res.report["total"]["kept"] == 0
    clean = gf.prune(gf.MLP(4, 5, 1, 1, seed=0), "snip", 0.5, data=(x, torch.zeros(6, dtype=torch.int64)))
    assert clean.report["total"]["kept"] == round(0.5 * 25)


class _TwoTower(nn.Module):
    """A non-Sequential module: its Linear layers are pruned the torch way too."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.inp = nn.Linear(6, 8)
        self.unused = nn.Linear(3, 3)
        self.out = nn.Linear(8, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        return self.out(torch.tanh(self.inp(x)))


@pytest.mark.parametrize("method", ["snip", "grasp", "synflow", "magnitude"])
def test_any_module_with_linear_layers(method):
    model = _TwoTower()
    x, y = _data(6, n=12, classes=3)
    res = gf.prune(model, method, 0.6, data=(x, y), iterations=2)
    assert res.names == ["inp", "unused", "out"]
    assert int(_flat(res.masks).sum()) == round(0.4 * (48 + 9 + 24))
    if method in ("snip", "grasp", "synflow"):
        assert bool((res.scores[1] == 0).all())  # a layer outside the forward scores 0
    fresh = _TwoTower()
    for m in (fresh.inp, fresh.unused, fresh.out):
        tprune.identity(m, "weight")
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(x), model(x))
    assert torch.equal(fresh.inp.weight_mask != 0, res.masks[0])
