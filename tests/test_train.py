import copy
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf


@pytest.fixture(scope="module")
def digits():
    return gf.data.load("digits", split="train", n=300, seed=0)


def _pruned_mlp(d_in=64, width=32, depth=2, d_out=10, sparsity=0.8, seed=0, dtype=None):
    m = gf.MLP(d_in, width, depth, d_out=d_out, seed=seed, dtype=dtype)
    gf.prune(m, "random", sparsity=sparsity, seed=seed)
    return m


def _assert_pruned_zero(model):
    for l, layer in enumerate(model.layers):
        pruned = layer.weight[~layer.weight_mask]
        assert pruned.numel() > 0
        assert bool((pruned == 0).all()), f"layer {l}: pruned weights not zero"


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_pruned_weights_exactly_zero_after_every_step(digits, optimizer):
    x, y = digits
    m = _pruned_mlp()
    # the stored weights at pruned positions start nonzero (the mask lives in a buffer)
    assert any(bool((l.weight[~l.weight_mask] != 0).any()) for l in m.layers)
    kept_before = [l.weight[l.weight_mask].clone() for l in m.layers]
    seen = []

    def spy(step, model):
        _assert_pruned_zero(model)
        seen.append(step)

    kw = dict(momentum=0.9) if optimizer == "sgd" else {}
    gf.train(m, (x, y), steps=12, optimizer=optimizer, lr=1e-2, batch_size=32, progress=False,
             callback=spy, **kw)
    assert seen == list(range(1, 13))
    _assert_pruned_zero(m)
    # the kept weights did train
    for l, before in zip(m.layers, kept_before):
        assert not torch.equal(l.weight[l.weight_mask], before)


def test_torch_pruned_fc_masks_enforced(digits):
    x, y = digits
    net = gf.fc(64, 40, 2, seed=0)
    gf.prune(net, "snip", sparsity=0.8, data=(x, y), seed=0)
    pruned_layers = [mod for mod in net.modules() if hasattr(mod, "weight_orig")]
    assert len(pruned_layers) == 3
    res = gf.train(net, (x, y), steps=30, lr=1e-2, progress=False)
    assert res.loss[-1] < res.loss[0]
    for mod in pruned_layers:
        keep = mod.weight_mask != 0
        assert bool((mod.weight_orig[~keep] == 0).all())
        # the module's weight attribute is refreshed from the trained weight_orig
        assert torch.equal(mod.weight, mod.weight_orig * mod.weight_mask)


def test_loss_decreases_on_digits(digits):
    x, y = digits
    m = _pruned_mlp()
    res = gf.train(m, (x, y), steps=200, lr=1e-2, batch_size=64, progress=False)
    assert res.loss.dtype == np.float64 and res.loss.shape == (200,)
    assert np.array_equal(res.steps, np.arange(200))
    first, last = res.loss[:10].mean(), res.loss[-10:].mean()
    assert last < 0.5 * first
    assert res.accuracy[-20:].mean() > res.accuracy[:10].mean() + 0.3
    # training accuracy measured independently on the full set after training
    with torch.no_grad():
        acc = (m(x).argmax(1) == y).float().mean().item()
    assert acc > 0.7


def test_deterministic_with_seed(digits):
    x, y = digits
    m = _pruned_mlp()
    runs = {}
    for key, seed in (("a", 3), ("b", 3), ("c", 4)):
        mc = copy.deepcopy(m)
        runs[key] = (gf.train(mc, (x, y), steps=20, lr=1e-2, batch_size=16, seed=seed, progress=False), mc)
    (ra, ma), (rb, mb), (rc, _) = runs["a"], runs["b"], runs["c"]
    assert np.array_equal(ra.loss, rb.loss) and np.array_equal(ra.accuracy, rb.accuracy)
    assert all(torch.equal(p, q) for p, q in zip(ma.parameters(), mb.parameters()))
    assert not np.array_equal(ra.loss, rc.loss)
    # batch order only: the first minibatch differs, but the model state is the same
    assert ra.config["seed"] == 3 and rc.config["seed"] == 4


def test_squared_loss_matches_hand_formula_at_step_zero(digits):
    x, y = digits
    x, y = x[:50].double(), y[:50]
    m = _pruned_mlp(dtype=torch.float64)
    with torch.no_grad():
        for l in m.layers:  # the stored weights train() will see (pruned entries zeroed)
            l.weight[~l.weight_mask] = 0
        out = m(x).numpy()
    Y = np.eye(10)[y.numpy()]
    expected = 0.5 * np.mean(np.sum((out - Y) ** 2, axis=1))
    res = gf.train(m, (x, y), steps=1, loss="squared", progress=False)
    assert res.loss[0] == pytest.approx(expected, rel=1e-12)
    # the convention of predicted_loss: (1/2N) sum ||f0 - Y||^2 at t = 0
    pred = gf.predicted_loss(np.eye(50), y, lr=1.0, steps=0, f0=out)
    assert res.loss[0] == pytest.approx(float(pred[0]), rel=1e-12)
    assert res.accuracy[0] == pytest.approx(np.mean(out.argmax(1) == y.numpy()))


def test_sgd_one_step_equals_hand_update():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    m = gf.MLP(3, [], None, d_out=2, seed=1, dtype=torch.float64)  # f(x) = s (W * M) x
    mask = torch.tensor([[True, False, True], [False, True, True]])
    m.set_masks([mask])
    W = m.layers[0].weight.detach().numpy() * mask.numpy()
    s = m.layers[0].weight_scale
    X, Y, M = x.numpy(), np.eye(2)[y.numpy()], mask.numpy()
    lr = 0.3
    R = s * X @ W.T - Y                      # residuals (6, 2)
    grad = s * (R.T @ X) / 6 * M             # d/dW of 0.5 mean ||R||^2 through the mask
    expected = W - lr * grad
    gf.train(m, (x, y), steps=1, optimizer="sgd", lr=lr, loss="squared", progress=False)
    got = m.layers[0].weight.detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    assert got[~M].tolist() == [0.0, 0.0]


def test_eval_curve(digits):
    x, y = digits
    x, y = x[:80], y[:80]
    m = _pruned_mlp()
    res = gf.train(m, (x, y), steps=10, lr=1e-2, progress=False, eval_data=(x, y), eval_every=4)
    assert res.eval_steps.tolist() == [0, 4, 8, 10]
    # full batch on the same data: the eval loss after s updates is the training loss at step s
    np.testing.assert_allclose(res.eval_loss[:3], res.loss[[0, 4, 8]], rtol=1e-6)
    np.testing.assert_allclose(res.eval_accuracy[:3], res.accuracy[[0, 4, 8]])
    with torch.no_grad():
        final = torch.nn.functional.cross_entropy(m(x), y).item()
    assert res.eval_loss[-1] == pytest.approx(final, rel=1e-6)
    plain = gf.train(_pruned_mlp(), (x, y), steps=2, progress=False)
    assert plain.eval_steps is None and plain.eval_loss is None and plain.eval_accuracy is None


def test_float_targets_squared():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 5, generator=gen)
    t = torch.randn(20, 3, generator=gen)
    m = gf.MLP(5, 16, 1, d_out=3, seed=0)
    res = gf.train(m, (x, t), steps=50, optimizer="sgd", lr=0.5, loss="squared", progress=False)
    assert res.accuracy is None
    assert res.loss[-1] < res.loss[0]


def test_divergence_raises_naming_lr(digits):
    x, y = digits
    m = _pruned_mlp()
    with pytest.raises(ValueError, match=r"lr=1e\+06.*diverged at step (\d+) \(training loss") as info:
        gf.train(m, (x, y), steps=50, optimizer="sgd", lr=1e6, loss="squared", progress=False)
    # stopped at the first non-finite loss, not after running all 50 steps
    assert int(re.search(r"step (\d+)", str(info.value)).group(1)) < 10


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(optimizer="rmsprop"), ValueError, "optimizer"),
        (dict(loss="hinge"), ValueError, "loss"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(lr=-1.0), ValueError, "lr"),
        (dict(lr=float("nan")), ValueError, "lr"),
        (dict(steps=0), ValueError, "steps"),
        (dict(steps=2.5), TypeError, "steps"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size=41), ValueError, "batch_size"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(momentum=0.9), ValueError, "momentum"),
        (dict(optimizer="sgd", momentum=1.0), ValueError, "momentum"),
        (dict(progress="yes"), TypeError, "progress"),
        (dict(eval_every=3), ValueError, "eval_every"),
        (dict(callback=3), TypeError, "callback"),
    ],
)
def test_argument_errors_name_the_argument(kwargs, exc, name):
    x = torch.randn(40, 5)
    y = torch.arange(40) % 3
    m = gf.MLP(5, 8, 1, d_out=3, seed=0)
    with pytest.raises(exc, match=name):
        gf.train(m, (x, y), progress=False, **kwargs)


def test_data_errors_name_the_argument():
    m = gf.MLP(5, 8, 1, d_out=3, seed=0)
    x = torch.randn(10, 5)
    y = torch.arange(10) % 3
    bad_x = x.clone()
    bad_x[2, 1] = float("nan")
    cases = [
        ((x, y[:9]), ValueError, "same number of samples"),
        ((bad_x, y), ValueError, r"data\[0\] \(x\).*NaN"),
        ((x, y + 1), ValueError, r"data\[1\] \(y\).*labels must lie in \[0, 2\]"),
        ((x, y - 1), ValueError, r"data\[1\] \(y\).*labels"),
        ((x, torch.randn(10, 3)), TypeError, r"data\[1\] \(y\).*integer class labels"),
        ((x[:, None], y), ValueError, r"data\[0\] \(x\)"),
        (x, TypeError, "data must be a pair"),
    ]
    for data, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            gf.train(m, data, steps=1, progress=False)
    with pytest.raises(ValueError, match=r"data\[1\] \(y\).*shape \(10, 3\)"):
        gf.train(m, (x, torch.randn(10, 2)), steps=1, loss="squared", progress=False)
    with pytest.raises(ValueError, match=r"eval_data\[1\] \(y\).*labels"):
        gf.train(m, (x, y), steps=1, eval_data=(x, y + 3), progress=False)
    with pytest.raises(TypeError, match="model"):
        gf.train("mlp", (x, y), steps=1, progress=False)


@settings(deadline=None, max_examples=12)
@given(
    optimizer=st.sampled_from(["adam", "sgd"]),
    loss=st.sampled_from(["cross_entropy", "squared"]),
    n=st.integers(1, 12),
    batch_frac=st.floats(0.0, 1.0),
    steps=st.integers(1, 6),
    seed=st.integers(0, 2**64 - 1),
)
def test_property_curves_and_masks(optimizer, loss, n, batch_frac, steps, seed):
    gen = torch.Generator().manual_seed(seed % 2**63)
    x = torch.randn(n, 4, generator=gen)
    y = torch.randint(0, 3, (n,), generator=gen)
    batch_size = max(1, math.ceil(batch_frac * n))
    m = gf.MLP(4, 6, 1, d_out=3, seed=1)
    m.set_masks([torch.rand(w.shape, generator=gen) < 0.5 for w in m.weights])
    m2 = copy.deepcopy(m)
    kw = dict(steps=steps, optimizer=optimizer, loss=loss, lr=1e-2, batch_size=batch_size, seed=seed, progress=False)
    res = gf.train(m, (x, y), **kw)
    assert res.loss.shape == res.accuracy.shape == (steps,)
    assert np.all(np.isfinite(res.loss)) and np.all((res.accuracy >= 0) & (res.accuracy <= 1))
    for layer in m.layers:
        assert bool((layer.weight[~layer.weight_mask] == 0).all())
    assert res.config["batch_size"] == batch_size and res.config["seed"] == seed
    assert np.array_equal(gf.train(m2, (x, y), **kw).loss, res.loss)


def test_full_batch_sgd_follows_predicted_loss(digits):
    """The squared-loss convention: a wide net's measured curve tracks the
    linearised prediction with the per-output kernel and lr / n."""
    x, y = digits
    x, y = x[:20].double(), y[:20]
    m = gf.MLP(64, 2048, 1, d_out=10, seed=0, dtype=torch.float64)
    with torch.no_grad():
        f0 = m(x).numpy()
    K = gf.empirical_ntk(m, x).numpy() / 10
    res = gf.train(m, (x, y), steps=30, optimizer="sgd", lr=0.5, loss="squared", progress=False)
    pred = gf.predicted_loss(K, y, lr=0.5 / 20, steps=29, f0=f0)
    assert res.loss[0] == pytest.approx(pred[0], rel=1e-12)
    assert res.loss[-1] < 0.3 * res.loss[0]  # a curve that moved
    np.testing.assert_allclose(res.loss, pred, rtol=0.1)
