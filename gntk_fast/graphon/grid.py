"""Discretisation of the graphons of a network for the analytic Graphon NTK.

``graphons = [W^1, W^2, ..., W^L, W^{L+1}]`` (L + 1 entries, L >= 1 hidden
layers): the input layer ``W^1(u, v)`` is evaluated at input coordinate
``v_j = (j - 1/2)/d``; the read-out ``W^{L+1}(u, v)`` at output position
``u_c = (c - 1/2)/k``. Each entry is anything
:func:`gntk_fast.graphon.as_graphon` accepts (a number, a callable ``W(u, v)``
vectorised over numpy arrays, a 2-D block matrix, a SAS estimate, a graphon).

Every hidden layer l gets quadrature positions ``u^l`` (K_l nodes) and weights
``w^l`` (sum 1), chosen from the graphons that touch it (the rows of W^l, the
columns of W^{l+1}):

* only constants: one node (u = 1/2, weight 1) - exact;
* constants and step graphons: the midpoints and widths of the common
  refinement of their block edges - exact (everything is piecewise constant);
* any callable graphon: about ``K`` Gauss-Legendre nodes
  (``quadrature="gauss-legendre"``) or midpoint nodes (``"midpoint"``); when
  step graphons share the layer, the rule is composite over the intervals of
  their block edges (max(1, round(K x width)) nodes per interval), so every
  integrand is smooth between nodes' interval ends and no node straddles a jump.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import MAX_BLOCKS, MAX_DEPTH, MAX_WIDTH, check_choice, check_int, check_size

__all__ = ["GraphonGrid", "LayerNodes", "discretise", "composite_rule", "layer_rule"]


@dataclass
class LayerNodes:
    """The fields and properties shared by :class:`GraphonGrid` and the conv
    nets' grid: graphon values ``A`` (input layer), ``B`` (hidden to hidden),
    ``R`` (read-out), the quadrature nodes ``u`` and weights ``w`` of each
    hidden layer with their ``rules``, and the variance graphons ``Av``,
    ``Bv``, ``Rv`` on the same grid (None when none were given). Each grid's
    docstring gives the shapes."""

    A: np.ndarray
    B: list
    R: np.ndarray
    u: list
    w: list
    rules: list
    Av: np.ndarray | None = None
    Bv: list | None = None
    Rv: np.ndarray | None = None

    @property
    def depth(self) -> int:
        """Number of hidden layers L."""
        return len(self.u)

    @property
    def sizes(self) -> list[int]:
        """The number of nodes of each hidden layer."""
        return [len(x) for x in self.u]

    @property
    def has_variance(self) -> bool:
        return self.Av is not None


@dataclass
class GraphonGrid(LayerNodes):
    """The discretised network.

    Attributes
    ----------
    A : (K_1, d) float64   W^1(u^1_a, v_j)
    B : list of L - 1 arrays, B[l-2] of shape (K_l, K_{l-1}) = W^l(u^l_a, u^{l-1}_b)
    R : (k, K_L) float64   W^{L+1}(u_c, u^L_b)
    u, w : lists of L arrays (K_l,): positions and weights (sum 1) of hidden layer l
    rules : list of L str: the rule used on each hidden layer
    Av, Bv, Rv : the variance graphons on the same grid (same shapes), or None
        when none were given (the mask graphons play both roles)
    """


def _graphon_objects(graphons, depth, name="graphons", max_value=1.0):
    from .objects import as_graphon

    graphons = getattr(graphons, "graphons", graphons) if name == "graphons" else graphons
    if isinstance(graphons, (str, bytes)) or not hasattr(graphons, "__len__"):
        raise TypeError(f"{name} must be a list [input, hidden..., read-out]; got {type(graphons).__name__}")
    graphons = list(graphons)
    if len(graphons) < 2:
        raise ValueError(
            f"{name} must list at least 2 layers (input and read-out, i.e. depth >= 1 hidden layer); got {len(graphons)}"
        )
    check_size("the number of hidden layers (len(graphons) - 1)", len(graphons) - 1, MAX_DEPTH)
    if depth is not None:
        depth = check_size("depth", depth, MAX_DEPTH)
        if len(graphons) != depth + 1:
            raise ValueError(
                f"{name} must have depth + 1 = {depth + 1} entries (input, {depth - 1} hidden, read-out); got {len(graphons)}"
            )
    out = []
    for i, g in enumerate(graphons):
        try:
            out.append(as_graphon(g, max_value=max_value))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}[{i}]: {exc}") from None
    return out


def _eval(i, g, u, v, name="graphons"):
    try:
        return np.asarray(g.evaluate(u[:, None], v[None, :]), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}[{i}]: {exc}") from None


def composite_rule(edges: np.ndarray, K: int, quadrature: str) -> tuple[np.ndarray, np.ndarray]:
    """About K nodes on [0, 1]: on each interval [e_i, e_{i+1}] of ``edges``,
    max(1, round(K x width)) Gauss-Legendre (or midpoint) nodes, so that the
    step graphons on the layer are smooth on every interval."""
    us, ws = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        n = max(1, int(round(K * (b - a))))
        if quadrature == "gauss-legendre":
            x, w = np.polynomial.legendre.leggauss(n)
            x, w = 0.5 * (x + 1.0), 0.5 * w
        else:
            x, w = (np.arange(n) + 0.5) / n, np.full(n, 1.0 / n)
        us.append(a + (b - a) * x)
        ws.append((b - a) * w)
    return np.concatenate(us), np.concatenate(ws)


def layer_rule(touching: list, K: int, quadrature: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Quadrature nodes ``u``, weights ``w`` and a description of one hidden layer.

    ``touching`` lists the graphons on the layer as ``(graphon, "rows" | "cols")``
    pairs (the layer is the rows of the one below it, the columns of the one
    above). When every one is constant or a step graphon the integrand is
    piecewise constant on the union of their step edges and the midpoints
    of those intervals are exact; otherwise :func:`composite_rule` puts about
    ``K`` nodes on the same intervals.

    Examples
    --------
    >>> from gntk_fast.graphon.objects import ConstantGraphon
    >>> u, w, rule = layer_rule([(ConstantGraphon(0.5), "rows"), (ConstantGraphon(0.2), "cols")], 64, "midpoint")
    >>> u.tolist(), w.tolist(), rule
    ([0.5], [1.0], 'constant (1 node)')
    """
    from .objects import ConstantGraphon, StepGraphon

    edges = [np.array([0.0, 1.0])]
    for g, side in touching:
        if isinstance(g, StepGraphon):
            edges.append(g.row_edges if side == "rows" else g.col_edges)
    e = np.unique(np.concatenate(edges))
    if any(not isinstance(g, (ConstantGraphon, StepGraphon)) for g, _ in touching):
        u, w = composite_rule(e, K, quadrature)
        return u, w, f"{quadrature} K={len(u)}" + (f" on {len(e) - 1} step intervals" if len(e) > 2 else "")
    return 0.5 * (e[:-1] + e[1:]), np.diff(e), "constant (1 node)" if len(e) == 2 else f"step midpoints K={len(e) - 1}"


def discretise(graphons, d: int, *, K: int = 256, quadrature: str = "gauss-legendre", n_outputs: int = 1, depth=None,
               variance=None) -> GraphonGrid:
    """Quadrature positions and graphon values of every layer (see module docstring).

    ``variance``: optional variance graphons (same layout, values >= 0),
    evaluated on the same grid; the nodes of a hidden layer then also respect
    the block edges of the variance graphons that touch it."""
    from .objects import InputGraphon

    K = check_size("K", K, MAX_BLOCKS)
    quadrature = check_choice("quadrature", quadrature, ("gauss-legendre", "midpoint"))
    n_outputs = check_size("n_outputs", n_outputs, MAX_WIDTH)
    d = check_int("d", d, min_value=1, max_value=MAX_WIDTH)
    gs = _graphon_objects(graphons, depth)
    L = len(gs) - 1
    if isinstance(gs[0], InputGraphon) and gs[0].d != d:
        raise ValueError(f"x1 has {d} features but graphons[0] is an input graphon over {gs[0].d} pixels")
    vs = None
    if variance is not None:
        vs = _graphon_objects(variance, L, name="variance_graphons", max_value=float("inf"))
        if isinstance(vs[0], InputGraphon) and vs[0].d != d:
            raise ValueError(f"x1 has {d} features but variance_graphons[0] is an input graphon over {vs[0].d} pixels")

    us, ws, rules = [], [], []
    for l in range(1, L + 1):  # hidden layer l: rows of gs[l-1], columns of gs[l]
        touching = [(gs[l - 1], "rows"), (gs[l], "cols")]
        if vs is not None:
            touching += [(vs[l - 1], "rows"), (vs[l], "cols")]
        u, w, rule = layer_rule(touching, K, quadrature)
        us.append(u)
        ws.append(w)
        rules.append(rule)

    v_in = (np.arange(d) + 0.5) / d
    u_out = (np.arange(n_outputs) + 0.5) / n_outputs
    A = _eval(0, gs[0], us[0], v_in)
    B = [_eval(l - 1, gs[l - 1], us[l - 1], us[l - 2]) for l in range(2, L + 1)]
    R = _eval(L, gs[L], u_out, us[L - 1])
    grid = GraphonGrid(A=A, B=B, R=R, u=us, w=ws, rules=rules)
    if vs is not None:
        name = "variance_graphons"
        grid.Av = _eval(0, vs[0], us[0], v_in, name)
        grid.Bv = [_eval(l - 1, vs[l - 1], us[l - 1], us[l - 2], name) for l in range(2, L + 1)]
        grid.Rv = _eval(L, vs[L], u_out, us[L - 1], name)
    return grid
