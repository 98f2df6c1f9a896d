"""Plain reference implementation of the analytic Graphon NTK (docs/graphon-ntk.md section 3).

One pair of inputs at a time, carrying the three entries (x,x), (x',x'),
(x,x') of every 2x2 covariance through the recursion exactly as
docs/graphon-ntk.md section 3 writes it; float64 throughout. Obviously right and slow: it exists to check
:func:`gntk_fast.ntk.graphon_ntk` (tiled, vectorised, Triton) against.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._validation import MAX_SAMPLES, as_float_tensor, check_bool, check_choice, check_size
from ..ops.dual import plan_dual
from ..graphon.grid import discretise

__all__ = ["graphon_ntk_reference", "check_inputs", "GraphonNTK"]


@dataclass(frozen=True)
class GraphonNTK:
    """The analytic kernel with its NNGP (``return_nngp=True``).

    kernel : (N1, N2) tensor, the Graphon NTK Theta traced over the outputs
    nngp   : (N1, N2) tensor, the output NNGP kernel (traced), same dtype/device
    """

    kernel: torch.Tensor
    nngp: torch.Tensor


def check_inputs(x1: Any, x2: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x1 (N1, d) and optional x2 (N2, d): finite real 2-D tensors of equal width,
    with at most MAX_SAMPLES inputs each."""
    x1 = as_float_tensor("x1", x1, ndim=2)
    if x1.shape[0] < 1 or x1.shape[1] < 1:
        raise ValueError(f"x1 must be a non-empty (N, d) matrix; got shape {tuple(x1.shape)}")
    check_size("x1 inputs (rows)", x1.shape[0], MAX_SAMPLES)
    if x2 is not None:
        x2 = as_float_tensor("x2", x2, ndim=2)
        if x2.shape[0] < 1:
            raise ValueError(f"x2 must be a non-empty (N, d) matrix; got shape {tuple(x2.shape)}")
        check_size("x2 inputs (rows)", x2.shape[0], MAX_SAMPLES)
        if x2.shape[1] != x1.shape[1]:
            raise ValueError(f"x2 must have as many features as x1 ({x1.shape[1]}); got {x2.shape[1]}")
    return x1, x2


def graphon_ntk_reference(
    graphons,
    x1,
    x2=None,
    *,
    activation="relu",
    trainable: str = "mask",
    K: int = 256,
    quadrature: str = "gauss-legendre",
    return_nngp: bool = False,
    n_outputs: int = 1,
    dual: str | None = None,
    quad_nodes: int = 32,
    depth: int | None = None,
    variance_graphons=None,
):
    """Reference twin of :func:`gntk_fast.ntk.graphon_ntk` (same arguments, float64, CPU).

    Returns the (N1, N2) float64 kernel traced over the ``n_outputs`` outputs,
    or a :class:`GraphonNTK` (kernel and output NNGP) when ``return_nngp``.
    """
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    return_nngp = check_bool("return_nngp", return_nngp)
    x1, x2 = check_inputs(x1, x2)
    d = x1.shape[1]
    f = plan_dual(activation, dual=dual, quad_nodes=quad_nodes, backend="naive").function()
    grid = discretise(graphons, d, K=K, quadrature=quadrature, n_outputs=n_outputs, depth=depth,
                      variance=variance_graphons)
    X1 = x1.to(torch.float64)
    X2 = X1 if x2 is None else x2.to(torch.float64)
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float64))  # noqa: E731
    # mask graphons A, B, R count each layer's parameters; the variance graphons
    # Av, Bv, Rv carry the forward/backward signal (the same ones when none are given)
    A, R = t(grid.A), t(grid.R)
    B = [t(b) for b in grid.B]
    if grid.has_variance:
        Av, Rv, Bv = t(grid.Av), t(grid.Rv), [t(b) for b in grid.Bv]
    else:
        Av, Rv, Bv = A, R, B
    w = [t(x) for x in grid.w]
    L = grid.depth
    k = R.shape[0]
    theta = torch.zeros(X1.shape[0], X2.shape[0], dtype=torch.float64)
    nngp = torch.zeros_like(theta)
    for i in range(X1.shape[0]):
        for j in range(X2.shape[0]):
            x, y = X1[i], X2[j]
            # pre-activation covariances of hidden layer 1: entries (x,x), (y,y), (x,y)
            s11, s22, s12 = Av @ (x * x) / d, Av @ (y * y) / d, Av @ (x * y) / d
            own = A @ (x * y) / d  # the layer's own parameters' covariance (mask graphon)
            pre, dots, acts = [], [], []
            for l in range(L):
                pre.append(own)
                S11, _ = f(s11, s11, s11)
                S22, _ = f(s22, s22, s22)
                S12, Sd12 = f(s11, s22, s12)
                acts.append(S12)
                dots.append(Sd12)
                if l + 1 < L:
                    s11, s22, s12 = Bv[l] @ (w[l] * S11), Bv[l] @ (w[l] * S22), Bv[l] @ (w[l] * S12)
                    own = B[l] @ (w[l] * S12)
            out = sum(float(Rv[c] @ (w[L - 1] * acts[L - 1])) for c in range(k))
            readout = sum(float(R[c] @ (w[L - 1] * acts[L - 1])) for c in range(k))
            # backward covariance G^l(u), l = L..1
            G = [None] * L
            G[L - 1] = dots[L - 1] * Rv.sum(0)
            for l in range(L - 2, -1, -1):
                G[l] = dots[l] * (Bv[l].T @ (w[l + 1] * G[l + 1]))
            if trainable == "mask":
                val = readout + sum(float(w[l] @ (G[l] * pre[l])) for l in range(L))
            else:
                prev = [float(x @ y) / d] + [float(w[l] @ acts[l]) for l in range(L)]
                val = k * prev[L] + sum(float(w[l] @ G[l]) * prev[l] for l in range(L))
            theta[i, j] = val
            nngp[i, j] = out
    return GraphonNTK(theta, nngp) if return_nngp else theta
