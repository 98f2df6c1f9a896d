"""GPU benchmark of the analytic Graphon NTK: the Triton dual backend on CUDA
against the Numba backend on the CPU cores of the same machine.

Case: N = 1000 inputs (d = 64, seeded Gaussian), L = 4 hidden layers of
random step graphons with K = 32 blocks, ReLU, float64, ``trainable="mask"``
(the setting of the CPU benchmarks in bench_analytic.py). Reports the median
time of ``graphon_ntk(backend="triton")`` on CUDA (the result copied back to
the host, synchronised), of ``backend="numba"`` on CPU tensors with every CPU
thread, their ratio, the float32 Triton time, and the relative error between
the two float64 kernels (they compute the same sums in a different order).

Without CUDA the file skips (it still collects). Smoke mode: N = 48.
Results: bench/results/analytic_gpu.json with the device name.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="GPU benchmark (graphon_ntk Triton vs Numba) needs a CUDA GPU; none here",
)


def _sync():
    torch.cuda.synchronize()


def _step_graphons(K: int, d: int, L: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.random((K, d))] + [rng.random((K, K)) for _ in range(L - 1)] + [rng.random((1, K))]


def test_graphon_ntk_triton_vs_numba(smoke, bench_report, timeit):
    from gntk_fast.ntk import graphon_ntk

    N, K, L, d = (48, 8, 2, 16) if smoke else (1000, 32, 4, 64)
    repeat = 1 if smoke else 5
    gs = _step_graphons(K, d, L)
    x = torch.randn(N, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xc = x.cuda()

    def gpu(dtype=torch.float64):
        return graphon_ntk(gs, xc.to(dtype), backend="triton", dtype=dtype, progress=False).cpu()

    def cpu():
        return graphon_ntk(gs, x, backend="numba", progress=False)

    t_gpu = timeit(gpu, repeat=repeat, warmup=1, sync=_sync)
    t_gpu32 = timeit(lambda: gpu(torch.float32), repeat=repeat, warmup=1, sync=_sync)
    t_cpu = timeit(cpu, repeat=max(1, repeat - 2), warmup=1)
    a, b = gpu(), cpu()
    err = float((a - b).norm() / b.norm())
    err32 = float((gpu(torch.float32).double() - b).norm() / b.norm())
    bench_report.add(
        "analytic_gpu",
        device=torch.cuda.get_device_name(),
        case=f"N={N} K={K} L={L} d={d} step relu mask",
        t_triton_fp64_s=t_gpu,
        t_triton_fp32_s=t_gpu32,
        t_numba_cpu_fp64_s=t_cpu,
        numba_threads=int(os.environ.get("NUMBA_NUM_THREADS", "0")) or None,
        cpu_count=os.cpu_count(),
        speedup_triton_vs_numba=t_cpu / t_gpu,
        rel_err_triton_vs_numba=err,
        rel_err_triton_fp32_vs_numba_fp64=err32,
    )
    assert err < 1e-10 and err32 < 1e-4
