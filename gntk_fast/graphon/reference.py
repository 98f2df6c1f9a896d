"""Plain numpy SAS: the obviously-right twin of :func:`gntk_fast.graphon.sas`.

It unpacks, sorts the mask explicitly and takes the mean of every block
slice; the tests require it to agree with the Numba kernels exactly (same
permutations, degrees, edges and bit-identical H).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._masks import block_edges, check_uint8_values, coerce_mask, descending_stable_order
from .._validation import check_bool
from .sas import SASResult, _check_smooth, _resolve_K, tv_smooth

__all__ = ["sas_reference"]


def sas_reference(
    mask: Any,
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    n_in: int | None = None,
) -> SASResult:
    """Numpy SAS of one mask; same arguments and result as :func:`gntk_fast.graphon.sas`
    (single mask only)."""
    sort_cols = check_bool("sort_cols", sort_cols)
    m = coerce_mask(mask, n_in=n_in)
    if m.packed:
        M = np.unpackbits(m.data, axis=1, count=m.n_in).astype(bool)
    else:
        check_uint8_values("mask", m.data)
        M = m.data.astype(bool)
    n_out, n_cols = M.shape
    K, K_in = _resolve_K(K, K_in, sort_cols, n_out, n_cols)
    smooth = _check_smooth(smooth)

    # 1. degrees
    row_degrees = M.sum(axis=1, dtype=np.int64)
    col_degrees = M.sum(axis=0, dtype=np.int64)
    # 2. stable descending sorts
    row_perm = descending_stable_order(row_degrees)
    col_perm = descending_stable_order(col_degrees) if sort_cols else np.arange(n_cols, dtype=np.int64)
    sorted_M = M[row_perm][:, col_perm]
    # 3. block edges floor(b n / K)
    row_edges = block_edges(n_out, K, "K")
    col_edges = block_edges(n_cols, K_in, "K_in")
    # 4. block means
    H = np.empty((K, K_in), dtype=np.float64)
    for a in range(K):
        rows = sorted_M[row_edges[a] : row_edges[a + 1]]
        for b in range(K_in):
            block = rows[:, col_edges[b] : col_edges[b + 1]]
            H[a, b] = np.count_nonzero(block) / block.size
    # 5. optional smoothing
    Hs = tv_smooth(H, smooth) if smooth is not None else H
    return SASResult(Hs, H, row_perm, col_perm, row_degrees, col_degrees, row_edges, col_edges, (n_out, n_cols), sort_cols, smooth, 1, None)
