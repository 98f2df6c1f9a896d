"""gntk_fast.prune on any torch module: convolutional and residual nets, the
parameters left dense, the pruning-method registry, and the Synaptic-Flow
rule on conv nets against a literal re-implementation written here."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

import gntk_fast as gf
from gntk_fast._constants import METHODS, PRUNING_METHODS
from gntk_fast.pruning import PruningMethod, dense_parameters, mask_report, method_class

PAI = ("random", "magnitude", "snip", "grasp", "synflow")


def _snippet(seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))


def _images(n=12, c=3, side=8, classes=10, seed=0, batches=1):
    g = torch.Generator().manual_seed(seed)
    out = [(torch.randn(n, c, side, side, generator=g), torch.randint(0, classes, (n,), generator=g))
           for _ in range(batches)]
    return out[0] if batches == 1 else out


def _small_vgg(seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 5))


class _Block(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.bn1(self.conv1(x)))) + self.shortcut(x))


class _SmallResNet(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.block = _Block(4, 6)
        self.fc = nn.Linear(6, 5)
        with torch.no_grad():  # non-trivial BatchNorm state, so |.|-linearisation and eval mode matter
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(-1.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.fc(self.block(F.relu(self.bn(self.stem(x)))).mean(dim=(-2, -1)))


def _prunable(model):
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]


# ------------------------------------------------------------ the snippet
def test_snippet_prunes_every_conv_and_linear_weight():
    net = _snippet()
    res = gf.prune(net, "random", 0.8, seed=0)
    mods = _prunable(net)
    assert res.names == ["0", "2", "6"] and len(res.masks) == 3
    n = sum(m.weight.numel() for m in mods)
    assert sum(int(m.sum()) for m in res.masks) == round(0.2 * n)
    for mod, mask in zip(mods, res.masks):
        assert hasattr(mod, "weight_orig") and torch.equal(mod.weight_mask.bool(), mask)
        assert torch.equal(mod.weight, mod.weight_orig * mask)
        assert 0.1 < float(mask.float().mean()) < 0.3  # random global scores: every layer near d = 0.2
    assert {d["name"]: d["reason"] for d in res.report["dense"]} == {"0.bias": "bias", "2.bias": "bias",
                                                                     "6.bias": "bias"}
    assert res.report["layers"][0]["type"] == "Conv2d" and res.report["layers"][2]["type"] == "Linear"
    # the forward uses the masks: equal to the network rebuilt from masked weights
    x = torch.randn(2, 3, 8, 8)
    h = F.relu(F.conv2d(x, mods[0].weight_orig * res.masks[0], mods[0].bias, padding=1))
    h = F.relu(F.conv2d(h, mods[1].weight_orig * res.masks[1], mods[1].bias, padding=1))
    want = F.linear(F.max_pool2d(h, 2).flatten(1), mods[2].weight_orig * res.masks[2], mods[2].bias)
    torch.testing.assert_close(net(x), want)


@pytest.mark.parametrize("method", ["snip", "grasp"])
def test_snippet_with_image_data(method):
    net = _snippet()
    res = gf.prune(net, method, 0.8, data=_images(), seed=0)
    assert sum(int(m.sum()) for m in res.masks) == round(0.2 * sum(m.numel() for m in res.masks))
    assert all(hasattr(m, "weight_orig") for m in _prunable(net))
    with pytest.raises(ValueError, match=r"data x must be a batch of inputs \(n, 3, H, W\).*'0'.*Conv2d"):
        gf.prune(_snippet(), method, 0.8, data=(torch.randn(4, 192), torch.zeros(4, dtype=torch.long)))
    with pytest.raises(ValueError, match="data: inputs of shape .* do not fit the model"):
        gf.prune(_snippet(), method, 0.8, data=_images(side=6))


# ------------------------------------------------- VGG / ResNet, all methods
def _zoo(name):
    if name == "vgg11":
        return gf.vgg("vgg11", width=1 / 32, seed=0)
    if name == "vgg16":
        return gf.vgg("vgg16", width=1 / 32, seed=0)
    return gf.resnet20(width=4, seed=0)


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("name", ["vgg11", "vgg16", "resnet20"])
def test_all_methods_on_vgg_and_resnet20_keep_round_dN(name, scope):
    data = _images(n=2, side=8 if name == "resnet20" else 32, seed=1)
    d = 0.1
    for method in PAI:
        net = _zoo(name)
        res = gf.prune(net, method, 1 - d, data=data, scope=scope, seed=0,
                       iterations=4 if method == "synflow" else None)
        mods = _prunable(net)
        assert len(res.masks) == len(mods) and all(hasattr(m, "weight_orig") for m in mods)
        if scope == "global":
            n = sum(m.numel() for m in res.masks)
            assert sum(int(m.sum()) for m in res.masks) == round(d * n), method
        else:
            assert [int(m.sum()) for m in res.masks] == [round(d * m.numel()) for m in res.masks], method
        reasons = {r["reason"] for r in res.report["dense"]}
        assert reasons <= {"bias", "normalisation"} and "normalisation" in reasons
        assert torch.isfinite(net(data[0])).all()


def test_synflow_default_iterations_on_resnet20_and_compat_rule():
    net = _zoo("resnet20")
    res = gf.prune(net, "synflow", 0.99, input_shape=(3, 32, 32), progress=False)
    assert len(res.history) == 100
    n = sum(m.numel() for m in res.masks)
    assert sum(int(m.sum()) for m in res.masks) == round(0.01 * n)


# ----------------------------------- Synaptic-Flow rule, literal re-implementation
class _Mask(nn.Module):
    """weight -> mask * weight (the reference code's masked layers, as a parametrization)."""

    def __init__(self, shape):
        super().__init__()
        self.register_buffer("mask", torch.ones(shape))

    def forward(self, w):
        return self.mask * w


def _literal_synaptic_flow(model, method, density, scope, epochs, data, own_scores=None):
    """The reference prune loop written plainly: masks multiplied into Linear/Conv2d
    weights, per-parameter scores (the reference's formulas and normalisations,
    gradients by .backward()), threshold = kthvalue of the scores with
    k = int((1 - d_e) N) (globally or per parameter), every score <= threshold pruned,
    eval mode, schedule d_e = d**(e/E)."""
    net = copy.deepcopy(model)
    masked = []
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            parametrize.register_parametrization(m, "weight", _Mask(m.weight.shape))
            masked.append((m.parametrizations.weight[0].mask, m.parametrizations.weight.original))
    net.eval()
    for epoch in range(epochs):
        scores = {}
        if method == "magnitude":
            for _, p in masked:
                scores[id(p)] = torch.clone(p.data).detach().abs_()
        elif method == "random":
            for (_, p), s in zip(masked, own_scores):
                scores[id(p)] = s.clone()
        elif method == "snip":
            for m, _ in masked:
                m.requires_grad = True
            for x, y in data:
                F.cross_entropy(net(x), y).backward()
            for m, p in masked:
                scores[id(p)] = torch.clone(m.grad).detach().abs_()
                p.grad.data.zero_()
                m.grad = None
                m.requires_grad = False
            norm = torch.sum(torch.cat([torch.flatten(v) for v in scores.values()]))
            for _, p in masked:
                scores[id(p)].div_(norm)
        elif method == "grasp":
            params = [p for _, p in masked]
            stopped = 0
            for x, y in data:
                grads = torch.autograd.grad(F.cross_entropy(net(x) / 200, y), params)
                stopped += torch.cat([g.reshape(-1) for g in grads])
            for x, y in data:
                grads = torch.autograd.grad(F.cross_entropy(net(x) / 200, y), params, create_graph=True)
                (stopped * torch.cat([g.reshape(-1) for g in grads])).sum().backward()
            for _, p in masked:
                scores[id(p)] = torch.clone(p.grad * p.data).detach()
                p.grad.data.zero_()
            norm = torch.abs(torch.sum(torch.cat([torch.flatten(v) for v in scores.values()]))) + 1e-10
            for _, p in masked:
                scores[id(p)].div_(norm)
        elif method == "synflow":
            signs = {}
            with torch.no_grad():
                for name, t in net.state_dict().items():
                    signs[name] = torch.sign(t)
                    t.abs_()
            x = torch.ones([1] + list(data[0][0][0, :].shape))
            torch.sum(net(x)).backward()
            for _, p in masked:
                scores[id(p)] = torch.clone(p.grad * p).detach().abs_()
                p.grad.data.zero_()
            with torch.no_grad():
                for name, t in net.state_dict().items():
                    t.mul_(signs[name])
        sparse = density ** ((epoch + 1) / epochs)
        if scope == "global":
            flat = torch.cat([torch.flatten(v) for v in scores.values()])
            k = int((1.0 - sparse) * flat.numel())
            if not k < 1:
                threshold, _ = torch.kthvalue(flat, k)
                for m, p in masked:
                    m.copy_(torch.where(scores[id(p)] <= threshold, torch.tensor([0.0]), torch.tensor([1.0])))
        else:
            for m, p in masked:
                s = scores[id(p)]
                k = int((1.0 - sparse) * s.numel())
                if not k < 1:
                    threshold, _ = torch.kthvalue(torch.flatten(s), k)
                    m.copy_(torch.where(s <= threshold, torch.tensor([0.0]), torch.tensor([1.0])))
    return [m.detach().bool() for m, _ in masked]


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("method", PAI)
@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_compat_masks_equal_literal_synaptic_flow(arch, method, scope):
    model = _small_vgg() if arch == "vgg" else _SmallResNet()
    data = _images(n=5, side=8, classes=5, seed=3, batches=2)
    E = 3 if method == "synflow" else 1
    d = 0.3
    res = gf.prune(copy.deepcopy(model), method, 1 - d, data=data, scope=scope, iterations=E, compat="synaptic-flow",
                   seed=0)
    own = [s.clone() for s in res.scores] if method == "random" else None
    want = _literal_synaptic_flow(model, method, d, scope, E, data, own_scores=own)
    assert len(want) == len(res.masks)
    for got, w in zip(res.masks, want):
        assert torch.equal(got, w)
    n = sum(m.numel() for m in res.masks)
    if scope == "global":  # k = int((1 - d) N) pruned, ties at the threshold too
        assert 0 < sum(int(m.sum()) for m in res.masks) <= n - int((1 - d) * n)


# ----------------------------------------------------------- input shape
def test_synflow_input_shape_from_argument_or_data_or_error():
    with pytest.raises(ValueError, match=r"input_shape is required for method 'synflow'.*input_shape=\(C, H, W\)"):
        gf.prune(_snippet(), "synflow", 0.5)
    a = gf.prune(_snippet(), "synflow", 0.5, input_shape=(3, 8, 8), iterations=2)
    b = gf.prune(_snippet(), "synflow", 0.5, data=_images(), iterations=2)
    assert all(torch.equal(x, y) for x, y in zip(a.masks, b.masks))
    with pytest.raises(ValueError, match="input_shape: inputs of shape"):
        gf.prune(_snippet(), "synflow", 0.5, input_shape=(3, 6, 6))
    with pytest.raises(ValueError, match="disagrees with the data"):
        gf.prune(_snippet(), "synflow", 0.5, input_shape=(3, 9, 9), data=_images())
    with pytest.raises(TypeError, match="input_shape"):
        gf.prune(_snippet(), "synflow", 0.5, input_shape="3x8x8")
    with pytest.raises(ValueError, match=r"input_shape\[1\]"):
        gf.prune(_snippet(), "synflow", 0.5, input_shape=(3, 0, 8))
    # linear nets keep reading (d_in,) from their first layer
    assert len(gf.prune(gf.fc(6, 5, 1, 2, seed=0), "synflow", 0.5, iterations=2).masks) == 2


# ------------------------------------------------------- masked conv layers
def test_convnet_masks_go_into_weight_mask_buffers():
    net = gf.ConvNet(1, 6, 2, 4, seed=0, dtype=torch.float64)
    data = (torch.randn(7, 1, 6, 6, dtype=torch.float64), torch.randint(0, 4, (7,)))
    res = gf.prune(net, "snip", 0.7, data=data)
    assert [tuple(m.shape) for m in res.masks] == [(6, 1, 3, 3), (6, 6, 3, 3), (4, 6)]
    for layer, m in zip(net.layers, res.masks):
        assert layer.weight_mask.dtype == torch.bool and torch.equal(layer.weight_mask, m)
        assert not hasattr(layer, "weight_orig")
    # magnitude on the raw N(0, 1) weights: the top round(0.3 N) |w| over all layers
    net2 = gf.ConvNet(1, 6, 2, 4, seed=1)
    res2 = gf.prune(net2, "magnitude", 0.7)
    w = torch.cat([l.weight.detach().abs().reshape(-1) for l in net2.layers])
    keep = torch.zeros_like(w, dtype=torch.bool)
    keep[torch.argsort(w, descending=True, stable=True)[:round(0.3 * w.numel())]] = True
    assert torch.equal(torch.cat([m.reshape(-1) for m in res2.masks]), keep)


class _OwnMaskConv(nn.Conv2d):
    """A conv layer applying its own float mask buffer (the Synaptic-Flow layers' way)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.register_buffer("weight_mask", torch.ones(self.weight.shape))

    def forward(self, x):
        return self._conv_forward(x, self.weight_mask * self.weight, self.bias)


def test_layers_with_their_own_mask_buffer():
    torch.manual_seed(0)
    net = nn.Sequential(_OwnMaskConv(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 2))
    x, y = torch.randn(5, 2, 4, 4), torch.randint(0, 2, (5,))
    ref = copy.deepcopy(net)
    res = gf.prune(net, "grasp", 0.6, data=(x, y))
    assert not hasattr(net[0], "weight_orig") and net[0].weight_mask.dtype == torch.float32
    assert torch.equal(net[0].weight_mask, res.masks[0].float()) and hasattr(net[3], "weight_orig")
    # the same scores as the torch-pruned plain twin of the network
    twin = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 2))
    twin.load_state_dict({k: v for k, v in ref.state_dict().items() if k != "0.weight_mask"})
    res2 = gf.prune(twin, "grasp", 0.6, data=(x, y))
    assert all(torch.equal(a, b) for a, b in zip(res.masks, res2.masks))
    # a stock layer with a stray weight_mask buffer its forward ignores: refused
    stray = nn.Sequential(nn.Linear(3, 2))
    stray[0].register_buffer("weight_mask", torch.ones(2, 3))
    with pytest.raises(ValueError, match="weight_mask buffer that its stock Linear.forward ignores"):
        gf.prune(stray, "random", 0.5)


def test_conv1d_is_pruned():
    net = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5, 3))
    x, y = torch.randn(6, 2, 5), torch.randint(0, 3, (6,))
    res = gf.prune(net, "snip", 0.5, data=(x, y))
    assert [tuple(m.shape) for m in res.masks] == [(4, 2, 3), (3, 20)]
    assert isinstance(net[0].weight_mask, torch.Tensor)
    assert sum(int(m.sum()) for m in res.masks) == round(0.5 * (24 + 60))


# ------------------------------------------------ parameters left dense / errors
def test_dense_parameters_listed_and_unsupported_modules_raise():
    rep = gf.prune(_SmallResNet(), "magnitude", 0.5).report
    dense = {d["name"]: d["reason"] for d in rep["dense"]}
    assert dense == {"bn.weight": "normalisation", "bn.bias": "normalisation",
                     "block.bn1.weight": "normalisation", "block.bn1.bias": "normalisation",
                     "block.shortcut.1.weight": "normalisation", "block.shortcut.1.bias": "normalisation",
                     "fc.bias": "bias"}
    assert rep["total"]["dense_parameters"] == 4 * 2 + 6 * 4 + 5

    emb = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"parameter '0.weight' \(Embedding\) cannot be pruned.*unsupported=\"dense\""):
        gf.prune(emb, "magnitude", 0.5)
    res = gf.prune(emb, "magnitude", 0.5, unsupported="dense")
    assert res.report["dense"][0] == {"name": "0.weight", "module": "Embedding", "numel": 40, "reason": "unsupported"}
    assert not hasattr(emb[0], "weight_orig")

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.scale = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return self.lin(x) * self.scale

    with pytest.raises(ValueError, match=r"'scale' \(Scaled\)"):
        gf.prune(Scaled(), "random", 0.5)
    with pytest.raises(ValueError, match=r"'0.weight' \(ConvTranspose2d\)"):
        gf.prune(nn.Sequential(nn.ConvTranspose2d(2, 2, 3), nn.Flatten(), nn.Linear(50, 2)), "random", 0.5)
    with pytest.raises(ValueError, match="unsupported"):
        gf.prune(emb, "random", 0.5, unsupported="ignore")
    with pytest.raises(ValueError, match="no prunable layer"):
        gf.prune(nn.Sequential(nn.BatchNorm1d(3)), "random", 0.5)
    assert [d["reason"] for d in dense_parameters(nn.LayerNorm(3))] == ["normalisation", "normalisation"]


def test_from_sequential_names_the_residual_block():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            return x + self.b(torch.relu(self.a(x)))

    for module in (Residual(), nn.Sequential(nn.Linear(4, 4), Residual())):
        with pytest.raises(ValueError, match=r"\(Residual\) holds parameters.*nn.Sequential.*nn.Linear.*residual"):
            gf.MLP.from_sequential(module)


# ------------------------------------------------------------------ report
def test_report_dead_channels_by_hand():
    m0 = torch.ones(3, 2, 3, 3, dtype=torch.bool)
    m0[1] = False  # output channel 1 dead (no tap kept)
    m0[:, 0, :, :] = False  # input channel 0 unread
    m1 = torch.ones(4, 3, 3, 3, dtype=torch.bool)
    m1[:, 2] = False  # layer 0's channel 2 feeds nothing: zero fan-out
    m1[3, :, 1, 1] = False  # one tap: not a dead channel
    rep = mask_report([m0, m1], ["c0", "c1"], chain=True)
    l0, l1 = rep["layers"]
    assert (l0["dead_outputs"], l0["dead_inputs"], l0["zero_fan_out"], l0["dead_neurons"]) == (1, 1, 1, 2)
    assert l0["shape"] == [3, 2, 3, 3] and l0["kept"] == 2 * 1 * 9
    assert (l1["dead_outputs"], l1["dead_inputs"], l1["zero_fan_out"]) == (0, 1, None)
    # not chained (residual nets): zero fan-out is not reported
    rep = mask_report([m0, m1], ["c0", "c1"], chain=False)
    assert rep["layers"][0]["zero_fan_out"] is None and rep["layers"][0]["dead_neurons"] == 1


def test_conv_masks_saved_and_loaded(tmp_path):
    res = gf.prune(_snippet(), "magnitude", 0.5)
    p = res.save_npz(tmp_path / "conv")
    with pytest.raises(ValueError, match="layer0 must be 2-D"):
        gf.pruning.load_masks(p)
    got = gf.pruning.load_masks(p, chain=False)
    assert [tuple(m.shape) for m in got] == [(8, 3, 3, 3), (8, 8, 3, 3), (10, 128)]
    assert all(torch.equal(a, b) for a, b in zip(got, res.masks))
    np.savez(tmp_path / "bad.npz", layer0=np.ones((2, 2, 2, 2, 2, 2), bool))
    with pytest.raises(ValueError, match="2 to 5 dimensions"):
        gf.pruning.load_masks(tmp_path / "bad.npz", chain=False)


# ---------------------------------------------------------------- graphon
def test_graphon_method_on_a_conv_net():
    net = _snippet()
    res = gf.prune(net, "graphon", 0.75, graphons=[0.5, 0.5, 0.5], scope="layerwise", seed=0)
    assert [int(m.sum()) for m in res.masks] == [round(0.25 * m.numel()) for m in res.masks]
    assert res.scores[0].shape == (8, 3, 3, 3) and hasattr(net[0], "weight_orig")


# ---------------------------------------------------------------- registry
class _NegMagnitude(PruningMethod):
    """Keeps the smallest weights (a method written as one class)."""

    name = "neg-magnitude"

    def score(self, mask):
        return [-l.theta.detach().abs().reshape(-1) for l in self.ctx.layers]


def test_registry_one_class_one_registration(monkeypatch):
    assert METHODS == tuple(PRUNING_METHODS) == PAI
    assert [method_class(m).name for m in METHODS] == list(METHODS)
    assert method_class("synflow").default_iterations == 100 and method_class("snip").needs_data
    monkeypatch.setitem(PRUNING_METHODS, "neg-magnitude", f"{__name__}:_NegMagnitude")
    net = _snippet()
    res = gf.prune(net, "neg-magnitude", 0.5)
    w = torch.cat([m.weight_orig.detach().abs().reshape(-1) for m in _prunable(net)])
    assert float(w[torch.cat([m.reshape(-1) for m in res.masks])].max()) <= float(
        w[~torch.cat([m.reshape(-1) for m in res.masks])].min())
    monkeypatch.setitem(PRUNING_METHODS, "broken", "gntk_fast.pruning.scores:make_scorer")
    with pytest.raises(TypeError, match="not a PruningMethod"):
        gf.prune(_snippet(), "broken", 0.5)


# ------------------------------------------------------------- hypothesis
@st.composite
def _stacks(draw):
    n_conv = draw(st.integers(0, 3))
    side = draw(st.integers(3, 6))
    c = draw(st.integers(1, 3))
    c0 = c
    mods: list[nn.Module] = []
    for _ in range(n_conv):
        c_out = draw(st.integers(1, 4))
        k = draw(st.sampled_from([1, 3]))
        mods.append(nn.Conv2d(c, c_out, k, padding=k // 2, bias=draw(st.booleans())))
        if draw(st.booleans()):
            mods.append(nn.BatchNorm2d(c_out))
        mods.append(nn.ReLU())
        c = c_out
    mods.append(nn.Flatten())
    width = c * side * side
    for _ in range(draw(st.integers(1, 2))):
        w = draw(st.integers(2, 5))
        mods.extend([nn.Linear(width, w, bias=draw(st.booleans())), nn.Tanh()])
        width = w
    mods.pop()
    return mods, (c0, side, side), width


@settings(max_examples=20, deadline=None)
@given(stack=_stacks(), method=st.sampled_from(["random", "magnitude", "snip", "synflow"]),
       scope=st.sampled_from(["global", "layerwise"]), sparsity=st.floats(0.0, 0.99), seed=st.integers(0, 2**32))
def test_prune_random_conv_linear_stacks(stack, method, scope, sparsity, seed):
    mods, shape, classes = stack
    torch.manual_seed(seed % 1000)
    net = nn.Sequential(*mods)
    g = torch.Generator().manual_seed(seed)
    data = (torch.randn(4, *shape, generator=g), torch.randint(0, classes, (4,), generator=g))
    res = gf.prune(net, method, sparsity, data=data, scope=scope, seed=seed, iterations=2)
    d = 1 - sparsity
    if scope == "global":
        assert sum(int(m.sum()) for m in res.masks) == round(d * sum(m.numel() for m in res.masks))
    else:
        assert [int(m.sum()) for m in res.masks] == [round(d * m.numel()) for m in res.masks]
    layers = _prunable(net)
    assert len(layers) == len(res.masks)
    for mod, m in zip(layers, res.masks):
        assert torch.equal(mod.weight_mask.bool(), m) and m.shape == mod.weight_orig.shape
    biases = {f"{i}.bias" for i, mod in enumerate(mods) if isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None}
    assert {r["name"] for r in res.report["dense"] if r["reason"] == "bias"} == biases
    rep = res.report["layers"]
    for e, m in zip(rep, res.masks):
        mm = m.numpy()
        assert e["dead_outputs"] == int((~mm.reshape(mm.shape[0], -1).any(axis=1)).sum())
        assert e["dead_inputs"] == int((~np.moveaxis(mm, 1, 0).reshape(mm.shape[1], -1).any(axis=1)).sum())
    assert torch.isfinite(net(data[0])).all()
