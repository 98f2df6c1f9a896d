"""Plain numpy SAS: the obviously-right twin of :func:`gntk_fast.graphon.sas`.

:func:`sas_reference` is :func:`~gntk_fast.graphon.sas` on the ``naive``
backend of :func:`gntk_fast.ops.sas_blocks.sas_blocks`, which unpacks, sorts
the mask explicitly and takes the mean of every block slice; the tests
require it to agree with the Numba backend exactly (same permutations,
degrees, edges and bit-identical H).

The twins of :mod:`gntk_fast.graphon.estimators` are written the plain way:
:func:`usvt_reference` (full SVD, explicit threshold), :func:`network_histogram_reference`
(loops over candidate K, folds and blocks), :func:`largest_gap_reference`
(a loop picking the largest remaining gap).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .sas import SASResult, sas

__all__ = ["sas_reference", "usvt_reference", "network_histogram_reference", "largest_gap_reference"]


def sas_reference(
    mask: Any,
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    n_in: int | None = None,
) -> SASResult:
    """:func:`gntk_fast.graphon.sas` computed by the plain numpy twin (same arguments and result)."""
    return sas(mask, K, K_in, smooth, sort_cols, n_in=n_in, backend="naive")


def _sorted_dense(mask: Any):
    M = np.array(mask, dtype=np.float64)
    r, c = M.sum(1), M.sum(0)
    rp = np.array(sorted(range(M.shape[0]), key=lambda i: (-r[i], i)))
    cp = np.array(sorted(range(M.shape[1]), key=lambda j: (-c[j], j)))
    return M, r.astype(np.int64), c.astype(np.int64), rp, cp


def _block_means_loop(S: np.ndarray, re, ce) -> np.ndarray:
    H = np.zeros((len(re) - 1, len(ce) - 1))
    for a in range(len(re) - 1):
        for b in range(len(ce) - 1):
            H[a, b] = S[re[a]:re[a + 1], ce[b]:ce[b + 1]].mean()
    return H


def _uniform_edges(n: int, K: int) -> np.ndarray:
    return np.array([b * n // K for b in range(K + 1)], dtype=np.int64)


def usvt_reference(mask: Any, K: int | None = 64, K_in: int | None = None, *, eta: float = 0.01) -> SASResult:
    """:func:`gntk_fast.graphon.estimators.usvt` by a full numpy SVD of the dense mask."""
    M, r, c, rp, cp = _sorted_dense(mask)
    n, m = M.shape
    p = M.mean()
    tau = (1 + eta) * (np.sqrt(n) + np.sqrt(m)) * np.sqrt(p * (1 - p))
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    keep = s > tau
    P = np.clip((U[:, keep] * s[keep]) @ Vt[keep], 0.0, 1.0)
    S = P[rp][:, cp]
    if K is None:
        re, ce = np.arange(n + 1), np.arange(m + 1)
    else:
        re, ce = _uniform_edges(n, K), _uniform_edges(m, K if K_in is None else K_in)
    H = _block_means_loop(S, re, ce)
    return SASResult(H, H, rp, cp, r, c, re, ce, (n, m), True, None, 1, None)


def network_histogram_reference(mask: Any, K: Any = "auto", *, k_grid=None, seed: int = 0) -> SASResult:
    """:func:`gntk_fast.graphon.estimators.network_histogram` with explicit loops
    (the same random entry split: ``default_rng(seed).random(shape) < 0.5``)."""
    from .estimators import default_k_grid

    M, r, c, rp, cp = _sorted_dense(mask)
    n, m = M.shape
    S = M[rp][:, cp]
    if K == "auto":
        ks = list(default_k_grid(n, m) if k_grid is None else k_grid)
        fold = np.random.default_rng(seed).random(S.shape) < 0.5
        best, best_err = None, np.inf
        for k in ks:
            re, ce = _uniform_edges(n, k), _uniform_edges(m, k)
            err = 0.0
            for f in (fold, ~fold):
                sq, cnt = 0.0, 0
                for a in range(k):
                    for b in range(k):
                        blk = S[re[a]:re[a + 1], ce[b]:ce[b + 1]]
                        fb = f[re[a]:re[a + 1], ce[b]:ce[b + 1]]
                        mean = blk[fb].mean() if fb.any() else S.mean()
                        held = blk[~fb]
                        sq += float(((held - mean) ** 2).sum())
                        cnt += held.size
                err += sq / max(cnt, 1)
            if err / 2 < best_err - 1e-15:
                best, best_err = k, err / 2
        K = best
    re, ce = _uniform_edges(n, K), _uniform_edges(m, K)
    H = _block_means_loop(S, re, ce)
    return SASResult(H, H, rp, cp, r, c, re, ce, (n, m), True, None, 1, None)


def largest_gap_reference(mask: Any, K: int = 8, K_in: int | None = None) -> SASResult:
    """:func:`gntk_fast.graphon.estimators.largest_gap` by repeatedly taking the largest
    remaining gap (earliest position on ties)."""
    M, r, c, rp, cp = _sorted_dense(mask)
    n, m = M.shape

    def edges(deg, k):
        gaps = [(deg[i] - deg[i + 1], i) for i in range(len(deg) - 1)]
        chosen = []
        for _ in range(k - 1):
            g = max(gaps, key=lambda t: (t[0], -t[1]))
            gaps.remove(g)
            chosen.append(g[1] + 1)
        return np.array([0, *sorted(chosen), len(deg)], dtype=np.int64)

    re = edges(r[rp] / m, K)
    ce = edges(c[cp] / n, K if K_in is None else K_in)
    H = _block_means_loop(M[rp][:, cp], re, ce)
    return SASResult(H, H, rp, cp, r, c, re, ce, (n, m), True, None, 1, None)
