"""From scores to masks: the clean rule, the Synaptic-Flow rule, shuffling.

Scores are per-layer tensors shaped like the weights (higher = keep). Masks
are bool tensors of the same shapes (True = kept). "Flat index" is the index
in the concatenation of the row-major flattened layers, in forward order
(global scope) or within one layer (layerwise scope).

Clean rule (default)
    Exactly ``k = round(d * N)`` weights are kept (Python's round: half to
    even), per layer with ``N = N_l`` for layerwise scope: the k highest
    scores among the weights kept so far (masks are nested: an already-pruned
    weight stays pruned), ties broken by flat index (the lower index is kept,
    like a stable descending sort). A NaN score is a ValueError naming the
    layer.

Synaptic-Flow rule (``compat="synaptic-flow"``)
    The reference code calls the kept fraction d "sparsity" and prunes
    ``k = int((1 - d) * N)`` weights: ``threshold = torch.kthvalue(scores, k)``
    over the concatenated flat scores (global) or per layer (layerwise), and
    every weight with ``score <= threshold`` is pruned, ties at the threshold
    included, so fewer than ``N - k`` weights may be kept; when ``k < 1`` the
    masks are left unchanged. (pruners.md writes "k = int(d * N)"; the
    reference code, which this mode reproduces, is as described here.) The
    new mask is set from the scores alone, so a weight pruned at an earlier
    iteration comes back when its new score is above the threshold (this
    happens for random and magnitude scores, which ignore the mask, and for
    snip, whose dL/dm is non-zero for pruned weights).

Fast paths and twins: the selection runs on flat CPU numpy views of the
scores. The k-th order statistic comes from ``numpy.partition``
(introselect, SIMD-accelerated, several times faster than
``torch.kthvalue`` on CPU; an order statistic is a unique value, so it is
exactly ``torch.kthvalue``'s). :func:`clean_masks_reference` (a stable
sort) and :func:`compat_masks_reference` (literal ``torch.kthvalue`` /
``torch.where`` as in the reference code) are the plain twins the tests
compare against.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = [
    "round_half_even",
    "kth_smallest",
    "check_scores",
    "select_clean",
    "select_compat",
    "clean_masks",
    "compat_masks",
    "clean_masks_reference",
    "compat_masks_reference",
    "shuffle_masks",
    "split_flat",
]


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


def split_flat(flat: torch.Tensor, shapes: Sequence[tuple[int, ...]]) -> list[torch.Tensor]:
    """Per-layer views of a flat tensor (row-major, forward order)."""
    sizes = [int(np.prod(s)) for s in shapes]
    return [p.view(s) for p, s in zip(torch.split(flat, sizes), shapes)]


def check_scores(flat: torch.Tensor, shapes: Sequence[tuple[int, ...]], names: Sequence[str]) -> None:
    """NaN in the flat scores is a ValueError naming the (first) layer."""
    if flat.numel() == 0:
        return
    peak = flat.numpy().max() if flat.device.type == "cpu" else flat.max()  # NaN propagates through max
    if not bool(np.isnan(float(peak))):
        return
    for i, (s, name) in enumerate(zip(split_flat(flat, shapes), names)):
        n = int(torch.isnan(s).sum())
        if n:
            raise ValueError(
                f"scores: layer {i} ({name!r}) has {n} NaN score(s); the ranking is undefined "
                "(check the weights and data for extreme values)"
            )


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


def _flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def clean_masks(scores: Sequence[torch.Tensor], current: Sequence[torch.Tensor], density: float,
                scope: str) -> list[torch.Tensor]:
    """List form of :func:`select_clean` (per-layer scores and current masks)."""
    shapes = [tuple(s.shape) for s in scores]
    flat = select_clean(_flatten(scores), _flatten(current).to(torch.bool), [s.numel() for s in scores], density, scope)
    return [m.clone() for m in split_flat(flat, shapes)]


def compat_masks(scores: Sequence[torch.Tensor], current: Sequence[torch.Tensor], density: float,
                 scope: str) -> list[torch.Tensor]:
    """List form of :func:`select_compat`."""
    shapes = [tuple(s.shape) for s in scores]
    flat = select_compat(_flatten(scores), _flatten(current).to(torch.bool), [s.numel() for s in scores], density, scope)
    return [m.clone() for m in split_flat(flat, shapes)]


# ------------------------------------------------------------------ plain twins
def clean_masks_reference(scores: Sequence[torch.Tensor], current: Sequence[torch.Tensor], density: float,
                          scope: str) -> list[torch.Tensor]:
    """Twin of :func:`clean_masks`: pruned weights get -inf, a stable
    descending sort, the first k kept (raises like the fast path when k
    exceeds the unpruned count)."""

    def top(s: torch.Tensor, c: torch.Tensor, k: int) -> torch.Tensor:
        if k > int(c.sum()):
            raise ValueError("sparsity: more weights to keep than are unpruned")
        s = torch.where(c, s.to(torch.float64), torch.tensor(float("-inf"), dtype=torch.float64))
        order = torch.sort(s, descending=True, stable=True).indices
        keep = torch.zeros(s.numel(), dtype=torch.bool)
        keep[order[:k]] = True
        return keep

    shapes = [tuple(s.shape) for s in scores]
    if scope == "global":
        flat, cur = _flatten(scores).cpu(), _flatten(current).cpu().to(torch.bool)
        keep = top(flat, cur, round(density * flat.numel()))
        return [m.clone() for m in split_flat(keep, shapes)]
    return [top(s.reshape(-1).cpu(), c.reshape(-1).cpu().to(torch.bool), round(density * s.numel())).view(s.shape)
            for s, c in zip(scores, current)]


def compat_masks_reference(scores: Sequence[torch.Tensor], current: Sequence[torch.Tensor], density: float,
                           scope: str) -> list[torch.Tensor]:
    """Twin of :func:`compat_masks`, written like the Synaptic-Flow code
    (``torch.kthvalue`` and ``torch.where(score <= threshold, 0, 1)``)."""
    zero, one = torch.tensor([0.0]), torch.tensor([1.0])
    if scope == "global":
        global_scores = torch.cat([torch.flatten(v) for v in scores]).cpu()
        k = int((1.0 - density) * global_scores.numel())
        if k < 1:
            return [c.clone() for c in current]
        threshold, _ = torch.kthvalue(global_scores, k)
        return [torch.where(s.cpu() <= threshold, zero, one) != 0 for s in scores]
    out = []
    for s, c in zip(scores, current):
        k = int((1.0 - density) * s.numel())
        if k < 1:
            out.append(c.clone())
            continue
        threshold, _ = torch.kthvalue(torch.flatten(s).cpu(), k)
        out.append(torch.where(s.cpu() <= threshold, zero, one) != 0)
    return out


def shuffle_masks(masks: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Each layer's mask with its entries permuted uniformly at random
    (``torch.randperm`` with ``generator``): the per-layer kept count is kept,
    the positions are random."""
    out = []
    for m in masks:
        perm = torch.randperm(m.numel(), generator=generator).to(m.device)
        out.append(m.reshape(-1)[perm].reshape(m.shape).clone())
    return out
