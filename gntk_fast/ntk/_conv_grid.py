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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .._constants import PADDINGS, READOUTS
from .._validation import MAX_BLOCKS, MAX_DEPTH, MAX_KERNEL, MAX_WIDTH, check_choice, check_int, check_odd_size, check_size
from ..graphon.grid import LayerNodes, layer_rule

__all__ = ["TapGraphons", "ConvGrid", "discretise_conv", "PixelGeometry", "geometry", "MAX_KERNEL", "PADDINGS",
           "READOUTS"]


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
    """

    A: np.ndarray
    B: list
    R: np.ndarray
    u: list
    w: list
    rules: list


def _entry(i: int, g: Any, k: int, last: bool) -> list:
    """The graphon objects of entry i: a list of 1 (shared) or k^2 (per tap)."""
    from ..graphon.objects import as_graphon

    where = f"graphons[{i}]"
    taps = None
    if isinstance(g, TapGraphons):
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
            out.append(as_graphon(x))
        except (TypeError, ValueError) as exc:
            name = f"{where} tap {t}" if taps is not None else where
            raise type(exc)(f"{name}: {exc}") from None
    return out


def _eval(i: int, gs: list, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    vals = []
    for t, g in enumerate(gs):
        try:
            vals.append(np.asarray(g.evaluate(u[:, None], v[None, :]), dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"graphons[{i}]" + (f" tap {t}" if len(gs) > 1 else "") + f": {exc}") from None
    return np.stack(vals)


def graphon_entries(graphons: Any, kernel_size: int, depth: int | None = None) -> list[list]:
    """Validate ``graphons`` (L + 1 entries) into lists of graphon objects per entry."""
    graphons = getattr(graphons, "graphons", graphons)
    if isinstance(graphons, (str, bytes)) or not hasattr(graphons, "__len__") or isinstance(graphons, np.ndarray):
        raise TypeError("graphons must be a list [input conv, hidden convs..., read-out] of L + 1 entries; "
                        f"got {type(graphons).__name__}")
    graphons = list(graphons)
    if len(graphons) < 2:
        raise ValueError("graphons must list at least 2 entries (one conv layer and the read-out); "
                         f"got {len(graphons)}")
    check_size("the number of conv layers (len(graphons) - 1)", len(graphons) - 1, MAX_DEPTH)
    if depth is not None:
        depth = check_size("depth", depth, MAX_DEPTH)
        if len(graphons) != depth + 1:
            raise ValueError(f"graphons must have depth + 1 = {depth + 1} entries ({depth} conv layers and the "
                             f"read-out); got {len(graphons)}")
    return [_entry(i, g, kernel_size, i == len(graphons) - 1) for i, g in enumerate(graphons)]


def discretise_conv(graphons: Any, in_channels: int, *, kernel_size: int = 3, K: int = 64,
                    quadrature: str = "gauss-legendre", n_outputs: int = 1, depth: int | None = None) -> ConvGrid:
    """Quadrature positions and graphon values of every conv layer (module docstring)."""
    k = check_odd_size("kernel_size", kernel_size, MAX_KERNEL)
    K = check_size("K", K, MAX_BLOCKS)
    quadrature = check_choice("quadrature", quadrature, ("gauss-legendre", "midpoint"))
    n_outputs = check_size("n_outputs", n_outputs, MAX_WIDTH)
    c0 = check_int("in_channels", in_channels, min_value=1)
    gs = graphon_entries(graphons, k, depth)
    L = len(gs) - 1
    us, ws, rules = [], [], []
    for l in range(1, L + 1):  # conv layer l: rows of gs[l-1], columns of gs[l]
        u, w, rule = layer_rule([(g, "rows") for g in gs[l - 1]] + [(g, "cols") for g in gs[l]], K, quadrature)
        us.append(u)
        ws.append(w)
        rules.append(rule)
    v_in = (np.arange(c0) + 0.5) / c0
    u_out = (np.arange(n_outputs) + 0.5) / n_outputs
    A = _eval(0, gs[0], us[0], v_in)
    B = [_eval(l - 1, gs[l - 1], us[l - 1], us[l - 2]) for l in range(2, L + 1)]
    R = _eval(L, gs[L], u_out, us[L - 1])[0]
    return ConvGrid(A=A, B=B, R=R, u=us, w=ws, rules=rules)


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
