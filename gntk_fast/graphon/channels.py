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

This module holds the primitives (validation, tap counts, connectivity);
the estimates live with their dense counterparts: :func:`channel_sas` and
:func:`channel_sas_trials` in :mod:`gntk_fast.graphon.sas`, and
:func:`conv_network_graphon` (one channel order per hidden layer, shared by
the mask that feeds the layer, the mask that reads it and every tap) in
:mod:`gntk_fast.pai.network`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._masks import count_taps
from .._validation import check_int

__all__ = [
    "TAPS",
    "is_conv_mask",
    "conv_mask",
    "tap_counts",
    "channel_connectivity",
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


def tap_counts(mask: Any, name: str = "mask") -> tuple[np.ndarray, int]:
    """``(N, T)``: kept taps per channel pair, int64 (C_out, C_in), and the taps per pair T = kh kw."""
    m = conv_mask(mask, name)
    return count_taps(m), int(m.shape[2] * m.shape[3])


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
        return count_taps(m) / float(kh * kw)
    t = _tap_index(tap, kh, kw)
    return np.ascontiguousarray(m[:, :, t // kw, t % kw])
