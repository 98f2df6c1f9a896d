"""Numba backend of the ``cntk_step`` operation: one fused parallel pass.

For every pair b and carried entry e (parallel over both) the kernel sums the
k^2 neighbours' rows of Y into the output row (no temporaries), then
evaluates the activation's scalar closed form ``Activation.numba_dual`` in
place and multiplies Sd into Theta.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numba
import numpy as np
import torch

__all__ = ["step_kernel", "step"]

# below this many output entries the kernel runs on the calling thread alone
_PARALLEL_MIN = 1 << 15


@lru_cache(maxsize=None)
def step_kernel(scalar: Callable) -> Callable:
    """The compiled ``kernel(Y, nbr, e1, e2, D1, D2, ii, jj, same, groups, mask, out)``."""
    # error_model="numpy": a division by zero gives inf/nan instead of raising, which lets LLVM
    # vectorise the loops over the K nodes (the closed forms guard their divisions themselves)
    f = scalar if isinstance(scalar, numba.core.dispatcher.Dispatcher) else numba.njit(error_model="numpy")(scalar)

    def kernel(Y, nbr, e1, e2, D1, D2, ii, jj, same, groups, mask, out):  # pragma: no cover - compiled
        B, E, H, _ = Y.shape
        K = D1.shape[2]
        T = nbr.shape[1]
        for idx in numba.prange(B * E):
            b = idx // E
            e = idx - b * E
            for a in range(K):
                out[b, e, 0, a] = 0.0
                out[b, e, 1, a] = 0.0
            own = 0.0
            for t in range(T):
                n = nbr[e, t]
                if n < 0:
                    continue
                base = t * K if groups > 1 else 0
                for a in range(K):
                    out[b, e, 0, a] += Y[b, n, 0, base + a]
                if H == 2:
                    for a in range(K):
                        out[b, e, 1, a] += Y[b, n, 1, base + a]
                own += Y[b, n, 0, groups * K]
            i = ii[b]
            j = jj[b]
            p1 = e1[e]
            p2 = e2[e]
            snap = same[b] and p1 == p2
            o0 = out[b, e, 0]
            o1 = out[b, e, 1]
            d1 = D1[i, p1]
            d2 = D2[j, p2]
            own_t = own / T
            for a in range(K):  # contiguous rows: vectorised where the closed form is select-only
                sig = o0[a] / T  # divided, not multiplied by 1/T: the naive twin's rounding
                th = o1[a] / T + (sig if mask else own_t)
                q11 = d1[a]
                s, sd = f(q11, d2[a], q11 if snap else sig)
                o0[a] = s
                o1[a] = sd * th

    return numba.njit(parallel=True, error_model="numpy")(kernel)


def step(plan, Y, nbr, e1, e2, D1, D2, ii, jj, same, groups: int, mask: bool) -> torch.Tensor:
    """``out`` (B, E, 2, K) (CPU tensors of one dtype; index tensors int64)."""
    kern = step_kernel(plan.activation.numba_dual)
    c = lambda t: np.ascontiguousarray(t.numpy())  # noqa: E731
    B, E = Y.shape[0], Y.shape[1]
    K = D1.shape[2]
    out = np.empty((B, E, 2, K), dtype=c(Y[:0]).dtype)
    args = (c(Y), c(nbr), c(e1), c(e2), c(D1), c(D2), c(ii), c(jj), c(same), groups, mask, out)
    if out.size >= _PARALLEL_MIN:
        kern(*args)
    else:
        prev = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            kern(*args)
        finally:
            numba.set_num_threads(prev)
    return torch.from_numpy(out)
