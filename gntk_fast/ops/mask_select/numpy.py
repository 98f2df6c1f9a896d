"""Numpy backend of :func:`gntk_fast.ops.mask_select.select_masks`: partition-based selection.

The selection runs on flat CPU numpy views of the scores. The k-th order
statistic comes from ``numpy.partition`` (introselect, SIMD-accelerated,
faster than ``torch.kthvalue`` on CPU; an order statistic is a unique value,
so it is exactly ``torch.kthvalue``'s). The clean rule keeps every score
above the k-th largest and resolves ties at it by flat index; the
Synaptic-Flow rule keeps every score above the k-th smallest. The tests
compare both with the plain twins of :mod:`gntk_fast.ops.mask_select.naive`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["round_half_even", "kth_smallest", "select_clean", "select_compat", "select"]


def round_half_even(x: float) -> int:
    """Python's ``round`` (half to even), the kept-count rule of clean mode."""
    return int(round(x))


def kth_smallest(a: np.ndarray, k: int, *, inplace: bool = False) -> float:
    """The k-th smallest entry (1-based, like ``torch.kthvalue``) of the 1-D
    array ``a`` (no NaN). ``inplace=True`` may reorder ``a``."""
    if not 1 <= k <= a.size:
        raise ValueError(f"k must be in [1, {a.size}]; got {k}")
    # introselect degrades when the k-th value sits in a huge block of ties;
    # the usual one is the minimum (scores of pruned weights are all 0)
    mn = a.min()
    above = a > mn
    c = a.size - int(np.count_nonzero(above))  # entries equal to the minimum
    if k <= c:
        return mn
    if c > a.size // 8:
        rest = np.compress(above, a)  # (much faster than boolean indexing here)
        rest.partition(k - c - 1)
        return rest[k - c - 1]
    if inplace:
        a.partition(k - 1)
        return a[k - 1]
    return np.partition(a, k - 1)[k - 1]


def _as_np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _top_k_nested(s: np.ndarray, cur: np.ndarray, k: int, where: str) -> np.ndarray:
    """Bool array: the k highest of ``s`` among ``cur`` (True entries), ties by index."""
    all_kept = bool(cur.all())
    kept_now = s.size if all_kept else int(np.count_nonzero(cur))
    if k > kept_now:
        raise ValueError(
            f"sparsity: {where} must keep {k} weights but only {kept_now} are unpruned "
            "(clean mode never revives pruned weights; start from an unpruned model or ask for a higher sparsity)"
        )
    if k == kept_now:
        return cur.copy()
    if k == 0:
        return np.zeros(s.size, dtype=bool)
    if all_kept:
        v = kth_smallest(s, kept_now - k + 1)
        keep = s >= v
    else:
        sub = np.compress(cur, s)
        v = kth_smallest(sub, kept_now - k + 1, inplace=True)
        keep = s >= v
        keep &= cur
    if int(np.count_nonzero(keep)) == k:
        return keep
    # ties at v: keep every score > v, then the lowest flat indices among == v
    gt = s > v
    if not all_kept:
        gt &= cur
    need = k - int(np.count_nonzero(gt))
    eq = s == v
    if not all_kept:
        eq &= cur
    gt[np.flatnonzero(eq)[:need]] = True
    return gt


def select_clean(flat: torch.Tensor, current: torch.Tensor, sizes: Sequence[int], density: float,
                 scope: str, *, final: bool = True) -> torch.Tensor:
    """Clean rule on flat scores (N,) and the flat current bool mask (N,);
    ``sizes`` are the per-layer weight counts. Returns the flat bool mask.

    ``final=False`` (intermediate iterations) caps each kept count at the
    number of weights still unpruned instead of raising (only reachable when
    an already-pruned model is pruned further)."""
    s, cur = _as_np(flat), _as_np(current)

    def count(k: int, c: np.ndarray) -> int:
        return k if final else min(k, int(np.count_nonzero(c)))

    if scope == "global":
        out = _top_k_nested(s, cur, count(round_half_even(density * s.size), cur), "the model")
    else:
        parts, start = [], 0
        for i, n in enumerate(sizes):
            sl = slice(start, start + n)
            k = count(round_half_even(density * n), cur[sl])
            parts.append(_top_k_nested(s[sl], cur[sl], k, f"layer {i}"))
            start += n
        out = np.concatenate(parts)
    return torch.from_numpy(out).to(current.device)


def select_compat(flat: torch.Tensor, current: torch.Tensor, sizes: Sequence[int], density: float,
                  scope: str) -> torch.Tensor:
    """Synaptic-Flow rule on flat scores (N,); unchanged where k < 1."""
    s = _as_np(flat)
    if scope == "global":
        k = int((1.0 - density) * s.size)
        if k < 1:
            return current.clone()
        return torch.from_numpy(s > kth_smallest(s, k)).to(current.device)
    out = _as_np(current).copy()
    start = 0
    for n in sizes:
        sl = slice(start, start + n)
        k = int((1.0 - density) * n)
        if k >= 1:
            out[sl] = s[sl] > kth_smallest(s[sl], k)
        start += n
    return torch.from_numpy(out).to(current.device)


def select(flat: torch.Tensor, current: torch.Tensor, sizes: Sequence[int], density: float, scope: str,
           rule: str, final: bool) -> torch.Tensor:
    """The backend entry (arguments validated by
    :func:`gntk_fast.ops.mask_select.select_masks`): flat bool mask (N,)."""
    if rule == "clean":
        return select_clean(flat, current, sizes, density, scope, final=final)
    return select_compat(flat, current, sizes, density, scope)
