"""The torch backend of the masked per-example-gradient term: kept entries only.

The per-example gradient ``G[a, c] = D[a, c] @ U[a]^T`` is formed for the kept
entries of the mask only and contracted as one GEMM over them:

* **sparse** (when the longest row keeps at most :data:`SPARSE_DENSITY` of
  the q patch rows): every output unit o keeps the patch rows ``J_o``; they
  are padded to the longest row ``m`` (padding weighted 0) and gathered,
  ``U[:, J] -> (N, n_out, m, p)``, so the kept gradients are one batched
  product ``(N n_out) x (k x p) @ (p x m)``: work ``N k n_out m p`` instead
  of ``N k n_out q p``, but the gather moves ``N n_out m p`` numbers, about
  8 k times the cost of a multiply-add in a GEMM on the CPUs measured
  (bench/bench_entk_conv.py): it pays only below m / q ~ 1/8.
* **dense** (otherwise): one batched GEMM ``(N, k n_out, p) @ (N, p, q)``
  forms every gradient, then the kept entries are selected. Its time does
  not fall with the density; only the contraction's does.

Either way the kept gradients ``(N, k, nnz)`` are contracted by one GEMM,
``(N1, k nnz) @ (k nnz, N2)`` traced or ``(N1 k, nnz) @ (nnz, N2 k)`` full
(``N1 N2 k nnz`` multiply-adds), or squared and summed for the diagonal.
Memory: the kept gradients of both input sets, plus the gathered patches (or
the full gradients) of one chunk of output units within :data:`CHUNK_BYTES`.
"""
from __future__ import annotations

import torch

from ..entk_layer._common import delta_gram, symmetrize

__all__ = ["masked_grad_term_gather", "kept_gradients", "SPARSE_DENSITY", "CHUNK_BYTES"]

#: the row gather forms the kept gradients when the longest kept row holds at most
#: this fraction of the patch rows (measured crossover, see the module docstring)
SPARSE_DENSITY = 0.125
#: working memory of one chunk of output units (gathered patches or full per-example gradients)
CHUNK_BYTES = 256 << 20


def _row_index(mask: torch.Tensor):
    """(n_out, m) patch-row indices of each output unit's kept entries, padded with 0,
    and the (n_out, m) 0/1 weights of the padding."""
    counts = mask.sum(1)
    m = max(1, int(counts.max()))
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :m]  # kept columns first
    valid = torch.arange(m, device=mask.device)[None, :] < counts[:, None]
    return torch.where(valid, order, torch.zeros_like(order)), valid


def kept_gradients(D: torch.Tensor, U: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The per-example gradients at the kept entries, (N, k, nnz) (all entries when mask is None).

    Formed for chunks of output units whose gathered patches or full gradients stay within
    :data:`CHUNK_BYTES` (whatever the width), then concatenated in the units' order."""
    N, k, n_out, p = D.shape
    q = U.shape[1]
    sparse = mask is not None and int(mask.sum(1).max()) <= SPARSE_DENSITY * q
    if sparse:
        idx, valid = _row_index(mask)
        m = idx.shape[1]
        per_unit = N * m * (p + 2 * k)  # gathered patches, and the gradients with their permuted copy
    else:
        per_unit = 2 * N * k * q  # the gradients, and their kept entries
    step = max(1, CHUNK_BYTES // (per_unit * U.element_size()))
    parts = []
    for o0 in range(0, n_out, step):
        o1 = min(n_out, o0 + step)
        Dc = D[:, :, o0:o1]
        if sparse:
            Ug = U.index_select(1, idx[o0:o1].reshape(-1)).reshape(N, o1 - o0, m, p)
            G = torch.matmul(Ug, Dc.permute(0, 2, 3, 1))  # (N, units, m, k): the gathered patches read in place
            parts.append(G.permute(0, 3, 1, 2).reshape(N, k, (o1 - o0) * m)[:, :, valid[o0:o1].reshape(-1)])
            continue
        G = torch.bmm(Dc.reshape(N, k * (o1 - o0), p), U.transpose(1, 2)).reshape(N, k, (o1 - o0) * q)
        parts.append(G if mask is None else G[:, :, mask[o0:o1].reshape(-1)])
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


def masked_grad_term_gather(D1, U1, D2=None, U2=None, mask=None, *, trace: bool = True,
                            diagonal: bool = False) -> torch.Tensor:
    """The term from the kept gradients (arguments already validated); see the module docstring."""
    G1 = kept_gradients(D1, U1, mask)
    if diagonal:
        return (G1 * G1).sum((1, 2)) if trace else torch.bmm(G1, G1.transpose(1, 2))
    if D2 is None:
        return symmetrize(delta_gram(G1, None, trace), trace)
    return delta_gram(G1, kept_gradients(D2, U2, mask), trace)
