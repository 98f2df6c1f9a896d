"""Network graphons: one position per neuron across every layer (docs/limit-graphons.md, section 3).

SAS (:func:`gntk_fast.graphon.sas`) sorts each mask's rows and columns by its
own degrees, so hidden layer l's neurons can sit in one order as the rows of
M^l and in another as the columns of M^{l+1}. The analytic Graphon NTK and any
cross-layer quantity need ONE position per neuron. :func:`network_graphon`
orders each hidden layer's neurons once and block-averages every mask with
those shared orders:

* masks ``[M^1 (n_1, d), M^2 (n_2, n_1), ..., M^{L+1} (k, n_L)]``
  (rows = outputs of the layer, columns = inputs);
* hidden layer l's order (``order="degree"``): in-degree (the row sums of
  M^l, the kept fan-in) descending, ties broken by out-degree (the column sums
  of M^{l+1}) descending, then by index - high degree sits near position 0, as
  in SAS; or explicit permutations (``orders=``, e.g. by a fitted row factor);
* block edges ``floor(b n_l / K)`` in sorted positions (no neuron dropped);
  input coordinates keep their identity (one column per coordinate) and the k
  outputs their order (one row per output);
* ``H^l[a, b]`` = mean of M^l over the block (a, b) under the shared orders.

With ``weights`` given, the same blocks of ``W^l * W^l * M^l`` give the
*variance graphons* ``E[w^2 m](u, v)`` of the network's kept weights (values in
[0, inf)), which :func:`gntk_fast.graphon_ntk` takes as ``variance_graphons``
for the forward/backward signal while the mask graphons count each layer's
parameters.

Conv nets (4-D masks (C_out, C_in, kh, kw)) go through
:func:`conv_network_graphon`: channels take the
place of neurons, one order per hidden layer shared by every tap, with
``taps="pooled"`` or ``"per-tap"`` graphons.

The per-mask SAS estimates are kept beside the joint ones
(:attr:`NetworkGraphon.per_mask`) and their differences reported
(:attr:`NetworkGraphon.difference`: the mean absolute difference of the block
values, i.e. the normalised histogram distance).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .._validation import MAX_BLOCKS, check_choice, check_permutation, check_size, finite_array
from .._masks import block_edges, coerce_mask, count_taps, ordered_block_means
from ..graphon.channels import TAPS, conv_mask, is_conv_mask
from ..graphon.sas import sas, sas_from_counts

__all__ = ["NetworkGraphon", "network_graphon", "conv_network_graphon", "ordered_block_means"]


@dataclass
class NetworkGraphon:
    """A jointly ordered estimate of a network's graphons.

    Attributes
    ----------
    graphons : list of L + 1 graphons
        ``[InputGraphon (K_1, d), StepGraphon (K_2, K_1), ..., StepGraphon (k, K_L)]``:
        the argument ``graphons`` of :func:`gntk_fast.graphon_ntk`. For a conv
        net with ``taps="per-tap"``, a layer with T taps holds a list of T graphons.
    variance_graphons : list of L + 1 variance graphons (same shapes) or None
        Block means of ``W * W * M`` (``weights`` given), else None.
    orders : list of L int64 arrays (n_l,)
        ``orders[l - 1][t]`` is the original index of hidden layer l's t-th neuron.
    edges : list of L int64 arrays (K_l + 1,)
        Block edges of hidden layer l in sorted positions.
    per_mask : list of L + 1 :class:`~gntk_fast.graphon.SASResult`
        Each mask's own SAS estimate with the same block counts (input layer
        in coordinate order; the read-out's rows sorted by their own degree).
    difference : float64 (L + 1,)
        Mean absolute difference of the joint and per-mask block values per layer.
    shapes : list of L + 1 (n_out, n_in)
    """

    graphons: list
    variance_graphons: list | None
    orders: list
    edges: list
    per_mask: list
    difference: np.ndarray
    shapes: list

    @property
    def depth(self) -> int:
        """L, the number of hidden layers."""
        return len(self.orders)

    def H(self, layer: int) -> np.ndarray:
        """Block values of layer ``layer`` (0 = input layer), float64 (K_out, K_in);
        (T, K_out, K_in) for a per-tap conv layer (a list of T graphons)."""
        g = self.graphons[layer]
        return np.stack([t.H for t in g]) if isinstance(g, list) else g.H

    def __repr__(self) -> str:
        ks = [self.H(l).shape for l in range(len(self.graphons))]
        return (f"NetworkGraphon(depth={self.depth}, blocks={ks}, variance={self.variance_graphons is not None}, "
                f"difference={np.round(self.difference, 4).tolist()})")


def _as_dense_masks(masks: Sequence[Any]) -> list[np.ndarray]:
    masks = getattr(masks, "masks", masks)
    if isinstance(masks, (str, bytes)) or not isinstance(masks, (list, tuple)) or len(masks) < 2:
        raise ValueError("masks must be a list of at least 2 masks [input, hidden..., read-out] (or a PruneResult)")
    out = []
    for i, m in enumerate(masks):
        mi = coerce_mask(m, name=f"masks[{i}]")
        data = mi.data
        if not mi.checked and data.size and int(data.max()) > 1:
            raise ValueError(f"masks[{i}] must hold only 0 and 1")
        out.append(data)
    for i in range(1, len(out)):
        if out[i].shape[1] != out[i - 1].shape[0]:
            raise ValueError(f"masks[{i}] has {out[i].shape[1]} columns but masks[{i - 1}] has "
                             f"{out[i - 1].shape[0]} rows: consecutive layers must chain")
    return out


def _as_weights(weights: Sequence[Any], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    if isinstance(weights, (str, bytes)) or not isinstance(weights, (list, tuple)) or len(weights) != len(shapes):
        raise ValueError(f"weights must be a list of {len(shapes)} arrays, one per mask")
    out = []
    for i, (w, shape) in enumerate(zip(weights, shapes)):
        arr = finite_array(f"weights[{i}]", w)
        if arr.shape != shape:
            raise ValueError(f"weights[{i}] has shape {arr.shape}; its mask has shape {shape}")
        out.append(arr)
    return out


def _hidden_orders(orders: Sequence[Any], sizes: list[int]) -> list[np.ndarray]:
    """``orders``: one permutation per hidden layer, of that layer's size."""
    if not isinstance(orders, (list, tuple)) or len(orders) != len(sizes):
        raise ValueError(f"orders must be a list of {len(sizes)} permutations, one per hidden layer")
    return [check_permutation(f"orders[{i}]", o, n) for i, (o, n) in enumerate(zip(orders, sizes))]


def _degree_order(m_in: np.ndarray, m_out: np.ndarray) -> np.ndarray:
    ind = m_in.sum(axis=1, dtype=np.int64)  # kept fan-in of each neuron
    outd = m_out.sum(axis=0, dtype=np.int64)  # kept fan-out
    return np.lexsort((np.arange(len(ind)), -outd, -ind)).astype(np.int64)


class _SharedOrders:
    """One order per hidden layer and each layer's block plan: what :func:`network_graphon`
    and :func:`conv_network_graphon` share. ``counts[l]`` is layer l's 2-D kept count
    (mask or kept taps per channel pair) of shape ``shapes[l]``."""

    def __init__(self, counts: list[np.ndarray], shapes: list[tuple[int, int]], K: int, orders: Any) -> None:
        self.shapes = shapes
        self.L = L = len(shapes) - 1
        sizes = [shapes[l][0] for l in range(L)]
        if orders is None:
            self.orders = [_degree_order(counts[l], counts[l + 1]) for l in range(L)]
        else:
            self.orders = _hidden_orders(orders, sizes)
        self.edges = [block_edges(n, min(K, n)) for n in sizes]

    def plan(self, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(row order, column order, row edges, column edges) of layer l: input coordinates
        and outputs keep their identity, one block each."""
        n_in, n_out = self.shapes[0][1], self.shapes[-1][0]
        ro, re = (self.orders[l], self.edges[l]) if l < self.L else (np.arange(n_out), block_edges(n_out, n_out))
        co, ce = (self.orders[l - 1], self.edges[l - 1]) if l > 0 else (np.arange(n_in), block_edges(n_in, n_in))
        return ro, co, re, ce

    def graphon(self, H: np.ndarray, l: int, re: np.ndarray, ce: np.ndarray, max_value: float):
        """Layer l's block values as a graphon: an InputGraphon for the input layer, else a StepGraphon."""
        from ..graphon.objects import InputGraphon, StepGraphon

        n_out, n_in = self.shapes[l]
        if l == 0:
            return InputGraphon(H, row_edges=re / n_out, max_value=max_value)
        return StepGraphon(H, row_edges=re / n_out, col_edges=ce / n_in, max_value=max_value)


def network_graphon(masks: Sequence[Any], K: int = 64, *, weights: Sequence[Any] | None = None,
                    orders: Sequence[Any] | None = None, order: str = "degree",
                    taps: str = "pooled") -> NetworkGraphon:
    """The joint (one order per hidden layer) step-graphon estimate of a network's masks.

    Parameters
    ----------
    masks : list of L + 1 masks ``[(n_1, d), (n_2, n_1), ..., (k, n_L)]`` of 0/1
        (numpy or torch), or a :class:`~gntk_fast.pruning.PruneResult`.
    K : int
        Blocks per hidden layer (clamped to the layer's width).
    weights : list of L + 1 arrays (same shapes), optional
        The network's weights; their blocks of ``W^2 M`` give ``variance_graphons``.
    orders : list of L permutations, optional
        Neuron orders of the hidden layers (``orders[l][t]`` = original index of
        position t); default from ``order``.
    order : "degree"
        In-degree descending, ties by out-degree descending, then index.
    taps : "pooled" | "per-tap"
        For conv masks (any mask 4-D): see
        :func:`conv_network_graphon`.

    Returns
    -------
    NetworkGraphon

    Examples
    --------
    >>> import gntk_fast as gf
    >>> net = gf.MLP(64, 32, 2, 10, seed=0)
    >>> ng = gf.pai.network_graphon(net.masks, K=4)
    >>> [g.H.shape for g in ng.graphons]
    [(4, 64), (4, 4), (10, 4)]
    """
    taps = check_choice("taps", taps, TAPS)
    raw = getattr(masks, "masks", masks)
    if isinstance(raw, (list, tuple)) and any(is_conv_mask(m) for m in raw):
        return conv_network_graphon(raw, K, weights=weights, orders=orders, order=order, taps=taps)

    ms = _as_dense_masks(masks)
    K = check_size("K", K, MAX_BLOCKS)
    order = check_choice("order", order, ("degree",))
    shapes = [tuple(int(s) for s in m.shape) for m in ms]
    ws = None if weights is None else _as_weights(weights, shapes)
    net = _SharedOrders(ms, shapes, K, orders)
    graphons, variance, per_mask, diff = [], [] if ws is not None else None, [], []
    for l in range(net.L + 1):
        ro, co, re, ce = net.plan(l)
        H = ordered_block_means(ms[l], ro, co, re, ce)
        graphons.append(net.graphon(H, l, re, ce, 1.0))
        if ws is not None:
            V = ordered_block_means(ws[l] * ws[l] * ms[l], ro, co, re, ce)
            variance.append(net.graphon(V, l, re, ce, float("inf")))
        own = sas(ms[l], len(re) - 1, len(ce) - 1, sort_cols=l > 0)
        per_mask.append(own)
        diff.append(float(np.mean(np.abs(H - own.H))))
    orders, edges = net.orders, net.edges
    return NetworkGraphon(graphons, variance, orders, edges, per_mask, np.array(diff), shapes)


# ------------------------------------------------------------ network graphon
def _layer_taps(masks: Sequence[Any], weights: Sequence[Any] | None):
    """Each mask as a 0/1 uint8 array (n_out, n_in, T) and its weights likewise (float64) or None.

    Conv masks give their taps; a 2-D mask whose columns are a multiple P > 1 of
    the previous conv layer's channels is a flatten readout: its columns are
    (channel, pixel) in channel-major order and the P pixels play the taps."""
    masks = getattr(masks, "masks", masks)
    if isinstance(masks, (str, bytes)) or not isinstance(masks, (list, tuple)) or len(masks) < 2:
        raise ValueError("masks must be a list of at least 2 masks [input, hidden..., read-out] (or a PruneResult)")
    if weights is not None and (isinstance(weights, (str, bytes)) or not isinstance(weights, (list, tuple))
                                or len(weights) != len(masks)):
        raise ValueError(f"weights must be a list of {len(masks)} arrays, one per mask")
    out, wout = [], [] if weights is not None else None
    for i, mk in enumerate(masks):
        name = f"masks[{i}]"
        if is_conv_mask(mk):
            m = conv_mask(mk, name)
            a = m.reshape(m.shape[0], m.shape[1], -1)
        else:

            mi = coerce_mask(mk, name=name)
            if not mi.checked and mi.data.size and int(mi.data.max()) > 1:
                raise ValueError(f"{name} must hold only 0 and 1")
            a = mi.data
            prev = out[-1].shape[0] if out else None
            if prev is not None and a.shape[1] != prev and a.shape[1] % prev == 0 and out[-1].shape[2] > 1:
                a = a.reshape(a.shape[0], prev, a.shape[1] // prev)  # flatten readout: pixels as taps
            else:
                a = a[:, :, None]
        if out and a.shape[1] != out[-1].shape[0]:
            raise ValueError(f"{name} has {a.shape[1]} input channels but masks[{i - 1}] has "
                             f"{out[-1].shape[0]} output channels: consecutive layers must chain")
        out.append(a)
        if weights is not None:
            w = finite_array(f"weights[{i}]", weights[i])
            if w.size != a.size:
                raise ValueError(f"weights[{i}] has shape {w.shape}; its mask has {a.size} entries")
            wout.append(w.reshape(a.shape))
    return out, wout


def conv_network_graphon(masks: Sequence[Any], K: int = 64, *, weights: Sequence[Any] | None = None,
                         orders: Sequence[Any] | None = None, order: str = "degree", taps: str = "pooled"):
    """The joint channel-graphon estimate of a conv net's masks (one channel order per hidden layer).

    Parameters
    ----------
    masks : list of L + 1 masks
        ``[M^1 (C_1, C_0, k, k), ..., M^L (C_L, C_{L-1}, k, k), R]``: the conv
        masks, then the readout R, either (n_out, C_L) (global average
        pooling) or (n_out, C_L H W) (flatten, columns in (channel, row,
        column) order; its H W pixels play the role of taps). Dense 2-D masks
        may appear anywhere as 1-tap layers, e.g. an MLP head.
    K : int
        Blocks per hidden layer (clamped to its channel count).
    weights : list of L + 1 arrays shaped like the masks, optional
        Block means of ``W * W * M`` (pooled over taps, or per tap) give
        ``variance_graphons``.
    orders : list of L permutations, optional
        Channel orders of the hidden layers; default: kept taps into the channel
        descending, ties by kept taps out of it descending, then by index.
    order : "degree"
    taps : "pooled" | "per-tap"
        "pooled": every layer's graphon is the step graphon of its pooled
        connectivity. "per-tap": a layer with T > 1 taps gets a list of T step
        graphons (row-major taps; the flatten readout: one per pixel), all on
        the same shared channel blocks; 1-tap layers keep one graphon.

    Returns
    -------
    NetworkGraphon
        As for MLPs (``graphons[0]`` an InputGraphon over the C_0 image
        channels, ``shapes`` the channel shapes (C_out, C_in)); ``per_mask`` holds
        each layer's own pooled :func:`channel_sas` estimate and ``difference``
        compares it with the joint pooled blocks.

    Examples
    --------
    >>> import torch
    >>> import gntk_fast as gf
    >>> net = gf.ConvNet(1, 16, 2, 10, seed=0)
    >>> ng = gf.pai.network_graphon(net.masks, K=4)
    >>> [g.H.shape for g in ng.graphons]
    [(4, 1), (4, 4), (10, 4)]
    """
    taps = check_choice("taps", taps, TAPS)
    order = check_choice("order", order, ("degree",))
    K = check_size("K", K, MAX_BLOCKS)
    ms, ws = _layer_taps(masks, weights)
    counts = [count_taps(m) for m in ms]
    shapes = [tuple(int(s) for s in c.shape) for c in counts]
    net = _SharedOrders(counts, shapes, K, orders)

    def graphons_of(values, l, max_value):  # values (n_out, n_in, T)
        ro, co, re, ce = net.plan(l)
        T = values.shape[2]
        if taps == "pooled" or T == 1:
            summed = count_taps(values) if values.dtype == np.uint8 else values.sum(axis=2)
            return net.graphon(ordered_block_means(summed, ro, co, re, ce) / T, l, re, ce, max_value)
        return [net.graphon(ordered_block_means(np.ascontiguousarray(values[:, :, t]), ro, co, re, ce), l, re, ce,
                            max_value) for t in range(T)]

    graphons, variance, per_mask, diff = [], [] if ws is not None else None, [], []
    for l in range(net.L + 1):
        ro, co, re, ce = net.plan(l)
        T = ms[l].shape[2]
        graphons.append(graphons_of(ms[l], l, 1.0))
        if ws is not None:
            variance.append(graphons_of(ws[l] * ws[l] * ms[l], l, float("inf")))
        H_joint = ordered_block_means(counts[l], ro, co, re, ce) / T
        own = sas_from_counts(counts[l], T, len(re) - 1, len(ce) - 1, None, l > 0)
        per_mask.append(own)
        diff.append(float(np.mean(np.abs(H_joint - own.H))))
    orders, edges = net.orders, net.edges
    return NetworkGraphon(graphons, variance, orders, edges, per_mask, np.array(diff), shapes)
