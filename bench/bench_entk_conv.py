"""Empirical-NTK benchmarks of general modules (C1, C2) and the MLP B1 against plain torch.func.

Run (full mode, one file at a time on the shared machine)::

    OMP_WAIT_POLICY=PASSIVE python -m pytest bench/bench_entk_conv.py -q -s

Smoke mode (CI): ``python -m pytest bench/bench_entk_conv.py --benchmark-disable -q``.

Baseline (every case): the fastest plain torch.func form we could write for
the same work, ``vmap(jacrev(f))`` over the inputs with
``f(p, x) = functional_call(model, p, (x[None],))``, every Jacobian computed
once (N x P memory), pruned entries zeroed, then one GEMM per parameter,
``J J^T``. Forms tried (the best one is timed in every run and named in
the row): the whole batch in one ``vmap``; ``vmap(..., chunk_size=16)``.
Not timed (slower by construction): ``jacfwd`` (P tangents, P ~ 10^5 > N k),
and the "vmap over the outputs of vjp" NTK form (``J(x1) J(x2)^T`` by one vjp
per output and input plus a jvp per pair: N^2 k passes where jacrev needs N k).

* C1: ResNet-20 (width 16) on N = 64 CIFAR-shaped inputs (3 x 32 x 32),
  random masks of density 0.1 and 0.5 on every Conv2d and Linear weight,
  BatchNorm (random running statistics, eval mode), traced kernel, float32.
* C2: VGG-11 with BatchNorm, width multiplier 1/4 (16 ... 128 channels), the same.
* D1: dense-net floor: a dense 3072 -> 3 x 2048 -> k MLP, ours against one forward and k
  backward passes (the signals alone) and against the masked path at density 1.
* B1-torchfunc: the MLP B1 of ``bench_entk.py`` (N = 128 MNIST images,
  784 -> 4 x 1024 -> 1, density 0.2) against the same plain vmap(jacrev).

The floor of C1/C2 (ours and the baseline alike): the backward signals need
k = 10 input-gradient backward passes through the whole dense-shaped network
(torch's convolutions do not skip pruned weights); the row reports it
(``t_backward_floor_s``: one batched backward over the output basis), so the
part of ours that the density can shrink is visible.
"""
from __future__ import annotations

import os
import time

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap
from torch.nn.utils import prune as tprune


def _masked(net: nn.Module, density: float, seed: int = 1) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            tprune.custom_from_mask(m, "weight", torch.rand(m.weight.shape, generator=g) < density)
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net.eval()


def _baseline(net: nn.Module, x: torch.Tensor, chunk: int | None):
    """Plain torch.func: every per-input Jacobian once, pruned entries zeroed, J J^T."""
    params = {n: p.detach() for n, p in net.named_parameters() if p.requires_grad}
    bufs = dict(net.named_buffers())
    masks = {n: bufs[n[:-5] + "_mask"] for n in params if n.endswith("_orig")}

    def f(p, xi):
        return functional_call(net, p, (xi.unsqueeze(0),)).reshape(-1)

    def run():
        J = vmap(jacrev(f), in_dims=(None, 0), chunk_size=chunk)(params, x)
        K = None
        for n, j in J.items():
            if n in masks:
                j = j * masks[n]
            j = j.reshape(x.shape[0], -1)
            K = j @ j.T if K is None else K.addmm_(j, j.T)
        return K

    return run


def _best_baseline(net, x, timeit, reps, smoke):
    """(time, form name, result) of the fastest baseline form."""
    best = None
    for chunk in (None, 16):
        fn = _baseline(net, x, chunk)
        t = timeit(fn, repeat=reps, warmup=0 if smoke else 1)
        if best is None or t < best[0]:
            best = (t, "vmap(jacrev) whole batch" if chunk is None else f"vmap(jacrev, chunk_size={chunk})", fn)
    return best[0], best[1], best[2]()


def _backward_floor(net, x, timeit, reps):
    """One forward and one backward batched over the k outputs to the input (no weight gradients)."""
    def run():
        xx = x.clone().requires_grad_(True)
        with torch.enable_grad():
            f = net(xx).reshape(x.shape[0], -1)
            k = f.shape[1]
            basis = torch.eye(k)[:, None, :].expand(k, x.shape[0], k)
            torch.autograd.grad(f, xx, grad_outputs=basis, is_grads_batched=True)

    return timeit(run, repeat=reps, warmup=1)


def _rel(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _time_ours(benchmark, fn, smoke, timeit):
    if smoke:
        benchmark.pedantic(fn, rounds=1, iterations=1)
        return timeit(fn, repeat=1, warmup=0)
    benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    return float(benchmark.stats.stats.median)


def _conv_case(arch, density, benchmark, bench_report, smoke, timeit):
    import gntk_fast as gf

    if smoke:
        N, side = 4, (8 if arch == "resnet20" else 32)
        net = gf.resnet20(width=2, seed=0) if arch == "resnet20" else gf.vgg("vgg11", width=1 / 32, seed=0)
    else:
        N, side = 64, 32
        net = gf.resnet20(width=16, seed=0) if arch == "resnet20" else gf.vgg("vgg11", width=0.25, seed=0)
    net = _masked(net, density)
    x = torch.randn(N, 3, side, side, generator=torch.Generator().manual_seed(0))
    reps = 1 if smoke else 3
    ours_fn = lambda: gf.empirical_ntk(net, x, block=N)  # noqa: E731
    t_ours = _time_ours(benchmark, ours_fn, smoke, timeit)
    t_base, form, K_base = _best_baseline(net, x, timeit, reps, smoke)
    err = _rel(ours_fn(), K_base)
    assert err < 1e-4, err
    t_floor = _backward_floor(net, x, timeit, reps)
    n_params = sum(p.numel() for p in net.parameters())
    return bench_report.add(
        "entk_conv", bench="C1" if arch == "resnet20" else "C2", arch=arch, N=N, side=side, density=density,
        dtype="float32", n_params=n_params, t_ours_s=t_ours, t_vmap_jacrev_s=t_base, baseline_form=form,
        speedup_vs_vmap_jacrev=t_base / t_ours, target_speedup=10.0 if density == 0.1 else None,
        t_backward_floor_s=t_floor, ours_over_backward_floor=t_ours / t_floor, rel_err_vs_baseline=err,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(unset)"), loadavg_1min=os.getloadavg()[0],
    )


@pytest.mark.parametrize("density", [0.1, 0.5])
def test_c1_resnet20(density, benchmark, bench_report, smoke, timeit):
    _conv_case("resnet20", density, benchmark, bench_report, smoke, timeit)


@pytest.mark.parametrize("density", [0.1, 0.5])
def test_c2_vgg11(density, benchmark, bench_report, smoke, timeit):
    _conv_case("vgg11", density, benchmark, bench_report, smoke, timeit)


def test_b1_against_vmap_jacrev(benchmark, bench_report, smoke, timeit):
    """B1 (bench_entk.py) against the plain torch.func form with every Jacobian once."""
    from gntk_fast.ntk import empirical_ntk

    from bench_entk import _mnist, _model

    N, width = (12, 48) if smoke else (128, 1024)
    x = _mnist(N)
    m = _model(width, 0.2)
    fn = lambda: empirical_ntk(m, x, backend="cpp")  # noqa: E731
    t_ours = _time_ours(benchmark, fn, smoke, timeit)
    reps = 1 if smoke else 3  # the MLP's forward multiplies by its masks: pruned entries have zero gradient
    t_base, form, K_base = _best_baseline(m, x, timeit, reps, smoke)
    err = _rel(fn(), K_base)
    assert err < 1e-4, err
    bench_report.add("entk_conv", bench="B1-torchfunc", N=N, width=width, density=0.2, dtype="float32",
                     t_ours_s=t_ours, t_vmap_jacrev_s=t_base, baseline_form=form,
                     speedup_vs_vmap_jacrev=t_base / t_ours, rel_err_vs_baseline=err,
                     omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(unset)"),
                     loadavg_1min=os.getloadavg()[0], when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


@pytest.mark.parametrize("N,k", [(16, 8), (256, 1), (256, 10)])
def test_d1_dense_floor(N, k, benchmark, bench_report, smoke, timeit):
    """D1: a dense 3072 -> 3 x 2048 -> k MLP (P = 14.7 M weights), full kernel at k > 1
    (traced at k = 1): ours against its floor, one forward and k backward passes
    (``forward_backward``, N (k + 1) P multiply-adds by GEMMs) timed alone in the same run,
    and against the same kernel forced through the masked path (an all-ones mask,
    the C++ kernel on every layer). Target: within 1.3x of the floor."""
    import gntk_fast as gf
    from gntk_fast.ntk import empirical_ntk
    from gntk_fast.ntk.empirical import forward_backward
    from gntk_fast.ops.entk_layer.cpp import masked_ntk_layer_cpp

    d_in, width = (96, 64) if smoke else (3072, 2048)
    N = 4 if smoke else N
    m = gf.MLP(d_in, width, 3, k, bias=False, seed=0)
    x = torch.randn(N, d_in, generator=torch.Generator().manual_seed(0))
    trace = k == 1
    fn = lambda: empirical_ntk(m, x, trace=trace, block=N)  # noqa: E731
    t_ours = _time_ours(benchmark, fn, smoke, timeit)
    reps = 1 if smoke else 3
    t_floor = timeit(lambda: forward_backward(m, x), repeat=reps, warmup=0 if smoke else 1)

    def masked_path():
        Hs, Ds = forward_backward(m, x)
        for H, D, mk in zip(Hs, Ds, m.masks):
            masked_ntk_layer_cpp(D.contiguous(), H, mask=mk, trace=trace, complement=False)

    t_masked = timeit(masked_path, repeat=1, warmup=0)
    P = sum(w.numel() for w in m.weights)
    bench_report.add("entk_conv", bench="D1-dense-floor", N=N, k=k, n_params=P, trace=str(trace),
                     t_ours_s=t_ours, t_floor_forward_backward_s=t_floor, ours_over_floor=t_ours / t_floor,
                     target_ours_over_floor=1.3, t_masked_path_density_1_s=t_masked,
                     ours_over_masked_path=t_ours / t_masked, floor_macs=N * (k + 1) * P,
                     loadavg_1min=os.getloadavg()[0])
