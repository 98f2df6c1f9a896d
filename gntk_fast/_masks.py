"""Mask coercion shared by the SAS kernels (gntk_fast.ops.sas_blocks: numba and naive) and the graphon toolkit.

A mask is a 2-D (n_out, n_in) array of 0/1 values (rows = output neurons,
columns = input neurons), given as

* a numpy array of dtype bool (viewed as uint8, no copy), uint8 (checked for
  values > 1 by the kernel's pass itself), or any other integer/float dtype
  (checked for values outside {0, 1} and converted);
* a torch tensor (CPU or not; moved to the CPU, then as above);
* a bit-packed mask, ``np.packbits(M, axis=1)`` (uint8, shape
  (n_out, ceil(n_in / 8)), big bit order), when ``n_in`` is given; the padding
  bits of the last byte must be zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_int


@dataclass
class MaskInput:
    """A validated mask: ``data`` is C-contiguous uint8.

    packed=False: data (n_out, n_in) of 0/1 bytes (``checked`` False when the
    values still need the kernel's > 1 check). packed=True: data
    (n_out, ceil(n_in/8)) packed bits.
    """

    data: np.ndarray
    n_out: int
    n_in: int
    packed: bool
    checked: bool


def _to_numpy(name: str, mask: Any) -> np.ndarray:
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(mask, torch.Tensor):
        t = mask.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
            t = t.float()
        return t.numpy()
    if isinstance(mask, np.ndarray):
        return mask
    if isinstance(mask, (list, tuple)):
        return np.asarray(mask)
    raise TypeError(f"{name} must be a numpy array or torch tensor; got {type(mask).__name__}")


def coerce_mask(mask: Any, n_in: int | None = None, name: str = "mask") -> MaskInput:
    """Validate one mask (see module docstring); raises ValueError/TypeError naming ``name``."""
    arr = _to_numpy(name, mask)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_out, n_in); got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    if n_in is not None:
        n_in = check_int("n_in", n_in, min_value=1)
        if arr.dtype != np.uint8:
            raise TypeError(f"{name} with n_in given must be bit-packed uint8 (np.packbits(M, axis=1)); got dtype {arr.dtype}")
        nbytes = (n_in + 7) // 8
        if arr.shape[1] != nbytes:
            raise ValueError(f"{name} packed for n_in={n_in} must have {nbytes} byte columns; got {arr.shape[1]}")
        arr = np.ascontiguousarray(arr)
        pad = 8 * nbytes - n_in
        if pad:
            pad_mask = np.uint8((1 << pad) - 1)
            if np.any(arr[:, -1] & pad_mask):
                raise ValueError(f"{name} has set padding bits beyond n_in={n_in} (wrong n_in or not packed with np.packbits)")
        return MaskInput(arr, arr.shape[0], n_in, True, True)
    if arr.dtype == np.bool_:
        return MaskInput(np.ascontiguousarray(arr).view(np.uint8), arr.shape[0], arr.shape[1], False, True)
    if arr.dtype == np.uint8:
        return MaskInput(np.ascontiguousarray(arr), arr.shape[0], arr.shape[1], False, False)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must have a bool, integer or float dtype; got {arr.dtype}")
    ok = (arr == 0) | (arr == 1)
    if not ok.all():
        bad = arr[~ok].ravel()[0]
        raise ValueError(f"{name} must contain only 0/1 values; found {bad!r} ({int((~ok).sum())} bad entries)")
    return MaskInput(np.ascontiguousarray(arr, dtype=np.uint8), arr.shape[0], arr.shape[1], False, True)


def check_uint8_values(name: str, data: np.ndarray) -> None:
    """Numpy check that a uint8 mask holds only 0/1 (the reference path)."""
    if data.size and int(data.max()) > 1:
        raise ValueError(f"{name} must contain only 0/1 values; found {int(data.max())}")


def block_edges(n: int, K: int, name: str = "K") -> np.ndarray:
    """Integer block edges ``floor(b * n / K)``, b = 0..K, shape (K + 1,), int64.

    Every index 0..n-1 lies in exactly one block; block sizes differ by at most 1.
    """
    K = check_int(name, K, min_value=1)
    if K > n:
        raise ValueError(f"{name}={K} is larger than the number of neurons on that side (n={n}); use {name} <= {n}")
    return (np.arange(K + 1, dtype=np.int64) * n) // K


def descending_stable_order(degrees: np.ndarray) -> np.ndarray:
    """Indices sorting ``degrees`` descending, ties in increasing index order (stable)."""
    return np.argsort(-degrees.astype(np.int64), kind="stable")


def ordered_block_means(values: np.ndarray, row_order: np.ndarray, col_order: np.ndarray,
                row_edges: np.ndarray, col_edges: np.ndarray) -> np.ndarray:
    """Means of ``values[row_order][:, col_order]`` over the blocks cut at the edges.

    values : (n_out, n_in) numeric; orders: permutations; edges: int (K + 1,)
    strictly increasing from 0 to n. Returns float64 (K_out, K_in).
    """
    dtype = np.int64 if values.dtype.kind in "bui" else np.float64
    v = values[np.ix_(row_order, col_order)]
    sums = np.add.reduceat(np.add.reduceat(v, row_edges[:-1], axis=0, dtype=dtype), col_edges[:-1], axis=1,
                           dtype=dtype)
    return sums / np.outer(np.diff(row_edges), np.diff(col_edges))


def count_taps(m: np.ndarray) -> np.ndarray:
    """Sum of a 0/1 uint8 array (n_out, n_in, ...) over its trailing (tap) axes, int64 (n_out, n_in).

    One add of a strided (n_out, n_in) slice per tap into a uint16 accumulator
    (exact below 65536 taps): several times faster than numpy's reduction over
    the short, contiguous tap axes."""
    r = m.reshape(m.shape[0], m.shape[1], -1)
    acc = np.zeros(r.shape[:2], dtype=np.uint16 if r.shape[2] < 1 << 16 else np.int64)
    for t in range(r.shape[2]):
        acc += r[:, :, t]
    return acc.astype(np.int64)
