"""empirical_ntk / empirical_ntk_vp / empirical_ntk_fn / empirical_nngp of general torch modules
against a plain torch.func Jacobian computation written here.

The oracle: ``vmap(jacrev(functional_call))`` over every trainable parameter
of the module in eval mode, the pruned entries of masked weights zeroed
(``weight_orig`` times its ``weight_mask``; the package's layers' ``weight``
times ``weight_mask``), then J J^T. Tolerances: relative Frobenius 1e-5
(float32), 1e-10 (float64).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.func import functional_call, jacrev, vmap
from torch.nn.utils import prune as tprune

import gntk_fast as gf
from _helpers import rel
from gntk_fast.ntk import EmpiricalNTK, empirical_nngp, empirical_ntk, empirical_ntk_fn, empirical_ntk_vp
from gntk_fast.ops.entk_conv import ENTK_CONV, masked_grad_term
from gntk_fast.ops.entk_conv.naive import masked_grad_term_naive
from gntk_fast.ops.entk_layer._common import layer_term_diagonal
from gntk_fast.ops.entk_layer.naive import masked_ntk_layer_naive

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


# ------------------------------------------------------------------ the oracle
def jacobian_oracle(net, x):
    """{parameter name: (N, k, P) Jacobian}, pruned entries zeroed, eval mode."""
    training = net.training
    net.eval()
    params = {n: p.detach() for n, p in net.named_parameters() if p.requires_grad}
    buffers = dict(net.named_buffers())

    def f(p, xi):
        return functional_call(net, p, (xi.unsqueeze(0),)).reshape(-1)

    J = vmap(jacrev(f), in_dims=(None, 0))(params, x)
    out = {}
    for n, j in J.items():
        if n.endswith("_orig"):
            j = j * buffers[n[: -len("_orig")] + "_mask"]
        elif n.endswith("weight") and n[: -len("weight")] + "weight_mask" in buffers:
            j = j * buffers[n[: -len("weight")] + "weight_mask"]
        out[n] = j.reshape(x.shape[0], j.shape[1], -1)
    net.train(training)
    return out


def oracle_full(net, xa, xb=None):
    Ja = jacobian_oracle(net, xa)
    Jb = Ja if xb is None else jacobian_oracle(net, xb)
    return sum(torch.einsum("acp,bdp->abcd", Ja[n], Jb[n]) for n in Ja), Ja, Jb


def traced(K):
    return K.diagonal(dim1=2, dim2=3).sum(-1)


# ------------------------------------------------------------------ models
def randomise_bn(net, seed):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return net


def prune_randomly(net, density, seed):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            tprune.custom_from_mask(m, "weight", torch.rand(m.weight.shape, generator=g) < density)
    return net


def resnet(dtype):
    net = gf.resnet20(width=2, n_out=3, seed=0)
    return prune_randomly(randomise_bn(net, 1), 0.3, 2).to(dtype)


def vgg(dtype):
    net = gf.vgg("vgg11", width=1 / 16, n_out=2, image_size=32, seed=0)
    return prune_randomly(randomise_bn(net, 3), 0.4, 4).to(dtype)


class Odd(nn.Module):
    """Parameters of every kind: a strided dilated reflect-padded conv with bias, a
    grouped conv and a LayerNorm (generic path), a Linear on a 3-D input, a Linear
    called twice (generic path), a bare parameter, a frozen layer."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, stride=2, dilation=1, padding=2, padding_mode="reflect")
        self.c2 = nn.Conv2d(4, 4, 3, padding="same", groups=2)
        self.ln = nn.LayerNorm(4)
        self.tok = nn.Linear(4, 5)
        self.shared = nn.Linear(5, 5)
        self.scale = nn.Parameter(torch.tensor([0.7, -1.3]))
        self.frozen = nn.Linear(5, 5)
        self.frozen.requires_grad_(False)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        h = torch.tanh(self.c1(x))
        h = F.relu(self.c2(h))  # (N, 4, H, W)
        h = self.ln(h.flatten(2).transpose(1, 2))  # (N, HW, 4)
        h = torch.tanh(self.tok(h)).mean(1)  # linear on (N, HW, 4)
        h = torch.tanh(self.shared(torch.tanh(self.shared(h))))
        return self.head(self.frozen(h)) * self.scale


def odd(dtype):
    torch.manual_seed(0)
    net = Odd()
    g = torch.Generator().manual_seed(5)
    tprune.custom_from_mask(net.c1, "weight", torch.rand(net.c1.weight.shape, generator=g) < 0.5)
    tprune.custom_from_mask(net.tok, "weight", torch.rand(net.tok.weight.shape, generator=g) < 0.5)
    tprune.custom_from_mask(net.head, "weight", torch.rand(net.head.weight.shape, generator=g) < 0.5)
    return net.to(dtype)


def convnet(dtype):
    net = gf.ConvNet(2, 3, 2, 2, padding="circular", readout="flatten", image_size=6, bias=True, seed=0, dtype=dtype)
    g = torch.Generator().manual_seed(7)
    net.set_masks([torch.rand(m.shape, generator=g) < 0.5 for m in net.masks])
    return net


MODELS = {  # name -> (builder, input shape)
    "resnet20": (resnet, (3, 8, 8)),
    "vgg11": (vgg, (3, 32, 32)),
    "odd": (odd, (2, 7, 7)),
    "convnet": (convnet, (2, 6, 6)),
}


def data(shape, n, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g, dtype=dtype)


# ------------------------------------------------------------------ against the oracle
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_form_matches_the_jacobian_oracle(name, dtype, tmp_path):
    build, shape = MODELS[name]
    net = build(dtype)
    net.train()
    x1, x2 = data(shape, 4, dtype, 0), data(shape, 3, dtype, 1)
    tol = TOL[dtype]
    Ja, Jb = jacobian_oracle(net, x1), jacobian_oracle(net, x2)
    K11 = sum(torch.einsum("acp,bdp->abcd", Ja[n], Ja[n]) for n in Ja)
    K12 = sum(torch.einsum("acp,bdp->abcd", Ja[n], Jb[n]) for n in Ja)
    assert rel(empirical_ntk(net, x1), traced(K11)) < tol
    assert rel(empirical_ntk(net, x1, trace=False), K11) < tol
    assert rel(empirical_ntk(net, x1, x2), traced(K12)) < tol
    assert rel(empirical_ntk(net, x1, x2, trace=False, block=2), K12) < tol
    assert rel(empirical_ntk(net, x1, block=2), traced(K11)) < tol
    full_diag = torch.einsum("aacd->acd", K11)
    assert rel(empirical_ntk(net, x1, diagonal=True), full_diag.diagonal(dim1=1, dim2=2).sum(-1)) < tol
    assert rel(empirical_ntk(net, x1, trace=False, diagonal=True, block=2), full_diag) < tol
    K = empirical_ntk(net, x1)
    assert torch.equal(K, K.T)
    # out=: a .npy file holding the same kernel
    path = empirical_ntk(net, x1, x2, out=tmp_path / "k.npy", block=2)
    assert rel(torch.from_numpy(np.load(path)), traced(K12)) < tol
    assert net.training  # the modes are restored


@pytest.mark.parametrize("name", ["resnet20", "odd"])
def test_per_layer_terms_are_the_modules_jacobian_terms(name):
    build, shape = MODELS[name]
    net = build(torch.float64)
    x1, x2 = data(shape, 4, torch.float64, 0), data(shape, 3, torch.float64, 1)
    res = empirical_ntk(net, x1, x2, per_layer=True)
    assert isinstance(res, EmpiricalNTK) and len(res.names) == len(res.per_layer)
    Ja, Jb = jacobian_oracle(net, x1), jacobian_oracle(net, x2)
    for mod, term in zip(res.names, res.per_layer):
        prefix = "" if mod == "(root)" else mod + "."
        own = [n for n in Ja if n.startswith(prefix) and "." not in n[len(prefix):]]
        assert own, mod
        expected = sum(torch.einsum("acp,bcp->ab", Ja[n], Jb[n]) for n in own)
        assert rel(term, expected) < 1e-10, mod
    assert rel(sum(res.per_layer), res.kernel) < 1e-12
    diag = empirical_ntk(net, x1, diagonal=True, trace=False, per_layer=True)
    assert rel(sum(diag.per_layer), diag.kernel) < 1e-12


@pytest.mark.parametrize("name", ["resnet20", "odd", "convnet"])
def test_vp_is_k_times_v(name):
    build, shape = MODELS[name]
    net = build(torch.float64)
    x = data(shape, 6, torch.float64, 0)
    K, _, _ = oracle_full(net, x)
    g = torch.Generator().manual_seed(9)
    v = torch.randn(6, generator=g, dtype=torch.float64)
    V = torch.randn(6, K.shape[2], generator=g, dtype=torch.float64)
    assert rel(empirical_ntk_vp(net, x, v, block=4), traced(K) @ v) < 1e-10
    assert rel(empirical_ntk_vp(net, x, V, trace=False), torch.einsum("abcd,bd->ac", K, V)) < 1e-10


@pytest.mark.parametrize("name", ["vgg11", "odd"])
def test_function_form_agrees(name):
    build, shape = MODELS[name]
    net = build(torch.float64).eval()
    x1, x2 = data(shape, 4, torch.float64, 0), data(shape, 2, torch.float64, 1)
    # the same network written as f(params, x) with the masks passed explicitly
    params, masks = {}, {}
    bufs = dict(net.named_buffers())
    for n, p in net.named_parameters():
        if not p.requires_grad:
            continue
        params[n] = p.detach()
        if n.endswith("_orig"):
            masks[n] = bufs[n[:-5] + "_mask"].bool()

    def f(p, x):
        return functional_call(net, p, (x,))

    ntk = empirical_ntk_fn(f, params, masks, trace=False)
    K12, _, _ = oracle_full(net, x1, x2)
    assert rel(ntk(x1, x2), K12) < 1e-10
    assert rel(ntk(x1, x2), empirical_ntk(net, x1, x2, trace=False)) < 1e-10
    ntk_d = empirical_ntk_fn(f, params, masks, diagonal=True, block=3)
    assert rel(ntk_d(x1), empirical_ntk(net, x1, diagonal=True)) < 1e-10
    per = empirical_ntk_fn(f, params, masks, per_layer=True)(x1)
    assert per.names == list(params) and rel(sum(per.per_layer), per.kernel) < 1e-12
    # params given at call time (neural-tangents' ntk_fn(x1, x2, params))
    doubled = {n: 2 * p for n, p in params.items()}
    assert rel(ntk(x1, x2, params=doubled), empirical_ntk_fn(f, doubled, masks, trace=False)(x1, x2)) < 1e-12
    # module form: as empirical_ntk
    assert rel(empirical_ntk_fn(net)(x1, x2), empirical_ntk(net, x1, x2)) < 1e-12


def test_function_form_masks_zero_the_pruned_entries():
    """A mask given to the function form removes exactly those entries' Jacobian columns."""
    torch.manual_seed(0)
    W = torch.randn(3, 4, dtype=torch.float64)
    m = torch.rand(3, 4) < 0.5

    def f(p, x):
        return torch.tanh(x @ p["W"].T)

    x = torch.randn(5, 4, dtype=torch.float64)
    d = 1 - torch.tanh(x @ W.T) ** 2  # (N, 3): J[a, c, (c, j)] = d[a, c] x[a, j]
    J = torch.zeros(5, 3, 3, 4, dtype=torch.float64)
    for c in range(3):
        J[:, c, c, :] = d[:, c, None] * x * m[c]
    expected = torch.einsum("acij,bcij->ab", J, J)
    assert rel(empirical_ntk_fn(f, {"W": W}, {"W": m})(x), expected) < 1e-12
    tuple_form = empirical_ntk_fn(lambda p, x: torch.tanh(x @ p[0].T), (W,), (m.double(),))
    assert rel(tuple_form(x), expected) < 1e-12


def test_backends_against_the_twins():
    net = resnet(torch.float64)
    x = data((3, 8, 8), 4, torch.float64, 0)
    a = empirical_ntk(net, x, trace=False, backend="naive")
    b = empirical_ntk(net, x, trace=False)
    assert rel(a, b) < 1e-12
    odd_net = odd(torch.float64)
    xo = data((2, 7, 7), 4, torch.float64, 0)
    for backend in ("naive", "cpp"):
        if backend == "cpp" and not gf._backend.cpp_available():
            continue
        assert rel(empirical_ntk(odd_net, xo, backend=backend), empirical_ntk(odd_net, xo, backend="naive")) < 1e-12


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("gather", [True, False])
def test_conv_op_backends_match_the_twin(density, dtype, gather, chunked, monkeypatch):
    import gntk_fast.ops.entk_conv.gather as gather_mod

    monkeypatch.setattr(gather_mod, "SPARSE_DENSITY", 1.0 if gather else 0.0)  # both ways of forming gradients
    if chunked:  # a working budget below one output unit: one unit per chunk
        monkeypatch.setattr(gather_mod, "CHUNK_BYTES", 1)
    g = torch.Generator().manual_seed(int(density * 10))
    D1, U1 = torch.randn(5, 3, 4, 7, generator=g, dtype=dtype), torch.randn(5, 6, 7, generator=g, dtype=dtype)
    D2, U2 = torch.randn(3, 3, 4, 7, generator=g, dtype=dtype), torch.randn(3, 6, 7, generator=g, dtype=dtype)
    mask = torch.rand(4, 6, generator=g) < density
    for backend in ENTK_CONV.names:
        for trace in (True, False):
            for args in ((D1, U1, None, None), (D1, U1, D2, U2)):
                got = masked_grad_term(*args, mask=mask, trace=trace, backend=backend)
                want = masked_grad_term_naive(*args, mask=mask, trace=trace)
                assert rel(got, want) < TOL[dtype]
            got = masked_grad_term(D1, U1, mask=mask, trace=trace, diagonal=True, backend=backend)
            full = masked_grad_term_naive(D1, U1, mask=mask, trace=False)
            want = torch.einsum("aacd->acd", full)
            assert rel(got, want.diagonal(dim1=1, dim2=2).sum(-1) if trace else want) < TOL[dtype]
    sym = masked_grad_term(D1, U1, mask=mask)
    assert torch.equal(sym, sym.T)


def test_conv_op_naive_twin_is_the_definition():
    """The twin against per-example gradients written out loop by loop."""
    g = torch.Generator().manual_seed(0)
    D, U = torch.randn(3, 2, 2, 4, generator=g, dtype=torch.float64), torch.randn(3, 3, 4, generator=g, dtype=torch.float64)
    mask = torch.tensor([[True, False, True], [False, True, True]])
    G = torch.zeros(3, 2, 2, 3, dtype=torch.float64)
    for a in range(3):
        for c in range(2):
            for o in range(2):
                for j in range(3):
                    if mask[o, j]:
                        G[a, c, o, j] = sum(D[a, c, o, p] * U[a, j, p] for p in range(4))
    want = torch.einsum("acoj,bcoj->ab", G, G)
    assert rel(masked_grad_term_naive(D, U, mask=mask), want) < 1e-14


def test_layer_diagonal_matches_the_naive_layer_term():
    g = torch.Generator().manual_seed(0)
    D, H = torch.randn(6, 3, 5, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    for mask in (None, torch.rand(5, 4, generator=g) < 0.4):
        full = masked_ntk_layer_naive(D, H, mask=mask, trace=False)
        diag = torch.einsum("aacd->acd", full)
        assert rel(layer_term_diagonal(D, H, mask, trace=False), diag) < 1e-13
        assert rel(layer_term_diagonal(D, H, mask, trace=True), diag.diagonal(dim1=1, dim2=2).sum(-1)) < 1e-13


def test_mlp_diagonal_and_vp_match_its_kernel():
    m = gf.MLP(6, [9, 7], None, 3, bias=True, seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    m.set_masks([torch.rand(w.shape, generator=g) < 0.4 for w in m.weights])
    x = torch.randn(7, 6, generator=g, dtype=torch.float64)
    K = empirical_ntk(m, x, trace=False)
    assert rel(empirical_ntk(m, x, trace=False, diagonal=True, block=3), torch.einsum("aacd->acd", K)) < 1e-12
    for trainable in ("mask", "all"):
        Kt = empirical_ntk(m, x, trainable=trainable)
        assert rel(empirical_ntk(m, x, diagonal=True, trainable=trainable), Kt.diagonal()) < 1e-12
    v = torch.randn(7, generator=g, dtype=torch.float64)
    assert rel(empirical_ntk_vp(m, x, v), traced(K) @ v) < 1e-10
    per = empirical_ntk(m, x, diagonal=True, per_layer=True)
    assert len(per.per_layer) == 3 and rel(sum(per.per_layer), per.kernel) < 1e-12


def test_nngp_is_the_last_linear_inputs_kernel():
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 6), nn.Tanh(),
                        nn.Linear(6, 2)).double()
    x1 = torch.randn(4, 1, 6, 6, dtype=torch.float64)
    x2 = torch.randn(3, 1, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        f1, f2 = net[:5](x1), net[:5](x2)
    assert rel(empirical_nngp(net, x1, x2), f1 @ f2.T / 6) < 1e-14
    K = empirical_nngp(net, x1, block=3)
    assert torch.equal(K, K.T) and rel(K, f1 @ f1.T / 6) < 1e-14
    m = gf.MLP(5, [8, 8], None, 1, seed=0, dtype=torch.float64)
    x = torch.randn(4, 5, dtype=torch.float64)
    with torch.no_grad():
        h = x
        for layer, act in zip(m.layers[:-1], m.activations):
            h = act.fn(layer(h))
    assert rel(empirical_nngp(m, x), h @ h.T / 8) < 1e-14
    with pytest.raises(ValueError, match="nn.Linear"):
        empirical_nngp(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()).double(), x1)


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 4), density=st.floats(0.0, 1.0), stride=st.integers(1, 2), k=st.integers(1, 3),
       seed=st.integers(0, 10_000))
def test_random_conv_nets_match_the_oracle(n, density, stride, k, seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, stride=stride, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.Conv2d(3, 2, 2), nn.Flatten(), nn.LazyLinear(k))
    net(torch.zeros(1, 2, 5, 5))
    net = prune_randomly(randomise_bn(net, seed), density, seed).double()
    x = data((2, 5, 5), n, torch.float64, seed)
    K, _, _ = oracle_full(net, x)
    assert rel(empirical_ntk(net, x, trace=False), K) < 1e-10
    assert rel(empirical_ntk(net, x, diagonal=True), torch.einsum("aacc->a", K)) < 1e-10


# ------------------------------------------------------------------ bad input
def test_bad_inputs():
    net = resnet(torch.float64)
    x = data((3, 8, 8), 3, torch.float64, 0)
    with pytest.raises(ValueError, match="x2"):
        empirical_ntk(net, x, x, diagonal=True)
    with pytest.raises(ValueError, match="trainable"):
        empirical_ntk(net, x, trainable="all")
    with pytest.raises(ValueError, match="x1"):
        empirical_ntk(net, x[:0])
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x1"):
        empirical_ntk(net, bad)
    with pytest.raises(ValueError, match="x2"):
        empirical_ntk(net, x, data((3, 9, 9), 2, torch.float64, 0))
    with pytest.raises(ValueError, match="diagonal"):
        empirical_ntk(net, x, diagonal="yes")
    with pytest.raises(ValueError, match="out"):
        empirical_ntk(net, x, per_layer=True, out="k.npy")
    with pytest.raises(ValueError, match="v must have shape"):
        empirical_ntk_vp(net, x, torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="v must have shape"):
        empirical_ntk_vp(net, x, torch.zeros(3, dtype=torch.float64), trace=False)
    bn = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2, track_running_stats=False), nn.Flatten(),
                       nn.LazyLinear(1))
    bn(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="running statistics"):
        empirical_ntk(bn.double(), x)
    with pytest.raises(ValueError, match="trainable parameter"):
        empirical_ntk(nn.Sequential(nn.Flatten()), x)
    broken = resnet(torch.float64)
    with torch.no_grad():
        broken.fc.bias[0] = float("inf")
    with pytest.raises(ValueError, match="fc.bias"):
        empirical_ntk(broken, x)
    params = {"W": torch.randn(2, 3)}
    f = lambda p, x: x @ p["W"].T  # noqa: E731
    with pytest.raises(ValueError, match=r"masks\['W'\]"):
        empirical_ntk_fn(f, params, {"W": torch.ones(3, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="masks"):
        empirical_ntk_fn(f, params, {"V": torch.ones(2, 3, dtype=torch.bool)})
    with pytest.raises(TypeError, match="params"):
        empirical_ntk_fn(f, [1, 2])
    with pytest.raises(TypeError, match="f must be a function"):
        empirical_ntk_fn(net, params)
    with pytest.raises(ValueError, match="masks"):
        empirical_ntk_fn(net, masks={"W": None})


def test_kept_gradients_stay_within_their_working_budget():
    """A wide, sparse conv layer (the row gather's case): the patches are gathered for chunks of output
    units, never for all of them at once (peak resident memory of a child process)."""
    import subprocess
    import sys

    code = """
import resource, torch
from gntk_fast.ops.entk_conv.gather import kept_gradients
g = torch.Generator().manual_seed(0)
N, k, n_out, q, p = 4, 2, 512, 2304, 196
D = torch.randn(N, k, n_out, p, generator=g, dtype=torch.float64)
U = torch.randn(N, q, p, generator=g, dtype=torch.float64)
mask = torch.rand(n_out, q, generator=g) < 0.1
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
G = kept_gradients(D, U, mask)
grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
want = torch.einsum("akop,aqp->akoq", D[:, :, :3], U)[:, :, mask[:3]]  # the first units, in full
assert torch.allclose(G[:, :, :want.shape[2]], want, rtol=1e-12, atol=1e-12)
print(grew)
"""
    m = 2304 // 8  # the longest kept row of a 10 % mask is below q / 8 (the gather's case) and above 0.1 q
    whole = 4 * 512 * int(0.1 * 2304) * 196 * 8  # every unit's gathered patches at once: 740 MB at least
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip().splitlines()[-1]) < whole / 2 and m > 0
