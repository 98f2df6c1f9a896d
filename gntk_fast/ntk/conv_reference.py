"""Plain per-pair reference of the analytic Graphon CNTK (docs/graphon-cntk.md).

One pair of images at a time: the full pixel x pixel covariances of (x, x),
(x', x') and (x, x') at every channel node (flattened over the pixel pairs),
the tap shifts written as index gathers, the recursion exactly as docs/graphon-cntk.md section 3 writes it;
float64 throughout. Obviously right and slow: it exists to check
:func:`gntk_fast.ntk.graphon_cntk` against.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import MAX_IMAGE, MAX_KERNEL, MAX_SAMPLES, as_float_tensor, check_bool, check_choice, check_odd_size, check_size
from ..ops.dual import plan_dual
from ._conv_grid import PADDINGS, READOUTS, discretise_conv
from .analytic_reference import GraphonNTK

__all__ = ["graphon_cntk_reference", "check_images", "check_conv_options"]


def check_images(x1: Any, x2: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x1 (N1, C, H, W) and optional x2 (N2, C, H, W): finite real 4-D tensors of one image shape."""
    x1 = as_float_tensor("x1", x1, ndim=4)
    if min(x1.shape) < 1:
        raise ValueError(f"x1 must be a non-empty (N, C, H, W) batch of images; got shape {tuple(x1.shape)}")
    check_size("x1 inputs (images)", x1.shape[0], MAX_SAMPLES)
    check_size("x1 image height", x1.shape[2], MAX_IMAGE)
    check_size("x1 image width", x1.shape[3], MAX_IMAGE)
    if x2 is not None:
        x2 = as_float_tensor("x2", x2, ndim=4)
        if x2.shape[0] < 1:
            raise ValueError(f"x2 must be a non-empty (N, C, H, W) batch of images; got shape {tuple(x2.shape)}")
        check_size("x2 inputs (images)", x2.shape[0], MAX_SAMPLES)
        if tuple(x2.shape[1:]) != tuple(x1.shape[1:]):
            raise ValueError(f"x2 must have the channels and image size of x1 {tuple(x1.shape[1:])}; "
                             f"got {tuple(x2.shape[1:])}")
    return x1, x2


def check_conv_options(x1: torch.Tensor, kernel_size: Any, padding: Any, readout: Any, trainable: Any):
    """Validated ``(k, padding, readout, trainable)`` for images like x1."""
    k = check_odd_size("kernel_size", kernel_size, MAX_KERNEL)
    padding = check_choice("padding", padding, PADDINGS)
    readout = check_choice("readout", readout, READOUTS)
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    H, W = x1.shape[2], x1.shape[3]
    if padding == "circular" and (k - 1) // 2 > min(H, W):
        raise ValueError(f"kernel_size={k} is too large for circular padding of {H} x {W} images "
                         f"(the half-width (k - 1)/2 must be at most min(H, W) = {min(H, W)})")
    return k, padding, readout, trainable


def _shift_index(H: int, W: int, dh: int, dw: int, padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """For the flattened pixel pairs e = p P + q: the pair (p + (dh, dw), q + (dh, dw)) and whether it
    lies inside the image (always, wrapped, for "circular"; else 0 is read there)."""
    ph, pw = torch.div(torch.arange(H * W), W, rounding_mode="floor"), torch.arange(H * W) % W
    h, w = ph + dh, pw + dw
    if padding == "circular":
        moved, inside = (h % H) * W + (w % W), torch.ones(H * W, dtype=torch.bool)
    else:
        inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)
        moved = torch.where(inside, h * W + w, 0)
    P = H * W
    return (moved[:, None] * P + moved[None, :]).reshape(-1), (inside[:, None] & inside[None, :]).reshape(-1)


def graphon_cntk_reference(
    graphons,
    x1,
    x2=None,
    *,
    kernel_size: int = 3,
    padding: str = "circular",
    readout: str = "gap",
    activation="relu",
    trainable: str = "mask",
    K: int = 64,
    quadrature: str = "gauss-legendre",
    return_nngp: bool = False,
    n_outputs: int = 1,
    dual: str | None = None,
    quad_nodes: int = 32,
    depth: int | None = None,
    variance_graphons=None,
    input_masks: str = "mean",
):
    """Reference twin of :func:`gntk_fast.ntk.graphon_cntk` (same arguments, float64, CPU).

    Returns the (N1, N2) float64 kernel traced over the ``n_outputs`` outputs,
    or a :class:`~gntk_fast.ntk.GraphonNTK` (kernel and output NNGP) when ``return_nngp``.

    Examples
    --------
    >>> import torch
    >>> from gntk_fast.ntk import graphon_cntk_reference
    >>> x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    >>> graphon_cntk_reference([0.5, 0.5, 1.0], x).shape
    torch.Size([3, 3])
    """
    return_nngp = check_bool("return_nngp", return_nngp)
    x1, x2 = check_images(x1, x2)
    k, padding, readout, trainable = check_conv_options(x1, kernel_size, padding, readout, trainable)
    f = plan_dual(activation, dual=dual, quad_nodes=quad_nodes, backend="naive").function()
    grid = discretise_conv(graphons, x1.shape[1], kernel_size=k, K=K, quadrature=quadrature,
                           n_outputs=n_outputs, depth=depth, variance=variance_graphons,
                           input_masks=input_masks)
    X1 = x1.to(torch.float64)
    X2 = X1 if x2 is None else x2.to(torch.float64)
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float64))  # noqa: E731
    # the mask graphons count each layer's parameters (the own terms of "mask"); the variance
    # graphons (the mask graphons when none are given) carry the forward and backward signal
    A, R = t(grid.A), t(grid.R)
    B = [t(b) for b in grid.B]
    Av, Rv = (t(grid.Av), t(grid.Rv)) if grid.has_variance else (A, R)
    Bv = [t(b) for b in grid.Bv] if grid.has_variance else B
    w = [t(x) for x in grid.w]
    L, n_out, C0 = grid.depth, R.shape[0], X1.shape[1]
    r = (k - 1) // 2
    H, W = X1.shape[2], X1.shape[3]
    P = H * W
    # tau_t on covariances flattened over the pixel pairs (p, q): a gather, 0 where it reads the padding
    shifts = [_shift_index(H, W, a - r, b - r, padding) for a in range(k) for b in range(k)]

    def tap(M: torch.Tensor, i: int) -> torch.Tensor:  # graphon matrix of tap i (shared: the one matrix)
        return M[i if M.shape[0] > 1 else 0]

    def conv(S: torch.Tensor, M: torch.Tensor | None, wv: torch.Tensor) -> torch.Tensor:
        """1/k^2 sum_t sum_v M_t[u, v] wv[v] (tau_t S_v)(p, q) for S (K_in, P * P) -> (K_out, P * P);
        M None: the plain average sum_v wv[v] (...) -> (1, P * P)."""
        out = 0.0
        for i, (moved, inside) in enumerate(shifts):
            sh = S[:, moved] * inside
            if M is None:
                out = out + (wv @ sh)[None]
            else:
                out = out + (tap(M, i) * wv[None, :]) @ sh
        return out / k**2

    def first(x: torch.Tensor, y: torch.Tensor):
        """Sigma^1 (variance graphon), the "mask" own term O^1 (mask graphon) and the "all" own term of
        the pair (x, y) (x: (C_0, P)), each (K_1 or 1, P * P)."""
        prod = (x[:, :, None] * y[:, None, :]).reshape(C0, P * P)  # x_j(p) y_j(q)
        ones = torch.ones(C0, dtype=torch.float64)
        return (conv(prod, Av, ones) / C0, conv(prod, A, ones) / C0,
                conv(prod, None, torch.full((C0,), 1.0 / C0, dtype=torch.float64)))

    def dual_of(Sab, Saa, Sbb):
        """S, Sd of the covariance Sab (K, P * P) with the variances on the diagonals of Saa, Sbb."""
        da = torch.diagonal(Saa.reshape(-1, P, P), dim1=1, dim2=2)[:, :, None]
        db = torch.diagonal(Sbb.reshape(-1, P, P), dim1=1, dim2=2)[:, None, :]
        q11, q22, q12 = torch.broadcast_tensors(da, db, Sab.reshape(-1, P, P))
        S, Sd = f(q11, q22, q12)
        return S.reshape(-1, P * P), Sd.reshape(-1, P * P)

    theta = torch.zeros(X1.shape[0], X2.shape[0], dtype=torch.float64)
    nngp = torch.zeros_like(theta)
    for i in range(X1.shape[0]):
        for j in range(X2.shape[0]):
            x, y = X1[i].reshape(C0, P), X2[j].reshape(C0, P)
            sxx = first(x, x)[0]
            syy = first(y, y)[0]
            sxy, mxy, oxy = first(x, y)
            T = mxy if trainable == "mask" else oxy.expand_as(sxy)
            for l in range(L):
                S, Sd = dual_of(sxy, sxx, syy)
                Sxx, _ = dual_of(sxx, sxx, sxx)
                Syy, _ = dual_of(syy, syy, syy)
                U = Sd * T
                if l + 1 < L:
                    sxx, syy = conv(Sxx, Bv[l], w[l]), conv(Syy, Bv[l], w[l])
                    sxy = conv(S, Bv[l], w[l])
                    own = conv(S, B[l], w[l]) if trainable == "mask" else conv(S, None, w[l])
                    T = own + conv(U, Bv[l], w[l])
            # read-out: average over the pixel pairs (gap) or the diagonal (flatten)
            Km = S.shape[0]
            Sm, Um = S.reshape(Km, P, P), U.reshape(Km, P, P)
            if readout == "gap":
                avS, avU = Sm.mean(dim=(1, 2)), Um.mean(dim=(1, 2))
            else:
                avS, avU = torch.diagonal(Sm, dim1=1, dim2=2).mean(1), torch.diagonal(Um, dim1=1, dim2=2).mean(1)
            rr = Rv.sum(0) * w[L - 1]
            out = float(rr @ avS)
            own = float((R.sum(0) * w[L - 1]) @ avS) if trainable == "mask" else n_out * float(w[L - 1] @ avS)
            theta[i, j] = own + float(rr @ avU)
            nngp[i, j] = out
    return GraphonNTK(theta, nngp) if return_nngp else theta
