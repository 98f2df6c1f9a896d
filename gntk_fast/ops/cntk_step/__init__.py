"""One layer step of the analytic Graphon CNTK over pixel pairs, one entry, two backends.

For a chunk of B pairs of images (pair b = inputs ``ii[b]`` of x1 and
``jj[b]`` of x2), E carried pixel pairs ("entries" e = (e1[e], e2[e]), see
:func:`gntk_fast.ntk._conv_grid.geometry`) and K channel nodes, the input is
the node matmul of the previous layer, already done:

    Y[b, e, h, g K + a]  (h = 0: the S half, h = 1: the Sd*Theta half; g: tap group)
    Y[b, e, 0, G K]      the "all" own column (node weights, or 1/C_0 at the input)

and the step gathers the k^2 tap neighbours ``nbr[e, t]`` (-1: zero padding)::

    Sigma[b, e, a] = 1/k^2 sum_t Y[b, nbr[e, t], 0, g(t) K + a]            g(t) = t per tap, 0 shared
    Theta[b, e, a] = own + 1/k^2 sum_t Y[b, nbr[e, t], 1, g(t) K + a]       (the second term only when H = 2)
    own            = Sigma (trainable "mask") or 1/k^2 sum_t Y[b, nbr[e, t], 0, G K] ("all")
    S, Sd          = dual at (D1[ii[b], e1[e], a], D2[jj[b], e2[e], a], Sigma[b, e, a])
    out[b, e, 0, a] = S,  out[b, e, 1, a] = Sd * Theta

A pair of identical inputs (``same[b]``) takes Sigma = D1 on its diagonal
entries e1 = e2 (the ReLU angle is then exactly 0, see docs/graphon-cntk.md).

Backends (the one ``backend="auto"`` rule of :mod:`gntk_fast.ops._registry`):
``"numba"`` (native on "cpu"; a fused parallel pass built from the
activation's ``numba_dual``; closed forms only) and ``"naive"`` (torch; every
activation and dual rule).
"""
from __future__ import annotations

from typing import Any

import torch

from .._registry import Op
from ..dual import numba_dual_check, plan_dual

__all__ = ["CNTK_STEP", "cntk_step"]


CNTK_STEP = Op("cntk_step")
CNTK_STEP.register("numba", "gntk_fast.ops.cntk_step.numba:step", devices=("cpu",), check=numba_dual_check)
CNTK_STEP.register("naive", "gntk_fast.ops.cntk_step.naive:step", devices=("cpu", "cuda"))


def cntk_step(Y: torch.Tensor, nbr: torch.Tensor, e1: torch.Tensor, e2: torch.Tensor, D1: torch.Tensor,
              D2: torch.Tensor, ii: torch.Tensor, jj: torch.Tensor, same: torch.Tensor, *, groups: int,
              trainable: str = "mask", activation: Any = "relu", dual: str | None = None, quad_nodes: int = 32,
              backend: str = "auto") -> torch.Tensor:
    """The step of the module docstring: ``out`` (B, E, 2, K).

    Y (B, E, H, groups K + 1) with H in (1, 2); nbr (E, T) int64; e1, e2 (E,)
    int64 pixel indices; D1 (N1, P, K), D2 (N2, P, K) variances; ii, jj (B,)
    int64; same (B,) bool; ``groups`` 1 (shared graphon) or T (per tap).
    """
    if not isinstance(Y, torch.Tensor) or Y.dim() != 4 or Y.shape[2] not in (1, 2):
        raise ValueError(f"Y must be a (B, E, 1 or 2, M) tensor; got {getattr(Y, 'shape', type(Y).__name__)}")
    B, E, _, M = Y.shape
    if not isinstance(nbr, torch.Tensor) or nbr.dim() != 2 or nbr.shape[0] != E:
        raise ValueError(f"nbr must be an (E={E}, T) integer tensor")
    T = nbr.shape[1]
    if groups not in (1, T):
        raise ValueError(f"groups must be 1 or the number of taps {T}; got {groups}")
    if D1.dim() != 3 or D2.dim() != 3 or D1.shape[2] != D2.shape[2]:
        raise ValueError("D1 and D2 must be (N, P, K) tensors with one K")
    K = D1.shape[2]
    if M != groups * K + 1:
        raise ValueError(f"Y must have groups * K + 1 = {groups * K + 1} columns; got {M}")
    if trainable not in ("mask", "all"):
        raise ValueError(f"trainable must be 'mask' or 'all'; got {trainable!r}")
    plan = plan_dual(activation, dual=dual, quad_nodes=quad_nodes, backend="naive", device=Y.device)
    b = CNTK_STEP.resolve(backend, Y.device.type, act=plan.activation, rule=plan.rule)
    return b.load()(plan, Y, nbr, e1, e2, D1, D2, ii, jj, same, groups, trainable == "mask")
