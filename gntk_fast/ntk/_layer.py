"""Shared pieces of the layer-term backends (C++, Triton): argument checks and
the dense GEMM factorisation.

A *layer term* is the unscaled bilinear form of one layer (spec graphon-ntk.md §1)

    traced: out[a, b]        = sum_{i,j} M_ij (sum_c D1[a,c,i] D2[b,c,i]) H1[a,j] H2[b,j]     (N1, N2)
    full:   out[a, b, c, c'] = sum_{i,j} M_ij D1[a,c,i] D2[b,c',i] H1[a,j] H2[b,j]           (N1, N2, k, k)

with D (N, k, n_out) the backward signals delta^l, H (N, n_in) the layer's
input activations h^{l-1} and M (n_out, n_in) the bool mask (None = all ones).
"""
from __future__ import annotations

import torch

from .._validation import check_tensor

__all__ = ["check_layer_args", "delta_gram", "dense_layer_term"]


def check_layer_args(D1, H1, D2, H2, mask, trace):
    """Validate the layer-term arguments; returns (D1, H1, D2 or None, H2 or None, mask or None)."""
    if not isinstance(trace, bool):
        raise ValueError(f"trace must be True or False; got {trace!r}")
    D1 = check_tensor("D1", D1, ndim=3)
    H1 = check_tensor("H1", H1, ndim=2)
    if (D2 is None) != (H2 is None):
        raise ValueError("D2 and H2 must both be given or both be None (None means the first set, symmetric)")
    if D1.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"D1 must have dtype float32 or float64; got {D1.dtype}")
    N1, k, n_out = D1.shape
    if H1.shape[0] != N1:
        raise ValueError(f"H1 must have N1 = {N1} rows like D1; got shape {tuple(H1.shape)}")
    n_in = H1.shape[1]
    tensors = [("H1", H1)]
    if D2 is not None:
        D2 = check_tensor("D2", D2, ndim=3)
        H2 = check_tensor("H2", H2, ndim=2)
        if tuple(D2.shape[1:]) != (k, n_out):
            raise ValueError(f"D2 must have shape (N2, {k}, {n_out}) like D1; got {tuple(D2.shape)}")
        if H2.shape != (D2.shape[0], n_in):
            raise ValueError(f"H2 must have shape ({D2.shape[0]}, {n_in}) (N2 rows, n_in like H1); got {tuple(H2.shape)}")
        tensors += [("D2", D2), ("H2", H2)]
    for name, t in tensors:
        if t.dtype != D1.dtype:
            raise ValueError(f"{name} must have the same dtype as D1 ({D1.dtype}); got {t.dtype}")
        if t.device != D1.device:
            raise ValueError(f"{name} is on {t.device} but D1 is on {D1.device}")
    if min(N1, k, n_out, n_in) == 0 or (D2 is not None and D2.shape[0] == 0):
        raise ValueError(f"D1/H1/D2/H2 must be non-empty; got D1 {tuple(D1.shape)}, H1 {tuple(H1.shape)}")
    if mask is not None:
        mask = check_tensor("mask", mask, ndim=2)
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must have dtype torch.bool; got {mask.dtype}")
        if tuple(mask.shape) != (n_out, n_in):
            raise ValueError(f"mask must have shape ({n_out}, {n_in}) = (n_out, n_in); got {tuple(mask.shape)}")
        if mask.device != D1.device:
            raise ValueError(f"mask is on {mask.device} but D1 is on {D1.device}")
    return D1, H1, D2, H2, mask


def delta_gram(D1, D2, trace: bool) -> torch.Tensor:
    """``sum_i D1[a,c,i] D2[b,c',i]``: (N1, N2) summed over c = c' when traced, else (N1, N2, k, k).
    D2 None means D1. This is also the (unscaled) bias term of a layer."""
    D2 = D1 if D2 is None else D2
    if trace:
        return D1.reshape(D1.shape[0], -1) @ D2.reshape(D2.shape[0], -1).T
    N1, k, n = D1.shape
    N2 = D2.shape[0]
    g = D1.reshape(N1 * k, n) @ D2.reshape(N2 * k, n).T  # (N1 k, N2 k)
    return g.reshape(N1, k, N2, k).permute(0, 2, 1, 3).contiguous()


def dense_layer_term(D1, H1, D2=None, H2=None, *, trace: bool = True) -> torch.Tensor:
    """The layer term with M = all ones: (D1 D2^T) o (H1 H2^T), two GEMMs."""
    H2 = H1 if H2 is None else H2
    G = delta_gram(D1, D2, trace)
    Hg = H1 @ H2.T
    return G * Hg if trace else G * Hg[:, :, None, None]
