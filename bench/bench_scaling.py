"""Scaling with width: wall time and peak memory of one task against the hidden width.

Series (each point = one task of :mod:`gntk_fast.experiments.tasks` run in a
fresh subprocess, ``_scaling_child.py``, after a small warm-up task of the
same kind in that process, so Numba compilation and imports are not timed;
peak memory = the process's VmHWM):

* ``masks_sas packed random``: uniformly random masks of the fc net's layers
  (3 hidden layers, digits input d = 64, 90% sparsity, global count split)
  generated bit-packed in row blocks and SAS-estimated (K = 64), no weights
  in memory: widths 4096 .. 65536;
* ``masks_sas packed graphon``: the same with masks sampled from the graphon
  0.15 + 0.7 u v (``source = "packed"``, method "graphon");
* ``prune snip`` / ``prune grasp`` / ``prune synflow`` (10 iterations): the
  Synaptic-Flow fc net pruned by the data-driven pruners (digits batch of
  100, Synaptic-Flow selection rule, global scope), then SAS of its masks;
* ``entk random``: the empirical NTK (N = 64 test digits, per-layer parts)
  of the randomly pruned fc net and its spectral metrics.

A width is skipped (and reported as such) when the previous point predicts
more than ``MEM_BUDGET_GIB`` of memory (peak x (w / w_prev)^2) or more than
``TIME_BUDGET_S`` seconds (time x (w / w_prev)^slope, slope from the last
two points, at least 2 for the quadratic tasks). The last test fits log-log
slopes (least squares over the points of each series with width >= the
series' second point, where fixed costs no longer dominate), writes
``bench/results/scaling.png`` (time and peak memory against width) and adds
the slopes and the widest width reached per series to the report.

A separate test (suite ``selection``, ``results/selection.json``) times the
global threshold selection of 2**27 float32 scores in three layers (density
0.1, both rules) with the ``histogram`` backend (radix select, no copy of the
scores) against the ``numpy`` backend (partition), each in a fresh process,
with the rise of its peak memory over the scores' own.

Smoke mode: the same code path in-process at widths 64 and 128 (no figure;
the selection at 2**16 scores).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gntk_fast.spectral import loglog_slope

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MEM_BUDGET_GIB = 18.0  # the machine has 24 GiB, shared with other jobs
TIME_BUDGET_S = 300.0

_BASE = {"data": "digits", "depth": 3, "sparsity": 0.9, "K": 64, "seed": 0, "trial": 0}
SERIES: dict[str, tuple[dict, list[int]]] = {
    "masks_sas packed random": ({"kind": "masks_sas", "method": "random", "source": "packed"},
                                [4096, 8192, 16384, 32768, 65536]),
    "masks_sas packed graphon": ({"kind": "masks_sas", "method": "graphon", "source": "packed",
                                  "graphon": "linear"}, [4096, 8192, 16384, 32768, 65536]),
    "prune snip": ({"kind": "masks_sas", "method": "snip"}, [1024, 2048, 4096, 8192, 11584, 16384]),
    "prune grasp": ({"kind": "masks_sas", "method": "grasp"}, [1024, 2048, 4096, 8192, 11584, 16384]),
    "prune synflow": ({"kind": "masks_sas", "method": "synflow", "iterations": 10},
                      [1024, 2048, 4096, 8192, 11584, 16384]),
    "entk random": ({"kind": "entk_metrics", "method": "random", "n_samples": 64}, [1024, 2048, 4096, 8192, 16384]),
}
SMOKE_WIDTHS = [64, 128]

_POINTS: dict[str, list[dict]] = {}


def _config(series: str, width: int) -> dict:
    extra, _ = SERIES[series]
    return {**_BASE, **extra, "width": width, "K": min(64, width)}


def _child(cfg: dict, warm: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, str(HERE / "_scaling_child.py"), json.dumps(cfg), json.dumps(warm)],
                       env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["killed"])[-1], "returncode": r.returncode}
    return json.loads(r.stdout.strip().splitlines()[-1])


def _in_process(cfg: dict) -> dict:
    import time

    from gntk_fast.experiments.tasks import run_task

    t0 = time.perf_counter()
    run_task(cfg)
    return {"seconds": time.perf_counter() - t0, "peak_rss_GiB": float("nan")}


def _skip_reason(series: str, width: int) -> str | None:
    done = [p for p in _POINTS.get(series, []) if "seconds" in p]
    if not done:
        return None
    last = done[-1]
    r = width / last["width"]
    mem = last["peak_rss_GiB"] * r**2
    if len(done) >= 2:
        a, b = done[-2], done[-1]
        slope = max(2.0, math.log(b["seconds"] / a["seconds"]) / math.log(b["width"] / a["width"]))
    else:
        slope = 2.0
    t = last["seconds"] * r**slope
    if mem > MEM_BUDGET_GIB:
        return f"predicted peak {mem:.1f} GiB > {MEM_BUDGET_GIB} GiB budget"
    if t > TIME_BUDGET_S:
        return f"predicted {t:.0f} s > {TIME_BUDGET_S:.0f} s budget"
    return None


_CASES = [(s, i) for s, (_, ws) in SERIES.items() for i in range(len(ws))]


@pytest.mark.parametrize("series, index", _CASES, ids=[f"{s.replace(' ', '_')}-{SERIES[s][1][i]}" for s, i in _CASES])
def test_scaling_point(benchmark, bench_report, smoke, series, index):
    widths = SMOKE_WIDTHS if smoke else SERIES[series][1]
    if index >= len(widths):
        pytest.skip("smoke mode runs two widths per series")
    width = widths[index]
    cfg = _config(series, width)
    why = None if smoke else _skip_reason(series, width)
    if why is not None:
        _POINTS.setdefault(series, []).append({"width": width, "skipped": why})
        bench_report.add("scaling", series=series, width=width, skipped=why, loadavg_1min=os.getloadavg()[0])
        pytest.skip(why)
    load0 = os.getloadavg()[0]
    if smoke:
        row = benchmark.pedantic(_in_process, args=(cfg,), rounds=1, iterations=1)
    else:
        warm = _config(series, 64)
        row = benchmark.pedantic(_child, args=(cfg, warm), rounds=1, iterations=1)
    if "error" in row:
        _POINTS.setdefault(series, []).append({"width": width, "skipped": f"failed: {row['error']}"})
        bench_report.add("scaling", series=series, width=width, failed=row["error"], loadavg_1min=load0)
        pytest.fail(f"{series} at width {width}: {row['error']}")
    point = {"width": width, **row, "loadavg_1min_start": load0, "loadavg_1min_end": os.getloadavg()[0]}
    _POINTS.setdefault(series, []).append(point)
    bench_report.add("scaling", series=series, width=width, seconds=row["seconds"],
                     peak_rss_GiB=row["peak_rss_GiB"], rss_after_warmup_GiB=row.get("rss_after_warmup_GiB"),
                     loadavg_1min_start=load0, loadavg_1min_end=point["loadavg_1min_end"])


def test_scaling_summary(bench_report, smoke):
    if not _POINTS:
        pytest.skip("no scaling points in this run")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for series, pts in _POINTS.items():
        ok = [p for p in pts if "seconds" in p]
        if not ok:
            continue
        fit = ok[1:] if len(ok) >= 3 else ok
        ws = [p["width"] for p in ok]
        t_slope = loglog_slope([p["width"] for p in fit], [p["seconds"] for p in fit])
        m_slope = loglog_slope([p["width"] for p in fit], [p["peak_rss_GiB"] for p in fit])
        widest = ok[-1]
        skipped = [f"{p['width']}: {p['skipped']}" for p in pts if "skipped" in p]
        bench_report.add("scaling_summary", series=series, widest_width=widest["width"],
                         widest_seconds=widest["seconds"], widest_peak_rss_GiB=widest["peak_rss_GiB"],
                         time_slope=t_slope, memory_slope=m_slope, fit_widths=[p["width"] for p in fit],
                         skipped=skipped or None)
        lab = f"{series} (slope {t_slope:.2f})" if t_slope is not None else series
        axes[0].loglog(ws, [p["seconds"] for p in ok], "o-", label=lab)
        lab = f"{series} (slope {m_slope:.2f})" if m_slope is not None else series
        axes[1].loglog(ws, [p["peak_rss_GiB"] for p in ok], "o-", label=lab)
    axes[0].set(xlabel="hidden width n", ylabel="wall time of one task (s)",
                title="time vs width (fc net, 3 hidden layers, 90% sparse)")
    axes[1].set(xlabel="hidden width n", ylabel="peak resident memory (GiB)",
                title="peak memory vs width (one process)")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    if not smoke:
        path = HERE / "results" / "scaling.png"
        path.parent.mkdir(exist_ok=True)
        fig.savefig(path, dpi=120)
    plt.close(fig)


_SELECT_CHILD = r"""
import json, sys, time
import numpy as np, torch
def hwm_gib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 2**20
from gntk_fast.ops.mask_select import select_masks
backend, n = sys.argv[1], int(sys.argv[2])
s = torch.from_numpy(np.random.default_rng(0).random(n, dtype=np.float32))
cur = torch.ones(n, dtype=torch.bool)
sizes = [n // 4, n // 2, n - n // 4 - n // 2]
select_masks(s[:1000], cur[:1000], [1000], 0.1, "global", backend=backend)  # compile / warm
h0 = hwm_gib()
out = {"backend": backend, "n": n}
for rule in ("clean", "synaptic-flow"):
    t = time.perf_counter()
    m = select_masks(s, cur, sizes, 0.1, "global", rule=rule, backend=backend)
    out[rule + "_s"] = time.perf_counter() - t
    out[rule + "_kept"] = int(np.count_nonzero(m.numpy()))  # (torch's bool sum would allocate int64)
    del m
out["rise_GiB"] = hwm_gib() - h0
print(json.dumps(out))
"""


def test_threshold_selection_streaming(bench_report, smoke):
    n = 1 << 16 if smoke else 1 << 27
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = {}
    load0 = os.getloadavg()[0]
    for b in ("histogram", "numpy"):
        r = subprocess.run([sys.executable, "-c", _SELECT_CHILD, b, str(n)], env=env, capture_output=True, text=True,
                           timeout=1800)
        assert r.returncode == 0, r.stderr
        res[b] = json.loads(r.stdout.strip().splitlines()[-1])
    h, p = res["histogram"], res["numpy"]
    assert h["clean_kept"] == p["clean_kept"] == round(0.1 * n)  # the same selection
    assert h["synaptic-flow_kept"] == p["synaptic-flow_kept"]
    bench_report.add("selection", case=f"{n} float32 scores, 3 layers, density 0.1, global",
                     histogram_clean_s=h["clean_s"], numpy_clean_s=p["clean_s"],
                     histogram_compat_s=h["synaptic-flow_s"], numpy_compat_s=p["synaptic-flow_s"],
                     clean_speedup=p["clean_s"] / h["clean_s"], compat_speedup=p["synaptic-flow_s"] / h["synaptic-flow_s"],
                     histogram_rise_GiB=h["rise_GiB"], numpy_rise_GiB=p["rise_GiB"],
                     scores_GiB=4 * n / 2**30, loadavg_1min_start=load0, loadavg_1min_end=os.getloadavg()[0])
