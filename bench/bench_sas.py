"""SAS benchmarks.

* SAS (Numba, K = 64) on bool masks 4096^2 and 16384^2 against the numpy
  ``sas_reference`` and against one memory pass over the same mask
  (``np.count_nonzero``). Targets on this CPU at 16384^2: >= 20x the
  reference, within 3x of one memory pass.
* A bit-packed 65536^2 mask sampled (``StepGraphon.sample(packed=True)``) and
  estimated (``sas(..., n_in=65536)``) in a fresh subprocess: times and that
  process's peak RSS (must fit the 24 GiB machine; the mask is 512 MiB).

Smoke mode (``--benchmark-disable`` / GNTK_BENCH_SMOKE=1): sizes / 32, one run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from gntk_fast.graphon import FunctionGraphon, sas, sas_reference


def _mask(n: int) -> np.ndarray:
    return FunctionGraphon(lambda u, v: 0.15 + 0.7 * u * v).sample(n, n, seed=0)


@pytest.mark.parametrize("n", [4096, 16384])
def test_sas_bool(benchmark, bench_report, smoke, timeit, n):
    n = n // 32 if smoke else n
    M = _mask(n)
    est = sas(M, 64)  # compile / warm
    benchmark.pedantic(sas, args=(M, 64), rounds=1 if smoke else 7, iterations=1, warmup_rounds=0 if smoke else 1)
    rep = 1 if smoke else 9
    t_sas = timeit(lambda: sas(M, 64), repeat=rep, warmup=0 if smoke else 1)
    t_sas1 = timeit(lambda: sas(M, 64, threads=1), repeat=rep, warmup=0 if smoke else 1)
    t_pass = timeit(lambda: np.count_nonzero(M), repeat=rep, warmup=0 if smoke else 1)
    t_ref = timeit(lambda: sas_reference(M, 64), repeat=1 if smoke or n > 8192 else 3, warmup=0)
    ref = sas_reference(M, 64)
    np.testing.assert_array_equal(est.H, ref.H)  # correctness of what is timed
    bench_report.add(
        "sas",
        case=f"bool {n}x{n}, K=64",
        sas_s=t_sas,
        sas_1thread_s=t_sas1,
        reference_s=t_ref,
        count_nonzero_s=t_pass,
        speedup_vs_reference=t_ref / t_sas,
        ratio_to_memory_pass=t_sas / t_pass,
        ratio_to_memory_pass_1thread=t_sas1 / t_pass,
        mask_GB_per_s=M.nbytes / t_sas / 1e9,
        threads=numba.get_num_threads(),
        loadavg_1min=os.getloadavg()[0],
    )


_CHILD = r"""
import json, sys, time
import numpy as np
def hwm_kib():  # VmHWM: ru_maxrss would inherit the parent's peak across exec
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
from gntk_fast.graphon import FunctionGraphon, sas
n = int(sys.argv[1])
g = FunctionGraphon(lambda u, v: 0.15 + 0.7 * u * v)
sas(g.sample(256, 256, seed=0, packed=True), 64, n_in=256)  # compile the packed kernels
rss0 = hwm_kib()
t0 = time.perf_counter(); P = g.sample(n, n, seed=0, packed=True); t1 = time.perf_counter()
est = sas(P, 64, n_in=n); t2 = time.perf_counter()
t_pass = min(
    (lambda s: (np.count_nonzero(P), time.perf_counter() - s)[1])(time.perf_counter()) for _ in range(3)
)
m = (np.arange(64) + 0.5) / 64
rms = float(np.sqrt(np.mean((est.H - g.evaluate(1 - m[:, None], 1 - m[None, :])) ** 2)))
print(json.dumps({"n": n, "packed_bytes": int(P.nbytes), "sample_s": t1 - t0, "sas_s": t2 - t1,
                  "count_nonzero_packed_s": t_pass, "peak_rss_GiB": hwm_kib() / 2**20,
                  "rss_before_GiB": rss0 / 2**20, "rms_vs_W": rms, "density": est.density()}))
"""


def test_sas_packed_65536(benchmark, bench_report, smoke):
    n = 65536 // 32 if smoke else 65536
    out = benchmark.pedantic(  # pytest-benchmark records the child's wall time (sample + estimate + startup)
        subprocess.run, args=([sys.executable, "-c", _CHILD, str(n)],),
        kwargs=dict(capture_output=True, text=True, timeout=1800), rounds=1, iterations=1)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["peak_rss_GiB"] < 24
    assert row["rms_vs_W"] < 0.015 or smoke  # the estimate is right, not just fast
    bench_report.add(
        "sas",
        case=f"packed {n}x{n} sample + estimate, K=64",
        sample_s=row["sample_s"],
        sas_s=row["sas_s"],
        count_nonzero_packed_s=row["count_nonzero_packed_s"],
        ratio_to_packed_memory_pass=row["sas_s"] / row["count_nonzero_packed_s"],
        packed_GiB=row["packed_bytes"] / 2**30,
        peak_rss_GiB=row["peak_rss_GiB"],
        rms_vs_W=row["rms_vs_W"],
        loadavg_1min=os.getloadavg()[0],
    )
