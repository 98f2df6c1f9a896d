"""The analytic MLP kernel against neural-tangents' dense kernel.

Run (full mode; neural-tangents and a jax it runs with must be importable by
the interpreter ``GNTK_NT_PYTHON`` names, default this one, else the file
skips)::

    GNTK_NT_PYTHON=/path/to/venv/bin/python python -m pytest bench/bench_mlp_vs_nt.py -q -s

* M1: ``graphon_ntk`` with the constant graphon 1 (the dense NTK: every layer
  has one node, so the call runs the fused dense recursion of
  :mod:`gntk_fast.ops.dense_ntk`), depth 4, ReLU, float64, no biases, against
  ``neural_tangents.stax.serial(Dense(1), Relu(), ... , Dense(1))``'s
  jit-compiled ``kernel_fn(x, None, "ntk")`` (NTK parameterisation, W_std = 1,
  no bias; ``jax_enable_x64``), on the same inputs: N = 128 and 1000 digits
  images (d = 64) and MNIST test images (d = 784; Gaussian inputs when MNIST
  is absent). The kernels must agree to 1e-6 (measured 2e-9 .. 4e-8:
  neural-tangents takes the arccos of a clipped correlation, which loses
  ~sqrt(eps) where the correlation is near 1; ours uses the atan2 form).
* Timing: neural-tangents runs in one long-lived child process (jaxlib's
  and Triton's LLVM cannot be loaded into one process) that times calls on
  request, so the two sides alternate in rounds - a batch of neural-tangents
  calls, a batch of ours, the order swapped every round - and a change in the
  machine's load falls on both. Each side's time is the median of all its
  calls after warm-up (the jit compile and Numba's compile are not counted).
  ``speedup_vs_neural_tangents`` = nt's median / ours; the target is > 1 at
  every N >= 128 (``target_met``), and the full run fails when it is missed.
  The 1-minute load average before and after the size is in each row.
* Peak memory (N = 1000): the growth of the resident set (``VmHWM`` after the
  call minus ``VmRSS`` before it, the high-water mark reset through
  ``/proc/self/clear_refs``) of one call in a fresh process after one warm-up
  call of the same size, for each side (``None`` where the kernel does not
  allow resetting the mark).

neural-tangents 0.6.5 imports ``tf2jax`` for its TensorFlow interop module
only; where the installed tf2jax cannot be imported with the installed jax,
that one import is replaced by an empty module there (the stax kernels never
use it).

Smoke mode: N = 16 and 32, one round.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _procs import NT_IMPORT

from gntk_fast import data
from gntk_fast.ntk import graphon_ntk

MNIST_DIR = Path(os.environ.get("GNTK_MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
#: the interpreter that runs neural-tangents (it needs jax, not gntk_fast)
NT_PYTHON = os.environ.get("GNTK_NT_PYTHON") or sys.executable
DEPTH = 4
_REPO = str(Path(__file__).resolve().parents[1])

_PEAK = r"""
def _rss(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) * 1024
def _peak(call):
    # resident-set growth of one call: reset the high-water mark, then VmHWM - VmRSS before
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        call()
        return None
    before = _rss("VmRSS")
    call()
    return _rss("VmHWM") - before
"""

_NT_SERVER = r"""
import json, sys, time, types
import numpy as np
""" + NT_IMPORT + _PEAK + r"""
stax = nt.stax
depth = int(sys.argv[1])
layers = []
for _ in range(depth):
    layers += [stax.Dense(1, W_std=1.0, b_std=None, parameterization="ntk"), stax.Relu()]
_, _, kfn = stax.serial(*layers, stax.Dense(1, W_std=1.0, b_std=None, parameterization="ntk"))
kfn = jax.jit(kfn, static_argnames="get")
x = None
def call():
    kfn(x, None, "ntk").block_until_ready()
print(json.dumps(dict(ready=True, jax=jax.__version__, nt=nt.__version__)), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if "load" in cmd:  # the inputs; the kernel once (compile) saved beside them; two warm-up calls
        x = np.load(cmd["load"])
        np.save(cmd["load"] + ".nt.npy", np.asarray(kfn(x, None, "ntk")))
        call(); call()
        out = {}
    elif "time" in cmd:
        ts = []
        for _ in range(cmd["time"]):
            t0 = time.perf_counter(); call(); ts.append(time.perf_counter() - t0)
        out = {"seconds": ts}
    elif "peak" in cmd:
        out = {"peak_bytes": _peak(call)}
    else:
        break
    print(json.dumps(out), flush=True)
"""

_OURS_PEAK = r"""
import json, sys
import numpy as np
import torch
from gntk_fast.ntk import graphon_ntk
""" + _PEAK + r"""
x = torch.from_numpy(np.load(sys.argv[1]))
g = [1.0] * (int(sys.argv[2]) + 1)
graphon_ntk(g, x)  # warm-up (Numba's compile) at the same size
print(json.dumps({"peak_bytes": _peak(lambda: graphon_ntk(g, x))}))
"""


class NeuralTangents:
    """neural-tangents' kernel in a child process that times calls on request."""

    def __init__(self, depth: int) -> None:
        try:
            self.proc = subprocess.Popen([NT_PYTHON, "-c", _NT_SERVER, str(depth)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            pytest.skip(f"GNTK_NT_PYTHON={NT_PYTHON!r} cannot be run: {exc}")
        first = self.proc.stdout.readline()
        if not first:
            err = self.proc.stderr.read()
            self.proc.wait()
            if "No module named" in err or "ImportError" in err:
                pytest.skip(f"neural-tangents is not importable by {NT_PYTHON}: {err.strip().splitlines()[-1]}")
            raise RuntimeError(err[-2000:])
        self.versions = json.loads(first)

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(self.proc.stderr.read()[-2000:])
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def _inputs(kind: str, n: int) -> np.ndarray:
    if kind == "digits":
        x, _ = data.load("digits", split="train", n=n, seed=0)
    elif (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        x, _ = data.load("mnist", split="test", n=n, seed=0, data_dir=MNIST_DIR)
    else:
        x = torch.randn(n, 784, generator=torch.Generator().manual_seed(0))
    return x.to(torch.float64).numpy()


def _load1() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def _ours_peak(path: Path) -> int | None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_REPO, os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", _OURS_PEAK, str(path), str(DEPTH)], capture_output=True, text=True,
                         env=env, timeout=1800, check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])["peak_bytes"]


def _time_ours(x: torch.Tensor, n: int) -> list[float]:
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        graphon_ntk([1.0] * (DEPTH + 1), x)
        ts.append(time.perf_counter() - t0)
    return ts


def _mib(b: int | None) -> float | None:
    return None if b is None else b / 2**20


@pytest.mark.parametrize("kind", ["digits", "mnist"])
def test_m1_dense_kernel(kind, smoke, bench_report, benchmark, tmp_path):
    nt = NeuralTangents(DEPTH)
    missed = []
    try:
        for N in ((16, 32) if smoke else (128, 1000)):
            x = _inputs(kind, N)
            xt = torch.from_numpy(x)
            path = tmp_path / f"x{N}.npy"
            np.save(path, x)
            load_before = _load1()
            nt.ask(load=str(path))
            theirs = np.load(str(path) + ".nt.npy")
            ours = graphon_ntk([1.0] * (DEPTH + 1), xt)
            err = float(np.linalg.norm(ours.numpy() - theirs) / np.linalg.norm(theirs))
            assert err < 1e-6  # nt's arccos of a clipped correlation loses ~sqrt(eps) near the diagonal
            graphon_ntk([1.0] * (DEPTH + 1), xt)
            rounds, per = (1, 2) if smoke else ((7, 5) if N <= 128 else (5, 3))
            t_nt, t_ours = [], []
            for r in range(rounds):
                if r % 2:
                    t_ours += _time_ours(xt, per)
                    t_nt += nt.ask(time=per)["seconds"]
                else:
                    t_nt += nt.ask(time=per)["seconds"]
                    t_ours += _time_ours(xt, per)
            m_nt, m_ours = statistics.median(t_nt), statistics.median(t_ours)
            peak_ours = peak_nt = None
            if N >= 1000:
                peak_nt = nt.ask(peak=True)["peak_bytes"]
                peak_ours = _ours_peak(path)
            met = bool(m_nt > m_ours) if N >= 128 else None
            if met is False:
                missed.append(f"{kind} N={N}: ours {1e3 * m_ours:.2f} ms, neural-tangents {1e3 * m_nt:.2f} ms")
            bench_report.add(
                "mlp_vs_nt",
                case=f"M1 {kind} N={N} d={x.shape[1]} depth={DEPTH} relu float64 constant graphon 1",
                ours_ms=1e3 * m_ours,
                neural_tangents_ms=1e3 * m_nt,
                speedup_vs_neural_tangents=m_nt / m_ours,
                target_met=met,
                calls_each=len(t_ours),
                rounds=rounds,
                load1_before=load_before,
                load1_after=_load1(),
                ours_peak_mib=_mib(peak_ours),
                neural_tangents_peak_mib=_mib(peak_nt),
                output_mib=N * N * 8 / 2**20,
                rel_diff=err,
                jax_version=nt.versions["jax"],
                neural_tangents_version=nt.versions["nt"],
                torch_threads=torch.get_num_threads(),
            )
    finally:
        nt.close()
    benchmark.pedantic(lambda: graphon_ntk([1.0] * (DEPTH + 1), xt), rounds=1, iterations=1)
    assert not missed, "target missed (ours slower than neural-tangents): " + "; ".join(missed)
