"""The analytic infinite-width Graphon NTK (docs/graphon-ntk.md section 3).

:func:`graphon_ntk` evaluates, for every pair of inputs, the recursion of the
docs/graphon-ntk.md (section 3) on the quadrature grid of :mod:`gntk_fast.graphon.grid`:

* forward, per hidden layer l = 1..L and node a (position u_a, weight w_a)::

      s~^1_a(x, x')     = (1/d) sum_j W^1(u_a, v_j) x_j x'_j
      S^l_a, Sd^l_a     = dual activation of [[s~_a(x,x), s~_a(x,x')], [., s~_a(x',x')]]
      s~^{l+1}_a        = sum_b W^{l+1}(u_a, u_b) w_b S^l_b
      NNGP (traced)     = sum_c sum_b W^{L+1}(u_c, u_b) w_b S^L_b

* backward: ``G^L_a = Sd^L_a sum_c W^{L+1}(u_c, u_a)`` and
  ``G^l_a = Sd^l_a sum_b w_b W^{l+1}(u_b, u_a) G^{l+1}_b``;
* ``trainable="mask"`` (default; only kept weights are parameters, the pruned
  network)::

      Theta = NNGP + sum_{l=1}^L sum_a w_a G^l_a s~^l_a

  ``trainable="all"`` (every weight trainable with variance W(u, v), the
  paper's Theorem 1 plus the read-out term)::

      Theta = k * sum_b w_b S^L_b + sum_{l=1}^L [sum_a w_a G^l_a] [sum_b w_b S^{l-1}_b],
      with "sum_b w_b S^0_b" = x.x'/d.

Shapes: x1 (N1, d), x2 (N2, d) (default x2 = x1); the result is (N1, N2),
traced over the ``n_outputs`` read-out outputs. The diagonals s~^l(u; x, x)
(N x K_l per layer) are computed first; the pairs are then processed in
chunks ("tiles") of about ``tile`` pairs - rectangles of whole rows of inputs,
or segments of one row - so the working memory is O(K L N + tile K L) beside
the (N1, N2) output (N = 10,000 in float64 is an 800 MB output;
``dtype=torch.float32`` halves it). The input layer of a rectangle is one GEMM
``(X1_i o W^1_a) . X2_j``; with x2 = None only the pairs i <= j are computed
and mirrored, and the pairs (x, x) reuse the diagonals bit for bit.

When every hidden layer has a single node (every graphon constant - plain
numbers are recognised without building the grid - or step graphons with one
block per hidden layer and an input graphon equal over the pixels), the
kernel is the dense recursion with per-layer scales (docs/graphon-ntk.md,
"Constant graphons") and runs on the ``dense_ntk`` operation
(:mod:`gntk_fast.ops.dense_ntk`): one GEMM and one fused pass over the pairs,
memory O(L N) beside the result. ``backend="triton"`` keeps the tiled path.

Otherwise the dual activation of every layer (and the fused backward step) runs on a
backend of the ``dual`` operation, chosen by its one ``backend="auto"`` rule
(:mod:`gntk_fast.ops.dual`): ``"triton"`` on CUDA tensors (fused dual + node
matmul; closed forms), ``"numba"`` on CPU (a fused pass over the pairs;
closed forms), ``"naive"`` (torch; every activation and rule, including the
quadrature). Timings: bench/bench_analytic.py, bench/results/analytic.json.
The per-pair oracle is the separate function
:func:`gntk_fast.ntk.analytic_reference.graphon_ntk_reference`.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._threads import threads_for, torch_threads
from .._validation import MAX_BLOCKS, MAX_DEPTH, MAX_WIDTH, check_bool, check_choice, check_float_dtype, check_int
from ..ops.dense_ntk import dense_ntk
from ..ops.dual import DualPlan, plan_dual
from ..graphon.grid import GraphonGrid, discretise
from .analytic_reference import GraphonNTK, check_inputs

__all__ = ["graphon_ntk", "prepare_grid", "GraphonNTK"]

_TILE_BYTES = 256 << 20  # working memory per tile (all layers' tensors)


class _Prepared:
    """Grid matrices as tensors with the quadrature weights folded in.

    The forward/backward signal uses the variance graphons when the grid has
    them (``Av, Bv, Rv``), else the mask graphons; with variance graphons the
    mask graphons' own matrices (``A_own``, ``BfT_own``, ``r_own``) count each
    layer's parameters."""

    def __init__(self, grid: GraphonGrid, dtype, device):
        t = lambda a: torch.as_tensor(np.array(a, dtype=np.float64, order="C"), dtype=dtype, device=device)  # noqa: E731
        self.L = grid.depth
        self.sizes = grid.sizes
        self.k = grid.R.shape[0]
        self.variance = grid.has_variance
        A, B, R = (grid.Av, grid.Bv, grid.Rv) if self.variance else (grid.A, grid.B, grid.R)
        self.A_T = t(A.T)  # (d, K_1)
        self.A = t(A)  # (K_1, d)
        self.w = [t(w) for w in grid.w]
        # forward: s~^{l} = S^{l-1} @ Bf^T with Bf = B * w_{l-1}  (K_l, K_{l-1})
        self.BfT = [t((b * grid.w[i][None, :]).T) for i, b in enumerate(B)]
        # backward: G^{l-1} = Sd^{l-1} * (G^l @ Bb) with Bb = w_l[:, None] * B
        self.Bb = [t(grid.w[i + 1][:, None] * b) for i, b in enumerate(B)]
        self.r_fwd = t(R.sum(0) * grid.w[-1])  # (K_L,)
        self.r_sum = t(R.sum(0))
        if self.variance:
            self.A_own = t(grid.A)
            self.BfT_own = [t((b * grid.w[i][None, :]).T) for i, b in enumerate(grid.B)]
            self.r_own = t(grid.R.sum(0) * grid.w[-1])


def prepare_grid(graphons, d: int, *, K: int = 256, quadrature: str = "gauss-legendre", n_outputs: int = 1, depth=None) -> GraphonGrid:
    """The discretised network that :func:`graphon_ntk` uses (for inspection)."""
    return discretise(graphons, d, K=K, quadrature=quadrature, n_outputs=n_outputs, depth=depth)


def _diagonals(X: torch.Tensor, P: _Prepared, f) -> list[torch.Tensor]:
    # f(q11, q22, q12) -> (S, Sd): the torch function of the dual rule
    """s~^l(u_a; x, x) for every input and hidden layer: list of L tensors (N, K_l)."""
    d = X.shape[1]
    s = (X * X) @ P.A_T / d
    out = [s]
    for l in range(1, P.L):
        S, _ = f(s, s, s)
        s = S @ P.BfT[l - 1]
        out.append(s)
    return out


def _chunk(rect, X1, X2, D1, D2, ids, P: _Prepared, plan: DualPlan, trainable: str, sym: bool):
    """Theta and NNGP for the pairs of the rectangle ``rect = (i0, i1, j0, j1)``
    of inputs X1[i0:i1] x X2[j0:j1] (only j >= i when ``sym``).

    Returns ``(ii, jj, theta, nngp)`` with the pairs' indices (P,) and values (P,).
    The input layer is one GEMM over the rectangle,
    ``s~^1[i, j, a] = (X1_i o A_a) . X2_j / d``, so no (P, d) gather is made.

    ``plan.pairs(Da, Db, ii, jj, s, BT)`` returns the dual activation ``(S, Sd)``
    (P, K) of the pairs from the diagonals Da (N1, K), Db (N2, K) and s (P, K),
    together with ``S @ BT`` (the next layer's s~, or the NNGP for the read-out);
    ``plan.backward(G, Bb, Sd, w, pre)`` is one backward step (see
    :mod:`gntk_fast.ops.dual`).
    Every pair of identical inputs (``ids = (id1, id2)``: one id per distinct
    input row, shared by X1 and X2) takes s~(x, x) from the diagonals bit for
    bit, so the arc-cosine angle is exactly 0 there: its derivative is infinite
    at correlation 1, and the GEMM's different summation order (a rounding
    difference of 1e-16 in s~) would cost ~1e-8 in the kernel. This holds for
    the pairs (i, i) of x2 = x1, for repeated rows, and for rows that x1 and a
    different x2 share.
    """
    i0, i1, j0, j1 = rect
    d = X1.shape[1]
    ni, nj = i1 - i0, j1 - j0
    dev = X1.device
    XI, XJ = X1[i0:i1], X2[j0:j1]
    ri = torch.arange(i0, i1, device=dev)
    rj = torch.arange(j0, j1, device=dev)
    gi, gj = torch.broadcast_tensors(ri[:, None], rj[None, :])
    keep = gj >= gi if sym else None

    def input_layer(A):  # s~^1 of the rectangle's pairs for the input graphon A (K_1, d)
        T = (XI[:, None, :] * A[None, :, :]).reshape(ni * A.shape[0], d)
        s_rect = (T @ XJ.T).view(ni, -1, nj).transpose(1, 2)  # (ni, nj, K_1)
        out = s_rect[keep] if sym else s_rect.reshape(ni * nj, -1)
        return out.contiguous().div_(d)

    s = input_layer(P.A)
    ii, jj = (gi[keep], gj[keep]) if sym else (gi.reshape(-1), gj.reshape(-1))
    own_params = P.variance and trainable == "mask"
    own = input_layer(P.A_own) if own_params else None
    id1, id2 = ids
    same = torch.nonzero(id1[ii] == id2[jj]).squeeze(1)
    pre, dots, means = [], [], []
    for l in range(P.L):
        if len(same):
            s[same] = D1[l][ii[same]]
        last = l + 1 == P.L
        S, Sd, nxt = plan.pairs(D1[l], D2[l], ii, jj, s, P.r_fwd[:, None] if last else P.BfT[l])
        if trainable == "mask":
            pre.append(own if own_params else s)
            if own_params:
                own = S @ (P.r_own[:, None] if last else P.BfT_own[l])
        else:
            means.append(S @ P.w[l])
        dots.append(Sd)
        s = nxt
    nngp = s[:, 0]
    G = dots[-1] * P.r_sum
    if trainable == "mask":
        theta = (own[:, 0] if own_params else nngp) + (G * pre[-1]) @ P.w[-1]
        for l in range(P.L - 2, -1, -1):
            G, vec = plan.backward(G, P.Bb[l], dots[l], P.w[l], pre[l])
            theta += vec
    else:
        dots0 = XI @ XJ.T / d
        prev = [dots0[keep] if sym else dots0.reshape(-1)] + means[:-1]
        theta = P.k * means[-1] + (G @ P.w[-1]) * prev[-1]
        for l in range(P.L - 2, -1, -1):
            G, vec = plan.backward(G, P.Bb[l], dots[l], P.w[l], None)
            theta += vec * prev[l]
    return ii, jj, theta, nngp


def _pair_chunks(n1: int, n2: int, sym: bool, chunk: int, row_cap: int):
    """Rectangles (i0, i1, j0, j1) of at most ~``chunk`` pairs covering every pair
    (i, j) (only j >= i when ``sym``): blocks of whole rows when a row fits,
    else segments of one row; at most ``row_cap`` rows at a time."""
    if n2 <= chunk:
        rows = max(1, min(chunk // n2, row_cap))
        for i0 in range(0, n1, rows):
            yield i0, min(n1, i0 + rows), (i0 if sym else 0), n2
    else:
        for i in range(n1):
            for j0 in range(i if sym else 0, n2, chunk):
                yield i, i + 1, j0, min(n2, j0 + chunk)


def constant_scales(grid: GraphonGrid) -> tuple[list[float], list[float]] | None:
    """The per-layer scales ``(v, c)`` of a grid with one node per hidden layer
    whose input graphon is the same for every input coordinate, else None.

    ``v_l`` is the forward (variance, else mask) graphon's value of layer l,
    ``c_l`` the mask graphon's (they count each layer's parameters); the
    read-out's values are summed over the outputs. With these the kernel is
    the dense recursion of :mod:`gntk_fast.ops.dense_ntk`."""
    if any(k != 1 for k in grid.sizes):
        return None

    def layer_values(A, B, R):
        if not np.all(A == A[0, 0]):
            return None
        return [float(A[0, 0])] + [float(b[0, 0]) for b in B] + [float(R[:, 0].sum())]

    own = layer_values(grid.A, grid.B, grid.R)
    if own is None or not grid.has_variance:
        return None if own is None else (own, own)
    fwd = layer_values(grid.Av, grid.Bv, grid.Rv)
    return None if fwd is None else (fwd, own)


def _is_number(g) -> bool:
    return isinstance(g, (numbers.Real, np.floating, np.integer)) and not isinstance(g, (bool, np.bool_))


def number_scales(graphons, variance_graphons, d: int, *, K, quadrature, n_outputs, depth):
    """:func:`constant_scales` without building the grid, for the common call whose
    graphons (and variance graphons) are plain numbers and whose options are valid;
    None for anything else (then :func:`gntk_fast.graphon.grid.discretise` checks
    the call and raises its errors)."""
    if not isinstance(graphons, (list, tuple)) or not 2 <= len(graphons) <= MAX_DEPTH + 1:
        return None
    ok = (type(K) is int and 1 <= K <= MAX_BLOCKS and quadrature in ("gauss-legendre", "midpoint")
          and type(n_outputs) is int and 1 <= n_outputs <= MAX_WIDTH and 1 <= d <= MAX_WIDTH
          and (depth is None or (type(depth) is int and depth + 1 == len(graphons))))
    if not ok or not all(_is_number(g) and 0.0 <= float(g) <= 1.0 for g in graphons):
        return None
    k = float(n_outputs)
    own = [float(g) for g in graphons[:-1]] + [k * float(graphons[-1])]
    if variance_graphons is None:
        return own, own
    if not isinstance(variance_graphons, (list, tuple)) or len(variance_graphons) != len(graphons) or \
            not all(_is_number(g) and math.isfinite(float(g)) and float(g) >= 0.0 for g in variance_graphons):
        return None
    return [float(g) for g in variance_graphons[:-1]] + [k * float(variance_graphons[-1])], own


def _auto_chunk(P: _Prepared, itemsize: int, quadrature: bool) -> int:
    """Pairs per chunk from a 256 MB working budget (all layers' (P, K) tensors)."""
    per_pair = (sum(P.sizes) * 3 + max(P.sizes) * 6) * itemsize
    c = _TILE_BYTES // max(per_pair, 1)
    if quadrature:
        c = min(c, 2048)
    return int(max(64, min(c, 1 << 16)))



def _fill(theta, nngp, X1, X2, P: _Prepared, plan: DualPlan, trainable: str, sym: bool, tile: int, progress) -> None:
    """Compute every pair (chunk by chunk) into ``theta`` and ``nngp`` (or None)."""
    n1, n2 = X1.shape[0], X2.shape[0]
    f = plan.function()
    # one diagonal per distinct input row: identical inputs (in x1, or shared by
    # x1 and x2) get bitwise identical diagonals and are snapped in _chunk
    rows = X1 if sym else torch.cat([X1, X2])
    uniq, inv = torch.unique(rows, dim=0, return_inverse=True)
    DU = _diagonals(uniq, P, f)
    id1 = inv[:n1]
    id2 = id1 if sym else inv[n1:]
    D1 = [t[id1] for t in DU]
    D2 = D1 if sym else [t[id2] for t in DU]
    total = n1 * (n1 + 1) // 2 if sym else n1 * n2
    if progress is None:
        progress = total > 16 * tile
    itemsize = theta.element_size()
    row_cap = max(1, (64 << 20) // max(1, P.A.shape[0] * X1.shape[1] * itemsize))
    with tqdm(total=total, desc="graphon_ntk pairs", unit="pair", unit_scale=True,
              disable=not progress, leave=False) as bar:
        for rect in _pair_chunks(n1, n2, sym, tile, row_cap):
            ii, jj, th, ng = _chunk(rect, X1, X2, D1, D2, (id1, id2), P, plan, trainable, sym)
            theta[ii, jj] = th
            if nngp is not None:
                nngp[ii, jj] = ng
            if sym:
                theta[jj, ii] = th
                if nngp is not None:
                    nngp[jj, ii] = ng
            bar.update(len(ii))


def graphon_ntk(
    graphons,
    x1,
    x2=None,
    *,
    activation="relu",
    trainable: str = "mask",
    K: int = 256,
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
) -> Any:
    """The analytic Graphon NTK Theta(x1, x2) of a network of graphon layers.

    Parameters
    ----------
    graphons : list of L + 1 graphons (or a :class:`~gntk_fast.pai.NetworkGraphon`)
        ``[W^1 (input layer over (u, input coordinate j)), W^2..W^L (hidden),
        W^{L+1} (read-out over (output c, v))]``. Each entry: a number in
        [0, 1], a callable ``W(u, v)`` vectorised over numpy arrays, a 2-D
        block matrix (step graphon, uniform blocks), a SAS estimate or a
        :mod:`gntk_fast.graphon` object. Neuron i of a layer of n sits at
        u = (i - 1/2)/n, input coordinate j at v_j = (j - 1/2)/d, output c at
        (c - 1/2)/k.
    x1 : (N1, d) tensor or array;  x2 : (N2, d) or None (then x2 = x1).
    activation : a registered name ("relu" (default), "erf", "tanh",
        "identity", or one added by :func:`gntk_fast.activations.register_activation`),
        an :class:`~gntk_fast.activations.Activation` or an elementwise callable.
    trainable : "mask" (only kept weights train; default) or "all" (every
        weight trains, variance W(u, v); the paper's convention). See module docstring.
    K : int in [1, MAX_BLOCKS]
        Quadrature nodes for layers touched by a callable graphon (step and
        constant layers use their exact block rule, see :mod:`gntk_fast.graphon.grid`).
    quadrature : "gauss-legendre" or "midpoint" (for callable graphons).
    return_nngp : also return the output NNGP kernel: the result is then a
        :class:`GraphonNTK` ``(kernel, nngp)``.
    backend : "auto", "triton", "numba" or "naive" (the ``dual`` operation's
        registry, :mod:`gntk_fast.ops.dual`); a named backend that cannot serve
        the call raises :class:`~gntk_fast.ops.BackendError`.
    n_outputs : k >= 1 read-out outputs; the kernel is traced (summed) over them.
    dual : None (the activation's closed form when it has one, else the polar
        quadrature), "closed", "quadrature" (polar Gaussian quadrature,
        exponentially accurate also for relu's kink) or "hermite" (plain 2-D
        Gauss-Hermite; smooth activations only), see :mod:`gntk_fast.ops.dual.quadrature`.
    quad_nodes : nodes per arc/radius of the polar rule, or per axis of the
        Gauss-Hermite rule (default 32).
    dtype : torch.float64 (default) or torch.float32.
    tile : pairs of inputs per chunk of the tiled path (default: from a 256 MB working
        budget; the one-node-per-layer path needs no tiles: memory O(L N) beside the result).
    depth : optional number of hidden layers L, checked against len(graphons) - 1.
    progress : show a tqdm bar over the pairs (default: when there are > 16 chunks).
    variance_graphons : optional list of L + 1 variance graphons ``V^l(u, v) =
        E[w^2 m]`` (values >= 0, same layout as ``graphons``; e.g.
        :attr:`gntk_fast.pai.NetworkGraphon.variance_graphons`, the block
        means of a pruned network's ``W * W * M``). They replace the mask
        graphons in the forward covariances, the NNGP and the backward
        recursion (``s~^l = int V^l S^{l-1}``, ``G^l = Sd^l int V^{l+1} G^{l+1}``),
        while with ``trainable="mask"`` the mask graphons still count each
        layer's parameters (``Theta = sum_l int G^l(u) int W^l(u, v) S^{l-1}(v)``).
        None (default): the graphons play both roles (docs/graphon-ntk.md section 3). With
        ``graphons = 1`` and ``V = c`` the kernel is ``trainable="all"``'s with
        the graphon c: ``c^L`` times the dense NTK.

    Returns
    -------
    Theta : (N1, N2) tensor of ``dtype`` on x1's device, or a
    :class:`GraphonNTK` with fields ``kernel`` and ``nngp`` when ``return_nngp``.
    """
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    return_nngp = check_bool("return_nngp", return_nngp)
    with torch_threads(threads_for(sum(x.numel() for x in (x1, x2) if isinstance(x, torch.Tensor)))):
        x1, x2 = check_inputs(x1, x2)  # small inputs: a finiteness check on one thread
    dtype = torch.float64 if dtype is None else check_float_dtype("dtype", dtype)
    device = x1.device
    plan = plan_dual(activation, dual=dual, quad_nodes=quad_nodes, backend=backend, device=device)
    scales = None
    if plan.backend != "triton":  # one node per layer: the dense recursion with per-layer scales, fused
        scales = number_scales(graphons, variance_graphons, x1.shape[1], K=K, quadrature=quadrature,
                               n_outputs=n_outputs, depth=depth)
    if scales is None:
        grid = discretise(graphons, x1.shape[1], K=K, quadrature=quadrature, n_outputs=n_outputs, depth=depth,
                          variance=variance_graphons)
        if plan.backend != "triton":
            scales = constant_scales(grid)
    tile = check_int("tile", tile, min_value=1) if tile is not None else None
    X1 = x1.to(device=device, dtype=dtype)
    X2 = X1 if x2 is None else x2.to(device=device, dtype=dtype)
    # x2 equal to x1 is the symmetric case (exact mirror, exact diagonal angles)
    sym = x2 is None or (x2.shape == x1.shape and x2.device == x1.device and bool(torch.equal(x1, x2)))
    if scales is not None:
        res = dense_ntk(X1, None if sym else X2, scales[0], own_scales=scales[1], activation=plan.activation,
                        trainable=trainable, n_outputs=n_outputs, return_nngp=return_nngp, dual=plan.rule,
                        quad_nodes=quad_nodes, backend=backend, progress=progress)
        return GraphonNTK(res.kernel, res.nngp) if return_nngp else res.kernel
    P = _Prepared(grid, dtype, device)
    if tile is None:
        tile = _auto_chunk(P, torch.finfo(dtype).bits // 8, plan.rule != "closed")
    theta = torch.empty(X1.shape[0], X2.shape[0], dtype=dtype, device=device)
    nngp = torch.empty_like(theta) if return_nngp else None
    with torch.no_grad():
        _fill(theta, nngp, X1, X2, P, plan, trainable, sym, tile, progress)
    return GraphonNTK(theta, nngp) if return_nngp else theta
