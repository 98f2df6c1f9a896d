"""Pruner benchmarks: fast paths against their plain twins.

* Mask selection on N = 3M float64 scores (half of them tied at 0, like
  SynFlow scores after pruning): clean rule (numpy introselect + tie pass)
  against ``clean_masks_reference`` (stable sort); Synaptic-Flow rule
  against ``compat_masks_reference`` (``torch.kthvalue`` + ``torch.where``,
  as in the reference code).
* SynFlow end to end on fc(784, 1000, depth 3) (2.8M weights), E = 20
  compat iterations in float64: ``gf.prune`` against the plain loop
  (``synflow_scores_reference`` + ``compat_masks_reference``); both give the
  same masks (asserted). Reported per iteration, and the full default
  E = 100 run of ``gf.prune``.

Smoke mode (``--benchmark-disable`` / GNTK_BENCH_SMOKE=1): tiny sizes, one run.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

import gntk_fast as gf
from gntk_fast.pruning import select_layer_masks, select_masks, synflow_scores_reference

select_clean = partial(select_masks, rule="clean", backend="numpy")
select_compat = partial(select_masks, rule="synaptic-flow", backend="numpy")
clean_masks_reference = partial(select_layer_masks, rule="clean", backend="naive")
compat_masks_reference = partial(select_layer_masks, rule="synaptic-flow", backend="naive")


def _scores(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    s = torch.rand(n, generator=g, dtype=torch.float64) ** 4
    s[torch.rand(n, generator=g) < 0.5] = 0.0
    return s


def test_mask_selection(benchmark, bench_report, smoke, timeit):
    n = 30_000 if smoke else 3_000_000
    shapes = [(n // 3, 1), (n // 3, 1), (n - 2 * (n // 3), 1)]
    sizes = [s[0] for s in shapes]
    flat = _scores(n)
    cur = torch.ones(n, dtype=torch.bool)
    d = 0.2
    scores = [p.view(s) for p, s in zip(torch.split(flat, sizes), shapes)]
    curs = [p.view(s) for p, s in zip(torch.split(cur, sizes), shapes)]
    fast = select_clean(flat, cur, sizes, d, "global")
    ref = torch.cat([m.reshape(-1) for m in clean_masks_reference(scores, curs, d, "global")])
    assert torch.equal(fast, ref)
    fast_c = select_compat(flat, cur, sizes, d, "global")
    ref_c = torch.cat([m.reshape(-1) for m in compat_masks_reference(scores, curs, d, "global")])
    assert torch.equal(fast_c, ref_c)
    benchmark.pedantic(select_clean, args=(flat, cur, sizes, d, "global"), rounds=1 if smoke else 5, iterations=1)
    rep = 1 if smoke else 5
    t_clean = timeit(lambda: select_clean(flat, cur, sizes, d, "global"), repeat=rep)
    t_clean_ref = timeit(lambda: clean_masks_reference(scores, curs, d, "global"), repeat=1 if smoke else 3)
    t_compat = timeit(lambda: select_compat(flat, cur, sizes, d, "global"), repeat=rep)
    t_compat_ref = timeit(lambda: compat_masks_reference(scores, curs, d, "global"), repeat=rep)
    bench_report.add(
        "pruning",
        case=f"mask selection, N={n}, half tied at 0, d={d}",
        clean_s=t_clean,
        clean_reference_s=t_clean_ref,
        clean_speedup=t_clean_ref / t_clean,
        compat_s=t_compat,
        compat_reference_s=t_compat_ref,
        compat_speedup=t_compat_ref / t_compat,
    )


def _reference_loop(model: nn.Sequential, density: float, E: int) -> list[torch.Tensor]:
    lins = [m for m in model if isinstance(m, nn.Linear)]
    w = [l.weight.detach() for l in lins]
    b = [l.bias.detach() for l in lins]
    masks = [torch.ones_like(x, dtype=torch.bool) for x in w]
    for e in range(1, E + 1):
        masks = compat_masks_reference(synflow_scores_reference(w, masks, b), masks, density ** (e / E), "global")
    return masks


def test_synflow_end_to_end(benchmark, bench_report, smoke, timeit):
    width, depth, E = (32, 2, 3) if smoke else (1000, 3, 20)
    d = 0.1
    model = gf.fc(784, width, depth, 10, seed=0)

    def run(iterations=E):
        return gf.prune(gf.fc(784, width, depth, 10, seed=0), "synflow", 1 - d, iterations=iterations,
                        compat="synaptic-flow", synflow_dtype=torch.float64, progress=False)

    ref = _reference_loop(model, d, E)
    res = run()
    assert all(torch.equal(a, b) for a, b in zip(res.masks, ref))
    benchmark.pedantic(run, rounds=1 if smoke else 3, iterations=1)
    t_fast = timeit(run, repeat=1 if smoke else 3, warmup=0)
    t_ref = timeit(lambda: _reference_loop(model, d, E), repeat=1, warmup=0)
    t_100 = timeit(lambda: run(100), repeat=1, warmup=0) if not smoke else float("nan")
    n = sum(m.numel() for m in res.masks)
    bench_report.add(
        "pruning",
        case=f"synflow compat fc(784,{width},depth {depth}) N={n}, E={E}",
        prune_s=t_fast,
        reference_loop_s=t_ref,
        speedup=t_ref / t_fast,
        prune_per_iteration_ms=1e3 * t_fast / E,
        prune_E100_s=t_100,
    )
