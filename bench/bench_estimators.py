"""Graphon estimators compared on the same masks: error against the known graphon and time.

Masks sampled from two known graphons at rectangular shapes n x n/2:
``smooth`` W(u, v) = 0.15 + 0.7 u v and ``sbm``, a 3-block step graphon with
separated degrees. Estimators (:mod:`gntk_fast.graphon.estimators`): SAS
(K = 16), USVT (K = 16 blocks of its full estimate), the network histogram
(automatic K) and the largest-gap estimator (K = 16 and K = 3, the true
block count). Error: :func:`gntk_fast.graphon.estimate_error` (RMS on a
256 x 256 grid against the degree-sorted truth), averaged over 2 masks per
case; time: median of repeated calls on one mask.

Smoke mode: n / 8, one repeat.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from gntk_fast.graphon import FunctionGraphon, StepGraphon, estimate, estimate_error

GRAPHONS = {
    "smooth": FunctionGraphon(lambda u, v: 0.15 + 0.7 * u * v),
    "sbm": StepGraphon([[0.9, 0.6, 0.3], [0.6, 0.4, 0.2], [0.3, 0.2, 0.05]]),
}
ESTIMATORS = [
    ("sas K=16", "sas", {"K": 16}),
    ("usvt K=16", "usvt", {"K": 16}),
    ("network_histogram auto", "network_histogram", {}),
    ("largest_gap K=16", "largest_gap", {"K": 16}),
    ("largest_gap K=3", "largest_gap", {"K": 3}),
]


@pytest.mark.parametrize("graphon", list(GRAPHONS))
@pytest.mark.parametrize("n", [500, 1000, 2000])
def test_estimators(benchmark, bench_report, smoke, timeit, graphon, n):
    n = n // 8 if smoke else n
    g = GRAPHONS[graphon]
    masks = [g.sample(n, n // 2, seed=s) for s in (0, 1)]
    estimate("sas", masks[0], K=16)  # compile
    benchmark.pedantic(estimate, args=("sas", masks[0]), kwargs={"K": 16}, rounds=1, iterations=1)
    for label, name, kw in ESTIMATORS:
        ests = [estimate(name, M, **kw) for M in masks]
        err = float(np.mean([estimate_error(e, g) for e in ests]))
        t = timeit(lambda: estimate(name, masks[0], **kw), repeat=1 if smoke else 3, warmup=0)
        bench_report.add(
            "estimators",
            case=f"{graphon} {n}x{n // 2}",
            estimator=label,
            rms_error=err,
            blocks=f"{ests[0].K_out}x{ests[0].K_in}",
            seconds=t,
            loadavg_1min=os.getloadavg()[0],
        )
