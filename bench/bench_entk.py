"""Empirical-NTK benchmarks B1-B4.

Run (full mode, one benchmark at a time on the shared machine)::

    python -m pytest bench/bench_entk.py -q -s

On a machine busy with other jobs set ``OMP_WAIT_POLICY=PASSIVE`` (measured
in bench_threads.py and bench/README.md).

Smoke mode (CI): ``python -m pytest bench/bench_entk.py --benchmark-disable -q``.

* B1: N = 128 MNIST test images, 784 -> 4 x 1024 -> 1, ReLU, random masks of
  density 0.2 on every layer, float32: ours (backend "cpp") against the
  torch.func reference that builds every Jacobian once (headline, time and
  peak memory) and the default chunked reference; per-MAC throughput on the
  kept work N(N+1)/2 * nnz against torch.matmul's rate in the same run.
* B2: the same net at densities 1.0, 0.5, 0.2, 0.1, 0.05: the public path
  (density 1.0 takes the two-GEMM factorisation) and the masked kernel alone
  (forced through the C++ kernel for every layer, complement off).
* B3: k = 10 outputs, traced and full, against the k = 1 net.
* B4: width 256 ... 4096: time and peak memory of ours, log-log slopes.

Peak memory: the peak resident set size (VmHWM of /proc/self/status) of a
fresh subprocess (this file run as a script), as the rise of the high-water
mark over the level reached after building the model and loading the data;
tracemalloc does not see torch's allocations, and ru_maxrss inherits the
parent's peak across exec on Linux. The analytic working set of ours (H, D,
packed copies and the CSR mask) is reported alongside.
"""
from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gntk_fast.spectral import loglog_slope

MNIST_DIR = Path(os.environ.get("GNTK_MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


# ----------------------------------------------------------------- helpers
def _mnist(n: int):
    try:
        from gntk_fast import data
    except ImportError as exc:
        pytest.skip(f"gntk_fast.data unavailable ({exc})")
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {MNIST_DIR} (set GNTK_MNIST_DIR)")
    x, _ = data.load("mnist", split="test", n=n, seed=0, data_dir=MNIST_DIR)
    return x


def _inputs(n: int, mnist: bool):
    if mnist:
        return _mnist(n)
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 784, generator=g)


def _model(width: int, density: float, k: int = 1, depth: int = 4, seed: int = 0):
    import gntk_fast as gf

    m = gf.MLP(784, width, depth, k, activation="relu", seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    m.set_masks([torch.rand(w.shape, generator=g) < density for w in m.weights])
    return m


def _kept_macs(N: int, model) -> int:
    """The kernel's work: one multiply-add per (pair a <= b, kept weight)."""
    return N * (N + 1) // 2 * sum(int(mk.sum()) for mk in model.masks)


def _dense_mask_macs(N: int, widths) -> int:
    """The work of the same pairs with every weight kept (1/density times the kept work)."""
    return N * (N + 1) // 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def _square_gemm(macs: float):
    """A square float32 torch.matmul doing about ``macs`` multiply-adds: (macs done, fn)."""
    n = max(1, int(round(macs ** (1.0 / 3.0))))
    g = torch.Generator().manual_seed(0)
    A = torch.randn(n, n, generator=g)
    B = torch.randn(n, n, generator=g)
    return n ** 3, (lambda: A @ B)


def _analytic_bytes(model, N: int, k: int, itemsize: int = 4) -> int:
    """Working set of ours: H and D of every layer, their packed copies, the CSR mask."""
    total = 0
    for layer in model.layers:
        n_out, n_in = layer.weight.shape
        hd = N * (n_in + k * n_out) * itemsize
        total += 2 * hd + int(layer.weight_mask.sum()) * 4 + (n_out + 1) * 8
    return total


def _peak_mb(what: str, **spec) -> float:
    """Run ``what`` ("ours" | "ref") once in a fresh interpreter; the rise of its peak RSS in MiB."""
    env = dict(os.environ)
    cmd = [sys.executable, str(Path(__file__).resolve()), json.dumps({"what": what, **spec})]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if res.returncode != 0:
        raise RuntimeError(f"memory probe failed: {res.stderr[-2000:]}")
    return float(json.loads(res.stdout.strip().splitlines()[-1])["peak_mb"])


def _child(spec: dict) -> None:
    from gntk_fast.ntk import empirical_ntk, empirical_ntk_reference

    x = _inputs(spec["N"], spec.get("mnist", False))
    m = _model(spec["width"], spec["density"], spec.get("k", 1))
    if spec["what"] == "ours":
        fn = lambda: empirical_ntk(m, x, backend="cpp", trace=spec.get("trace", True))  # noqa: E731
    else:
        chunk = spec.get("chunk_size")
        fn = lambda: empirical_ntk_reference(m, x, trace=spec.get("trace", True), chunk_size=chunk)  # noqa: E731
    before = _hwm_kb()
    out = fn()
    after = _hwm_kb()
    assert torch.isfinite(out).all()
    print(json.dumps({"peak_mb": (after - before) / 1024.0}))


def _hwm_kb() -> int:
    """This process's peak RSS in KiB: VmHWM of /proc/self/status (Linux), else ru_maxrss.

    (ru_maxrss is not used on Linux: exec keeps the parent's high-water mark in it,
    so a child of a big pytest process would start at the parent's peak.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _isa() -> str:
    try:
        import gntk_fast._C as C

        return str(C.entk_isa())
    except Exception as exc:  # pragma: no cover
        return f"unavailable ({exc})"


def _rel(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _time_ours(benchmark, fn, smoke, timeit):
    """pytest-benchmark records ours; its median is the number of the ratios."""
    if smoke:
        benchmark.pedantic(fn, rounds=1, iterations=1)
        return timeit(fn, repeat=1, warmup=0)
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
    return float(benchmark.stats.stats.median)


# --------------------------------------------------------------- benchmarks
def test_b1_mnist_density_02(benchmark, bench_report, smoke, timeit):
    """B1. Baselines: the torch.func reference building every Jacobian once
    (``chunk_size=N``: the fastest Jacobian method, N x P memory) is the headline;
    the default chunked reference (recomputes column chunks to bound memory) is
    secondary. Throughput: multiply-adds of the kept work N(N+1)/2 * nnz per
    second, against torch.matmul's rate measured in the same run on a square
    GEMM of the same number of multiply-adds. The dense-mask figure (a GEMM doing
    N(N+1)/2 * sum n_in n_out, 1/density times the kept work) is reported under
    that name only."""
    from gntk_fast.ntk import empirical_ntk, empirical_ntk_reference

    N, width = (12, 48) if smoke else (128, 1024)
    x = _mnist(N)
    m = _model(width, 0.2)
    ours = empirical_ntk(m, x, backend="cpp")
    t_ours = _time_ours(benchmark, lambda: empirical_ntk(m, x, backend="cpp"), smoke, timeit)
    reps = 1 if smoke else 3
    ref_once = lambda: empirical_ntk_reference(m, x, chunk_size=N)  # noqa: E731
    err = _rel(ours, ref_once())
    assert err < 1e-4, err
    t_ref_once = timeit(ref_once, repeat=reps, warmup=0)
    t_ref_chunked = timeit(lambda: empirical_ntk_reference(m, x), repeat=1, warmup=0)
    kept = _kept_macs(N, m)
    gemm_macs, gemm = _square_gemm(kept)
    t_gemm = timeit(gemm, repeat=1 if smoke else 5, warmup=0 if smoke else 1)
    dense_macs, dense_gemm = _square_gemm(_dense_mask_macs(N, m.widths))
    t_dense = timeit(dense_gemm, repeat=1 if smoke else 3, warmup=0 if smoke else 1)
    spec = dict(N=N, width=width, density=0.2, mnist=True)
    mem_ours = _peak_mb("ours", **spec)
    mem_ref_once = _peak_mb("ref", chunk_size=N, **spec)
    mem_ref_chunked = _peak_mb("ref", **spec)
    rate_ours = kept / t_ours / 1e9
    rate_mm = gemm_macs / t_gemm / 1e9
    bench_report.add(
        "entk",
        bench="B1", N=N, width=width, density=0.2, dtype="float32",
        t_ours_s=t_ours,
        t_ref_jacobians_once_s=t_ref_once, speedup_vs_ref_jacobians_once=t_ref_once / t_ours,
        peak_mb_ours=mem_ours, peak_mb_ref_jacobians_once=mem_ref_once,
        mem_ratio_ours_over_ref_jacobians_once=mem_ours / max(mem_ref_once, 1e-9),
        t_ref_chunked_s=t_ref_chunked, speedup_vs_ref_chunked=t_ref_chunked / t_ours,
        peak_mb_ref_chunked=mem_ref_chunked,
        kept_macs=kept, ours_gmacs_per_s_kept=rate_ours,
        matmul_gmacs_per_s=rate_mm, rate_ratio_ours_over_matmul=rate_ours / rate_mm,
        dense_mask_macs=dense_macs, t_dense_mask_work_gemm_s=t_dense,
        dense_mask_work_over_kept_work=dense_macs / kept,
        analytic_mb_ours=_analytic_bytes(m, N, 1) / 2**20, rel_err_vs_ref=err,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(unset)"), loadavg_1min=os.getloadavg()[0],
        cpp_tile_isa=_isa(),
    )


def test_b2_density_sweep(benchmark, bench_report, smoke, timeit):
    from gntk_fast.ntk import empirical_ntk
    from gntk_fast.ops.entk_layer.cpp import masked_ntk_layer_cpp
    from gntk_fast.ntk.empirical import forward_backward

    N, width = (12, 48) if smoke else (128, 1024)
    x = _inputs(N, mnist=not smoke or MNIST_DIR.exists())
    times, ktimes = {}, {}
    for d in (1.0, 0.5, 0.2, 0.1, 0.05):
        m = _model(width, d)
        fn = lambda: empirical_ntk(m, x, backend="cpp")  # noqa: E731
        if d == 0.1:
            times[d] = _time_ours(benchmark, fn, smoke, timeit)
        else:
            times[d] = timeit(fn, repeat=1 if smoke else 3, warmup=0 if smoke else 1)
        Hs, Ds = forward_backward(m, x)

        def kernel_only():
            for H, D, mk in zip(Hs, Ds, m.masks):
                masked_ntk_layer_cpp(D.contiguous(), H, mask=mk, complement=False)

        ktimes[d] = timeit(kernel_only, repeat=1 if smoke else 3, warmup=0 if smoke else 1)
        bench_report.add("entk", bench="B2", N=N, width=width, density=d, t_ours_s=times[d], t_kernel_only_s=ktimes[d])
    public = times[0.1] / times[1.0]
    bench_report.add(
        "entk", bench="B2-summary",
        ratio_t01_over_t10_public=public, target_public=0.3, target_met_public=bool(public <= 0.3),
        ratio_t01_over_t10_kernel_only=ktimes[0.1] / ktimes[1.0],
        ratio_t005_over_t10_kernel_only=ktimes[0.05] / ktimes[1.0],
        note="headline: the public path, where density 1.0 takes the two-GEMM factorisation "
             "(D D^T) o (H H^T) and is faster than any masked run; kernel_only (secondary) forces "
             "every layer through the C++ masked kernel",
    )


def test_b3_k10(benchmark, bench_report, smoke, timeit):
    from gntk_fast.ntk import empirical_ntk, empirical_ntk_reference

    N, width = (10, 40) if smoke else (128, 1024)
    x = _inputs(N, mnist=not smoke or MNIST_DIR.exists())
    m = _model(width, 0.2, k=10)
    t_tr = _time_ours(benchmark, lambda: empirical_ntk(m, x, backend="cpp"), smoke, timeit)
    t_full = timeit(lambda: empirical_ntk(m, x, backend="cpp", trace=False), repeat=1 if smoke else 3,
                    warmup=0 if smoke else 1)
    # correctness spot check against the reference on a subset (the full reference at k=10 is ~10x B1's)
    n_chk = min(N, 8)
    ours = empirical_ntk(m, x[:n_chk], trace=False)
    err = _rel(ours, empirical_ntk_reference(m, x[:n_chk], trace=False))
    assert err < 1e-4, err
    m1 = _model(width, 0.2, k=1)
    t_k1 = timeit(lambda: empirical_ntk(m1, x, backend="cpp"), repeat=1 if smoke else 3, warmup=0 if smoke else 1)
    bench_report.add("entk", bench="B3", N=N, width=width, k=10, density=0.2, t_traced_s=t_tr, t_full_s=t_full,
                     full_over_traced=t_full / t_tr, t_k1_s=t_k1, traced_k10_over_k1=t_tr / t_k1,
                     rel_err_full_vs_ref_subset=err)


def test_b4_width_sweep(benchmark, bench_report, smoke, timeit):
    from gntk_fast.ntk import empirical_ntk

    N = 12 if smoke else 128
    widths = (32, 64) if smoke else (256, 512, 1024, 2048, 4096)
    x = _inputs(N, mnist=not smoke or MNIST_DIR.exists())
    ts, mems = [], []
    for w in widths:
        m = _model(w, 0.2)
        fn = lambda: empirical_ntk(m, x, backend="cpp")  # noqa: E731
        if w == widths[-1]:
            t = _time_ours(benchmark, fn, smoke, timeit)
        else:
            t = timeit(fn, repeat=1 if smoke else 3, warmup=0 if smoke else 1)
        mem = _peak_mb("ours", N=N, width=w, density=0.2, mnist=not smoke or MNIST_DIR.exists())
        ts.append(t)
        mems.append(max(mem, 1e-3))
        nnz = sum(int(mk.sum()) for mk in m.masks)
        bench_report.add("entk", bench="B4", N=N, width=w, density=0.2, t_ours_s=t, peak_mb_ours=mem,
                         analytic_mb_ours=_analytic_bytes(m, N, 1) / 2**20,
                         gmacs_per_s=N * (N + 1) / 2 * nnz / t / 1e9)
    bench_report.add("entk", bench="B4-summary", loglog_slope_time=loglog_slope(widths, ts, missing=math.nan),
                     loglog_slope_time_top3=loglog_slope(widths[-3:], ts[-3:], missing=math.nan) if len(widths) >= 3 else math.nan,
                     loglog_slope_peak_mem=loglog_slope(widths, mems, missing=math.nan))


if __name__ == "__main__":  # memory probe child (see _peak_mb)
    _child(json.loads(sys.argv[1]))
