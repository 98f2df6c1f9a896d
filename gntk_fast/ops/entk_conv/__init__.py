"""The masked per-example-gradient term of a layer, one operation with two backends.

A convolution (or a linear layer applied at several positions) with weight
``W (n_out, q)`` (q = in_channels x taps), applied to the patches ``U[a]``
(q, p) of input a at p output positions, has the per-example gradient of
output c

    G[a, c] = D[a, c] @ U[a]^T        (n_out, q)

where ``D[a, c]`` (n_out, p) is the backward signal d f_c / d z at the layer's
output. :func:`masked_grad_term` computes the eNTK term of the kept weights
(M the bool mask (n_out, q))::

    traced:   T[a, b]        = sum_{c, o, j} M[o, j] G1[a, c, o, j] G2[b, c, o, j]      (N1, N2)
    full:     T[a, b, c, c'] = sum_{o, j}    M[o, j] G1[a, c, o, j] G2[b, c', o, j]     (N1, N2, k, k)
    diagonal: T[a, a] (N1,) or T[a, a, c, c'] (N1, k, k)

Backends (:data:`ENTK_CONV`, in preference order; the one ``backend="auto"``
rule of :mod:`gntk_fast.ops._registry`)
    ``torch``  kept entries only (:mod:`.gather`): a row gather of the patches
               for very sparse rows, else one batched GEMM; any device and dtype
    ``naive``  the twin (:mod:`.naive`): every gradient formed in full
"""
from __future__ import annotations

import torch

from ..._validation import FLOAT_DTYPES, check_bool, check_dtype, check_finite, check_tensor
from .._registry import BackendError, Op

__all__ = ["masked_grad_term", "ENTK_CONV", "BackendError"]

#: the op's registry: torch (kept entries), naive (the twin)
ENTK_CONV = Op("masked per-example-gradient term")
ENTK_CONV.register("torch", "gntk_fast.ops.entk_conv.gather:masked_grad_term_gather", devices=("cpu", "cuda"))
ENTK_CONV.register("naive", "gntk_fast.ops.entk_conv.naive:masked_grad_term_naive", devices=("cpu", "cuda"))


def _signals_and_patches(dname, uname, D, U):
    D = check_tensor(dname, D, ndim=4)
    U = check_tensor(uname, U, ndim=3)
    for name, t in ((dname, D), (uname, U)):
        check_dtype(name, t, FLOAT_DTYPES)
    if D.shape[0] != U.shape[0] or D.shape[3] != U.shape[2]:
        raise ValueError(f"{dname} (N, k, n_out, p) and {uname} (N, q, p) must agree in N and p; "
                         f"got {tuple(D.shape)} and {tuple(U.shape)}")
    return D, U


def masked_grad_term(D1, U1, D2=None, U2=None, mask=None, *, trace: bool = True, diagonal: bool = False,
                     backend: str = "auto") -> torch.Tensor:
    """The eNTK term of a layer's kept weights from signals and patches (see the module docstring).

    Parameters
    ----------
    D1 : (N1, k, n_out, p) float32/float64 tensor: d f_c / d z at the layer's output, p positions
    U1 : (N1, q, p) tensor of D1's dtype and device: the input patches (``F.unfold``)
    D2, U2 : the same for x2, or both None (x2 = x1; the result is exactly symmetric)
    mask : (n_out, q) bool tensor (True = kept), or None (all kept)
    trace, diagonal : bool (see the module docstring; ``diagonal`` ignores D2/U2)
    backend : "auto" | "torch" | "naive"

    Returns
    -------
    Tensor of D1's dtype: (N1, N2), (N1, N2, k, k), (N1,) or (N1, k, k).

    Examples
    --------
    >>> import torch
    >>> from gntk_fast.ops.entk_conv import masked_grad_term
    >>> D, U = torch.randn(4, 2, 3, 5), torch.randn(4, 6, 5)
    >>> masked_grad_term(D, U, mask=torch.rand(3, 6) < 0.5).shape
    torch.Size([4, 4])
    """
    trace = check_bool("trace", trace)
    diagonal = check_bool("diagonal", diagonal)
    D1, U1 = _signals_and_patches("D1", "U1", D1, U1)
    if (D2 is None) != (U2 is None):
        raise ValueError("D2 and U2 must both be given or both be None (None means the first set)")
    tensors = [("D1", D1), ("U1", U1)]
    if D2 is not None:
        D2, U2 = _signals_and_patches("D2", "U2", D2, U2)
        if D2.shape[1:3] != D1.shape[1:3] or U2.shape[1] != U1.shape[1]:
            raise ValueError(f"D2/U2 must match D1/U1 in k, n_out and q; got {tuple(D2.shape)}, {tuple(U2.shape)}")
        tensors += [("D2", D2), ("U2", U2)]
    for name, t in tensors[1:]:
        if t.dtype != D1.dtype or t.device != D1.device:
            raise ValueError(f"{name} must have D1's dtype and device ({D1.dtype}, {D1.device})")
    if mask is not None:
        mask = check_dtype("mask", check_tensor("mask", mask, ndim=2), (torch.bool,), "True = kept weight")
        if tuple(mask.shape) != (D1.shape[2], U1.shape[1]) or mask.device != D1.device:
            raise ValueError(f"mask must have shape (n_out, q) = {(D1.shape[2], U1.shape[1])} on D1's device; "
                             f"got {tuple(mask.shape)} on {mask.device}")
    for name, t in tensors:
        check_finite(name, t)
    impl = ENTK_CONV(backend, D1.device.type)
    return impl(D1, U1, D2, U2, mask, trace=trace, diagonal=diagonal)
