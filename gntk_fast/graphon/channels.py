"""Channel connectivity of convolutional masks, and its graphon estimates.

A conv layer's mask M has shape (C_out, C_in, kh, kw): entry M[o, i, a, b]
says whether tap (a, b) of the kernel joining input channel i to output
channel o is kept. With the T = kh kw taps numbered row-major (t = a kw + b),
the mask is T bipartite graphs on the same channels. docs/graphons-conv.md
states the mathematics; in short, in the limit of many channels channel o sits
at u in [0, 1], channel i at v, and

* **per tap**, W(u, v, t) is the probability that tap t of the pair is kept:
  its estimate from one mask is SAS on the 0/1 matrix M[:, :, a, b];
* **pooled**, W(u, v) = (1/T) sum_t W(u, v, t), the kept fraction of the
  pair's taps: its estimate is SAS on the count matrix
  N[o, i] = sum_t M[o, i, t], whose degrees are kept taps (row o: the kept
  taps into channel o; column i: the kept taps out of channel i), sorted
  descending with a stable sort as for a dense mask, and whose block value is
  the kept fraction of all the block's taps: sum N / (T x block size).

A 1 x 1 conv (T = 1) is a dense layer: both forms are then exactly
:func:`gntk_fast.graphon.sas` of its (C_out, C_in) matrix.

:func:`conv_network_graphon` is :func:`gntk_fast.graphon.network_graphon`
for conv nets: one channel order per hidden layer, shared by the mask that
feeds the layer (its rows) and the mask that reads it (its columns), and by
every tap.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._validation import MAX_BLOCKS, check_bool, check_choice, check_int, check_size
from ._masks import block_edges, descending_stable_order

__all__ = [
    "TAPS",
    "is_conv_mask",
    "conv_mask",
    "tap_counts",
    "channel_connectivity",
    "channel_sas",
    "channel_sas_trials",
    "conv_network_graphon",
]

#: how a conv mask's taps are reduced: one pooled estimate, or one estimate per tap
TAPS = ("pooled", "per-tap")


def is_conv_mask(mask: Any) -> bool:
    """True for a 4-D array or tensor (a conv mask (C_out, C_in, kh, kw))."""
    return getattr(mask, "ndim", None) == 4


def conv_mask(mask: Any, name: str = "mask") -> np.ndarray:
    """A conv mask (C_out, C_in, kh, kw) of 0/1 values (bool, integer or float; numpy or
    torch, e.g. a ``torch.nn.utils.prune`` mask) as a C-contiguous uint8 numpy array.

    Raises TypeError/ValueError naming ``name`` for another rank, an empty
    side, a non-numeric dtype or a value other than 0 and 1.
    """
    try:
        import torch

        if isinstance(mask, torch.Tensor):
            t = mask.detach().cpu()
            mask = (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).numpy()
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor (C_out, C_in, kh, kw); got {type(mask).__name__}")
    if mask.ndim != 4:
        raise ValueError(f"{name} must be 4-D (C_out, C_in, kh, kw); got shape {mask.shape}")
    if 0 in mask.shape:
        raise ValueError(f"{name} must not be empty; got shape {mask.shape}")
    if mask.dtype == np.bool_:
        return np.ascontiguousarray(mask).view(np.uint8)
    if mask.dtype.kind not in "iuf":
        raise TypeError(f"{name} must have a bool, integer or float dtype; got {mask.dtype}")
    ok = (mask == 0) | (mask == 1)
    if not ok.all():
        bad = mask[~ok].ravel()[0]
        raise ValueError(f"{name} must contain only 0/1 values; found {bad!r} ({int((~ok).sum())} bad entries)")
    return np.ascontiguousarray(mask, dtype=np.uint8)


def _count_taps(m: np.ndarray) -> np.ndarray:
    """Sum of a 0/1 uint8 array (n_out, n_in, ...) over its trailing (tap) axes, int64 (n_out, n_in).

    One add of a strided (n_out, n_in) slice per tap into a uint16 accumulator
    (exact below 65536 taps): several times faster than numpy's reduction over
    the short, contiguous tap axes."""
    r = m.reshape(m.shape[0], m.shape[1], -1)
    acc = np.zeros(r.shape[:2], dtype=np.uint16 if r.shape[2] < 1 << 16 else np.int64)
    for t in range(r.shape[2]):
        acc += r[:, :, t]
    return acc.astype(np.int64)


def tap_counts(mask: Any, name: str = "mask") -> tuple[np.ndarray, int]:
    """``(N, T)``: kept taps per channel pair, int64 (C_out, C_in), and the taps per pair T = kh kw."""
    m = conv_mask(mask, name)
    return _count_taps(m), int(m.shape[2] * m.shape[3])


def _tap_index(tap: Any, kh: int, kw: int) -> int:
    if isinstance(tap, (tuple, list)):
        if len(tap) != 2:
            raise ValueError(f"tap must be an int in [0, {kh * kw}) or a pair (a, b); got {tap!r}")
        a = check_int("tap[0]", tap[0], min_value=0, max_value=kh - 1)
        b = check_int("tap[1]", tap[1], min_value=0, max_value=kw - 1)
        return a * kw + b
    return check_int("tap", tap, min_value=0, max_value=kh * kw - 1)


def channel_connectivity(mask: Any, tap: int | tuple[int, int] | None = None) -> np.ndarray:
    """The channel-by-channel connectivity of a conv mask.

    Parameters
    ----------
    mask : array or tensor (C_out, C_in, kh, kw) of 0/1
    tap : None, int or (a, b)
        None: the pooled connectivity, the kept fraction of each channel
        pair's kh kw taps. An int t in [0, kh kw) (row-major, t = a kw + b) or a
        pair (a, b): that tap's 0/1 matrix ``mask[:, :, a, b]``.

    Returns
    -------
    numpy array (C_out, C_in): float64 in [0, 1] (pooled) or uint8 0/1 (one tap).

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast.graphon import channel_connectivity
    >>> m = np.zeros((2, 1, 3, 3), dtype=bool)
    >>> m[0, 0, :, 1] = True                      # channel pair (0, 0): 3 of 9 taps
    >>> channel_connectivity(m)[:, 0].tolist()
    [0.3333333333333333, 0.0]
    >>> channel_connectivity(m, tap=(1, 1)).tolist()
    [[1], [0]]
    """
    m = conv_mask(mask)
    kh, kw = m.shape[2:]
    if tap is None:
        return _count_taps(m) / float(kh * kw)
    t = _tap_index(tap, kh, kw)
    return np.ascontiguousarray(m[:, :, t // kw, t % kw])


def _pooled_sas(counts: np.ndarray, T: int, K: Any, K_in: Any, smooth: Any, sort_cols: bool):
    from ..ops.sas_blocks import resolve_blocks
    from .network import ordered_block_means
    from .sas import SASResult, _check_smooth, tv_smooth

    n_out, n_in = counts.shape
    K, K_in = resolve_blocks(K, K_in, sort_cols, n_out, n_in)
    smooth = _check_smooth(smooth)
    row_degrees = counts.sum(axis=1, dtype=np.int64)
    col_degrees = counts.sum(axis=0, dtype=np.int64)
    row_perm = descending_stable_order(row_degrees)
    col_perm = descending_stable_order(col_degrees) if sort_cols else np.arange(n_in, dtype=np.int64)
    row_edges, col_edges = block_edges(n_out, K, "K"), block_edges(n_in, K_in, "K_in")
    H = ordered_block_means(counts, row_perm, col_perm, row_edges, col_edges) / T
    Hs = tv_smooth(H, smooth) if smooth is not None else H
    return SASResult(Hs, H, row_perm, col_perm, row_degrees, col_degrees, row_edges, col_edges,
                     (n_out, n_in), sort_cols, smooth, 1, None, taps=T)


def channel_sas(
    mask: Any,
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    taps: str = "pooled",
    backend: str = "auto",
):
    """SAS estimate of a conv mask's channel connectivity (pooled, or one per tap).

    Parameters
    ----------
    mask : array or tensor (C_out, C_in, kh, kw) of 0/1
    K, K_in, smooth, sort_cols
        As in :func:`gntk_fast.graphon.sas`, over channels: K blocks of output
        channels, K_in of input channels (default K, or one block per input
        channel when ``sort_cols`` is False: an input layer's image channels).
    taps : "pooled" | "per-tap"
        "pooled": one estimate of W(u, v) = mean over taps (module docstring);
        its ``row_degrees``/``col_degrees`` count kept taps and ``taps`` is T.
        "per-tap": a list of T estimates, ``sas`` of each tap's 0/1 matrix in
        row-major tap order (each sorted by its own degrees).
    backend : str
        Backend of the per-tap SAS (:func:`gntk_fast.graphon.sas`); the pooled
        estimate is a numpy reduction to the (C_out, C_in) count matrix.

    Returns
    -------
    SASResult, or a list of T SASResult for ``taps="per-tap"``.

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast.graphon import channel_sas
    >>> rng = np.random.default_rng(0)
    >>> m = rng.random((32, 16, 3, 3)) < 0.3
    >>> est = channel_sas(m, K=4)
    >>> est.H.shape, est.taps
    ((4, 4), 9)
    >>> len(channel_sas(m, K=4, taps="per-tap"))
    9
    """
    from .sas import sas

    taps = check_choice("taps", taps, TAPS)
    sort_cols = check_bool("sort_cols", sort_cols)
    m = conv_mask(mask)
    if taps == "per-tap":
        kh, kw = m.shape[2:]
        return [sas(m[:, :, t // kw, t % kw], K, K_in, smooth, sort_cols, backend=backend) for t in range(kh * kw)]
    counts = _count_taps(m)
    return _pooled_sas(counts, int(m.shape[2] * m.shape[3]), K, K_in, smooth, sort_cols)


def _combine_trials(results: list, smooth: Any):
    from .sas import SASResult, _check_smooth, tv_smooth

    smooth = _check_smooth(smooth)
    H_trials = np.stack([r.H_raw for r in results])
    H = H_trials.mean(axis=0)
    Hs = tv_smooth(H, smooth) if smooth is not None else H
    stack = lambda f: np.stack([getattr(r, f) for r in results])  # noqa: E731
    r0 = results[0]
    return SASResult(Hs, H, stack("row_perm"), stack("col_perm"), stack("row_degrees"), stack("col_degrees"),
                     r0.row_edges, r0.col_edges, r0.shape, r0.sort_cols, smooth, len(results), H_trials, taps=r0.taps)


def channel_sas_trials(
    masks: Sequence[Any],
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    taps: str = "pooled",
    backend: str = "auto",
):
    """:func:`channel_sas` over trials (masks of one shape): the mean of the per-trial
    estimates, smoothed afterwards when asked; per tap, one trials average per tap.

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast.graphon import channel_sas_trials
    >>> rng = np.random.default_rng(0)
    >>> est = channel_sas_trials([rng.random((8, 8, 3, 3)) < 0.5 for _ in range(3)], K=2)
    >>> est.n_trials, est.H_trials.shape
    (3, (3, 2, 2))
    """
    taps = check_choice("taps", taps, TAPS)
    if not isinstance(masks, (list, tuple)):
        masks = list(masks)
    if len(masks) == 0:
        raise ValueError("masks must contain at least one mask")
    shape = None
    per = []
    for t, mk in enumerate(masks):
        m = conv_mask(mk, f"masks[{t}]")
        if shape is None:
            shape = m.shape
        elif m.shape != shape:
            raise ValueError(f"masks[{t}] has shape {m.shape}; every trial must have shape {shape}")
        per.append(channel_sas(m, K, K_in, None, sort_cols, taps=taps, backend=backend))
    if taps == "pooled":
        return _combine_trials(per, smooth)
    return [_combine_trials([p[t] for p in per], smooth) for t in range(len(per[0]))]


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
            from ._masks import coerce_mask

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
            w = weights[i]
            try:
                import torch

                if isinstance(w, torch.Tensor):
                    w = w.detach().cpu().double().numpy()
            except ImportError:  # pragma: no cover
                pass
            w = np.asarray(w, dtype=np.float64)
            if w.size != a.size:
                raise ValueError(f"weights[{i}] has shape {w.shape}; its mask has {a.size} entries")
            if not np.all(np.isfinite(w)):
                raise ValueError(f"weights[{i}] holds NaN or infinite values")
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
    >>> ng = gf.graphon.network_graphon(net.masks, K=4)
    >>> [g.H.shape for g in ng.graphons]
    [(4, 1), (4, 4), (10, 4)]
    """
    from .network import NetworkGraphon, _check_orders, _degree_order, ordered_block_means
    from .objects import InputGraphon, StepGraphon

    taps = check_choice("taps", taps, TAPS)
    order = check_choice("order", order, ("degree",))
    K = check_size("K", K, MAX_BLOCKS)
    ms, ws = _layer_taps(masks, weights)
    counts = [_count_taps(m) for m in ms]
    shapes = [tuple(int(s) for s in c.shape) for c in counts]
    L = len(ms) - 1
    sizes = [shapes[l][0] for l in range(L)]
    if orders is None:
        orders = [_degree_order(counts[l], counts[l + 1]) for l in range(L)]
    else:
        orders = _check_orders(orders, sizes)
    edges = [block_edges(n, min(K, n)) for n in sizes]
    c_in, k_out = shapes[0][1], shapes[-1][0]

    def plan(l):
        ro, re = (orders[l], edges[l]) if l < L else (np.arange(k_out), block_edges(k_out, k_out))
        co, ce = (orders[l - 1], edges[l - 1]) if l > 0 else (np.arange(c_in), block_edges(c_in, c_in))
        return ro, co, re, ce

    def make(H, l, re, ce, max_value):
        n_out, n_in = shapes[l]
        if l == 0:
            return InputGraphon(H, row_edges=re / n_out, max_value=max_value)
        return StepGraphon(H, row_edges=re / n_out, col_edges=ce / n_in, max_value=max_value)

    def graphons_of(values, l, max_value):  # values (n_out, n_in, T)
        ro, co, re, ce = plan(l)
        T = values.shape[2]
        if taps == "pooled" or T == 1:
            summed = _count_taps(values) if values.dtype == np.uint8 else values.sum(axis=2)
            return make(ordered_block_means(summed, ro, co, re, ce) / T, l, re, ce, max_value)
        return [make(ordered_block_means(np.ascontiguousarray(values[:, :, t]), ro, co, re, ce), l, re, ce,
                     max_value) for t in range(T)]

    graphons, variance, per_mask, diff = [], [] if ws is not None else None, [], []
    for l in range(L + 1):
        ro, co, re, ce = plan(l)
        T = ms[l].shape[2]
        graphons.append(graphons_of(ms[l], l, 1.0))
        if ws is not None:
            variance.append(graphons_of(ws[l] * ws[l] * ms[l], l, float("inf")))
        H_joint = ordered_block_means(counts[l], ro, co, re, ce) / T
        own = _pooled_sas(counts[l], T, len(re) - 1, len(ce) - 1, None, l > 0)
        per_mask.append(own)
        diff.append(float(np.mean(np.abs(H_joint - own.H))))
    return NetworkGraphon(graphons, variance, orders, edges, per_mask, np.array(diff), shapes)
