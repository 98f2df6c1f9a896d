"""Channel graphons of a conv net on a quadrature grid, and the pixel geometry.

Shared by :func:`gntk_fast.ntk.graphon_cntk` and its per-pair oracle
:func:`gntk_fast.ntk.graphon_cntk_reference` (docs/graphon-cntk.md).

``graphons = [W_1, W_2, ..., W_L, R]``: L conv layers then the read-out.
A conv entry is *shared* (anything :func:`gntk_fast.graphon.as_graphon`
takes: a number, a callable ``W(u, v)``, a 2-D step matrix, a graphon
object) or *per tap*: a 3-D array ``(k^2, K_out, K_in)`` of step matrices or a
:class:`TapGraphons`. The read-out entry is shared. Tap ``t = a k + b`` is
entry ``(a, b)`` of the k x k window, pixel offset ``(a - r, b - r)``.

Hidden layer l's channel positions follow the rule of
:mod:`gntk_fast.graphon.grid` over every tap of the graphons that touch it.

``input_masks="bernoulli"`` replaces each input-layer node u by one node per
mask m of the channel's C_0 k^2 input weights (weight w(u) P(m | u), tap
values m in {0, 1}): the exact average over the input layer's Bernoulli
masks, which does not self-average because that fan-in stays finite
(docs/graphon-cntk.md section 3).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .._constants import PADDINGS, READOUTS
from .._validation import MAX_BLOCKS, MAX_DEPTH, MAX_KERNEL, MAX_WIDTH, check_choice, check_int, check_odd_size, check_size
from ..graphon.grid import LayerNodes, layer_rule

__all__ = ["TapGraphons", "ConvGrid", "discretise_conv", "PixelGeometry", "geometry", "MAX_KERNEL", "PADDINGS",
           "READOUTS", "INPUT_MASKS", "MAX_MASK_BITS", "MAX_MASK_NODES"]

#: how the input layer's graphon enters: its mean (exact for variance-modulated nets and as C_0 k^2 -> infinity)
#: or the exact average over the Bernoulli masks of a channel's C_0 k^2 input weights
INPUT_MASKS = ("mean", "bernoulli")
#: largest C_0 k^2 whose 2^(C_0 k^2) masks ``input_masks="bernoulli"`` enumerates
MAX_MASK_BITS = 16
#: largest number of expanded input-layer nodes (K_1 times the masks of positive probability)
MAX_MASK_NODES = 1 << 21


class TapGraphons:
    """One channel graphon per tap of a k x k conv layer (docs/graphon-cntk.md section 2).

    Parameters
    ----------
    taps : sequence of k^2 graphons, or a callable ``W(u, v, t)``
        Each entry anything :func:`gntk_fast.graphon.as_graphon` accepts; tap
        ``t = a k + b`` is window entry ``(a, b)`` (``weight[o, i, a, b]``). A
        callable receives broadcast float64 arrays u, v and the tap index
        ``t`` (an int) and returns values in [0, 1].
    kernel_size : int, required with a callable (the number of taps is k^2)

    Examples
    --------
    >>> from gntk_fast.ntk import TapGraphons
    >>> g = TapGraphons(lambda u, v, t: 0.2 + 0.05 * t * u * v, kernel_size=3)
    >>> len(g.taps)
    9
    """

    def __init__(self, taps: Sequence[Any] | Callable, kernel_size: int | None = None) -> None:
        if callable(taps) and not hasattr(taps, "__len__"):
            if kernel_size is None:
                raise ValueError("kernel_size must be given when taps is a callable W(u, v, t)")
            k = check_odd_size("kernel_size", kernel_size, MAX_KERNEL)
            fn = taps
            self.taps = [(lambda u, v, t=t: fn(u, v, t)) for t in range(k * k)]
        else:
            if isinstance(taps, (str, bytes)) or not hasattr(taps, "__len__"):
                raise TypeError(f"taps must be a sequence of k^2 graphons or a callable W(u, v, t); got {type(taps).__name__}")
            self.taps = list(taps)
            k = int(round(len(self.taps) ** 0.5))
            if len(self.taps) == 0 or k * k != len(self.taps):
                raise ValueError(f"taps must list k^2 graphons (one per tap of a k x k window); got {len(self.taps)}")
            if kernel_size is not None and check_odd_size("kernel_size", kernel_size, MAX_KERNEL) != k:
                raise ValueError(f"taps lists {len(self.taps)} graphons but kernel_size={kernel_size} has {kernel_size ** 2} taps")
        self.kernel_size = k

    def __repr__(self) -> str:
        return f"TapGraphons(kernel_size={self.kernel_size})"


@dataclass
class ConvGrid(LayerNodes):
    """The discretised conv net.

    A : (G_1, K_1, C_0)        W_1(u_a, v_j, t) (G = 1 shared, k^2 per tap)
    B : list of L - 1 arrays (G_l, K_l, K_{l-1}) = W_l(u^l_a, u^{l-1}_b, t)
    R : (n_outputs, K_L)       R(c, u^L_b)
    u, w : lists of L arrays: channel positions and weights (sum 1) of conv layer l
    rules : the quadrature rule of each layer
    Av, Bv, Rv : the variance graphons on the same grid, or None. When given, a layer's
        mask and variance arrays have the same number of tap groups (a shared one is
        repeated over the k^2 taps when the other is per tap).
    """


def _entry(i: int, g: Any, k: int, last: bool, name: str = "graphons", max_value: float = 1.0) -> list:
    """The graphon objects of entry i: a list of 1 (shared) or k^2 (per tap)."""
    from ..graphon.objects import Graphon, as_graphon

    where = f"{name}[{i}]"
    taps = None
    if isinstance(g, (list, tuple)) and len(g) > 0 and all(isinstance(x, Graphon) for x in g):
        taps = list(g)  # one graphon object per tap (a per-tap network graphon's layer)
        if len(taps) != k * k:
            raise ValueError(f"{where} lists {len(taps)} per-tap graphons; kernel_size={k} has {k * k} taps")
    elif isinstance(g, TapGraphons):
        taps = g.taps
        if g.kernel_size != k:
            raise ValueError(f"{where} is a TapGraphons for kernel_size={g.kernel_size}, but kernel_size={k}")
    else:
        try:
            import torch

            if isinstance(g, torch.Tensor):
                g = g.detach().cpu().numpy()
        except ImportError:  # pragma: no cover
            pass
        if isinstance(g, np.ndarray) and g.ndim == 3:
            if g.shape[0] != k * k:
                raise ValueError(f"{where}: a per-tap array must have shape (kernel_size^2 = {k * k}, K_out, K_in); "
                                 f"got {g.shape}")
            taps = list(g)
    if taps is not None and last:
        raise ValueError(f"{where} is the read-out's graphon: it must be shared (one graphon), not per tap")
    out = []
    for t, x in enumerate(taps if taps is not None else [g]):
        try:
            out.append(as_graphon(x, max_value=max_value))
        except (TypeError, ValueError) as exc:
            name = f"{where} tap {t}" if taps is not None else where
            raise type(exc)(f"{name}: {exc}") from None
    return out


def _eval(i: int, gs: list, u: np.ndarray, v: np.ndarray, name: str = "graphons") -> np.ndarray:
    vals = []
    for t, g in enumerate(gs):
        try:
            vals.append(np.asarray(g.evaluate(u[:, None], v[None, :]), dtype=np.float64)
                        * np.ones((len(u), len(v))))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}[{i}]" + (f" tap {t}" if len(gs) > 1 else "") + f": {exc}") from None
    return np.stack(vals)


def graphon_entries(graphons: Any, kernel_size: int, depth: int | None = None, *, name: str = "graphons",
                    max_value: float = 1.0) -> list[list]:
    """Validate ``graphons`` (L + 1 entries) into lists of graphon objects per entry
    (``max_value=inf`` for variance graphons, whose values may exceed 1)."""
    if name == "graphons":
        graphons = getattr(graphons, "graphons", graphons)
    if isinstance(graphons, (str, bytes)) or not hasattr(graphons, "__len__") or isinstance(graphons, np.ndarray):
        raise TypeError(f"{name} must be a list [input conv, hidden convs..., read-out] of L + 1 entries; "
                        f"got {type(graphons).__name__}")
    graphons = list(graphons)
    if len(graphons) < 2:
        raise ValueError(f"{name} must list at least 2 entries (one conv layer and the read-out); "
                         f"got {len(graphons)}")
    check_size("the number of conv layers (len(graphons) - 1)", len(graphons) - 1, MAX_DEPTH)
    if depth is not None:
        depth = check_size("depth", depth, MAX_DEPTH)
        if len(graphons) != depth + 1:
            raise ValueError(f"{name} must have depth + 1 = {depth + 1} entries ({depth} conv layers and the "
                             f"read-out); got {len(graphons)}")
    return [_entry(i, g, kernel_size, i == len(graphons) - 1, name, max_value) for i, g in enumerate(graphons)]


def _match_groups(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repeat a shared (1-group) array over the taps of a per-tap one, so both have one group count."""
    if a.shape[0] == b.shape[0]:
        return a, b
    if a.shape[0] == 1:
        return np.repeat(a, b.shape[0], axis=0), b
    return a, np.repeat(b, a.shape[0], axis=0)


def _bernoulli_nodes(A: np.ndarray, w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand the input layer's nodes over their masks.

    A (G, K_1, C_0) keep probabilities (G = 1: every tap the same), w (K_1,) node weights. Returns
    ``(A', w', node)``: A' (k^2, K', C_0) with the 0/1 tap values of each (node, mask) of positive
    probability, w' = w[node] P(mask | node), and the original node of each."""
    G, K1, C0 = A.shape
    bits = k * k * C0
    if bits > MAX_MASK_BITS:
        raise ValueError(f'input_masks="bernoulli" enumerates the 2^(C_0 kernel_size^2) masks of an input channel; '
                         f"in_channels * kernel_size^2 = {C0} * {k * k} = {bits} exceeds {MAX_MASK_BITS} "
                         f'(use input_masks="mean")')
    p = np.broadcast_to(A, (k * k, K1, C0)).transpose(1, 0, 2).reshape(K1, bits)  # bit b = t C_0 + j
    masks = ((np.arange(1 << bits)[:, None] >> np.arange(bits)[None, :]) & 1).astype(bool)  # (2^bits, bits)
    # the masks of positive probability: each bit fixed where its probability is 0 or 1
    rows, node = [], []
    for a in range(K1):
        free = (p[a] > 0) & (p[a] < 1)
        fixed = p[a] >= 1
        ok = np.all(masks[:, ~free] == fixed[None, ~free], axis=1)
        rows.append(np.flatnonzero(ok))
        node.append(np.full(len(rows[-1]), a))
    n = sum(len(r) for r in rows)
    if n > MAX_MASK_NODES:
        raise ValueError(f'input_masks="bernoulli" needs {n} input-layer nodes (K_1 = {K1} nodes times their masks), '
                         f"more than {MAX_MASK_NODES}; lower K or kernel_size")
    node = np.concatenate(node)
    m = masks[np.concatenate(rows)]  # (K', bits)
    pa = p[node]
    prob = np.prod(np.where(m, pa, 1.0 - pa), axis=1)
    A2 = m.reshape(-1, k * k, C0).transpose(1, 0, 2).astype(np.float64)
    return np.ascontiguousarray(A2), w[node] * prob, node


def discretise_conv(graphons: Any, in_channels: int, *, kernel_size: int = 3, K: int = 64,
                    quadrature: str = "gauss-legendre", n_outputs: int = 1, depth: int | None = None,
                    variance: Any = None, input_masks: str = "mean") -> ConvGrid:
    """Quadrature positions and graphon values of every conv layer (module docstring).

    ``variance``: optional variance graphons (same layout, values >= 0),
    evaluated on the same grid; a conv layer's nodes then also respect the
    block edges of the variance graphons that touch it. ``input_masks``:
    "mean" or "bernoulli" (the input layer's nodes split by their masks; not
    with variance graphons)."""
    k = check_odd_size("kernel_size", kernel_size, MAX_KERNEL)
    K = check_size("K", K, MAX_BLOCKS)
    quadrature = check_choice("quadrature", quadrature, ("gauss-legendre", "midpoint"))
    input_masks = check_choice("input_masks", input_masks, INPUT_MASKS)
    n_outputs = check_size("n_outputs", n_outputs, MAX_WIDTH)
    c0 = check_int("in_channels", in_channels, min_value=1)
    gs = graphon_entries(graphons, k, depth)
    L = len(gs) - 1
    vs = None
    if variance is not None:
        if input_masks == "bernoulli":
            raise ValueError('input_masks="bernoulli" cannot be combined with variance_graphons (the input layer\'s '
                             'kept weights would need their own law per mask); use input_masks="mean"')
        vs = graphon_entries(variance, k, L, name="variance_graphons", max_value=float("inf"))
    us, ws, rules = [], [], []
    for l in range(1, L + 1):  # conv layer l: rows of gs[l-1], columns of gs[l]
        touching = [(g, "rows") for g in gs[l - 1]] + [(g, "cols") for g in gs[l]]
        if vs is not None:
            touching += [(g, "rows") for g in vs[l - 1]] + [(g, "cols") for g in vs[l]]
        u, w, rule = layer_rule(touching, K, quadrature)
        us.append(u)
        ws.append(w)
        rules.append(rule)
    v_in = (np.arange(c0) + 0.5) / c0
    u_out = (np.arange(n_outputs) + 0.5) / n_outputs
    A = _eval(0, gs[0], us[0], v_in)
    B = [_eval(l - 1, gs[l - 1], us[l - 1], us[l - 2]) for l in range(2, L + 1)]
    R = _eval(L, gs[L], u_out, us[L - 1])[0]
    if input_masks == "bernoulli":
        A, ws[0], node = _bernoulli_nodes(A, ws[0], k)
        us[0] = us[0][node]
        rules[0] += f", {len(node)} (node, input mask) pairs"
        if L > 1:
            B[0] = np.ascontiguousarray(B[0][:, :, node])
        else:
            R = np.ascontiguousarray(R[:, node])
    grid = ConvGrid(A=A, B=B, R=R, u=us, w=ws, rules=rules)
    if vs is not None:
        name = "variance_graphons"
        grid.A, grid.Av = _match_groups(A, _eval(0, vs[0], us[0], v_in, name))
        pairs = [_match_groups(b, _eval(l - 1, vs[l - 1], us[l - 1], us[l - 2], name))
                 for b, l in zip(B, range(2, L + 1))]
        grid.B, grid.Bv = [p[0] for p in pairs], [p[1] for p in pairs]
        grid.Rv = _eval(L, vs[L], u_out, us[L - 1], name)[0]
    return grid


# ----------------------------------------------------------------- pixel geometry
@dataclass(frozen=True)
class PixelGeometry:
    """The carried pixel pairs ("entries") of one pair of inputs and their tap neighbours.

    e1, e2 : (E,) int64   pixel of x and of x' of entry e (pixel p = row * W + col)
    nbr    : (E, k^2) int64  entry of (e1 + delta_t, e2 + delta_t), or -1 where that
             reads the zero padding ("same")
    weight : readout weight of every entry (1/P^2 for "gap", 1/P for "flatten")
    diag   : (P, k^2) int64  the same neighbour table for the diagonal entries (p, p)
    """

    e1: np.ndarray
    e2: np.ndarray
    nbr: np.ndarray
    weight: float
    diag: np.ndarray


def _shift_table(H: int, W: int, k: int, padding: str) -> np.ndarray:
    """(P, k^2): pixel p + delta_t, or -1 outside the image ("same")."""
    r = (k - 1) // 2
    ph, pw = np.divmod(np.arange(H * W), W)
    out = np.empty((H * W, k * k), dtype=np.int64)
    for a in range(k):
        for b in range(k):
            h, w = ph + a - r, pw + b - r
            if padding == "circular":
                out[:, a * k + b] = (h % H) * W + (w % W)
            else:
                ok = (h >= 0) & (h < H) & (w >= 0) & (w < W)
                out[:, a * k + b] = np.where(ok, h * W + w, -1)
    return out


def geometry(H: int, W: int, kernel_size: int, padding: str, readout: str) -> PixelGeometry:
    """Entries carried for ``readout``: every pixel pair (p, q) for "gap" (e = p P + q),
    the diagonal (p, p) for "flatten" (e = p); see docs/graphon-cntk.md section 4."""
    P = H * W
    sh = _shift_table(H, W, kernel_size, padding)
    if readout == "flatten":
        p = np.arange(P, dtype=np.int64)
        return PixelGeometry(p, p, sh, 1.0 / P, sh)
    e1, e2 = np.divmod(np.arange(P * P, dtype=np.int64), P)
    s1, s2 = sh[e1], sh[e2]
    nbr = np.where((s1 >= 0) & (s2 >= 0), s1 * P + s2, -1)
    return PixelGeometry(e1, e2, nbr, 1.0 / (P * P), sh)
