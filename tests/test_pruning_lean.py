"""Memory-lean scoring (per-layer scores, in-place gradients, layer-by-layer
selection) gives bitwise the masks and scores of the plain flat path: the
reference twin below scores into one flat tensor (zero-initialised
accumulators, flat normalisations) and selects with the ``naive`` backend of
``select_masks`` on the concatenation, exactly as ``prune`` did before."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gntk_fast as gf
from gntk_fast.ops import mask_select
from gntk_fast.ops.mask_select import histogram as H
from gntk_fast.ops.mask_select import select_masks, select_parts
from gntk_fast.pruning import core
from gntk_fast.pruning.layers import LinearisedCopy, ScoringCopy, find_prunable
from gntk_fast.pruning.scores import GRASP_EPS, GRASP_TEMPERATURE


def _flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def _ref_scorer(method, model, layers, batches, generator, compat, dtype):
    """The flat scorers (one concatenated score tensor per call)."""
    n = sum(l.theta.numel() for l in layers)
    if method == "random":
        return lambda mask: torch.randn(n, generator=generator, dtype=torch.float32)
    if method == "magnitude":
        return lambda mask: _flat([l.theta.detach().abs() for l in layers])
    if method == "synflow":
        work = LinearisedCopy(model, layers, dtype=dtype)
        abs_t = [l.theta.detach().to(dtype).abs() for l in layers]
        ones = torch.ones((1, layers[0].in_features), dtype=dtype)

        def synflow(mask):
            with torch.no_grad():
                for w, t, m in zip(work.weights, abs_t, torch.split(mask, [t.numel() for t in abs_t])):
                    w.data.copy_(t * m.view(t.shape))
            grads = torch.autograd.grad(work(ones).sum(), work.weights, allow_unused=True)
            return _flat([torch.zeros_like(w) if g is None else w.detach() * g for w, g in zip(work.weights, grads)]).abs()

        return synflow
    work = ScoringCopy(model, layers)
    if method == "snip":
        def snip(mask):
            work.set_masks(mask)
            leaves = []
            for mod, buf in zip(work.layer_modules, work.masks):
                leaf = buf.detach().clone().requires_grad_(True)
                mod._buffers["weight_mask"] = leaf
                leaves.append(leaf)
            grads = [torch.zeros_like(m) for m in leaves]
            for x, y in batches:
                gs = torch.autograd.grad(F.cross_entropy(work(x), y), leaves, allow_unused=True)
                for acc, g in zip(grads, gs):
                    if g is not None:
                        acc.add_(g)
            for mod, buf in zip(work.layer_modules, work.masks):
                mod._buffers["weight_mask"] = buf
            scores = _flat(grads).abs_()
            if compat and bool(scores.sum() > 0):
                scores /= scores.sum()
            return scores

        return snip

    def grasp(mask):
        work.set_masks(mask)
        thetas, T = work.thetas, GRASP_TEMPERATURE
        g = [torch.zeros_like(t) for t in thetas]
        for x, y in batches:
            for acc, gi in zip(g, torch.autograd.grad(F.cross_entropy(work(x) / T, y), thetas, allow_unused=True)):
                if gi is not None:
                    acc.add_(gi)
        hg = [torch.zeros_like(t) for t in thetas]
        for x, y in batches:
            gs = torch.autograd.grad(F.cross_entropy(work(x) / T, y), thetas, create_graph=True, allow_unused=True)
            z = sum((gi * gc).sum() for gi, gc in zip(gs, g) if gi is not None)
            for acc, h in zip(hg, torch.autograd.grad(z, thetas, allow_unused=True)):
                if h is not None:
                    acc.add_(h)
        scores = _flat([t.detach() * h for t, h in zip(thetas, hg)])
        if compat:
            scores /= torch.abs(scores.sum()) + GRASP_EPS
        return scores

    return grasp


def _reference_prune(model, method, sparsity, batches, scope, iterations, compat, seed, invert, backend):
    """The flat path of ``prune``: flat scores, ``select_masks`` on them."""
    layers = find_prunable(model)
    plan = core._validate(method, sparsity, None, scope, iterations, "exponential", compat, seed, False, invert,
                          None, False)
    gen, _ = core._generators(plan.seed)
    scorer = _ref_scorer(method, model, layers, batches, gen, plan.is_compat, plan.synflow_dtype)
    sizes = [l.theta.numel() for l in layers]
    current = torch.cat([l.current_mask().reshape(-1) for l in layers])
    start = core._start_density(plan, current)
    for e in range(1, plan.iterations + 1):
        d_e = core.schedule_density(plan.density, e, plan.iterations, plan.schedule, start)
        scores = scorer(current)
        current = select_masks(-scores if plan.invert else scores, current, sizes, d_e, plan.scope, rule=plan.compat,
                               final=e == plan.iterations, backend=backend)
    return current, scores


def _batches(d_in, classes, n_batches, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(7, d_in, generator=g), torch.randint(0, classes, (7,), generator=g)) for _ in range(n_batches)]


def _models():
    pruned = gf.fc(12, 16, 2, 4, seed=3)
    gf.prune(pruned, "random", 0.3, seed=5)  # an already torch-pruned fc
    return {"fc": gf.fc(12, 16, 2, 4, seed=1), "mlp": gf.MLP(12, 16, 2, 4, seed=2), "pruned_fc": pruned}


CASES = [
    # method, model, scope, compat, iterations, invert, n_batches
    ("snip", "fc", "global", None, 1, False, 2),
    ("snip", "mlp", "layerwise", "synaptic-flow", 1, False, 3),
    ("snip", "pruned_fc", "global", "synaptic-flow", 2, True, 2),
    ("grasp", "fc", "global", "synaptic-flow", 1, False, 2),
    ("grasp", "mlp", "global", None, 1, True, 3),
    ("grasp", "pruned_fc", "layerwise", None, 1, False, 1),
    ("synflow", "fc", "global", None, 5, False, 1),
    ("synflow", "mlp", "layerwise", "synaptic-flow", 4, False, 1),
    ("synflow", "pruned_fc", "global", "synaptic-flow", 3, True, 1),
    ("magnitude", "fc", "global", "synaptic-flow", 2, False, 1),
    ("random", "mlp", "layerwise", None, 3, False, 1),
]


@pytest.mark.parametrize("stream", [False, True], ids=["auto", "histogram"])
@pytest.mark.parametrize("method, model, scope, compat, iterations, invert, n_batches", CASES)
def test_lean_prune_equals_flat_reference(monkeypatch, stream, method, model, scope, compat, iterations, invert,
                                          n_batches):
    if stream:  # auto picks the histogram selection, which reads the per-layer scores in place
        monkeypatch.setattr(H, "STREAM_MIN_SCORES", 1)
    net = _models()[model]
    batches = _batches(12, 4, n_batches)
    data = batches if n_batches > 1 else batches[0]
    kw = dict(scope=scope, iterations=iterations, compat=compat, seed=11, invert=invert)
    want, want_scores = _reference_prune(copy.deepcopy(net), method, 0.7, batches, backend="naive", **kw)
    res = gf.prune(copy.deepcopy(net), method, 0.7, data=data, progress=False, **kw)
    assert torch.equal(_flat(res.masks), want)
    got_scores = _flat(res.scores)
    assert got_scores.dtype == want_scores.dtype
    assert np.array_equal(got_scores.numpy(), want_scores.numpy())  # bitwise but for the sign of zeros


def test_compat_snip_ties_after_normalisation_match_reference():
    """Scores with many exact ties (a layer the loss does not reach through
    dead units): the flat normalisation and the kth-value ties agree."""
    net = gf.fc(12, 16, 2, 4, seed=4)
    with torch.no_grad():
        net[1].weight[:8] = 0.0  # dead units: zero gradients, ties at 0
    batches = _batches(12, 4, 2)
    for compat in (None, "synaptic-flow"):
        kw = dict(scope="global", iterations=1, compat=compat, seed=0, invert=False)
        want, _ = _reference_prune(copy.deepcopy(net), "snip", 0.8, batches, backend="naive", **kw)
        got = gf.prune(copy.deepcopy(net), "snip", 0.8, data=batches, progress=False, **kw)
        assert torch.equal(_flat(got.masks), want)


@pytest.mark.parametrize("rule", ["clean", "synaptic-flow"])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_select_parts_equals_flat_select_with_ties(rule, scope, dtype):
    g = torch.Generator().manual_seed(1)
    parts = [torch.randint(0, 5, (n,), generator=g).to(dtype) for n in (37, 400, 0, 91)]
    parts[1][:50] = -0.0
    flat = _flat(parts)
    for cur in (torch.ones(flat.numel(), dtype=torch.bool), torch.rand(flat.numel(), generator=g) < 0.8):
        for d in (0.0, 0.25, 0.5, 0.75):
            if rule == "clean" and not bool(cur.all()):
                d = d * 0.7
            want = select_masks(flat, cur, [p.numel() for p in parts], d, scope, rule=rule, backend="naive")
            for backend in ("histogram", "numpy", "auto"):
                got = select_parts(parts, cur, d, scope, rule=rule, backend=backend)
                assert torch.equal(got, want), (backend, d)


def test_select_parts_bad_arguments():
    with pytest.raises(TypeError, match="scores"):
        select_parts([], torch.ones(0, dtype=torch.bool), 0.5, "global")
    with pytest.raises(ValueError, match="current"):
        select_parts([torch.ones(3)], torch.ones(4, dtype=torch.bool), 0.5, "global", backend="histogram")
    with pytest.raises(TypeError, match="bool"):
        select_parts([torch.ones(3)], torch.ones(3), 0.5, "global", backend="histogram")
    assert mask_select.select_parts is select_parts


@pytest.mark.parametrize("model", ["fc", "mlp", "pruned_fc"])
def test_scoring_copy_shares_raw_weights_without_touching_them(model):
    """The scoring copies read the model's raw weights in place (no copy): the
    weights, their requires_grad flags and .grad fields are left as they were."""
    net = _models()[model]
    layers = find_prunable(net)
    before = [l.theta.detach().clone() for l in layers]
    flags = [p.requires_grad for p in net.parameters()]
    work = ScoringCopy(net, layers)
    assert all(w.data_ptr() == l.theta.data_ptr() for w, l in zip(work.thetas, layers))
    assert all(w is not l.theta for w, l in zip(work.thetas, layers))
    x, y = _batches(12, 4, 1)[0]
    for method in ("snip", "grasp", "synflow"):
        gf.prune(net, method, 0.9 if model == "pruned_fc" else 0.5, data=(x, y), iterations=2, seed=0,
                 compat="synaptic-flow")
        assert all(torch.equal(l.theta, b) for l, b in zip(find_prunable(net), before))
        assert [p.requires_grad for p in net.parameters()] == flags
        assert all(p.grad is None for p in net.parameters())
