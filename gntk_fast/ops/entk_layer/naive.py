"""The naive twin of the masked eNTK layer term: the test oracle of every backend.

It follows the definition literally. The Jacobian of input a with respect to
the kept weights is ``J[a, c, e] = D[a, c, i_e] H[a, j_e]`` for kept edge
e = (i_e, j_e) (``mask=None``: every edge), and the layer term is

    traced: T[a, b]       = sum_{c, e} J1[a, c, e] J2[b, c, e]
    full:   T[a, b, c, c'] = sum_e     J1[a, c, e] J2[b, c', e]

The edges are walked in row-major order in blocks of ``block_edges``; one
block's slices of J1 and J2 (N x k x block each) are formed and contracted, so
memory stays near ``(N1 + N2) k block_edges`` elements (never the N x nnz
Jacobian). No complement trick, no compaction, no tiling: it runs on any
device torch does, in the inputs' dtype.
"""
from __future__ import annotations

import torch

from ._common import symmetrize

__all__ = ["masked_ntk_layer_naive", "default_block_edges"]

#: elements of one side's Jacobian block (~128 MiB in float64)
_BLOCK_ELEMENTS = 1 << 24


def default_block_edges(n_rows: int, k: int) -> int:
    """Edges per block so that one side's block (n_rows x k x block) stays near 2**24 elements."""
    return max(1, _BLOCK_ELEMENTS // max(1, n_rows * k))


def masked_ntk_layer_naive(D1, H1, D2=None, H2=None, mask=None, *, trace: bool = True, tf32: bool = False,
                           block_edges: int | None = None) -> torch.Tensor:
    """Unscaled masked layer term by blocks of kept edges (arguments already validated).

    D1 (N1, k, n_out), H1 (N1, n_in); D2/H2 the same for N2 rows, or None for the
    first set (the result is then made exactly symmetric); mask (n_out, n_in) bool
    or None (all kept). Returns (N1, N2) when ``trace`` else (N1, N2, k, k), in
    D1's dtype. ``tf32`` is accepted and ignored (exact products).
    """
    sym = D2 is None
    if sym:
        D2, H2 = D1, H1
    N1, k, n_out = D1.shape
    N2, n_in = D2.shape[0], H1.shape[1]
    if mask is None:
        mask = torch.ones(n_out, n_in, dtype=torch.bool, device=D1.device)
    rows, cols = torch.nonzero(mask, as_tuple=True)
    shape = (N1, N2) if trace else (N1, N2, k, k)
    out = torch.zeros(shape, dtype=D1.dtype, device=D1.device)
    block = block_edges or default_block_edges(max(N1, N2), k)
    for e0 in range(0, rows.numel(), block):
        ii, jj = rows[e0:e0 + block], cols[e0:e0 + block]
        J1 = D1[:, :, ii] * H1[:, None, jj]  # (N1, k, B)
        J2 = D2[:, :, ii] * H2[:, None, jj]  # (N2, k, B)
        if trace:
            out += J1.reshape(N1, -1) @ J2.reshape(N2, -1).T
        else:
            out += torch.einsum("ace,bde->abcd", J1, J2)
    return symmetrize(out, trace) if sym else out
