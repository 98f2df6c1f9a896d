"""Analytic Graphon NTK benchmarks.

Run (full mode, one benchmark at a time on the shared machine)::

    python -m pytest bench/bench_analytic.py -q -s

Smoke mode (CI): ``python -m pytest bench/bench_analytic.py --benchmark-disable -q``.

* A1: N = 128 Gaussian inputs (d = 64), L = 4 hidden layers, K = 256 step
  graphons (random 256 x 256 block matrices, a 256 x 64 input graphon),
  float64, relu, trainable="mask": ours (backend "auto" = fused Numba dual +
  torch GEMMs; and backend "naive", the torch twin of the dual) against the per-pair reference
  (``graphon_ntk_reference``). Target: reference / ours >= 10.
* A2: N = 10,000 MNIST test images (d = 784; Gaussian inputs when MNIST is
  absent), L = 4, K = 32 step graphons, float64 and float32: wall time and peak
  memory of a fresh subprocess (VmHWM rise over the level after loading the
  data; ``ru_maxrss`` would inherit the parent's peak), next to the output's
  own size (N^2 x itemsize). K = 32 rather than 256 keeps A2 to minutes on two
  cores: the cost is ~N^2/2 (K d + 6 K^2) multiply-adds plus 4 K N^2/2 dual
  evaluations.

Smoke mode shrinks A1 to N = 12, K = 16 and A2 to N = 64.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gntk_fast.ntk import graphon_ntk, graphon_ntk_reference

MNIST_DIR = Path(os.environ.get("GNTK_MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


def step_graphons(K: int, d: int, L: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.random((K, d))] + [rng.random((K, K)) for _ in range(L - 1)] + [rng.random((1, K))]


def test_a1_fast_vs_reference(smoke, bench_report, timeit, benchmark):
    N, K, L, d = (12, 16, 4, 64) if smoke else (128, 256, 4, 64)
    gs = step_graphons(K, d, L)
    x = torch.randn(N, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = benchmark.pedantic(lambda: graphon_ntk(gs, x), rounds=1 if smoke else 3, warmup_rounds=0 if smoke else 1)
    t_ours = timeit(lambda: graphon_ntk(gs, x), repeat=1 if smoke else 5, warmup=1)
    t_naive = timeit(lambda: graphon_ntk(gs, x, backend="naive"), repeat=1 if smoke else 5, warmup=1)
    ref_holder = {}

    def run_ref():
        ref_holder["ref"] = graphon_ntk_reference(gs, x)

    t_ref = timeit(run_ref, repeat=1 if smoke else 2, warmup=0)
    err = float((ours - ref_holder["ref"]).norm() / ref_holder["ref"].norm())
    assert err < 1e-12
    bench_report.add(
        "analytic",
        case="A1 N=%d K=%d L=%d d=%d step float64 relu mask" % (N, K, L, d),
        ours_auto_s=t_ours,
        ours_naive_backend_s=t_naive,
        reference_s=t_ref,
        speedup_vs_reference=t_ref / t_ours,
        speedup_naive_backend_vs_reference=t_ref / t_naive,
        auto_speedup_vs_naive_backend=t_naive / t_ours,
        rel_err_vs_reference=err,
        torch_threads=torch.get_num_threads(),
    )


_CHILD = r"""
import json, sys, time, numpy as np, torch
sys.path.insert(0, {bench_dir!r})
from bench_analytic import step_graphons
from gntk_fast.ntk import graphon_ntk

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
N, K, L, dtype_name, mnist = {N}, {K}, {L}, {dtype!r}, {mnist!r}
if mnist:
    from gntk_fast import data
    x, _ = data.load("mnist", split="test", n=N if N < 10000 else None, seed=0, data_dir=mnist)
    x = x[:N]
else:
    x = torch.randn(N, 784, generator=torch.Generator().manual_seed(0))
dtype = getattr(torch, dtype_name)
x = x.to(dtype)
gs = step_graphons(K, x.shape[1], L)
graphon_ntk(gs, x[:8], dtype=dtype)  # compile / warm up
base = hwm()
t0 = time.perf_counter()
theta = graphon_ntk(gs, x, dtype=dtype, progress=False)
t = time.perf_counter() - t0
print(json.dumps(dict(seconds=t, peak_rise_bytes=hwm() - base, output_bytes=theta.numel() * theta.element_size(),
                      finite=bool(torch.isfinite(theta).all()), symmetric=bool(torch.equal(theta, theta.T)),
                      d=x.shape[1], N=x.shape[0])))
"""


def _child(N, K, L, dtype, mnist):
    code = _CHILD.format(bench_dir=str(Path(__file__).resolve().parent), N=N, K=K, L=L, dtype=dtype, mnist=mnist)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a2_ten_thousand_inputs(benchmark, bench_report, smoke):
    N, K, L = (64, 8, 4) if smoke else (10_000, 32, 4)
    mnist = str(MNIST_DIR) if (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists() else None
    for dtype in ["float64"]:
        t0 = time.perf_counter()
        # one dtype: pytest-benchmark records the child's wall time once per test
        res = benchmark.pedantic(_child, args=(N, K, L, dtype, mnist), rounds=1, iterations=1)
        assert res["finite"] and res["symmetric"] and res["N"] == N
        bench_report.add(
            "analytic",
            case=f"A2 N={N} K={K} L={L} d={res['d']} step {dtype} relu mask ({'MNIST' if mnist else 'Gaussian'})",
            seconds=res["seconds"],
            pairs_per_second=N * (N + 1) / 2 / res["seconds"],
            peak_rise_MiB=res["peak_rise_bytes"] / 2**20,
            output_MiB=res["output_bytes"] / 2**20,
            peak_over_output=res["peak_rise_bytes"] / res["output_bytes"],
            subprocess_wall_s=time.perf_counter() - t0,
        )
