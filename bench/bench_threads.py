"""Thread policy benchmarks: what one thread, two threads and the OpenMP wait
policy cost on an idle and on a busy 2-core machine, against torch's default
(two threads, the wait policy unset).

Each configuration runs in a fresh interpreter (the OpenMP runtimes read
``OMP_WAIT_POLICY`` when they load) with ``GNTK_NUM_THREADS`` and torch's
thread count set, and reports the median of three runs of

* ``synflow``: SynFlow (100 iterations, clean mode) on ``MLP(64, 512, 3)``
  with the package's small-work rule switched off (``threads_for`` forced to
  the thread count under test), so the row shows what the rule avoids;
* ``synflow_rule``: the same with the package's rule (one thread here);
* ``entk``: the C++ eNTK of B1 (N = 128 MNIST-sized inputs, 784 -> 4 x 1024 -> 1,
  density 0.2), large work that the rule runs on every thread;
* ``tiny``: the per-pair loop of ``graphon_ntk_reference`` (N = 24, K = 256,
  L = 3): thousands of tiny torch ops, what a wait policy costs outside
  gntk_fast's own kernels.

"Busy" starts two CPU-bound processes beside the measured one (load ~3 on
2 cores: the machine shared with other jobs). Smoke mode (CI) runs one tiny
configuration.
"""
from __future__ import annotations

import os

from _procs import CpuNeighbours, median_in_child

_CHILD = r"""
import json, statistics, sys, time
spec = json.loads(sys.argv[1])
import gntk_fast as gf
import torch
torch.set_num_threads(spec["threads"])
from gntk_fast.pruning import core
if spec["what"] == "synflow":
    core.threads_for = lambda work: spec["threads"]
def run():
    if spec["what"].startswith("synflow"):
        m = gf.MLP(64, spec["width"], 3, seed=0)
        gf.prune(m, "synflow", 0.9, seed=0, iterations=spec["iterations"], progress=False)
    elif spec["what"] == "tiny":
        g = torch.Generator().manual_seed(0)
        x = torch.randn(24, 64, generator=g, dtype=torch.float64)
        gs = [torch.rand(256, 64, generator=g).numpy()] + [torch.rand(256, 256, generator=g).numpy()] * 2 + [1.0]
        gf.graphon_ntk_reference(gs, x)
    else:
        g = torch.Generator().manual_seed(0)
        m = gf.MLP(784, spec["width"], 4, seed=0)
        m.set_masks([torch.rand(w.shape, generator=g) < 0.2 for w in m.weights])
        x = torch.randn(spec["N"], 784, generator=g)
        t0 = time.perf_counter(); gf.empirical_ntk(m, x, backend="cpp"); return time.perf_counter() - t0
ts = []
for _ in range(spec["repeat"]):
    t0 = time.perf_counter(); r = run(); ts.append(r if r is not None else time.perf_counter() - t0)
print(json.dumps({"median_s": statistics.median(ts)}))
"""


def _measure(spec: dict, policy: str) -> float:
    policy_env = {} if policy == "default" else {"OMP_WAIT_POLICY": policy}
    return median_in_child(_CHILD, spec, {"GNTK_NUM_THREADS": str(spec["threads"]), **policy_env},
                           drop=("OMP_WAIT_POLICY",))


def test_thread_policy(benchmark, bench_report, smoke):
    if smoke:
        specs = [dict(what="synflow_rule", width=32, iterations=2, threads=1, repeat=1)]
        loads, policies = (0,), ("default",)
    else:
        specs = []
        for t in (1, 2):
            specs.append(dict(what="synflow", width=512, iterations=100, threads=t, repeat=3))
            specs.append(dict(what="entk", width=1024, N=128, threads=t, repeat=3))
            specs.append(dict(what="tiny", threads=t, repeat=3))
        specs.append(dict(what="synflow_rule", width=512, iterations=100, threads=2, repeat=3))
        loads, policies = (0, 2), ("default", "PASSIVE")
    rows = {}
    for load in loads:
        with CpuNeighbours(load):
            for policy in policies:
                for spec in specs:
                    t = _measure(spec, policy)
                    key = (spec["what"], spec["threads"], policy, load)
                    rows[key] = t
                    bench_report.add("threads", what=spec["what"], threads=spec["threads"], omp_wait_policy=policy,
                                     background_procs=load, median_s=t, loadavg_1min=os.getloadavg()[0])
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    if not smoke:
        for load in loads:
            base = rows[("synflow", 2, "default", load)]
            bench_report.add(
                "threads", summary=f"background_procs={load}",
                synflow_2t_over_1t_default=base / rows[("synflow", 1, "default", load)],
                synflow_rule_over_torch_default=rows[("synflow_rule", 2, "default", load)] / base,
                synflow_rule_passive_over_torch_default=rows[("synflow_rule", 2, "PASSIVE", load)] / base,
                synflow_2t_passive_over_2t_default=rows[("synflow", 2, "PASSIVE", load)] / base,
                entk_2t_over_1t_default=rows[("entk", 2, "default", load)] / rows[("entk", 1, "default", load)],
                entk_passive_over_default_2t=rows[("entk", 2, "PASSIVE", load)] / rows[("entk", 2, "default", load)],
                tiny_passive_over_default_2t=rows[("tiny", 2, "PASSIVE", load)] / rows[("tiny", 2, "default", load)],
                tiny_1t_over_2t_default=rows[("tiny", 1, "default", load)] / rows[("tiny", 2, "default", load)],
            )
