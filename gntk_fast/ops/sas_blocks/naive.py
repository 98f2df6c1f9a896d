"""Plain numpy SAS blocks: the obviously-right twin of the Numba backend.

It unpacks the mask, sorts it explicitly and takes the mean of every block
slice; the tests require the Numba backend to agree with it exactly (same
permutations, degrees, edges and bit-identical H).
"""
from __future__ import annotations

import numpy as np

from ..._masks import MaskInput, block_edges, check_uint8_values, descending_stable_order

__all__ = ["sas_blocks"]


def sas_blocks(mask: MaskInput, K: int, K_in: int, sort_cols: bool, name: str = "mask", threads: int | None = None):
    """Numpy SAS blocks of a coerced mask (``threads`` is ignored):
    ``(H, row_perm, col_perm, row_degrees, col_degrees, row_edges, col_edges)``."""
    if mask.packed:
        M = np.unpackbits(mask.data, axis=1, count=mask.n_in).astype(bool)
    else:
        check_uint8_values(name, mask.data)
        M = mask.data.astype(bool)
    n_out, n_in = M.shape
    # 1. degrees
    row_degrees = M.sum(axis=1, dtype=np.int64)
    col_degrees = M.sum(axis=0, dtype=np.int64)
    # 2. stable descending sorts
    row_perm = descending_stable_order(row_degrees)
    col_perm = descending_stable_order(col_degrees) if sort_cols else np.arange(n_in, dtype=np.int64)
    sorted_M = M[row_perm][:, col_perm]
    # 3. block edges floor(b n / K)
    row_edges = block_edges(n_out, K, "K")
    col_edges = block_edges(n_in, K_in, "K_in")
    # 4. block means
    H = np.empty((K, K_in), dtype=np.float64)
    for a in range(K):
        rows = sorted_M[row_edges[a] : row_edges[a + 1]]
        for b in range(K_in):
            block = rows[:, col_edges[b] : col_edges[b + 1]]
            H[a, b] = np.count_nonzero(block) / block.size
    return H, row_perm, col_perm, row_degrees, col_degrees, row_edges, col_edges
