"""Fused CPU kernels (Numba, parallel) for the closed-form dual activations on a tile.

``pair_dual(name, Da, Db, ii, jj, s)`` with diagonals Da (N1, K), Db (N2, K),
pair indices ii, jj (P,) and cross covariances s (P, K) returns ``(S, Sd)`` of
shape (P, K) for the pairs (Da[ii[p]], Db[jj[p]], s[p]): one pass over memory
(gather included) instead of the
dozen temporaries of the torch expressions in :mod:`gntk_fast.ntk.dual`, whose
formulas (and edge cases) these kernels repeat exactly; the tests compare them.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

__all__ = ["pair_dual", "NUMBA_DUALS"]

_INV2PI = 0.5 / math.pi


def _relu_pairs(Da, Db, ii, jj, s, S, Sd):  # pragma: no cover - compiled
    P, K = s.shape
    for p in numba.prange(P):
        i = ii[p]
        j = jj[p]
        for a in range(K):
            a11 = Da[i, a]
            a22 = Db[j, a]
            c = s[p, a]
            det = a11 * a22 - c * c
            if det < 0.0:
                det = 0.0
            r = math.sqrt(det)
            pt = math.pi - math.atan2(r, c)
            S[p, a] = (r + pt * c) * _INV2PI
            if a11 > 0.0 and a22 > 0.0:
                Sd[p, a] = pt * _INV2PI
            else:
                Sd[p, a] = 0.0


def _erf_pairs(Da, Db, ii, jj, s, S, Sd):  # pragma: no cover - compiled
    P, K = s.shape
    for p in numba.prange(P):
        i = ii[p]
        j = jj[p]
        for a in range(K):
            q = (1.0 + 2.0 * Da[i, a]) * (1.0 + 2.0 * Db[j, a])
            c = s[p, a]
            x = 2.0 * c / math.sqrt(q)
            x = min(1.0, max(-1.0, x))
            S[p, a] = (2.0 / math.pi) * math.asin(x)
            Sd[p, a] = (4.0 / math.pi) / math.sqrt(max(q - 4.0 * c * c, 1.0))


NUMBA_DUALS = {name: numba.njit(parallel=True, cache=True)(fn) for name, fn in (("relu", _relu_pairs), ("erf", _erf_pairs))}
# below this many entries the kernel runs on the calling thread alone: waking the
# worker threads costs more than the work on a busy machine
_PARALLEL_MIN = 1 << 15


def pair_dual(name: str, Da: torch.Tensor, Db: torch.Tensor, ii: torch.Tensor, jj: torch.Tensor, s: torch.Tensor):
    """``(S, Sd)`` (P, K) of the pairs for ``name`` in NUMBA_DUALS (CPU tensors, one dtype)."""
    kern = NUMBA_DUALS[name]
    c = lambda t: np.ascontiguousarray(t.numpy())  # noqa: E731
    sn = c(s)
    S = np.empty_like(sn)
    Sd = np.empty_like(sn)
    args = (c(Da), c(Db), c(ii), c(jj), sn, S, Sd)
    if s.numel() >= _PARALLEL_MIN:
        kern(*args)
    else:
        prev = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            kern(*args)
        finally:
            numba.set_num_threads(prev)
    return torch.from_numpy(S), torch.from_numpy(Sd)
