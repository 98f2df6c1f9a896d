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

neural-tangents 0.6.5 imports ``tf2jax`` for its TensorFlow interop module
only; where the installed tf2jax cannot be imported with the installed jax,
that one import is replaced by an empty module (the stax kernels never use it).

Smoke mode: N = 16 and 32.
"""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from gntk_fast import data
from gntk_fast.ntk import graphon_ntk

MNIST_DIR = Path(os.environ.get("GNTK_MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
DEPTH = 4


def _neural_tangents():
    try:
        import tf2jax  # noqa: F401
    except Exception:  # an installed tf2jax built for another jax: the stax kernels do not need it
        sys.modules["tf2jax"] = types.ModuleType("tf2jax")
    try:
        import jax
        import neural_tangents as nt
    except Exception as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"neural-tangents is not importable here: {exc}")
    jax.config.update("jax_enable_x64", True)
    return jax, nt


def _inputs(kind: str, n: int) -> np.ndarray:
    if kind == "digits":
        x, _ = data.load("digits", split="train", n=n, seed=0)
    elif (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        x, _ = data.load("mnist", split="test", n=n, seed=0, data_dir=MNIST_DIR)
    else:
        x = torch.randn(n, 784, generator=torch.Generator().manual_seed(0))
    return x.to(torch.float64).numpy()


@pytest.mark.parametrize("kind", ["digits", "mnist"])
def test_m1_dense_kernel(kind, smoke, bench_report, timeit, benchmark):
    jax, nt = _neural_tangents()
    stax = nt.stax
    layers = []
    for _ in range(DEPTH):
        layers += [stax.Dense(1, W_std=1.0, b_std=None, parameterization="ntk"), stax.Relu()]
    _, _, kfn = stax.serial(*layers, stax.Dense(1, W_std=1.0, b_std=None, parameterization="ntk"))
    kfn = jax.jit(kfn, static_argnames="get")
    for N in ((16, 32) if smoke else (128, 1000)):
        x = _inputs(kind, N)
        xt = torch.from_numpy(x)
        ours = graphon_ntk([1.0] * (DEPTH + 1), xt)
        theirs = np.asarray(kfn(x, None, "ntk"))
        err = float(np.linalg.norm(ours.numpy() - theirs) / np.linalg.norm(theirs))
        assert err < 1e-6  # nt's arccos of a clipped correlation loses ~sqrt(eps) near the diagonal
        rep = 3 if smoke else (21 if N <= 128 else 7)
        t_ours = timeit(lambda: graphon_ntk([1.0] * (DEPTH + 1), xt), repeat=rep, warmup=2)
        t_nt = timeit(lambda: kfn(x, None, "ntk").block_until_ready(), repeat=rep, warmup=2)
        bench_report.add(
            "mlp_vs_nt",
            case=f"M1 {kind} N={N} d={x.shape[1]} depth={DEPTH} relu float64 constant graphon 1",
            ours_ms=1e3 * t_ours,
            neural_tangents_ms=1e3 * t_nt,
            speedup_vs_neural_tangents=t_nt / t_ours,
            target_met=bool(t_nt > t_ours) if N >= 128 else None,
            rel_diff=err,
            jax_version=jax.__version__,
            neural_tangents_version=nt.__version__,
            torch_threads=torch.get_num_threads(),
        )
    benchmark.pedantic(lambda: graphon_ntk([1.0] * (DEPTH + 1), xt), rounds=1, iterations=1)
