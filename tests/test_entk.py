"""empirical_ntk (fast path, every backend) against the torch.func Jacobian reference.

Tolerances (docs/graphon-ntk.md 4.4): relative Frobenius 1e-5 in float32, 1e-10 in float64.
Sizes are odd on purpose (they divide no tile of the C++ or Triton kernels).
"""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tprune

import gntk_fast as gf
from _helpers import rel
from gntk_fast.ntk import EmpiricalNTK, empirical_ntk, empirical_ntk_fn, empirical_ntk_reference
from gntk_fast.ops import BackendError
from gntk_fast.ops.entk_layer import ENTK_LAYER

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _triton_ok():
    try:
        from gntk_fast.ops.entk_layer.triton import masked_ntk_layer_triton  # noqa: F401
    except Exception as exc:  # pragma: no cover - installs without triton
        return False, f"gntk_fast.ops.entk_layer.triton unavailable: {exc}"
    return True, ""


BACKENDS = ["cpp", "triton", "naive"]


def need_backend(backend):
    if backend == "triton":
        ok, why = _triton_ok()
        if not ok:
            pytest.skip(why)
    elif backend == "cpp" and not gf._backend.cpp_available():
        pytest.skip("C++ extension not built")


def make_model(act="relu", k=1, widths=(13, 9), d=7, bias=False, dtype=torch.float64, density=0.4, seed=0):
    m = gf.MLP(d, list(widths), None, k, activation=act, bias=bias, seed=seed, dtype=dtype)
    g = torch.Generator().manual_seed(seed + 1)
    m.set_masks([torch.rand(w.shape, generator=g) < density for w in m.weights])
    return m


def inputs(n, d, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype)


def custom_act(z):
    return torch.sin(z) + 0.5 * z


# ----------------------------------------------------------------- agreement
@pytest.mark.parametrize("act", ["relu", "erf", "tanh", "identity", custom_act])
@pytest.mark.parametrize("trace", [True, False])
@pytest.mark.parametrize("trainable", ["mask", "all"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_matches_reference(act, trace, trainable, dtype):
    k = 3
    m = make_model(act, k=k, bias=True, dtype=dtype)
    x1, x2 = inputs(19, 7, dtype, 1), inputs(6, 7, dtype, 2)
    for xb in (None, x2):
        ours = empirical_ntk(m, x1, xb, trace=trace, trainable=trainable, backend="cpp")
        ref = empirical_ntk_reference(m, x1, xb, trace=trace, trainable=trainable)
        n2 = 19 if xb is None else 6
        assert ours.shape == ((19, n2) if trace else (19, n2, k, k))
        assert ours.dtype == dtype
        assert rel(ours, ref) < TOL[dtype]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k,trace", [(1, True), (1, False), (10, True), (10, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backends_k(backend, k, trace, dtype):
    need_backend(backend)
    m = make_model("relu", k=k, widths=(21, 11), d=5, dtype=dtype, density=0.3, seed=3)
    x1, x2 = inputs(9, 5, dtype, 4), inputs(5, 5, dtype, 5)
    if backend == "triton" and dtype == torch.float64:  # float32 kernels: a named backend never switches
        with pytest.raises(BackendError, match="backend 'triton'"):
            empirical_ntk(m, x1, x2, trace=trace, backend=backend)
        return
    for xb in (None, x2):
        ours = empirical_ntk(m, x1, xb, trace=trace, backend=backend)
        ref = empirical_ntk_reference(m, x1, xb, trace=trace)
        assert rel(ours, ref) < TOL[dtype], (backend, k, trace, xb is None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_activations_and_all(backend):
    need_backend(backend)
    for act, trainable in itertools.product(["erf", "tanh", "identity"], ["mask", "all"]):
        m = make_model(act, k=2, widths=(10, 12), d=6, bias=True, dtype=torch.float32, seed=7)
        x1, x2 = inputs(7, 6, torch.float32, 8), inputs(4, 6, torch.float32, 9)
        ours = empirical_ntk(m, x1, x2, trainable=trainable, backend=backend)
        ref = empirical_ntk_reference(m, x1, x2, trainable=trainable)
        assert rel(ours, ref) < 1e-5, (act, trainable)


def test_auto_is_cpp_on_cpu_and_the_jacobian_oracle_is_no_backend():
    need_backend("cpp")
    m = make_model("relu", k=2)
    x = inputs(8, 7, torch.float64, 0)
    auto = empirical_ntk(m, x)
    assert torch.equal(auto, empirical_ntk(m, x, backend="cpp"))
    assert rel(auto, empirical_ntk_reference(m, x)) < 1e-12
    with pytest.raises(ValueError, match="backend"):
        empirical_ntk(m, x, backend="torch")


def test_backend_is_resolved_by_the_layer_ops_registry(monkeypatch):
    """backend names the layer-term backend; "auto" follows the op's rule and a
    named backend that cannot serve raises BackendError (no silent switch)."""
    m = make_model("relu", k=2)
    x = inputs(5, 7, torch.float64, 0)
    seen = []
    for name, b in ENTK_LAYER.backends.items():
        if name == "triton" and not _triton_ok()[0]:
            continue
        fn = b.load()
        monkeypatch.setattr(b, "_fn", lambda *a, _fn=fn, _name=name, **kw: seen.append(_name) or _fn(*a, **kw))
    if gf._backend.cpp_available():
        empirical_ntk(m, x)
        assert seen and set(seen) == {"cpp"}
    seen.clear()
    with monkeypatch.context() as mp:  # the extension reported unavailable: auto takes the naive twin
        mp.setattr(gf._backend, "cpp_available", lambda: False)
        auto = empirical_ntk(m, x)
        assert seen and set(seen) == {"naive"}
        assert rel(auto, empirical_ntk_reference(m, x)) < 1e-12
        with pytest.raises(BackendError, match="backend 'cpp'"):
            empirical_ntk(m, x, backend="cpp")
    if _triton_ok()[0]:
        with pytest.raises(BackendError, match="backend 'triton'.*float32"):  # float64 model
            empirical_ntk(m, x, backend="triton")
        with monkeypatch.context() as mp:
            mp.setattr(gf._backend, "triton_available", lambda: False)
            with pytest.raises(BackendError, match="backend 'triton'.*triton does not import"):
                empirical_ntk(m, x.float(), backend="triton", dtype=torch.float32)


def test_trainable_all_differs_from_mask_and_matches_dense_factorisation():
    m = make_model("relu", k=1, density=0.5)
    x = inputs(6, 7, torch.float64, 0)
    a = empirical_ntk(m, x, trainable="all")
    b = empirical_ntk(m, x, trainable="mask")
    assert rel(a, b) > 1e-2  # the conventions are different kernels
    # "all" on the last layer: sum over every (i, j) of D_i H_j = (sum_i D_i)(h.h') / n_in
    from gntk_fast.ntk.empirical import forward_backward

    Hs, _ = forward_backward(m, x)
    terms = empirical_ntk(m, x, trainable="all", per_layer=True).per_layer
    last = m.layers[-1]
    assert rel(terms[-1], last.weight_scale**2 * (Hs[-1] @ Hs[-1].T)) < 1e-12


# ------------------------------------------------------------ mask structure
@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_dead_and_empty_masks(backend):
    need_backend(backend)
    dtype = torch.float64 if backend == "cpp" else torch.float32
    m = make_model("tanh", k=2, widths=(17, 15, 9), d=6, bias=True, dtype=dtype, seed=11)
    masks = [mk.clone() for mk in m.masks]
    masks[0][:] = True  # all-dense layer (GEMM path)
    masks[1][3:7, :] = False  # dead rows
    masks[1][:, 2:5] = False  # dead columns
    masks[2][:] = False  # fully pruned layer
    m.set_masks(masks)
    x1, x2 = inputs(11, 6, dtype, 12), inputs(3, 6, dtype, 13)
    for xb in (None, x2):
        res, rres = empirical_ntk(m, x1, xb, backend=backend, per_layer=True), empirical_ntk_reference(m, x1, xb, per_layer=True)
        ours, terms, ref, rterms = res.kernel, res.per_layer, rres.kernel, rres.per_layer
        assert torch.isfinite(ours).all()
        assert rel(ours, ref) < TOL[dtype]
        # the fully pruned layer's weights contribute exactly zero: only its bias term remains
        from gntk_fast.ops.entk_layer._common import delta_gram
        from gntk_fast.ntk.empirical import forward_backward

        _, D1s = forward_backward(m, x1)
        D2 = None if xb is None else forward_backward(m, xb)[1][2]
        bias_term = m.layers[2].bias_scale ** 2 * delta_gram(D1s[2], D2, True)
        assert torch.equal(terms[2], bias_term) if xb is not None else rel(terms[2], bias_term) < 1e-15
        for t, r in zip(terms, rterms):
            assert rel(t, r) < TOL[dtype]


def test_fully_pruned_layer_without_bias_is_exactly_zero():
    m = make_model("relu", k=1, widths=(9, 8), bias=False, density=0.5, seed=2)
    masks = [mk.clone() for mk in m.masks]
    masks[1][:] = False
    m.set_masks(masks)
    x = inputs(5, 7, torch.float64, 3)
    res = empirical_ntk(m, x, per_layer=True)
    total, terms = res.kernel, res.per_layer
    assert torch.count_nonzero(terms[1]) == 0
    # nothing flows through the pruned layer: the layers below it have zero gradient
    assert torch.count_nonzero(terms[0]) == 0
    assert torch.isfinite(total).all()
    assert rel(total, empirical_ntk_reference(m, x)) < 1e-12


def test_all_layers_dense_equals_unmasked_model():
    m = make_model("relu", k=2, density=1.1)  # rand < 1.1: every weight kept
    assert all(bool(mk.all()) for mk in m.masks)
    x = inputs(7, 7, torch.float64, 0)
    ref = empirical_ntk_reference(m, x, trace=False)
    assert rel(empirical_ntk(m, x, trace=False), ref) < 1e-12
    assert rel(empirical_ntk(m, x, trace=False, trainable="all"), ref) < 1e-12


# ----------------------------------------------------------- from_sequential
def test_from_sequential_torch_pruned_fc_with_biases():
    net = gf.fc(12, 16, 2, num_classes=3, bias=True, seed=0).double()
    linears = [mod for mod in net if isinstance(mod, nn.Linear)]
    g = torch.Generator().manual_seed(0)
    for lin in linears:
        tprune.custom_from_mask(lin, "weight", torch.rand(lin.weight.shape, generator=g) < 0.5)
    m = gf.MLP.from_sequential(net)
    x1, x2 = inputs(9, 12, torch.float64, 1), inputs(4, 12, torch.float64, 2)
    for trainable in ("mask", "all"):
        ours = empirical_ntk(m, x1, x2, trace=False, trainable=trainable)
        ref = empirical_ntk_reference(m, x1, x2, trace=False, trainable=trainable)
        assert rel(ours, ref) < 1e-10
    # independent check of the bias gradients: autograd on the pruned Sequential itself
    # (torch.nn.utils.prune: weight = weight_orig * mask, so weight_orig's grad is masked)
    params = [p for n, p in net.named_parameters()]  # weight_orig (masked grads) and biases

    def grads(x):
        out = []
        for c in range(3):
            gs = torch.autograd.grad(net(x[None])[0, c], params)
            out.append(torch.cat([gg.reshape(-1) for gg in gs]))
        return torch.stack(out)  # (k, P)

    J1 = torch.stack([grads(x) for x in x1])
    J2 = torch.stack([grads(x) for x in x2])
    direct = torch.einsum("acp,bdp->abcd", J1, J2)
    assert rel(empirical_ntk(m, x1, x2, trace=False), direct) < 1e-10


def test_from_sequential_layer_without_bias_has_frozen_bias():
    net = nn.Sequential(nn.Linear(5, 8, bias=True), nn.Tanh(), nn.Linear(8, 2, bias=False)).double()
    m = gf.MLP.from_sequential(net)
    assert m.layers[1].bias_scale == 0.0
    x = inputs(6, 5, torch.float64, 0)
    terms = empirical_ntk(m, x, per_layer=True).per_layer
    # last layer: no bias term, weights only = sum_j h_j h'_j (standard parameterization, k=2 traced)
    from gntk_fast.ntk.empirical import forward_backward

    Hs, _ = forward_backward(m, x)
    assert rel(terms[1], 2 * Hs[1] @ Hs[1].T) < 1e-12
    assert rel(empirical_ntk(m, x), empirical_ntk_reference(m, x)) < 1e-12


def test_reference_and_fast_path_match_autograd_on_the_models_own_parameters():
    """An oracle independent of both code paths (NTK parameterization, w_std/b_std != 1,
    biases, k = 3, full kernel): per-input autograd gradients of the MLP itself.
    "mask": the MLP's forward uses weight * mask, so its weight gradients are the
    kept-weight gradients. "all": the same function with every weight a parameter
    (weights multiplied by the mask, mask all ones)."""
    import copy

    m = gf.MLP(6, [9, 8], None, 3, activation="erf", bias=True, w_std=1.3, b_std=0.7, seed=1, dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    m.set_masks([torch.rand(w.shape, generator=g) < 0.4 for w in m.weights])
    x1, x2 = inputs(5, 6, torch.float64, 3), inputs(4, 6, torch.float64, 4)
    unmasked = copy.deepcopy(m)
    with torch.no_grad():
        for layer in unmasked.layers:
            layer.weight.mul_(layer.weight_mask)
            layer.weight_mask.fill_(True)

    def jac(model, xs):
        ps = list(model.parameters())
        rows = []
        for x in xs:
            out = model(x[None])[0]
            gs = [torch.autograd.grad(out[c], ps, retain_graph=True) for c in range(out.shape[0])]
            rows.append(torch.stack([torch.cat([t.reshape(-1) for t in gc]) for gc in gs]))
        return torch.stack(rows)  # (N, k, P)

    for trainable, net in (("mask", m), ("all", unmasked)):
        direct = torch.einsum("acp,bdp->abcd", jac(net, x1), jac(net, x2))
        assert rel(empirical_ntk_reference(m, x1, x2, trace=False, trainable=trainable), direct) < 1e-12
        for backend in BACKENDS:
            if backend == "triton" or backend == "cpp" and not gf._backend.cpp_available():
                continue  # triton: float32 kernels (this check is float64)
            ours = empirical_ntk(m, x1, x2, trace=False, trainable=trainable, backend=backend)
            assert rel(ours, direct) < 1e-12, (trainable, backend)


@pytest.mark.parametrize("trace", [True, False])
def test_reference_chunking_is_exact(trace):
    """The oracle's chunked Jacobian blocks (and the mirrored blocks when x2 is None)
    give the same kernel as one chunk, for chunk sizes that divide nothing."""
    m = make_model("tanh", k=3, bias=True, seed=5)
    x1, x2 = inputs(11, 7, torch.float64, 6), inputs(7, 7, torch.float64, 7)
    for xb in (None, x2):
        w = empirical_ntk_reference(m, x1, xb, trace=trace, chunk_size=64, per_layer=True)
        whole, wterms = w.kernel, w.per_layer
        for cs in (1, 3, 4):
            p = empirical_ntk_reference(m, x1, xb, trace=trace, chunk_size=cs, per_layer=True)
            part, pterms = p.kernel, p.per_layer
            assert rel(part, whole) < 1e-14, (cs, xb is None)
            assert all(rel(p, w) < 1e-14 for p, w in zip(pterms, wterms))
    with pytest.raises((TypeError, ValueError), match="chunk_size"):
        empirical_ntk_reference(m, x1, chunk_size=0)


# --------------------------------------------------------- structure & API
def test_per_layer_sums_to_total_and_symmetry():
    m = make_model("erf", k=3, bias=True)
    x = inputs(13, 7, torch.float64, 5)
    for trace in (True, False):
        res = empirical_ntk(m, x, trace=trace, per_layer=True)
        assert isinstance(res, EmpiricalNTK)
        total, terms = res.kernel, res.per_layer
        assert len(terms) == len(m.layers)
        s = sum(terms[1:], terms[0].clone())
        assert torch.allclose(s, total, rtol=0, atol=1e-13 * float(total.abs().max()))
        sym = total.T if trace else total.permute(1, 0, 3, 2)
        assert torch.equal(total, sym)
        # x2 given equal to x1 gives the same numbers (non-symmetric code path)
        assert rel(empirical_ntk(m, x, x.clone(), trace=trace), total) < 1e-12
    # the kernel is PSD
    ev = torch.linalg.eigvalsh(empirical_ntk(m, x))
    assert float(ev.min()) > -1e-9 * float(ev.max())


def test_single_input_vectors_and_fn_factory():
    m = make_model("relu", k=2)
    x1, x2 = inputs(5, 7, torch.float64, 0), inputs(3, 7, torch.float64, 1)
    fn = empirical_ntk_fn(m, trace=False, trainable="all")
    assert torch.equal(fn(x1, x2), empirical_ntk(m, x1, x2, trace=False, trainable="all"))
    assert torch.equal(fn(x1), empirical_ntk(m, x1, trace=False, trainable="all"))
    one = empirical_ntk(m, x1[0], x2)
    assert one.shape == (1, 3)
    assert rel(one, empirical_ntk(m, x1, x2)[:1]) < 1e-12


def test_dtype_argument():
    m = make_model("relu", k=1, dtype=torch.float32)
    x = inputs(6, 7, torch.float32, 0)
    t64 = empirical_ntk(m, x, dtype=torch.float64)
    assert t64.dtype == torch.float64
    assert rel(t64, empirical_ntk_reference(m, x, dtype=torch.float64)) < 1e-12
    assert rel(empirical_ntk(m, x), t64) < 1e-5


# ------------------------------------------------------------------ bad input
def test_bad_inputs():
    m = make_model("relu", k=1)
    x = inputs(4, 7, torch.float64, 0)
    with pytest.raises(ValueError, match="x1"):
        empirical_ntk(m, inputs(4, 6, torch.float64, 0))
    with pytest.raises(ValueError, match="x2"):
        empirical_ntk(m, x, inputs(4, 8, torch.float64, 0))
    bad = x.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="x1"):
        empirical_ntk(m, bad)
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="x2"):
        empirical_ntk(m, x, bad)
    for kw, name in [({"trace": "yes"}, "trace"), ({"trainable": "some"}, "trainable"),
                     ({"backend": "cuda"}, "backend"), ({"dtype": torch.float16}, "dtype"),
                     ({"per_layer": 1}, "per_layer")]:
        with pytest.raises(ValueError, match=name):
            empirical_ntk(m, x, **kw)
    with pytest.raises(ValueError, match="backend"):
        empirical_ntk_fn(m, backend="jax")
    with pytest.raises(TypeError, match="model"):
        empirical_ntk("not a model", x)
    with pytest.raises(ValueError, match="x1"):
        empirical_ntk(m, torch.zeros(0, 7, dtype=torch.float64))


@pytest.mark.parametrize("layer", [0, 1, 2])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("pruned", [False, True])
def test_non_finite_weight_is_named_by_layer(layer, value, pruned):
    """A non-finite weight, kept or pruned (W * M is what the forward uses), is
    named by its layer, even where ReLU would hide it from the signals (-inf)."""
    m = make_model("relu", k=2)
    x = inputs(3, 7, torch.float64, 0)
    with torch.no_grad():
        m.layers[layer].weight_mask[0, 0] = not pruned
        m.layers[layer].weight[0, 0] = value
    for fn in (empirical_ntk, empirical_ntk_reference):
        with pytest.raises(ValueError, match=f"model weight of layer {layer}"):
            fn(m, x)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_signals_raise_naming_the_input():
    """Finite inputs whose kernel is not finite (float32 overflow, an activation
    undefined on the pre-activations) raise a ValueError naming x1, never a NaN/inf kernel."""
    m = make_model("relu", k=2, bias=True, dtype=torch.float32)
    x = inputs(4, 7, torch.float32, 0)
    big = make_model("relu", k=2, bias=True, dtype=torch.float32)
    with torch.no_grad():
        for layer in big.layers:
            layer.weight.mul_(1e6)
    with pytest.raises(ValueError, match="x1"):
        empirical_ntk_reference(m, x * 1e25)
    for backend in BACKENDS:
        if backend == "triton" and not _triton_ok()[0] or backend == "cpp" and not gf._backend.cpp_available():
            continue
        with pytest.raises(ValueError, match="x1"):
            empirical_ntk(m, x * 1e25, backend=backend)
        with pytest.raises(ValueError, match="x1/x2"):
            empirical_ntk(m, x * 1e25, x[:2] * 1e25, trace=False, backend=backend)
        if backend != "triton":  # float32 kernels
            assert torch.isfinite(empirical_ntk(m, x * 1e25, dtype=torch.float64, backend=backend)).all()
        with pytest.raises(ValueError, match="x2"):  # signals themselves overflow (not only the kernel)
            empirical_ntk(big, x, x[:2] * 1e30, backend=backend)
        assert torch.isfinite(empirical_ntk(big, x, backend=backend)).all()  # x1 alone is fine
    log_net = make_model(torch.log, k=1, dtype=torch.float64)  # log of negative pre-activations: NaN
    with pytest.raises(ValueError, match="x1"):
        empirical_ntk(log_net, x.double())
    with pytest.raises(ValueError, match="x1"):
        empirical_ntk_reference(log_net, x.double())
    with pytest.raises(TypeError, match="x1"):
        empirical_ntk(m, torch.randn(4, 7, dtype=torch.complex64))
    with pytest.raises(TypeError, match="x2"):
        empirical_ntk_reference(m, x, torch.randn(4, 7, dtype=torch.complex64))
    with pytest.raises(TypeError, match="model"):
        empirical_ntk_fn(42)


def test_bad_masks_in_model():
    x = inputs(4, 7, torch.float64, 0)
    m = make_model("relu", k=1)
    m.layers[1].weight_mask = torch.ones(3, 3, dtype=torch.bool)  # wrong shape
    with pytest.raises(ValueError, match="mask"):
        empirical_ntk(m, x)
    m = make_model("relu", k=1)
    m.layers[0].weight_mask = m.layers[0].weight_mask.float()  # wrong dtype
    with pytest.raises(ValueError, match="mask"):
        empirical_ntk(m, x)
    with pytest.raises(ValueError, match="mask"):
        empirical_ntk_reference(m, x)


def test_device_mismatch():
    m = make_model("relu", k=1).to("meta")
    with pytest.raises(ValueError, match="x1"):
        empirical_ntk(m, inputs(4, 7, torch.float64, 0))
    m = make_model("relu", k=1)
    with pytest.raises(ValueError, match="x2"):
        empirical_ntk(m, inputs(4, 7, torch.float64, 0), torch.zeros(3, 7, dtype=torch.float64, device="meta"))
    m.layers[1].weight_mask = m.layers[1].weight_mask.to("meta")  # a mask away from its weight
    for fn in (empirical_ntk, empirical_ntk_reference):
        with pytest.raises(ValueError, match="mask of layer 1 is on meta"):
            fn(m, inputs(4, 7, torch.float64, 0))


def test_tf32_switch_reaches_the_triton_kernel(monkeypatch):
    need_backend("triton")
    seen = []
    original = ENTK_LAYER.backends["triton"].load()

    def spy(*args, **kwargs):
        seen.append(kwargs.get("tf32"))
        return original(*args, **kwargs)

    monkeypatch.setattr(ENTK_LAYER.backends["triton"], "_fn", spy)
    model = make_model(dtype=torch.float32)
    x = inputs(5, 7, torch.float32, 1)
    ref = empirical_ntk_reference(model, x)
    for flag in (False, True):
        seen.clear()
        out = empirical_ntk(model, x, backend="triton", tf32=flag)
        assert seen and all(s is flag for s in seen)  # every masked layer got the switch
        assert rel(out, ref) < (1e-5 if not flag else 2e-3)
    with pytest.raises((TypeError, ValueError), match="tf32"):
        empirical_ntk(model, x, backend="triton", tf32="yes")
    with pytest.raises((TypeError, ValueError), match="tf32"):
        empirical_ntk_fn(model, tf32=1.5)
