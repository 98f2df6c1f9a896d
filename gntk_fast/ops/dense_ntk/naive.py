"""The naive twin of the dense_ntk operation (plain torch; the oracle of the tests).

The recursion of :mod:`gntk_fast.ops.dense_ntk` written over whole
(N1, N2) matrices, one layer at a time, with the activation's torch dual
(any rule). Identical inputs are found with ``torch.unique`` over the rows;
the diagonals are computed once per distinct row, and the pairs of identical
inputs take the diagonal's covariance at every layer.
"""
from __future__ import annotations

import torch

from ..dual import DualPlan

__all__ = ["dense_ntk"]


def dense_ntk(plan: DualPlan, x1: torch.Tensor, x2: torch.Tensor | None, v, c, trainable: str, k: int,
              return_nngp: bool, progress=None):
    """``(theta, nngp or None)``; arguments as validated by :func:`gntk_fast.ops.dense_ntk.dense_ntk`."""
    f = plan.function()
    y = x1 if x2 is None else x2
    d = x1.shape[1]
    L = len(v) - 1
    q = x1 @ y.T / d
    # one diagonal per distinct row, so identical inputs get bitwise identical diagonals
    rows = x1 if x2 is None else torch.cat([x1, x2])
    uniq, ids = torch.unique(rows, dim=0, return_inverse=True)
    nu = (uniq * uniq).sum(1) / d
    id1 = ids[: len(x1)]
    id2 = id1 if x2 is None else ids[len(x1):]
    n1, n2 = nu[id1], nu[id2]
    same = id1[:, None] == id2[None, :]
    a, b = v[0] * n1, v[0] * n2  # diagonals s^l(x, x), s^l(x', x')
    s, own = v[0] * q, c[0] * q
    pre, dots, acts = [], [], [q]
    for l in range(L):
        s = torch.where(same, a[:, None].expand_as(s), s)
        S, Sd = f(a[:, None].expand_as(s), b[None, :].expand_as(s), s)
        pre.append(own if trainable == "mask" else acts[-1])
        dots.append(Sd)
        acts.append(S)
        s, own = v[l + 1] * S, c[l + 1] * S
        a, b = v[l + 1] * f(a, a, a)[0], v[l + 1] * f(b, b, b)[0]
    nngp = s
    G = v[L] * dots[-1]
    theta = (own if trainable == "mask" else k * acts[-1]) + G * pre[-1]
    for l in range(L - 2, -1, -1):
        G = dots[l] * (v[l + 1] * G)
        theta = theta + G * pre[l]
    if x2 is None:  # the symmetric kernel: the upper triangle, mirrored
        theta = torch.triu(theta) + torch.triu(theta, 1).T
        nngp = torch.triu(nngp) + torch.triu(nngp, 1).T
    return theta, (nngp if return_nngp else None)
