"""Histogram (radix) backend of :func:`gntk_fast.ops.mask_select.select_masks`:
exact order statistics without sorting, partitioning or copying the scores.

Every finite float has an order-preserving unsigned integer key (its bits,
with the sign bit flipped for positives and all bits flipped for negatives;
-0.0 is first made +0.0 so equal floats have equal keys). The k-th largest
score is found digit by digit: one pass histograms the top 16 bits of the
keys (65536 bins; one compiled Numba loop over the score bits, no
temporaries), the bin holding the k-th largest is kept, and the next pass
histograms the next 16 bits of the keys in that bin only; 2 passes for
float32, 4 for float64. (:func:`order_keys` is the numpy statement of the
key map, used by the tests.) The result is the exact value
(ties included: the count of scores above it comes with it), read layer by
layer in blocks of ``BLOCK`` scores, so the extra memory is a few blocks and
the histogram, never a copy of the scores. The selection rules are then the
numpy backend's, applied per layer: keep every score above the threshold,
and (clean rule) the lowest flat indices among the scores equal to it.

This is the backend for very wide layers (hundreds of millions of scores),
where a partition would copy the scores; ``backend="auto"`` picks it from
``STREAM_MIN_SCORES`` scores up.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from numba import njit

from .numpy import round_half_even

__all__ = ["order_keys", "kth_largest", "select", "select_parts", "BLOCK", "STREAM_MIN_SCORES"]

#: scores per block of a pass (bounds the temporaries: keys and masks of one block)
BLOCK = 1 << 22
#: ``backend="auto"`` uses this backend from this many scores up
STREAM_MIN_SCORES = 1 << 26

_BITS = 16


def order_keys(a: np.ndarray) -> np.ndarray:
    """Order-preserving unsigned keys of a float32/float64 array without NaN:
    ``a[i] < a[j]`` iff ``key[i] < key[j]``, and equal floats (also -0.0 and
    +0.0) have equal keys."""
    if a.dtype == np.float32:
        u, top = (a + np.float32(0.0)).view(np.uint32), np.uint32(1 << 31)
    elif a.dtype == np.float64:
        u, top = (a + 0.0).view(np.uint64), np.uint64(1 << 63)
    else:  # pragma: no cover - the caller casts
        raise TypeError(f"scores must be float32 or float64; got {a.dtype}")
    return np.where(u & top, ~u, u | top)


@njit(cache=True, nogil=True)
def _hist_pass(u, w, use_w, nbits, prefix, fixed, shift, hist):  # pragma: no cover - compiled
    """Add to ``hist`` the 16-bit digit at ``shift`` of the order key of every
    entry of the float bits ``u`` (uint32 or uint64 view) counted by ``w``
    whose key's top ``fixed`` bits equal ``prefix``."""
    one = np.uint64(1)
    top = one << np.uint64(nbits - 1)
    full = (top - one) | top
    neg_zero = top
    fsh = np.uint64(nbits - fixed)
    sh = np.uint64(shift)
    dmask = np.uint64(0xFFFF)
    for i in range(u.shape[0]):
        if use_w and not w[i]:
            continue
        x = np.uint64(u[i])
        if x == neg_zero:
            x = np.uint64(0)
        if x & top:
            key = (~x) & full
        else:
            key = x | top
        if fixed > 0 and (key >> fsh) != prefix:
            continue
        hist[np.int64((key >> sh) & dmask)] += 1


def _blocks(chunks: Sequence[np.ndarray], where: Sequence[np.ndarray | None]):
    for c, w in zip(chunks, where):
        for lo in range(0, c.size, BLOCK):
            yield c[lo:lo + BLOCK], (None if w is None else w[lo:lo + BLOCK])


def kth_largest(chunks: Sequence[np.ndarray], k: int, where: Sequence[np.ndarray | None] | None = None
                ) -> tuple[float, int]:
    """The k-th largest value (1-based) of the union of the 1-D arrays ``chunks``
    (one dtype, float32 or float64, no NaN), counting only entries where
    ``where`` (bool arrays like the chunks, or None = all) is True.

    Returns ``(v, n_greater)``: the value, and how many counted entries are
    strictly greater (so ``n_greater < k <= n_greater + count(== v)``).
    """
    where = list(where) if where is not None else [None] * len(chunks)
    dtype = chunks[0].dtype
    nbits = 32 if dtype == np.float32 else 64
    kdt = np.uint32 if nbits == 32 else np.uint64
    prefix = 0  # the fixed high bits of the answer's key
    fixed = 0  # how many high bits are fixed
    above = 0  # counted entries whose key is above the current bin
    k_left = k
    while fixed < nbits:
        shift = nbits - fixed - _BITS
        hist = np.zeros(1 << _BITS, dtype=np.int64)
        udt = np.uint32 if nbits == 32 else np.uint64
        for c, w in zip(chunks, where):
            c = np.ascontiguousarray(c)
            use_w = w is not None
            wa = np.ascontiguousarray(w) if use_w else np.zeros(1, dtype=np.bool_)
            _hist_pass(c.view(udt), wa, use_w, nbits, np.uint64(prefix), fixed, shift, hist)
        # bins from the top: the first whose cumulative count reaches k_left
        cum = np.cumsum(hist[::-1])
        j = int(np.searchsorted(cum, k_left))  # cum[j] >= k_left, cum[j - 1] < k_left
        if j >= hist.size:
            raise ValueError(f"k={k} is larger than the {int(cum[-1]) + above} counted entries")
        bin_ = (1 << _BITS) - 1 - j
        before = int(cum[j - 1]) if j else 0
        above += before
        k_left -= before
        prefix = (prefix << _BITS) | bin_
        fixed += _BITS
    key = np.array([prefix], dtype=kdt)
    # invert the key map
    top = kdt(1 << (nbits - 1))
    u = np.where(key & top, key & ~top, ~key)
    return float(u.view(dtype)[0]), above


def _count(chunks, where, pred) -> int:
    n = 0
    for c, w in _blocks(chunks, where):
        m = pred(c)
        n += int(np.count_nonzero(m if w is None else (m & w)))
    return n


def _layers(flat: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    out, start = [], 0
    for n in sizes:
        out.append(flat[start:start + n])
        start += n
    return out


def _top_k_nested(parts: list[np.ndarray], curs: list[np.ndarray], all_kept: bool, k: int, where: str
                  ) -> list[np.ndarray]:
    """Per-part bool masks: the k highest scores among the kept ones, ties by flat index."""
    kept_now = sum(p.size for p in parts) if all_kept else sum(int(np.count_nonzero(c)) for c in curs)
    if k > kept_now:
        raise ValueError(
            f"sparsity: {where} must keep {k} weights but only {kept_now} are unpruned "
            "(clean mode never revives pruned weights; start from an unpruned model or ask for a higher sparsity)"
        )
    if k == kept_now:
        return [c.copy() for c in curs]
    if k == 0:
        return [np.zeros(p.size, dtype=bool) for p in parts]
    w = None if all_kept else curs
    v, n_gt = kth_largest(parts, k, w)
    need = k - n_gt  # scores equal to v kept, lowest flat indices first
    out = []
    for p, c in zip(parts, curs):
        keep = p > v
        if not all_kept:
            keep &= c
        if need > 0:
            eq = p == v
            if not all_kept:
                eq &= c
            idx = np.flatnonzero(eq)[:need]
            keep[idx] = True
            need -= idx.size
        out.append(keep)
    return out


def _as_scores(t: torch.Tensor) -> np.ndarray:
    s = t.detach().cpu().numpy()
    return s if s.dtype in (np.float32, np.float64) else s.astype(np.float64)


def select(flat: torch.Tensor | Sequence[torch.Tensor], current: torch.Tensor, sizes: Sequence[int], density: float,
           scope: str, rule: str, final: bool) -> torch.Tensor:
    """The backend entry (arguments validated by
    :func:`gntk_fast.ops.mask_select.select_masks` or
    :func:`~gntk_fast.ops.mask_select.select_parts`): flat bool mask (N,).
    ``flat`` is the flat scores (N,) or a list of per-layer scores
    (:func:`select_parts`)."""
    if isinstance(flat, (list, tuple)):
        return select_parts(flat, current, sizes, density, scope, rule, final)
    s = _as_scores(flat)
    return select_parts(_layers(s, sizes), current, sizes, density, scope, rule, final)


def select_parts(parts: Sequence[torch.Tensor | np.ndarray], current: torch.Tensor, sizes: Sequence[int],
                 density: float, scope: str, rule: str, final: bool) -> torch.Tensor:
    """:func:`select` on per-layer scores (one tensor or array per layer, any
    shape, ``sizes[i]`` entries each, forward order) without concatenating
    them: the same flat bool mask (N,). Layers of different float dtypes are
    brought to float64 (exact), as a flat float64 concatenation would be."""
    parts = [(p if isinstance(p, np.ndarray) else _as_scores(p)).reshape(-1) for p in parts]
    if len({p.dtype for p in parts}) > 1:
        parts = [p.astype(np.float64) for p in parts]
    cur = current.detach().cpu().numpy()
    curs = _layers(cur, sizes)
    groups = [(parts, curs, "the model")] if scope == "global" else [
        ([p], [c], f"layer {i}") for i, (p, c) in enumerate(zip(parts, curs))]
    res = np.empty(cur.size, dtype=bool)  # filled layer by layer (no list of masks to concatenate)
    outs = _layers(res, sizes)
    start = 0
    for ps, cs, where in groups:
        dst = outs[start:start + len(ps)]
        start += len(ps)
        n = sum(p.size for p in ps)
        if n == 0:
            continue
        if rule == "clean":
            all_kept = all(bool(c.all()) for c in cs)
            k = round_half_even(density * n)
            if not final:
                k = min(k, n if all_kept else sum(int(np.count_nonzero(c)) for c in cs))
            for d, m in zip(dst, _top_k_nested(ps, cs, all_kept, k, where)):
                d[:] = m
        else:  # synaptic-flow: prune the k smallest and every tie at the k-th
            k = int((1.0 - density) * n)
            if k < 1:
                for d, c in zip(dst, cs):
                    d[:] = c
                continue
            v, _ = kth_largest(ps, n - k + 1)  # the k-th smallest
            for d, p in zip(dst, ps):
                np.greater(p, v, out=d)
    return torch.from_numpy(res).to(current.device)
