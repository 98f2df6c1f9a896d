"""The dense Graphon CNTK (every graphon 1) against neural-tangents' conv NTK.

Run (full mode; neural-tangents and a jax it runs with must be importable by
``$GNTK_NT_PYTHON``, default this interpreter, else the file skips)::

    GNTK_NT_PYTHON=/path/to/venv/bin/python python -m pytest bench/bench_cntk_vs_nt.py -q -s

* V1: ``graphon_cntk([1.0] * (L + 1), x, readout=..., padding=...)`` (the dense CNTK: one node per layer),
  L = 3 conv layers, 3 x 3, ReLU, float64, no biases, against ``neural_tangents.stax.serial(Conv(1, (3, 3),
  padding=...), Relu(), ..., Flatten() or GlobalAvgPool(), Dense(1))``'s jit-compiled ``kernel_fn(x, None,
  "ntk")`` (NTK parameterisation, W_std = 1, no bias; ``jax_enable_x64``; NHWC inputs), N = 64 digits
  images (8 x 8): flatten with zero ("same") padding and GAP with circular padding. The kernels must agree
  to 1e-6 (the same mathematics; neural-tangents takes the arccos of a clipped correlation, which loses
  ~sqrt(eps) where the correlation is 1, as on the digits' blank background patches: 4e-10 measured in
  smoke mode). Medians after a warm-up (the jit compile is
  not counted); ``speedup_vs_neural_tangents`` = nt time / ours.

neural-tangents runs in a fresh process (jaxlib's and Triton's LLVM cannot be loaded into one process).

Smoke mode: N = 4, L = 1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _procs import NT_IMPORT

from gntk_fast import data
from gntk_fast.ntk import graphon_cntk

NT_PYTHON = os.environ.get("GNTK_NT_PYTHON") or sys.executable

_CHILD = r"""
import json, sys, time, types, statistics
import numpy as np
""" + NT_IMPORT + r"""
stax = nt.stax
depth, readout, padding, path, repeat = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
x = np.load(path).transpose(0, 2, 3, 1)  # NCHW -> NHWC
layers = []
for _ in range(depth):
    layers += [stax.Conv(1, (3, 3), padding=padding.upper(), W_std=1.0, b_std=None, parameterization="ntk"),
               stax.Relu()]
layers += [stax.Flatten() if readout == "flatten" else stax.GlobalAvgPool(),
           stax.Dense(1, W_std=1.0, b_std=None, parameterization="ntk")]
_, _, kfn = stax.serial(*layers)
kfn = jax.jit(kfn, static_argnames="get")
k = np.asarray(kfn(x, None, "ntk"))
np.save(path + ".nt.npy", k)
kfn(x, None, "ntk").block_until_ready()
ts = []
for _ in range(repeat):
    t0 = time.perf_counter()
    kfn(x, None, "ntk").block_until_ready()
    ts.append(time.perf_counter() - t0)
print(json.dumps(dict(seconds=statistics.median(ts), jax=jax.__version__, nt=nt.__version__)))
"""


def _neural_tangents(x: np.ndarray, depth: int, readout: str, padding: str, repeat: int, tmp: Path):
    path = tmp / "x.npy"
    np.save(path, x)
    try:
        out = subprocess.run([NT_PYTHON, "-c", _CHILD, str(depth), readout, padding, str(path), str(repeat)],
                             capture_output=True, text=True, timeout=1800)
    except OSError as exc:
        pytest.skip(f"GNTK_NT_PYTHON cannot be run: {exc}")
    if out.returncode != 0:
        if "No module named" in out.stderr or "ImportError" in out.stderr:
            pytest.skip(f"neural-tangents is not importable here: {out.stderr.strip().splitlines()[-1]}")
        raise RuntimeError(out.stderr[-2000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res["seconds"], np.load(str(path) + ".nt.npy"), res


@pytest.mark.parametrize("readout, padding", [("flatten", "same"), ("gap", "circular")])
def test_v1_dense_cntk(readout, padding, smoke, bench_report, timeit, benchmark, tmp_path):
    N, depth = (4, 1) if smoke else (64, 3)
    x = data.load("digits", split="train", n=N, seed=0)[0].to(torch.float64).reshape(N, 1, 8, 8)
    rep = 3 if smoke else 5
    t_nt, theirs, versions = _neural_tangents(x.numpy(), depth, readout, padding, rep, tmp_path)
    gs = [1.0] * (depth + 1)
    kw = dict(readout=readout, padding=padding, progress=False)
    ours = graphon_cntk(gs, x, **kw)
    err = float(np.linalg.norm(ours.numpy() - theirs) / np.linalg.norm(theirs))
    assert err < 1e-6
    t_ours = timeit(lambda: graphon_cntk(gs, x, **kw), repeat=rep, warmup=1)
    bench_report.add(
        "cntk_vs_nt",
        case=f"V1 digits N={N} 8x8 L={depth} k=3 {padding} {readout} relu float64 graphon 1",
        ours_ms=1e3 * t_ours,
        neural_tangents_ms=1e3 * t_nt,
        speedup_vs_neural_tangents=t_nt / t_ours,
        rel_diff=err,
        jax_version=versions["jax"],
        neural_tangents_version=versions["nt"],
        torch_threads=torch.get_num_threads(),
    )
    benchmark.pedantic(lambda: graphon_cntk(gs, x, **kw), rounds=1, iterations=1)
