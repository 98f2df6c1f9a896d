"""Pruning conv nets: VGG-16 and ResNet-20 on CIFAR-shaped inputs, every method.

Each point runs in a fresh process (``_prune_conv_peak_child.py``): after a
warm-up prune of a tiny model, the wall time and the peak resident memory
(VmHWM) of one ``gntk_fast.prune`` call, Synaptic-Flow rule, global scope,
sparsity 0.9, pruning batch of 100 random 3 x 32 x 32 images (the reference
code's default pruning set size, 10 per class), SynFlow with its default 100
iterations. The same work written as plainly as the reference code does it
(``plain_prune`` in the child: float torch.nn.utils.prune masks, scores by
``.backward()``, a ``torch.kthvalue`` threshold over the concatenated scores)
runs in its own fresh process as a point of comparison; both give the same
masks except for random scores (different generators), asserted through the
masks' digests. Method "graphon" (a constant graphon 0.5 on every layer) has
no plain counterpart.

Smoke mode (``--benchmark-disable``): VGG-16 at width 1/32 and ResNet-20 at
width 2, 4 images of 32 x 32, 2 SynFlow iterations, in-process; only SNIP on
ResNet-20 also goes through the fresh-process children (ours and plain).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
METHODS = ("random", "magnitude", "snip", "grasp", "synflow", "graphon")
FULL = {"vgg16": 1.0, "resnet20": 16}
SMOKE = {"vgg16": 1 / 32, "resnet20": 2}


def _child(cfg: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, str(HERE / "_prune_conv_peak_child.py"), json.dumps(cfg)], env=env,
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError((r.stderr.strip().splitlines() or ["killed"])[-1])
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", ["vgg16", "resnet20"])
def test_prune_conv(benchmark, bench_report, smoke, model, method):
    width = (SMOKE if smoke else FULL)[model]
    cfg = {"model": model, "width": width, "method": method, "n": 4 if smoke else 100, "side": 32,
           "iterations": (2 if smoke else 100) if method == "synflow" else 1}
    if smoke:
        sys.path.insert(0, str(HERE))
        from _prune_conv_peak_child import run

        row = benchmark.pedantic(run, args=({**cfg, "impl": "ours"},), rounds=1, iterations=1)
        if not (model == "resnet20" and method == "snip"):
            return
    ours = _child({**cfg, "impl": "ours"})
    if not smoke:
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the timing is the child's (a fresh process)
    plain = _child({**cfg, "impl": "plain"}) if method != "graphon" else None
    if plain is not None and method != "random":
        assert ours["masks_sha256"] == plain["masks_sha256"], "ours and the plain loop select different masks"
    row = {
        "case": f"{model} (width {width}), {method}, N={ours['weights']} weights, d=0.1, E={cfg['iterations']}",
        "seconds": ours["seconds"],
        "peak_rss_GiB": ours["peak_rss_GiB"],
        "peak_rise_GiB": ours["peak_rss_GiB"] - ours["rss_before_GiB"],
    }
    if plain is not None:
        row.update(plain_seconds=plain["seconds"], plain_peak_rss_GiB=plain["peak_rss_GiB"],
                   plain_peak_rise_GiB=plain["peak_rss_GiB"] - plain["rss_before_GiB"],
                   plain_over_ours_time=plain["seconds"] / ours["seconds"])
    bench_report.add("pruning_conv", **row)
