"""Pieces shared by every backend of the masked eNTK layer term: argument
validation, the all-ones (dense) GEMM factorisation, and the complement density.

A *layer term* is the unscaled bilinear form of one layer (docs/graphon-ntk.md §1)

    traced: out[a, b]        = sum_{i,j} M_ij (sum_c D1[a,c,i] D2[b,c,i]) H1[a,j] H2[b,j]     (N1, N2)
    full:   out[a, b, c, c'] = sum_{i,j} M_ij D1[a,c,i] D2[b,c',i] H1[a,j] H2[b,j]           (N1, N2, k, k)

with D (N, k, n_out) the backward signals delta^l, H (N, n_in) the layer's
input activations h^{l-1} and M (n_out, n_in) the bool mask (None = all ones).
"""
from __future__ import annotations

import torch

from ..._validation import FLOAT_DTYPES, ArgumentTypeError, check_bool, check_dtype, check_finite, check_tensor

__all__ = ["COMPLEMENT_DENSITY", "use_complement", "check_layer_args", "delta_gram", "dense_layer_term",
           "layer_term_diagonal", "output_shape", "symmetrize"]

#: Above this mask density the compiled backends compute the layer term as the
#: dense factorisation minus the term of the complement mask (the pruned
#: weights). The dense part is two GEMMs, O(N^2 (n_in + k n_out)), negligible
#: next to the masked work O(N^2 nnz), so the cost is ~ min(nnz, n_out n_in - nnz)
#: and the crossover is density 1/2 (bench/bench_entk.py measures both sides;
#: results in bench/results/entk.json). For a mask uncorrelated with the
#: signals the round-off grows by about (2 - d) / d <= 3 over a direct sum.
COMPLEMENT_DENSITY = 0.5


def use_complement(nnz: int, total: int, complement: bool | None) -> bool:
    """Whether a backend walks the pruned edges (T = T_dense - T_pruned):
    ``complement`` True/False forces it; None decides by density > COMPLEMENT_DENSITY."""
    if complement is None:
        return nnz > COMPLEMENT_DENSITY * total
    return check_bool("complement", complement)


def _signals_and_inputs(dname: str, hname: str, D, H) -> tuple[torch.Tensor, torch.Tensor]:
    D = check_tensor(dname, D, ndim=3)
    H = check_tensor(hname, H, ndim=2)
    for name, t in ((dname, D), (hname, H)):
        check_dtype(name, t, FLOAT_DTYPES)
    if D.shape[0] != H.shape[0]:
        raise ValueError(f"{dname} and {hname} must have the same number of rows (inputs); "
                         f"got {dname} {tuple(D.shape)} and {hname} {tuple(H.shape)}")
    return D, H


def _layer_mask(mask, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    mask = check_dtype("mask", check_tensor("mask", mask, ndim=2), (torch.bool,), "True = kept weight")
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape (n_out, n_in) = {shape}; got {tuple(mask.shape)}")
    if mask.device != device:
        raise ValueError(f"mask is on {mask.device} but D1 is on {device}; put all inputs on one device")
    return mask


def check_layer_args(D1, H1, D2, H2, mask, trace):
    """Validate the layer-term arguments (types, ranks, shapes, dtypes, devices,
    finiteness); returns ``(D1, H1, D2 or None, H2 or None, mask or None, trace)``.

    D1 (N1, k, n_out) and H1 (N1, n_in) float32/float64; D2/H2 the same for N2
    rows with D1's dtype, device, k, n_out and n_in, or both None (x2 = x1);
    mask (n_out, n_in) bool on D1's device, or None. Dtype errors are
    TypeErrors that are also ValueErrors.
    """
    trace = check_bool("trace", trace)
    D1, H1 = _signals_and_inputs("D1", "H1", D1, H1)
    if (D2 is None) != (H2 is None):
        raise ValueError("D2 and H2 must both be given or both be None (None means the first set, symmetric)")
    N1, k, n_out = D1.shape
    n_in = H1.shape[1]
    tensors = [("D1", D1), ("H1", H1)]
    if D2 is not None:
        D2, H2 = _signals_and_inputs("D2", "H2", D2, H2)
        if tuple(D2.shape[1:]) != (k, n_out):
            raise ValueError(f"D2 must have shape (N2, k, n_out) = (N2, {k}, {n_out}) like D1; got {tuple(D2.shape)}")
        if H2.shape[1] != n_in:
            raise ValueError(f"H2 must have n_in = {n_in} columns like H1; got shape {tuple(H2.shape)}")
        tensors += [("D2", D2), ("H2", H2)]
    for name, t in tensors[1:]:
        if t.dtype != D1.dtype:
            raise ArgumentTypeError(f"{name} must have the same dtype as D1 ({D1.dtype}); got {t.dtype}")
        if t.device != D1.device:
            raise ValueError(f"{name} is on {t.device} but D1 is on {D1.device}; put all inputs on one device")
    if mask is not None:
        mask = _layer_mask(mask, (int(n_out), int(n_in)), D1.device)
    for name, t in tensors:
        check_finite(name, t)
    return D1, H1, D2, H2, mask, trace


def output_shape(D1: torch.Tensor, D2: torch.Tensor | None, trace: bool) -> tuple[int, ...]:
    """(N1, N2) when traced, else (N1, N2, k, k); D2 None means D1."""
    N1, k = D1.shape[0], D1.shape[1]
    N2 = N1 if D2 is None else D2.shape[0]
    return (N1, N2) if trace else (N1, N2, k, k)


def symmetrize(out: torch.Tensor, trace: bool) -> torch.Tensor:
    """Make an x2 = x1 result exactly symmetric, T[a,b,c,c'] = T[b,a,c',c]
    (GEMM products are symmetric only up to round-off)."""
    return 0.5 * (out + (out.T if trace else out.permute(1, 0, 3, 2)))


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


def layer_term_diagonal(D, H, mask=None, *, trace: bool = True) -> torch.Tensor:
    """The diagonal T[a, a] of the layer term (a = b, one input set): (N,) traced, (N, k, k) full.

    ``T[a, a, c, c'] = sum_i D[a,c,i] D[a,c',i] s[a, i]`` with ``s[a, i] = sum_j M_ij H[a,j]^2``
    (``s = H^2 @ M^T``; M None: every weight kept), one GEMM and one contraction."""
    Hsq = H * H
    s = Hsq.sum(1, keepdim=True).expand(-1, D.shape[2]) if mask is None else Hsq @ mask.to(H.dtype).T
    if trace:
        return ((D * D).sum(1) * s).sum(1)
    return torch.einsum("aci,adi,ai->acd", D, D, s)
