"""The naive twin of the masked per-example-gradient term: the test oracle.

It follows the definition literally: the per-example weight gradient of input
a and output c is the matrix ``G[a, c] = D[a, c] @ U[a]^T`` (n_out x q: output
unit o, patch row j), the pruned entries are zeroed, and the term is the sum
of products of these gradients over every entry::

    traced:   T[a, b]        = sum_{c, o, j} M[o, j] G1[a, c, o, j] G2[b, c, o, j]
    full:     T[a, b, c, c'] = sum_{o, j}    M[o, j] G1[a, c, o, j] G2[b, c', o, j]
    diagonal: T[a] = T1[a, a] (traced) or T[a, c, c'] = T1[a, a, c, c'] (full), x2 ignored

Every gradient is formed in full (N x k x n_out x q numbers): no compaction,
no gather, no tiling.
"""
from __future__ import annotations

import torch

__all__ = ["masked_grad_term_naive"]


def masked_grad_term_naive(D1, U1, D2=None, U2=None, mask=None, *, trace: bool = True,
                           diagonal: bool = False) -> torch.Tensor:
    """The term by explicit per-example gradients (arguments already validated)."""
    G1 = torch.einsum("acop,ajp->acoj", D1, U1)
    if mask is not None:
        G1 = G1 * mask.to(G1.dtype)
    if diagonal:
        return torch.einsum("acoj,acoj->a", G1, G1) if trace else torch.einsum("acoj,adoj->acd", G1, G1)
    G2 = G1 if D2 is None else torch.einsum("acop,ajp->acoj", D2, U2)
    if trace:
        return torch.einsum("acoj,bcoj->ab", G1, G2)
    return torch.einsum("acoj,bdoj->abcd", G1, G2)
