"""Numba backend of the dense_ntk operation: one GEMM, then one fused pass over the pairs.

* The Gram matrix ``x1 x2^T`` (q is it over d) is one torch GEMM, or with x2 = x1
  and N >= 256 one one-threaded GEMM per block of rows for the upper triangle
  only, the blocks shared by a pool of threads (:func:`gram`); one thread
  below :data:`gntk_fast._threads.SMALL_WORK` multiply-adds. Its buffer
  becomes the result.
* The diagonals ``s^l(x, x)`` of every input and layer (L x N) come from one
  small compiled loop; an input's squared norm is summed in a fixed order, so
  identical rows get bitwise identical diagonals.
* The pairs: a parallel loop over rows of pairs (with x2 = x1, iteration t
  takes the rows t and N - 1 - t of the triangle j >= i, so every iteration
  has the same work). Per row, the forward recursion runs layer by layer over
  the row's pairs (the activation's scalar closed form ``numba_dual``,
  vectorised by LLVM where it is select-only, as ReLU's is), then the
  backward recursion; the result overwrites the row of q. A pair is checked
  for identical inputs only when ``|x - x'|^2 / d = q11 + q22 - 2 q12`` is
  within the Gram matrix's rounding of 0 (then by comparing the two rows),
  so no sort of the inputs is needed. Per-thread row buffers (O(L N2)) are
  allocated once per call.
* With x2 = x1 the triangle is mirrored at the end (a blocked copy).

Rows are handed to the threads in chunks, dynamically (a thread descheduled
on a busy machine does not hold up the call). Small calls run on one thread (:func:`gntk_fast._threads.threads_for`).
The recursion runs in float64 also for float32 inputs (the GEMM and the
result are float32).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Callable

import numba
import numpy as np
import torch

from ..._progress import progress_bar
from ..._threads import threads_for, torch_threads
from ..dual import DualPlan

__all__ = ["dense_ntk", "kernels", "gram"]

#: pairs per progress step (and below this many pairs no bar is made)
_BLOCK_PAIRS = 1 << 22
#: chunks of rows per thread in the parallel pass (dynamic scheduling)
_CHUNKS_PER_THREAD = 8
#: most row blocks of the symmetric Gram matrix
_GRAM_BLOCKS = 8
#: multiply-adds (or elementwise flops) per pair and layer, for the thread rule
_FLOPS_PER_PAIR_LAYER = 64


@lru_cache(maxsize=None)
def kernels(scalar: Callable) -> tuple[Callable, Callable, Callable]:
    """``(diagonals, pairs, mirror)`` compiled for one scalar closed form ``(q11, q22, q12) -> (S, Sd)``."""
    f = scalar if isinstance(scalar, numba.core.dispatcher.Dispatcher) else numba.njit(error_model="numpy")(scalar)

    @numba.njit(error_model="numpy")
    def diagonals(X, v, out, nrm):  # pragma: no cover - compiled
        # nrm[i] = |x_i|^2 / d, out[l, i] = s^{l+1}(x_i, x_i)
        N, d = X.shape
        L = out.shape[0]
        for i in range(N):
            acc = 0.0
            for m in range(d):
                acc += X[i, m] * X[i, m]
            n = acc / d
            nrm[i] = n
            a = v[0] * n
            out[0, i] = a
            for l in range(1, L):
                S, _ = f(a, a, a)
                a = v[l] * S
                out[l, i] = a

    # the loops over a row's pairs work on 1-D contiguous arrays, at most four of them, so that LLVM
    # vectorises them (more arrays exceed its budget of run-time aliasing checks)
    @numba.njit(error_model="numpy")
    def dual(a, b, x, sd):  # pragma: no cover - compiled
        # x <- S, sd <- Sd of the activation at (a, b[j], x[j])
        for j in range(x.shape[0]):
            S, Sd = f(a, b[j], x[j])
            sd[j] = Sd
            x[j] = S

    @numba.njit(error_model="numpy")
    def scale(x, out, m1, m2):  # pragma: no cover - compiled
        # out <- m2 x, x <- m1 x
        for j in range(x.shape[0]):
            S = x[j]
            out[j] = m2 * S
            x[j] = m1 * S

    @numba.njit(error_model="numpy")
    def backward(sd, pre, G, th, vl):  # pragma: no cover - compiled
        # G <- Sd (v G), th += G pre
        for j in range(G.shape[0]):
            g = sd[j] * (vl * G[j])
            G[j] = g
            th[j] += g * pre[j]

    @numba.njit(error_model="numpy")
    def row(i, Q, nngp, want_nngp, X1, X2, D1, D2, n1s, n2s, v, c, all_mode, k, sym, tol, W, P, idx):  # pragma: no cover
        # W (3, N2): work rows; P (2 L, N2): per layer the gradient term's factor and Sd; idx (N2,) int
        L = D1.shape[0]
        N2 = Q.shape[1]
        d = X1.shape[1]
        j0 = i if sym else 0
        n = N2 - j0
        q = Q[i, j0:]
        cur, G, th = W[0, :n], W[1, :n], W[2, :n]
        n1 = n1s[i]
        n2 = n2s[j0:]
        # layer 1, and the pairs of identical inputs: |x - x'|^2 / d within the rounding of 0, then equal rows
        v0 = v[0]
        m0 = 1.0 if all_mode else c[0]
        pre0 = P[0, :n]
        for jj in range(n):
            qd = q[jj] / d  # the Gram matrix holds x.x'
            cur[jj] = qd
            pre0[jj] = m0 * qd
        ns = 0
        for jj in range(n):
            if n1 + n2[jj] - 2.0 * cur[jj] <= tol * (n1 + n2[jj]):
                j = j0 + jj
                eq = True
                for m in range(d):
                    if X1[i, m] != X2[j, m]:
                        eq = False
                        break
                if eq:
                    idx[ns] = jj
                    ns += 1
        for jj in range(n):
            cur[jj] *= v0
        for l in range(L):
            a = D1[l, i]
            for t in range(ns):
                cur[idx[t]] = a
            dual(a, D2[l, j0:], cur, P[L + l, :n])
            if l + 1 < L:
                scale(cur, P[l + 1, :n], v[l + 1], 1.0 if all_mode else c[l + 1])
            else:
                scale(cur, th, v[L], k if all_mode else c[L])  # cur <- NNGP, th <- the read-out term
        if want_nngp:
            nngp[i, j0:] = cur
        vL = v[L]
        sd = P[2 * L - 1, :n]
        pre = P[L - 1, :n]
        for jj in range(n):
            g = vL * sd[jj]
            G[jj] = g
            th[jj] += g * pre[jj]
        for l in range(L - 2, -1, -1):
            backward(P[L + l, :n], P[l, :n], G, th, v[l + 1])
        q[:] = th

    @numba.njit(parallel=True, error_model="numpy")
    def pairs(Q, nngp, want_nngp, X1, X2, D1, D2, n1s, n2s, v, c, all_mode, k, sym, tol, t0, t1, T):  # pragma: no cover
        # T: the size of Numba's thread pool (every thread id is below it)
        L = D1.shape[0]
        N1, N2 = Q.shape
        work = np.empty((T, 3, N2))
        lay = np.empty((T, 2 * L, N2))
        idx = np.empty((T, N2), np.int64)
        for t in numba.prange(t0, t1):
            tid = numba.get_thread_id()
            row(t, Q, nngp, want_nngp, X1, X2, D1, D2, n1s, n2s, v, c, all_mode, k, sym, tol, work[tid], lay[tid], idx[tid])
            if sym and N1 - 1 - t != t:
                row(N1 - 1 - t, Q, nngp, want_nngp, X1, X2, D1, D2, n1s, n2s, v, c, all_mode, k, sym, tol, work[tid], lay[tid], idx[tid])

    @numba.njit(parallel=True)
    def mirror(Q, B):  # pragma: no cover - compiled
        # Q[j, i] = Q[i, j] for j > i, in B x B blocks
        N = Q.shape[0]
        nb = (N + B - 1) // B
        for bi in numba.prange(nb):
            i0 = bi * B
            for bj in range(bi, nb):
                j0 = bj * B
                for i in range(i0, min(N, i0 + B)):
                    for j in range(max(j0, i + 1), min(N, j0 + B)):
                        Q[j, i] = Q[i, j]

    return diagonals, pairs, mirror


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(n: int) -> ThreadPoolExecutor:
    """A pool of ``n`` threads for the row blocks of the Gram matrix, made once per size and
    process (a forked child has none of its parent's threads, so it makes its own)."""
    key = (os.getpid(), n)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = ThreadPoolExecutor(n, thread_name_prefix="gntk_fast-gram")
    return pool


def gram(x1: torch.Tensor, x2: torch.Tensor | None) -> np.ndarray:
    """``x1 x2^T`` as a C-contiguous numpy array.

    With x2 None only the upper triangle j >= i is defined: row blocks
    ``x1[b] x1[b0:]^T`` written in place (about (nb + 1) / (2 nb) of the
    multiply-adds of the full product; nb blocks of at least 128 rows, at most
    :data:`_GRAM_BLOCKS`), each a one-threaded GEMM, the blocks taken by the
    threads of a pool as they come free (so a thread that the OS deschedules
    on a busy machine holds up nothing)."""
    n1 = x1.shape[0]
    y = x1 if x2 is None else x2
    nb = max(1, min(_GRAM_BLOCKS, n1 // 128)) if x2 is None else 1
    threads = threads_for(n1 * y.shape[0] * x1.shape[1] * (nb + 1) / (2 * nb))
    if nb <= 1:
        with torch_threads(threads):
            return torch.mm(x1, y.T).numpy()
    out = torch.empty(n1, n1, dtype=x1.dtype)
    edges = np.linspace(0, n1, nb + 1).astype(np.int64)

    def block(b: int) -> None:  # a strided view: BLAS writes it in place
        b0, b1 = int(edges[b]), int(edges[b + 1])
        torch.mm(x1[b0:b1], x1[b0:].T, out=out[b0:b1, b0:])

    with torch_threads(1):
        if threads > 1:
            list(_pool(threads).map(block, range(nb)))  # the largest blocks first
        else:
            for b in range(nb):
                block(b)
    return out.numpy()


def dense_ntk(plan: DualPlan, x1: torch.Tensor, x2: torch.Tensor | None, v, c, trainable: str, k: int,
              return_nngp: bool, progress=None):
    """``(theta, nngp or None)``; arguments as validated by :func:`gntk_fast.ops.dense_ntk.dense_ntk`."""
    diagonals, pairs, mirror = kernels(plan.activation.numba_dual)
    sym = x2 is None
    X1 = x1.numpy()
    X2 = X1 if sym else x2.numpy()
    N1, d = X1.shape
    N2 = X2.shape[0]
    L = len(v) - 1
    vv = np.asarray(v, dtype=np.float64)
    cc = np.asarray(c, dtype=np.float64)
    Q = gram(x1, x2)  # x.x' (the kernel divides by d)
    nngp = np.empty_like(Q) if return_nngp else np.empty((1, 1), Q.dtype)
    D1, n1 = np.empty((L, N1)), np.empty(N1)
    diagonals(X1, vv, D1, n1)
    if sym:
        D2, n2 = D1, n1
    else:
        D2, n2 = np.empty((L, N2)), np.empty(N2)
        diagonals(X2, vv, D2, n2)
    # |x - x'|^2 / d computed as n1 + n2 - 2 q carries at most ~2 d eps (n1 + n2) of rounding
    tol = 8.0 * d * float(np.finfo(X1.dtype).eps)
    total = N1 * (N1 + 1) // 2 if sym else N1 * N2
    iters = (N1 + 1) // 2 if sym else N1
    per_iter = max(1, total // iters)
    prev = numba.get_num_threads()
    numba.set_num_threads(min(prev, threads_for(total * L * _FLOPS_PER_PAIR_LAYER)) if total else 1)
    try:
        step = max(1, _BLOCK_PAIRS // per_iter)
        bar = progress_bar(total=total, desc="graphon_ntk pairs", unit="pair", progress=progress) \
            if (progress or (progress is None and total > _BLOCK_PAIRS)) else None
        pool = numba.config.NUMBA_NUM_THREADS
        done = 0
        for t0 in range(0, iters, step):
            t1 = min(iters, t0 + step)
            # chunks of rows handed out dynamically: a thread that the OS deschedules on a busy
            # machine leaves its remaining rows to the others instead of holding up the whole call
            with numba.parallel_chunksize(max(1, (t1 - t0) // (_CHUNKS_PER_THREAD * numba.get_num_threads()))):
                pairs(Q, nngp, return_nngp, X1, X2, D1, D2, n1, n2, vv, cc, trainable == "all", float(k), sym, tol,
                      t0, t1, pool)
            if bar is not None:
                now = total if t1 == iters else min(total, t1 * per_iter)
                bar.update(now - done)
                done = now
        if bar is not None:
            bar.close()
        if sym:
            mirror(Q, 64)
            if return_nngp:
                mirror(nngp, 64)
    finally:
        numba.set_num_threads(prev)
    theta = torch.from_numpy(Q)
    return theta, (torch.from_numpy(nngp) if return_nngp else None)
