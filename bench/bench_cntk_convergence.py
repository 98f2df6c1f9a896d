"""Finite graphon-sampled ConvNets against the Graphon CNTK: how the eNTK converges as channels grow.

Run (full mode; a measurement of errors, the times are only recorded)::

    python -m pytest bench/bench_cntk_convergence.py -q -s

Smoke mode (CI): ``python -m pytest bench/bench_cntk_convergence.py --benchmark-disable -q``.

For the constant graphon 0.5 and the non-constant one of the report's conv section (conv layers
0.15 + 0.7 u v, read-out 0.3 + 0.6 v), 2 conv layers (3 x 3, float64, ReLU, trainable="mask") on
digits images, C = 64, 128, 256, 512 channels, NETS nets per C with independent weights and
per-tap masks (:func:`gntk_fast.experiments.conv_checks.conv_kernel_mean_convergence`):

* the error of the MEAN eNTK over the nets and its sampling error ``se_mean`` (their difference
  estimates the bias ||E eNTK - T|| / ||T||), and the mean per-net error;
* against T = ``graphon_cntk(..., input_masks="bernoulli")`` (the input layer's masks averaged
  exactly: the limit of these nets) and ``input_masks="mean"`` (the input graphon's mean: the
  variance-modulated net's limit, which these nets do not approach);
* log-log slopes in C of the per-net error (fluctuations: -1/2 expected) and of the error of the
  mean (-1 while the O(1/C) bias dominates, flattening where it meets ``se_mean``).

Cases: flatten read-out with zero ("same") padding on 6 images, GAP read-out with circular padding
on 3 images. Smoke mode: C = 8, 16, 3 nets, 2 images, K = 4.
"""
from __future__ import annotations

import time

import numpy as np

from gntk_fast.experiments._tables import loglog_slope
from gntk_fast.experiments.conv_checks import conv_kernel_mean_convergence

NETS = 20
CHANNELS = (64, 128, 256, 512)


def _case(smoke, bench_report, benchmark, readout, padding, n_images):
    channels, nets, n, K = ((8, 16), 3, 2, 4) if smoke else (CHANNELS, NETS, n_images, 8)
    holder = {}

    def run():
        holder["rows"] = conv_kernel_mean_convergence(channels, nets, readout=readout, padding=padding,
                                                      n_images=n, K=K, progress=False)

    t0 = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    secs = time.perf_counter() - t0
    rows = holder["rows"]
    assert len(rows) == 2 * 2 * len(channels) and all(np.isfinite(r["err_mean"]) for r in rows)
    for r in rows:
        bench_report.add("cntk_convergence", **r)
    for kind in ("constant", "non-constant"):
        for im in ("bernoulli", "mean"):
            sel = sorted((r for r in rows if r["graphon"] == kind and r["input_masks"] == im),
                         key=lambda r: r["channels"])
            cs = [r["channels"] for r in sel]
            bench_report.add(
                "cntk_convergence", summary=True, graphon=kind, readout=readout, padding=padding, input_masks=im,
                nets=nets, n_images=n, channels=cs,
                err_mean=[r["err_mean"] for r in sel], se_mean=[r["se_mean"] for r in sel],
                bias=[r["bias"] for r in sel], err_per_net=[r["err_per_net"] for r in sel],
                slope_err_mean=loglog_slope(cs, [r["err_mean"] for r in sel]),
                slope_err_per_net=loglog_slope(cs, [r["err_per_net"] for r in sel]),
                case_seconds=secs)


def test_flatten_same(smoke, bench_report, benchmark):
    _case(smoke, bench_report, benchmark, "flatten", "same", 6)


def test_gap_circular(smoke, bench_report, benchmark):
    _case(smoke, bench_report, benchmark, "gap", "circular", 3)
