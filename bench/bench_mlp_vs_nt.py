"""The analytic MLP kernel against neural-tangents' dense kernel.

Run (full mode, alone on the machine; neural-tangents and a jax it runs with
must be importable, else the file skips)::

    python -m pytest bench/bench_mlp_vs_nt.py -q -s

* M1: ``graphon_ntk`` with the constant graphon 1 (the dense NTK; one
  quadrature node per layer), depth 4, ReLU, float64, no biases, against
  ``neural_tangents.stax.serial(Dense(1), Relu(), ... , Dense(1))``'s
  jit-compiled ``kernel_fn(x, None, "ntk")`` (NTK parameterisation, W_std = 1,
  no bias; ``jax_enable_x64``), on the same inputs: N = 128 and 1000 digits
  images (d = 64) and MNIST test images (d = 784; Gaussian inputs when MNIST
  is absent). Medians of repeated calls after a warm-up (the jit compile is
  not counted); the kernels must agree to 1e-6 (measured 2e-9 .. 4e-8: neural-tangents
  takes the arccos of a clipped correlation, which loses ~sqrt(eps) where the
  correlation is near 1; ours uses the atan2 form). ``speedup_vs_neural_tangents``
  = nt time / ours; the target is > 1 at every N >= 128 (``target_met``).

neural-tangents runs in a fresh process per size (jaxlib's and Triton's
LLVM cannot be loaded into one process). neural-tangents 0.6.5 imports
``tf2jax`` for its TensorFlow interop module only; where the installed tf2jax
cannot be imported with the installed jax, that one import is replaced by an
empty module there (the stax kernels never use it).

Smoke mode: N = 16 and 32.
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

from gntk_fast import data
from gntk_fast.ntk import graphon_ntk

MNIST_DIR = Path(os.environ.get("GNTK_MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
DEPTH = 4


_CHILD = r"""
import json, sys, time, types, statistics
import numpy as np
try:
    import tf2jax  # noqa: F401
except Exception:  # an installed tf2jax built for another jax: the stax kernels do not need it
    sys.modules["tf2jax"] = types.ModuleType("tf2jax")
import jax
import neural_tangents as nt
jax.config.update("jax_enable_x64", True)
stax = nt.stax
depth, path, repeat = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
x = np.load(path)
layers = []
for _ in range(depth):
    layers += [stax.Dense(1, W_std=1.0, b_std=None, parameterization="ntk"), stax.Relu()]
_, _, kfn = stax.serial(*layers, stax.Dense(1, W_std=1.0, b_std=None, parameterization="ntk"))
kfn = jax.jit(kfn, static_argnames="get")
k = np.asarray(kfn(x, None, "ntk"))
np.save(path + ".nt.npy", k)
for _ in range(2):
    kfn(x, None, "ntk").block_until_ready()
ts = []
for _ in range(repeat):
    t0 = time.perf_counter()
    kfn(x, None, "ntk").block_until_ready()
    ts.append(time.perf_counter() - t0)
print(json.dumps(dict(seconds=statistics.median(ts), jax=jax.__version__, nt=nt.__version__)))
"""


def _neural_tangents_time(x: np.ndarray, repeat: int, tmp: Path) -> tuple[float, np.ndarray, dict]:
    """Median time of neural-tangents' jit-compiled kernel on x, in a fresh process (jaxlib and
    Triton's LLVM cannot share one process), its kernel and versions; skips when not importable."""
    path = tmp / "x.npy"
    np.save(path, x)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(DEPTH), str(path), str(repeat)],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        if "No module named" in out.stderr or "ImportError" in out.stderr:
            pytest.skip(f"neural-tangents is not importable here: {out.stderr.strip().splitlines()[-1]}")
        raise RuntimeError(out.stderr[-2000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res["seconds"], np.load(str(path) + ".nt.npy"), res


def _inputs(kind: str, n: int) -> np.ndarray:
    if kind == "digits":
        x, _ = data.load("digits", split="train", n=n, seed=0)
    elif (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        x, _ = data.load("mnist", split="test", n=n, seed=0, data_dir=MNIST_DIR)
    else:
        x = torch.randn(n, 784, generator=torch.Generator().manual_seed(0))
    return x.to(torch.float64).numpy()


@pytest.mark.parametrize("kind", ["digits", "mnist"])
def test_m1_dense_kernel(kind, smoke, bench_report, timeit, benchmark, tmp_path):
    for N in ((16, 32) if smoke else (128, 1000)):
        x = _inputs(kind, N)
        xt = torch.from_numpy(x)
        rep = 3 if smoke else (21 if N <= 128 else 7)
        t_nt, theirs, versions = _neural_tangents_time(x, rep, tmp_path)
        ours = graphon_ntk([1.0] * (DEPTH + 1), xt)
        err = float(np.linalg.norm(ours.numpy() - theirs) / np.linalg.norm(theirs))
        assert err < 1e-6  # nt's arccos of a clipped correlation loses ~sqrt(eps) near the diagonal
        t_ours = timeit(lambda: graphon_ntk([1.0] * (DEPTH + 1), xt), repeat=rep, warmup=2)
        bench_report.add(
            "mlp_vs_nt",
            case=f"M1 {kind} N={N} d={x.shape[1]} depth={DEPTH} relu float64 constant graphon 1",
            ours_ms=1e3 * t_ours,
            neural_tangents_ms=1e3 * t_nt,
            speedup_vs_neural_tangents=t_nt / t_ours,
            target_met=bool(t_nt > t_ours) if N >= 128 else None,
            rel_diff=err,
            jax_version=versions["jax"],
            neural_tangents_version=versions["nt"],
            torch_threads=torch.get_num_threads(),
        )
    benchmark.pedantic(lambda: graphon_ntk([1.0] * (DEPTH + 1), xt), rounds=1, iterations=1)
