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
                      quadrature: str = "gauss-legendre", n_outputs: int = 1, depth=None,
                      input_masks: str = "mean") -> ConvGrid:
    """The discretised conv net that :func:`graphon_cntk` uses (for inspection)."""
    return discretise_conv(graphons, in_channels, kernel_size=kernel_size, K=K, quadrature=quadrature,
                           n_outputs=n_outputs, depth=depth, input_masks=input_masks)


class _Mats:
    """The grid's matrices as tensors, with the node weights folded in and the tap groups stacked.

    ``A``, ``B``, ``r`` carry the forward/backward signal (the variance graphons when the grid has
    them). With variance graphons and ``trainable="mask"`` (``split``) the mask graphons count the
    parameters: their own matrices ``A_own``, ``B_own``, ``r_own`` feed the Theta half of every step
    and the own column of ``A``, ``B`` is 0 (the step then runs with ``mask=False``)."""

    def __init__(self, grid: ConvGrid, dtype, device, mask: bool = True):
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64), dtype=dtype, device=device)  # noqa: E731
        self.split = grid.has_variance and mask
        own = 0.0 if self.split else 1.0

        def ext(b, w, own_col):  # (G, K', K) graphon values, (K,) node weights -> (K, G K' + 1)
            g, k1, k0 = b.shape
            e = np.empty((k0, g * k1 + 1))
            e[:, :-1] = (b * w[None, None, :]).transpose(2, 0, 1).reshape(k0, g * k1)
            e[:, -1] = w * own_col
            return e

        c0 = grid.A.shape[2]
        w_in = np.full(c0, 1.0 / c0)
        Av, Bv, Rv = (grid.Av, grid.Bv, grid.Rv) if grid.has_variance else (grid.A, grid.B, grid.R)
        self.A = t(ext(Av, w_in, own))
        self.groups = [Av.shape[0]] + [b.shape[0] for b in Bv]
        self.sizes = grid.sizes
        self.B = [t(ext(b, w, own)) for b, w in zip(Bv, grid.w[:-1])]
        self.r = t(Rv.sum(0) * grid.w[-1])
        self.wL = t(grid.w[-1])
        self.n_out = grid.R.shape[0]
        if self.split:
            self.A_own = t(ext(grid.A, w_in, 0.0))
            self.B_own = [t(ext(b, w, 0.0)) for b, w in zip(grid.B, grid.w[:-1])]
            self.r_own = t(grid.R.sum(0) * grid.w[-1])


def _gather(Y: torch.Tensor, sh: torch.Tensor, groups: int, K: int) -> torch.Tensor:
    """1/k^2 sum_t Y[:, sh[:, t], g(t) K : (g(t) + 1) K] over the taps (0 where sh = -1): (N, P, K).

    One gather of all k^2 neighbours per chunk of images (a zero row stands for the padding) and one sum
    over the taps: a few large ops rather than k^2 small ones (each torch op costs a parallel-region
    start). A chunk's gathered rows stay within the 256 MB working budget, whatever the number of nodes.
    The taps are added in order (a cumulative sum), as the per-pair twin adds them: where a pair's
    correlation is exactly 1 the ReLU angle turns a different rounding of Sigma into ~1e-8."""
    N, P = Y.shape[:2]
    T = sh.shape[1]
    idx = torch.where(sh >= 0, sh, P)  # (P, T)
    taps = torch.arange(T, device=Y.device)[None, :]
    out = Y.new_empty(N, P, K)
    chunk = max(1, _TILE_BYTES // max(1, 2 * P * T * K * Y.element_size()))  # the rows and their cumsum
    for n0 in range(0, N, chunk):
        Yc = Y[n0:n0 + chunk, :, :groups * K]  # the own column is not read
        nb = Yc.shape[0]
        Yp = torch.cat([Yc, Yc.new_zeros(nb, 1, groups * K)], dim=1)  # row P: the zero padding
        if groups > 1:  # tap t reads its own column group t
            rows = Yp.view(nb, P + 1, T, K)[:, idx, taps]  # (nb, P, T, K)
        else:
            rows = Yp.index_select(1, idx.reshape(-1)).view(nb, P, T, K)
        out[n0:n0 + nb] = rows.cumsum(2)[:, :, -1] / T
    return out


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
    variance_graphons=None,
    input_masks: str = "mean",
) -> Any:
    """The analytic Graphon CNTK Theta(x1, x2) of a conv net with channel graphons.

    The infinite-channel limit of :class:`gntk_fast.ConvNet` (no biases,
    ``w_std=1``) whose masks are sampled from channel graphons (with
    ``input_masks="bernoulli"``; the default treats the input layer's graphon
    as its mean, the variance-modulated net's limit); with every
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
    variance_graphons : optional list of L + 1 variance graphons ``V_l(u, v) = E[w^2 m]``
        (values >= 0, the layout of ``graphons``: shared or per tap; e.g.
        :attr:`gntk_fast.pai.NetworkGraphon.variance_graphons` of a pruned
        conv net). They replace the mask graphons in the forward covariances,
        the NNGP and the backward signal, while with ``trainable="mask"`` the
        mask graphons still count each layer's parameters (docs/graphon-cntk.md
        section 3). None (default): the graphons play both roles. With
        ``graphons = 1`` and ``V = c`` the kernel is ``trainable="all"``'s with
        the graphon c.
    input_masks : "mean" (default) or "bernoulli"
        How the input layer's graphon enters. ``"mean"``: as its mean
        W_1(u, v_j, t), the limit of the variance-modulated net and of masked
        nets as C_0 k^2 grows. ``"bernoulli"``: averaged exactly over the
        Bernoulli masks of a channel's C_0 k^2 input weights, the limit of
        :class:`gntk_fast.ConvNet` with masks sampled from the graphons (its
        input layer's fan-in stays finite, so its masks do not average out);
        it enumerates the 2^(C_0 k^2) masks (C_0 k^2 <= 16) and multiplies the
        input layer's nodes by them. Equal for graphons of 0s and 1s.
        See docs/graphon-cntk.md section 3.

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
                           n_outputs=n_outputs, depth=depth, variance=variance_graphons,
                           input_masks=input_masks)
    m = _Mats(grid, dtype, device, trainable == "mask")
    N1, C0, H, W = x1.shape
    geo = geometry(H, W, k, padding, readout)
    E = len(geo.e1)
    diagonal = readout == "flatten"  # the entries are the pixels themselves (e1 = e2 = p)
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
        # with variance graphons and "mask", the own (mask-graphon) term rides in the Theta half of Y and
        # the step adds no own term of its own
        step_mask = mask and not m.split
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
                Xi, Xj = U.index_select(0, ui), U.index_select(0, uj)  # (B, C0, P)
                if not diagonal:
                    Xi, Xj = Xi.index_select(2, e1), Xj.index_select(2, e2)
                Z = (Xi * Xj).transpose(1, 2)  # (B, E, C0)
                if m.split:
                    Y = torch.stack([Z @ m.A, Z @ m.A_own], dim=2)
                else:
                    Y = (Z @ m.A).reshape(B, E, 1, -1)
                for l in range(grid.depth):
                    out = step(plan, Y, nbr, e1, e2, D[l], D[l], ui, uj, same, m.groups[l], step_mask)
                    if l + 1 < grid.depth:
                        cols = m.B[l].shape[1]
                        Y = torch.mm(out.reshape(B * E * 2, -1), m.B[l], out=ybuf[:B * E * 2 * cols].view(-1, cols))
                        Y = Y.view(B, E, 2, cols)
                        if m.split:
                            Y[:, :, 1] += out[:, :, 0] @ m.B_own[l]
                tot = out.sum(1) * geo.weight  # (B, 2, K): the read-out's sum over the entries first
                S, Ud = tot[:, 0], tot[:, 1]
                ng = S @ m.r
                if m.split:
                    own = S @ m.r_own
                else:
                    own = ng if mask else (S @ m.wL) * m.n_out
                th = own + Ud @ m.r
                theta[ii, jj] = th
                if nngp is not None:
                    nngp[ii, jj] = ng
                if sym:
                    theta[jj, ii] = th
                    if nngp is not None:
                        nngp[jj, ii] = ng
                bar.update(B)
    return GraphonNTK(theta, nngp) if return_nngp else theta
