"""Numba backend of the dual operation: one fused parallel pass over the pairs.

The pair kernel is built once per activation from its scalar closed form
``Activation.numba_dual`` ``(q11, q22, q12) -> (S, Sd)``: for every pair p and
node a it reads ``Da[ii[p], a], Db[jj[p], a], s[p, a]`` and writes
``S[p, a], Sd[p, a]`` (gather included; no torch temporaries). The node matmul
``S @ BT`` and the backward step are the naive twin's torch GEMMs.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numba
import numpy as np
import torch

from ...activations import Activation
from .naive import DualKernels, backward

__all__ = ["pair_kernel", "pair_dual", "pairs", "KERNELS"]

# below this many entries the kernel runs on the calling thread alone: waking the
# worker threads costs more than the work on a busy machine
_PARALLEL_MIN = 1 << 15


@lru_cache(maxsize=None)
def pair_kernel(scalar: Callable) -> Callable:
    """The compiled ``kernel(Da, Db, ii, jj, s, S, Sd)`` for a scalar closed form."""
    # error_model="numpy" (inf/nan on a division by zero instead of an exception) lets LLVM vectorise
    # the loop over the nodes where the closed form is select-only (the ReLU one is)
    f = scalar if isinstance(scalar, numba.core.dispatcher.Dispatcher) else numba.njit(error_model="numpy")(scalar)

    def kernel(Da, Db, ii, jj, s, S, Sd):  # pragma: no cover - compiled
        P, K = s.shape
        for p in numba.prange(P):
            i = ii[p]
            j = jj[p]
            for a in range(K):
                v, dv = f(Da[i, a], Db[j, a], s[p, a])
                S[p, a] = v
                Sd[p, a] = dv

    return numba.njit(parallel=True, error_model="numpy")(kernel)


def pair_dual(act: Activation, Da: torch.Tensor, Db: torch.Tensor, ii: torch.Tensor, jj: torch.Tensor, s: torch.Tensor):
    """``(S, Sd)`` (P, K) of the pairs (CPU tensors of one dtype; ii, jj int64)."""
    kern = pair_kernel(act.numba_dual)
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


def pairs(act: Activation, rule: str, quad_nodes: int, Da, Db, ii, jj, s, BT):
    """``(S, Sd, S @ BT)`` (closed forms only; ``rule`` and ``quad_nodes`` are checked by the registry)."""
    S, Sd = pair_dual(act, Da, Db, ii, jj, s)
    return S, Sd, S @ BT


KERNELS = DualKernels(pairs, backward)
