"""eNTK at N = 1,000 ... 10,000 (blocked over pairs of input tiles).

Run (full mode; about 10 minutes on a 2-core machine, nothing else running)::

    python -m pytest bench/bench_entk_large.py -q -s

Quick sanity check (N = 250, 500, 1000)::

    GNTK_ENTK_LARGE_QUICK=1 python -m pytest bench/bench_entk_large.py -q -s

``GNTK_ENTK_LARGE_NS=1000,3000`` picks the sizes explicitly. Smoke mode (CI):
``python -m pytest bench/bench_entk_large.py --benchmark-disable -q`` (N = 20, 40, width 48).

Workload: N MNIST test images (``../shared/data/mnist`` or ``$GNTK_MNIST_DIR``;
skipped when absent), 784 -> 4 x 1024 -> 1, ReLU, random masks of density 0.2
on every layer (as bench_entk.py), float32, CPU, ``x2 = None``, default tiling.

Per N, in a fresh subprocess (this file run as a script): the time of one
``empirical_ntk`` call (after a small warm-up call), the time per pair
``t / (N (N + 1) / 2)``, the rise of the peak resident set size (VmHWM) over
the level after loading the data and building the model, and the output's
size. Targets: peak rise <= output + 512 MiB at every N; time per pair at the
largest N within 1.2x of the time per pair at the smallest N. Summary: the
log-log slope of time in N (2 is the floor: the pairs grow as N^2).

Per-MAC rates against torch.matmul's rate (a square float32 GEMM measured in
the same run), with three counts of the work:

* ``kept``: N(N+1)/2 * nnz, one multiply-add per pair and kept weight;
* ``kernel``: what the C++ kernel really does. For each pair of tiles it drops
  the columns j whose activation H_j is zero on every input of either tile
  (ReLU units off for the whole tile, MNIST's empty border pixels) and the rows
  i whose backward signal is zero on every input of either tile, then does one
  multiply-add per pair and remaining kept weight. Counted exactly from each
  tile's zero pattern, with the tiling the call used (pairs a <= b on the
  diagonal tiles; the kernel's 16-pair register tiles straddling the diagonal
  do a little more);
* ``nonzero_pairs``: the lower bound of a kernel that skipped every pair with
  H_j(a) H_j(b) = 0: sum over kept (i, j) of n_j (n_j + 1) / 2, n_j the number
  of inputs with H_j != 0 (exact, no independence assumption; zeros of the
  backward signal are not subtracted).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gntk_fast.spectral import loglog_slope

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_entk import MNIST_DIR, _hwm_kb, _inputs, _isa, _model, _square_gemm  # noqa: E402

DENSITY = 0.2


def _sizes(smoke: bool) -> tuple[tuple[int, ...], int]:
    """(Ns, width) of this run."""
    if smoke:
        return (20, 40), 48
    if os.environ.get("GNTK_ENTK_LARGE_NS"):
        return tuple(int(s) for s in os.environ["GNTK_ENTK_LARGE_NS"].split(",")), 1024
    if os.environ.get("GNTK_ENTK_LARGE_QUICK", "0") not in ("", "0"):
        return (250, 500, 1000), 1024
    return (1000, 2000, 4000, 10000), 1024


def _work_counts(model, x, block: int) -> dict:
    """The three work counts of the module docstring, from each tile's zero pattern."""
    from gntk_fast.ntk.empirical import _tile_bounds, forward_backward

    bounds = _tile_bounds(x.shape[0], block)
    masks = [mk.to(torch.float64) for mk in model.masks]
    live_cols, live_rows = [], []  # per tile, per layer: bool vectors
    nz_count = [torch.zeros(mk.shape[1], dtype=torch.float64) for mk in masks]
    for i0, i1 in bounds:
        Hs, Ds = forward_backward(model, x[i0:i1])
        live_cols.append([(H != 0).any(0) for H in Hs])
        live_rows.append([(D != 0).any(0).any(0) for D in Ds])
        for l, H in enumerate(Hs):
            nz_count[l] += (H != 0).sum(0).to(torch.float64)
    kernel = 0.0
    for i, (a0, a1) in enumerate(bounds):
        for j in range(i, len(bounds)):
            b0, b1 = bounds[j]
            pairs = (a1 - a0) * (a1 - a0 + 1) / 2 if i == j else (a1 - a0) * (b1 - b0)
            for l, mk in enumerate(masks):
                cols = (live_cols[i][l] & live_cols[j][l]).to(torch.float64)
                rows = (live_rows[i][l] & live_rows[j][l]).to(torch.float64)
                kernel += pairs * float(rows @ mk @ cols)
    N = x.shape[0]
    kept = N * (N + 1) / 2 * sum(float(mk.sum()) for mk in masks)
    nonzero = sum(float(mk.sum(0) @ (n * (n + 1) / 2)) for mk, n in zip(masks, nz_count))
    return dict(macs_kept=kept, macs_kernel=kernel, macs_nonzero_pairs=nonzero, n_tiles=len(bounds))


def _child(spec: dict) -> None:
    """One N in this fresh process: time, peak-memory rise, work counts (printed as JSON)."""
    from gntk_fast.ntk import empirical_ntk
    from gntk_fast.ntk.empirical import default_block

    x = _inputs(spec["N"], spec["mnist"])
    m = _model(spec["width"], DENSITY)
    empirical_ntk(m, x[:32], backend="cpp")  # warm-up: extension, thread pool
    out = spec.get("out")
    before = _hwm_kb()
    t0 = time.perf_counter()
    theta = empirical_ntk(m, x, backend="cpp", out=out, progress=False)
    t = time.perf_counter() - t0
    after = _hwm_kb()
    if out is not None:
        theta = torch.from_numpy(np.load(out, mmap_mode="r")[:64, :64].copy())
    assert torch.isfinite(theta).all()
    block = default_block(m, dtype=torch.float32)
    print(json.dumps({"t_s": t, "peak_mb": (after - before) / 1024.0, "block": block, **_work_counts(m, x, block)}))


def _run_child(**spec) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), json.dumps(spec)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=7200)
    if res.returncode != 0:
        raise RuntimeError(f"N = {spec['N']} failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_entk_large_n(benchmark, bench_report, smoke, timeit, tmp_path):
    from gntk_fast.ntk import empirical_ntk

    Ns, width = _sizes(smoke)
    mnist = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists()
    if not mnist and not smoke:
        pytest.skip(f"MNIST not found at {MNIST_DIR} (set GNTK_MNIST_DIR)")
    x0 = _inputs(Ns[0], mnist)
    m0 = _model(width, DENSITY)
    benchmark.pedantic(lambda: empirical_ntk(m0, x0, backend="cpp", progress=False), rounds=1, iterations=1)
    gemm_macs, gemm = _square_gemm(2e9 if smoke else 1e10)
    t_gemm = timeit(gemm, repeat=1 if smoke else 5, warmup=0 if smoke else 1)
    rate_mm = gemm_macs / t_gemm / 1e9
    rows = []
    for N in Ns:
        r = _run_child(N=N, width=width, mnist=mnist)
        out_mb = N * N * 4 / 2**20
        pairs = N * (N + 1) / 2
        row = dict(
            bench="L1", N=N, width=width, density=DENSITY, dtype="float32", block=r["block"], n_tiles=r["n_tiles"],
            t_s=r["t_s"], t_per_pair_ns=r["t_s"] / pairs * 1e9,
            peak_mb=r["peak_mb"], out_mb=out_mb, peak_over_out_mb=r["peak_mb"] - out_mb,
            target_met_memory=bool(r["peak_mb"] <= out_mb + 512),
            macs_kept=r["macs_kept"], macs_kernel=r["macs_kernel"], macs_nonzero_pairs=r["macs_nonzero_pairs"],
            kernel_over_kept=r["macs_kernel"] / r["macs_kept"],
            gmacs_per_s_kept=r["macs_kept"] / r["t_s"] / 1e9,
            gmacs_per_s_kernel=r["macs_kernel"] / r["t_s"] / 1e9,
            rate_ratio_kept_over_matmul=r["macs_kept"] / r["t_s"] / 1e9 / rate_mm,
            rate_ratio_kernel_over_matmul=r["macs_kernel"] / r["t_s"] / 1e9 / rate_mm,
            rate_ratio_nonzero_pairs_over_matmul=r["macs_nonzero_pairs"] / r["t_s"] / 1e9 / rate_mm,
        )
        rows.append(row)
        bench_report.add("entk_large", **row)
    # the out=PATH mode at the smallest N: the memory-mapped file, same peak target
    path = tmp_path / "theta.npy"
    r = _run_child(N=Ns[0], width=width, mnist=mnist, out=str(path))
    out_mb = Ns[0] ** 2 * 4 / 2**20
    bench_report.add("entk_large", bench="L1-out", N=Ns[0], t_s=r["t_s"], peak_mb=r["peak_mb"], out_mb=out_mb,
                     target_met_memory=bool(r["peak_mb"] <= out_mb + 512))
    ts = [row["t_s"] for row in rows]
    per_pair = rows[-1]["t_per_pair_ns"] / rows[0]["t_per_pair_ns"]
    bench_report.add(
        "entk_large", bench="L1-summary", Ns=list(Ns), loglog_slope_time=loglog_slope(Ns, ts, missing=float("nan")),
        t_per_pair_largest_over_smallest=per_pair, target_per_pair=1.2, target_met_per_pair=bool(per_pair <= 1.2),
        target_met_memory_all=all(row["target_met_memory"] for row in rows),
        matmul_gmacs_per_s=rate_mm, matmul_n=round(gemm_macs ** (1 / 3)), threads=torch.get_num_threads(),
        cpp_tile_isa=_isa(), omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        loadavg_1min=os.getloadavg()[0],
    )


if __name__ == "__main__":  # one N in a fresh process (see _run_child)
    _child(json.loads(sys.argv[1]))
