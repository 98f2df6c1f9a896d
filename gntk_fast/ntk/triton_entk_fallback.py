"""Plain torch twin of the Triton eNTK layer kernel (float64 path and test oracle).

:func:`masked_ntk_layer_torch` computes exactly what
:func:`gntk_fast.ntk.triton_entk.masked_ntk_layer_triton` computes, with the
same argument conventions, in the most direct memory-bounded way:

* ``mask is None``: the all-ones factorisation
  ``T = sum_c (D1_c D2_c^T) o (H1 H2^T)`` (traced) or
  ``T[a,b,c,c'] = (D1_c D2_c'^T)[a,b] (H1 H2^T)[a,b]`` (full);
* otherwise the kept edges e = (i_e, j_e) (row-major order) are walked in
  blocks of ``block_edges``; a block's Jacobian slice
  ``J[a, c, e] = D[a, c, i_e] H[a, j_e]`` (N x k x block) is formed and
  contracted, so at most ``N * k * block_edges`` elements exist at a time
  (never the N x nnz Jacobian).

It is used by the Triton entry point for float64 inputs (Triton's fp64 dot is
not used: the brief allows a torch path there) and by the tests as the twin.
"""
from __future__ import annotations

import torch

__all__ = ["masked_ntk_layer_torch", "default_block_edges"]

#: elements of one Jacobian block (per side) the fallback allows, ~128 MiB in float64
_BLOCK_ELEMENTS = 1 << 24


def default_block_edges(n_rows: int, k: int) -> int:
    """Edges per block so that one side's block (n_rows x k x block) stays near 2**24 elements."""
    return max(1, _BLOCK_ELEMENTS // max(1, n_rows * k))


def masked_ntk_layer_torch(
    D1: torch.Tensor,
    H1: torch.Tensor,
    D2: torch.Tensor | None = None,
    H2: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    *,
    trace: bool = True,
    block_edges: int | None = None,
) -> torch.Tensor:
    """Unscaled masked eNTK layer term, torch only (inputs assumed validated).

    Shapes: D1 (N1, k, n_out), H1 (N1, n_in), D2/H2 likewise for N2 rows
    (None -> the x1 tensors), mask (n_out, n_in) bool or None (all kept).
    Returns (N1, N2) when ``trace`` else (N1, N2, k, k), in D1's dtype:

        traced: T[a,b]       = sum_{c,i,j} M_ij D1[a,c,i] D2[b,c,i] H1[a,j] H2[b,j]
        full:   T[a,b,c,c']  = sum_{i,j}   M_ij D1[a,c,i] D2[b,c',i] H1[a,j] H2[b,j]
    """
    if D2 is None:
        D2, H2 = D1, H1
    N1, k, n_out = D1.shape
    N2 = D2.shape[0]
    if mask is None:
        gh = H1 @ H2.T  # (N1, N2)
        if trace:
            gd = D1.reshape(N1, k * n_out) @ D2.reshape(N2, k * n_out).T
            return gd * gh
        gd = torch.einsum("aci,bdi->abcd", D1, D2)
        return gd * gh[:, :, None, None]
    rows, cols = torch.nonzero(mask, as_tuple=True)
    nnz = rows.numel()
    if trace:
        out = torch.zeros(N1, N2, dtype=D1.dtype, device=D1.device)
    else:
        out = torch.zeros(N1, N2, k, k, dtype=D1.dtype, device=D1.device)
    block = block_edges or default_block_edges(max(N1, N2), k)
    for e0 in range(0, nnz, block):
        ii = rows[e0:e0 + block]
        jj = cols[e0:e0 + block]
        J1 = D1[:, :, ii] * H1[:, None, jj]  # (N1, k, B)
        J2 = D2[:, :, ii] * H2[:, None, jj]  # (N2, k, B)
        if trace:
            out += J1.reshape(N1, -1) @ J2.reshape(N2, -1).T
        else:
            out += torch.einsum("ace,bde->abcd", J1, J2)
    return out
