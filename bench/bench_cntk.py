"""Analytic Graphon CNTK benchmarks.

Run (full mode, alone on the machine)::

    python -m pytest bench/bench_cntk.py -q -s

Smoke mode (CI): ``python -m pytest bench/bench_cntk.py --benchmark-disable -q``.

* C1: N = 256 digits images (8 x 8, one channel), L = 3 conv layers
  (k = 3, circular padding), GAP read-out, ReLU, float64, trainable="mask",
  callable channel graphons shared by the taps (so every layer has K = 32
  Gauss-Legendre nodes): ``graphon_cntk`` (backend auto = the fused Numba
  step + torch GEMMs) against the per-pair twin ``graphon_cntk_reference``.
  The twin needs about a second per pair, so it runs on the first
  ``REF_IMAGES`` images (all their pairs, i <= j) and its time is extrapolated
  linearly in the number of pairs to N(N+1)/2 (``reference_s_extrapolated``);
  ours is checked against it on those pairs (relative error < 1e-12).
* C2: the same with the flatten read-out (only the diagonal pixel pairs are
  carried: P = 64 entries per pair instead of P^2 = 4096).

Smoke mode: N = 3 images cropped to 5 x 5, K = 4, the twin on every pair (no extrapolation).
"""
from __future__ import annotations

import time

import torch

from gntk_fast import data
from gntk_fast.ntk import graphon_cntk, graphon_cntk_reference

REF_IMAGES = 3  # the twin's subset in full mode: 6 pairs


def graphons():
    """Input, two hidden conv layers and the read-out: smooth channel graphons."""
    return [
        lambda u, v: 0.4 + 0.5 * u,
        lambda u, v: 0.15 + 0.7 * u * v,
        lambda u, v: 0.2 + 0.6 * (1.0 - u) * v,
        lambda u, v: 0.3 + 0.6 * v + 0.0 * u,
    ]


def digits(n: int) -> torch.Tensor:
    x, _ = data.load("digits", split="train", n=n, seed=0)
    return x.to(torch.float64).reshape(-1, 1, 8, 8)


def _case(smoke, bench_report, timeit, benchmark, readout):
    N, K = (3, 4) if smoke else (256, 32)
    x = digits(N)
    if smoke:
        x = x[:, :, :5, :5].contiguous()  # the twin costs ~P^2 per pair: 5 x 5 crops keep smoke mode short
    gs = graphons()
    kw = dict(K=K, readout=readout, padding="circular", kernel_size=3)
    graphon_cntk(gs, x[:2], **kw)  # compile the Numba step
    t0 = time.perf_counter()
    theta = benchmark.pedantic(lambda: graphon_cntk(gs, x, progress=False, **kw), rounds=1, iterations=1)
    t_ours = time.perf_counter() - t0  # one round: the full C1 takes minutes
    n_ref = N if smoke else REF_IMAGES
    xr = x[:n_ref]
    holder = {}

    def run_ref():
        holder["ref"] = graphon_cntk_reference(gs, xr, **kw)

    t_ref_sub = timeit(run_ref, repeat=1, warmup=0)
    err = float((theta[:n_ref, :n_ref] - holder["ref"]).norm() / holder["ref"].norm())
    assert err < 1e-12
    assert torch.isfinite(theta).all() and torch.equal(theta, theta.T)
    pairs, pairs_ref = N * (N + 1) // 2, n_ref * (n_ref + 1) // 2
    t_ref = t_ref_sub * pairs / pairs_ref
    bench_report.add(
        "cntk",
        case=f"C{1 if readout == 'gap' else 2} N={N} digits {x.shape[2]}x{x.shape[3]} L=3 k=3 circular {readout} K={K} function graphons "
             "float64 relu mask",
        ours_s=t_ours,
        ours_ms_per_pair=1e3 * t_ours / pairs,
        reference_pairs_timed=pairs_ref,
        reference_s_on_subset=t_ref_sub,
        reference_s_extrapolated=t_ref,
        speedup_vs_reference=t_ref / t_ours,
        rel_err_vs_reference_on_subset=err,
        torch_threads=torch.get_num_threads(),
    )


def test_c1_gap(smoke, bench_report, timeit, benchmark):
    _case(smoke, bench_report, timeit, benchmark, "gap")


def test_c2_flatten(smoke, bench_report, timeit, benchmark):
    _case(smoke, bench_report, timeit, benchmark, "flatten")
