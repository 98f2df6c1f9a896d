"""The histogram (radix) selection of gntk_fast.ops.mask_select: exact order
statistics without sorting, equal to the exact threshold with ties."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gntk_fast as gf
from gntk_fast.ops import mask_select
from gntk_fast.ops.mask_select import histogram as H
from gntk_fast.ops.mask_select import select_layer_masks, select_masks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_order_keys_preserve_order(dtype):
    vals = np.array([-np.inf, -3e38 if dtype == np.float32 else -1e300, -1.5, -1e-30, -0.0, 0.0, 1e-45 if dtype ==
                     np.float32 else 5e-324, 1e-30, 2.0, 3e38 if dtype == np.float32 else 1e300, np.inf], dtype=dtype)
    k = H.order_keys(vals)
    neg, pos = k[:5], k[5:]
    assert (neg[1:] > neg[:-1]).all() and (pos[1:] > pos[:-1]).all()  # (integer comparisons, exact)
    assert k[4] == k[5]  # -0.0 == +0.0


def _exact_kth_largest(arrs, k, where=None):
    a = np.concatenate(arrs) if where is None else np.concatenate([x[w] for x, w in zip(arrs, where)])
    v = np.sort(a)[::-1][k - 1]
    return v, int((a > v).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kth_largest_equals_sort(monkeypatch, dtype):
    monkeypatch.setattr(H, "BLOCK", 37)  # many blocks per layer
    rng = np.random.default_rng(0)
    for trial in range(30):
        arrs = []
        for n in rng.integers(1, 200, size=3):
            kind = trial % 3
            if kind == 0:  # ties: few distinct values, signed, with zeros of both signs
                a = rng.integers(-3, 4, size=n).astype(dtype) * dtype(0.5)
                a[rng.random(n) < 0.2] = -0.0
            elif kind == 1:  # huge dynamic range (SynFlow-like), infinities included
                with np.errstate(over="ignore"):
                    a = (np.exp(rng.normal(0, 40, size=n)) * rng.choice([-1, 1], size=n)).astype(dtype)
            else:
                a = rng.normal(size=n).astype(dtype)
            arrs.append(a)
        N = sum(a.size for a in arrs)
        where = [rng.random(a.size) < 0.7 for a in arrs] if trial % 2 else None
        M = N if where is None else int(sum(w.sum() for w in where))
        for k in {1, M, max(1, M // 2), max(1, M // 10), max(1, (9 * M) // 10)}:
            if M == 0:
                continue
            v, gt = H.kth_largest(arrs, k, where)
            ev, egt = _exact_kth_largest(arrs, k, where)
            assert v == ev and gt == egt, (trial, k)


def test_kth_largest_all_equal_and_bounds():
    a = [np.full(10, 2.5, np.float32), np.full(5, 2.5, np.float32)]
    assert H.kth_largest(a, 1) == (2.5, 0)
    assert H.kth_largest(a, 15) == (2.5, 0)
    with pytest.raises(ValueError, match="k=16"):
        H.kth_largest(a, 16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rule", ["clean", "synaptic-flow"])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_histogram_selection_equals_naive_with_ties(monkeypatch, dtype, rule, scope):
    monkeypatch.setattr(H, "BLOCK", 64)
    g = torch.Generator().manual_seed(3)
    shapes = [(20, 30), (30, 30), (10, 30)]
    for trial in range(8):
        scores = [torch.randint(0, 5, s, generator=g).to(dtype) * (1 if trial % 2 else -1) for s in shapes]
        cur = [torch.rand(s, generator=g) < (1.0 if trial < 4 else 0.8) for s in shapes]
        for d in (0.05, 0.1, 0.37, 0.5):
            try:
                want = select_layer_masks(scores, cur, d, scope, rule=rule, backend="naive")
            except ValueError:
                with pytest.raises(ValueError, match="sparsity"):
                    select_layer_masks(scores, cur, d, scope, rule=rule, backend="histogram")
                continue
            got = select_layer_masks(scores, cur, d, scope, rule=rule, backend="histogram")
            assert all(torch.equal(x, y) for x, y in zip(got, want)), (trial, d)


def test_auto_takes_histogram_only_for_many_scores(monkeypatch):
    assert mask_select.OP.resolve("auto", "cpu", n_scores=10, named=False).name == "numpy"
    assert mask_select.OP.resolve("auto", "cpu", n_scores=1 << 26, named=False).name == "histogram"
    assert mask_select.OP.resolve("histogram", "cpu", n_scores=10, named=True).name == "histogram"
    # prune with the threshold lowered: auto runs the histogram selection, the masks are unchanged
    x, y = gf.data.load("digits", split="train", per_class=3, seed=0)
    masks = {}
    orig = H.select
    for lim in (1 << 40, 1):
        monkeypatch.setattr(H, "STREAM_MIN_SCORES", lim)
        calls = []
        monkeypatch.setattr(H, "select", lambda *a, _c=calls, **k: _c.append(1) or orig(*a, **k))
        mask_select.OP.backends["histogram"]._fn = None  # reload through the patched attribute
        net = gf.fc(64, 48, 3, 10, seed=1)
        masks[lim] = (gf.prune(net, "snip", 0.8, data=(x, y), seed=1).masks, len(calls))
    mask_select.OP.backends["histogram"]._fn = None
    assert masks[1 << 40][1] == 0 and masks[1][1] == 1
    assert all(torch.equal(a, b) for a, b in zip(masks[1 << 40][0], masks[1][0]))


def test_flat_entry_matches_numpy_on_continuous_scores():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5000, generator=g)
    cur = torch.ones(5000, dtype=torch.bool)
    for rule in ("clean", "synaptic-flow"):
        a = select_masks(s, cur, [1000, 4000], 0.1, "global", rule=rule, backend="histogram")
        b = select_masks(s, cur, [1000, 4000], 0.1, "global", rule=rule, backend="numpy")
        assert torch.equal(a, b)
    assert int(select_masks(s, cur, [5000], 0.1, "global", backend="histogram").sum()) == 500
