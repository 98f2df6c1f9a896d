"""The analytic infinite-channel Graphon CNTK of a sparse conv net (docs/graphon-cntk.md).

:func:`graphon_cntk` evaluates the recursion of docs/graphon-cntk.md section 3
for chunks of pairs of images at once:

* the variances ``Sigma^l[x, x](p, p)`` (N x P x K_l per layer) are computed
  first, once per distinct image, by the diagonal recursion;
* per chunk of B pairs, the carried pixel pairs ("entries": every (p, q) for
  ``readout="gap"``, only the diagonal (p, p) for ``"flatten"``, since the
  recursion never changes q - p) go through the layers as

      Y   = [S | Sd Theta] @ [W_t(u, v) w_v, stacked over the tap groups | w_v]     (one GEMM)
      out = cntk_step(Y)       (gather the k^2 shifted entries, dual, Sd x Theta; op ``cntk_step``)

  the node matmul being done before the tap shifts (they commute); the input
  layer's GEMM is over the C_0 channels of ``x_j(p) x'_j(q)``;
* the read-out is a weighted sum of the last layer's S and Sd Theta over the
  entries and nodes (no matmul).

Work per pair: about E (2 K_{l-1} (G K_l + 1) + k^2 K_l) multiply-adds and E
K_l dual evaluations per layer, E = P^2 ("gap") or P ("flatten"), G = 1
(shared graphon) or k^2 (per tap). Memory: the (N1, N2) output, the
variances (N P sum K_l), and a chunk of pairs of about 256 MB.

The step runs on a backend of the ``cntk_step`` op (:mod:`gntk_fast.ops.cntk_step`):
``"numba"`` on CPU (closed forms), ``"naive"`` (torch; every activation and
dual rule). The per-pair oracle is
:func:`gntk_fast.ntk.conv_reference.graphon_cntk_reference`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._validation import check_bool, check_float_dtype, check_int, check_memory
from ..ops.cntk_step import CNTK_STEP
from ..ops.dual import plan_dual
from ._conv_grid import ConvGrid, discretise_conv, geometry
from .analytic_reference import GraphonNTK
from .conv_reference import check_conv_options, check_images

__all__ = ["graphon_cntk", "prepare_conv_grid"]

_TILE_BYTES = 256 << 20  # working memory of one chunk of pairs


def prepare_conv_grid(graphons, in_channels: int, *, kernel_size: int = 3, K: int = 64,
                      quadrature: str = "gauss-legendre", n_outputs: int = 1, depth=None) -> ConvGrid:
    """The discretised conv net that :func:`graphon_cntk` uses (for inspection)."""
    return discretise_conv(graphons, in_channels, kernel_size=kernel_size, K=K, quadrature=quadrature,
                           n_outputs=n_outputs, depth=depth)


class _Mats:
    """The grid's matrices as tensors, with the node weights folded in and the tap groups stacked."""

    def __init__(self, grid: ConvGrid, dtype, device):
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64), dtype=dtype, device=device)  # noqa: E731
        A = grid.A  # (G, K1, C0)
        G, K1, C0 = A.shape
        a_ext = np.empty((C0, G * K1 + 1))
        a_ext[:, :-1] = A.transpose(2, 0, 1).reshape(C0, G * K1) / C0
        a_ext[:, -1] = 1.0 / C0
        self.A = t(a_ext)
        self.groups = [G] + [b.shape[0] for b in grid.B]
        self.sizes = grid.sizes
        self.B = []
        for b, w in zip(grid.B, grid.w[:-1]):  # b (G, K', K), w (K,)
            g, k1, k0 = b.shape
            e = np.empty((k0, g * k1 + 1))
            e[:, :-1] = (b * w[None, None, :]).transpose(2, 0, 1).reshape(k0, g * k1)
            e[:, -1] = w
            self.B.append(t(e))
        self.r = t(grid.R.sum(0) * grid.w[-1])
        self.wL = t(grid.w[-1])
        self.n_out = grid.R.shape[0]


def _gather(Y: torch.Tensor, sh: torch.Tensor, groups: int, K: int) -> torch.Tensor:
    """1/k^2 sum_t Y[:, sh[:, t], g(t) K : (g(t) + 1) K] over the taps (0 where sh = -1): (N, P, K)."""
    T = sh.shape[1]
    out = Y.new_zeros(Y.shape[0], sh.shape[0], K)
    for t in range(T):
        g = t if groups > 1 else 0
        ok = (sh[:, t] >= 0).to(Y.dtype)[None, :, None]
        out += Y[:, sh[:, t].clamp(min=0), g * K:(g + 1) * K] * ok
    return out / T


def _variances(X: torch.Tensor, m: _Mats, sh: torch.Tensor, f) -> list[torch.Tensor]:
    """Sigma^l[x, x](p, p) for every image and conv layer: L tensors (N, P, K_l)."""
    Z = (X * X).transpose(1, 2)  # (N, P, C0)
    D = _gather(Z @ m.A, sh, m.groups[0], m.sizes[0])
    out = [D]
    for l, Bx in enumerate(m.B):
        S, _ = f(D, D, D)
        D = _gather(S @ Bx, sh, m.groups[l + 1], m.sizes[l + 1])
        out.append(D)
    return out


def graphon_cntk(
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
    backend: str = "auto",
    n_outputs: int = 1,
    dual: str | None = None,
    quad_nodes: int = 32,
    dtype: torch.dtype | None = None,
    tile: int | None = None,
    depth: int | None = None,
    progress: bool | None = None,
) -> Any:
    """The analytic Graphon CNTK Theta(x1, x2) of a conv net with channel graphons.

    The infinite-channel limit of :class:`gntk_fast.ConvNet` (no biases,
    ``w_std=1``) whose masks are sampled from channel graphons; with every
    graphon 1 it is the dense CNTK of Arora et al. (2019). The mathematics:
    docs/graphon-cntk.md.

    Parameters
    ----------
    graphons : list of L + 1 entries
        ``[W_1 (input conv, over (u, input channel)), W_2..W_L (hidden convs),
        R (read-out dense layer, over (output c, channel v))]``. A conv entry is
        shared by the taps (a number in [0, 1], a callable ``W(u, v)``
        vectorised over numpy arrays, a 2-D block matrix, a graphon object;
        each tap kept independently) or per tap (a 3-D array ``(k^2, K_out,
        K_in)`` of block matrices, tap ``t = a k + b`` first, or a
        :class:`~gntk_fast.ntk.TapGraphons`). The read-out is shared. Input
        channel j sits at v = (j - 1/2)/C_0, output c at (c - 1/2)/n_outputs.
    x1 : (N1, C, H, W) tensor or array;  x2 : (N2, C, H, W) or None (then x2 = x1).
    kernel_size : odd int (the window side k; stride 1).
    padding : "circular" (torus) or "same" (zeros outside the image).
    readout : "gap" (global average pooling, then dense) or "flatten" (then dense).
    activation : a registered name ("relu" default, "erf", "tanh", "identity"),
        an :class:`~gntk_fast.activations.Activation` or an elementwise callable.
    trainable : "mask" (only kept weights train; default) or "all" (every
        weight trains with variance W), see docs/graphon-cntk.md.
    K : int
        Quadrature nodes for conv layers touched by a callable graphon (step
        and constant layers use their exact block midpoints).
    quadrature : "gauss-legendre" or "midpoint".
    return_nngp : also return the output NNGP: a :class:`~gntk_fast.ntk.GraphonNTK`.
    backend : "auto", "numba" or "naive" (the ``cntk_step`` op,
        :mod:`gntk_fast.ops.cntk_step`); a named backend that cannot serve the
        call raises :class:`~gntk_fast.ops.BackendError`.
    n_outputs : read-out outputs; the kernel is traced over them.
    dual, quad_nodes : the dual rule, as for :func:`gntk_fast.graphon_ntk`.
    dtype : torch.float64 (default) or torch.float32.
    tile : pairs of images per chunk (default: from a 256 MB budget).
    depth : optional number of conv layers L, checked against len(graphons) - 1.
    progress : tqdm bar over the pairs (default: when there are more than 16 chunks).

    Returns
    -------
    Theta : (N1, N2) tensor of ``dtype``, or a GraphonNTK ``(kernel, nngp)``.

    Examples
    --------
    >>> import torch
    >>> import gntk_fast as gf
    >>> x = torch.randn(4, 1, 6, 6, dtype=torch.float64)
    >>> theta = gf.graphon_cntk([0.5, lambda u, v: 0.2 + 0.6 * u * v, 1.0], x, K=8)
    >>> theta.shape
    torch.Size([4, 4])
    """
    return_nngp = check_bool("return_nngp", return_nngp)
    x1, x2 = check_images(x1, x2)
    k, padding, readout, trainable = check_conv_options(x1, kernel_size, padding, readout, trainable)
    dtype = torch.float64 if dtype is None else check_float_dtype("dtype", dtype)
    device = x1.device
    plan = plan_dual(activation, dual=dual, quad_nodes=quad_nodes, backend="naive", device=device)
    step = CNTK_STEP.resolve(backend, device.type, act=plan.activation, rule=plan.rule).load()
    grid = discretise_conv(graphons, x1.shape[1], kernel_size=k, K=K, quadrature=quadrature,
                           n_outputs=n_outputs, depth=depth)
    m = _Mats(grid, dtype, device)
    N1, C0, H, W = x1.shape
    geo = geometry(H, W, k, padding, readout)
    E = len(geo.e1)
    itemsize = torch.finfo(dtype).bits // 8
    widest = max(max(m.A.shape[1], *(b.shape[1] for b in m.B)) if m.B else m.A.shape[1], 1)
    per_pair = E * (4 * widest + 4 * max(m.sizes) + 2 * C0) * itemsize
    check_memory("one pair of images' pixel-pair covariances (image size, K, kernel_size)", per_pair)
    if tile is None:
        tile = max(1, _TILE_BYTES // per_pair)
    tile = check_int("tile", tile, min_value=1)

    X1 = x1.to(device=device, dtype=dtype).reshape(N1, C0, H * W)
    X2 = X1 if x2 is None else x2.to(device=device, dtype=dtype).reshape(x2.shape[0], C0, H * W)
    N2 = X2.shape[0]
    sym = x2 is None or (x2.shape == x1.shape and bool(torch.equal(x1, x2)))
    # one variance set per distinct image; pairs of identical images are snapped (docs section 4)
    rows = X1 if sym else torch.cat([X1, X2])
    uniq, inv = torch.unique(rows.reshape(rows.shape[0], -1), dim=0, return_inverse=True)
    U = uniq.reshape(-1, C0, H * W)
    id1 = inv[:N1]
    id2 = id1 if sym else inv[N1:]
    lng = lambda a: torch.as_tensor(a, dtype=torch.int64, device=device)  # noqa: E731
    e1, e2, nbr, sh = lng(geo.e1), lng(geo.e2), lng(geo.nbr), lng(geo.diag)
    f = plan.function()
    with torch.no_grad():
        D = _variances(U, m, sh, f)
        if sym:
            ii_all, jj_all = torch.triu_indices(N1, N1, device=device)
        else:
            ii_all = torch.arange(N1, device=device).repeat_interleave(N2)
            jj_all = torch.arange(N2, device=device).repeat(N1)
        theta = torch.empty(N1, N2, dtype=dtype, device=device)
        nngp = torch.empty_like(theta) if return_nngp else None
        total = len(ii_all)
        show = total > 16 * tile if progress is None else check_bool("progress", progress)
        mask = trainable == "mask"
        # one reused buffer for the hidden layers' node GEMMs (a fresh tile-sized output per GEMM costs
        # its page faults every time)
        ybuf = torch.empty(min(tile, total) * E * 2 * max([b.shape[1] for b in m.B] + [1]), dtype=dtype,
                           device=device)
        with tqdm(total=total, desc="graphon_cntk pairs", unit="pair", unit_scale=True, disable=not show,
                  leave=False) as bar:
            for s0 in range(0, total, tile):
                ii, jj = ii_all[s0:s0 + tile], jj_all[s0:s0 + tile]
                ui, uj = id1[ii], id2[jj]
                same = ui == uj
                B = len(ii)
                Z = (U[ui][:, :, e1] * U[uj][:, :, e2]).transpose(1, 2)  # (B, E, C0)
                Y = (Z @ m.A).reshape(B, E, 1, -1)
                for l in range(grid.depth):
                    out = step(plan, Y, nbr, e1, e2, D[l], D[l], ui, uj, same, m.groups[l], mask)
                    if l + 1 < grid.depth:
                        cols = m.B[l].shape[1]
                        Y = torch.mm(out.reshape(B * E * 2, -1), m.B[l], out=ybuf[:B * E * 2 * cols].view(-1, cols))
                        Y = Y.view(B, E, 2, cols)
                S, Ud = out[:, :, 0], out[:, :, 1]
                ng = (S @ m.r).sum(1) * geo.weight
                own = ng if mask else (S @ m.wL).sum(1) * (geo.weight * m.n_out)
                th = own + (Ud @ m.r).sum(1) * geo.weight
                theta[ii, jj] = th
                if nngp is not None:
                    nngp[ii, jj] = ng
                if sym:
                    theta[jj, ii] = th
                    if nngp is not None:
                        nngp[jj, ii] = ng
                bar.update(B)
    return GraphonNTK(theta, nngp) if return_nngp else theta
