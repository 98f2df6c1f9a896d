"""Pruning from graphons: keep exactly round(d N) weights, drawn with probabilities given by a graphon.

docs/limit-graphons.md section 5. Layer l (weight shape (n_out, n_in)) gets a
graphon ``W^l``; output neuron ``i`` sits at ``u = (r - 1/2)/n_out`` where r is
its rank in ``positions[l][0]`` (default: r = i, i.e. ``u_i = (i - 1/2)/n_out``)
and input neuron ``j`` at ``v = (s - 1/2)/n_in`` likewise (an input graphon
keeps its d coordinates in order: v_j = (j - 1/2)/d). The weight of entry
(i, j) is ``w_ij = W^l(u_i, v_j)``; entries with ``w = 0`` are never kept.

Samplers (both keep exactly ``k = round(d N)`` entries: per layer with
``scope="layerwise"``, over all layers together with ``"global"``):

* ``"keys"`` (default): weighted sampling without replacement by
  Efraimidis-Spirakis keys ``U^(1/w)`` (U uniform), the k largest keys kept
  (ties broken by flat index). Inclusion probabilities increase with w and
  are close to proportional to w when k is small against the number of
  entries of appreciable weight (they are the successive-sampling
  probabilities, not exactly proportional).
* ``"systematic"``: exact inclusion probabilities ``pi = min(1, c w)`` with c
  such that sum pi = k (capped entries are kept surely), by systematic
  sampling over a uniformly random order of the entries (Madow's method):
  one uniform start U and the k points U, U + 1, ..., U + k - 1 on the
  cumulative sums of pi.

:func:`graphon_masks_reference` is the plain twin (Python loops over the
entries with the same random numbers); the tests require equal masks.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .._validation import check_choice, check_permutation, check_seed

__all__ = ["graphon_weights", "graphon_masks", "graphon_masks_reference", "inclusion_probabilities",
           "prune_from_graphons", "SAMPLERS"]

SAMPLERS = ("keys", "systematic")


def graphon_weights(shapes: Sequence[tuple[int, int]], graphons: Sequence[Any],
                    positions: Sequence[Any] | None = None) -> list[np.ndarray]:
    """``w^l_ij = W^l(u_i, v_j)`` per layer, float64 (n_out, n_in) (see the module docstring);
    for a convolution's shape (C_out, C_in, *kernel) every tap of the channel
    pair (i, j) gets ``W^l(u_i, v_j)``.

    ``positions[l]`` is None or a pair ``(row_perm, col_perm)`` (each None or a
    permutation): ``row_perm[r]`` is the neuron placed at rank r.
    """
    from ..graphon.objects import as_graphon

    if isinstance(graphons, (str, bytes)) or not hasattr(graphons, "__len__"):
        raise TypeError(f"graphons must be a list with one graphon per prunable layer; got {type(graphons).__name__}")
    if len(graphons) != len(shapes):
        raise ValueError(f"graphons must have one entry per prunable layer ({len(shapes)}); got {len(graphons)}")
    if positions is not None and len(positions) != len(shapes):
        raise ValueError(f"positions must have one entry per prunable layer ({len(shapes)}); got {len(positions)}")
    out = []
    for l, (shape, g) in enumerate(zip(shapes, graphons)):
        try:
            g = as_graphon(g)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"graphons[{l}]: {exc}") from None
        n_out, n_in = int(shape[0]), int(shape[1])
        W = g.matrix(n_out, n_in)
        pos = None if positions is None else positions[l]
        if pos is not None:
            if not (isinstance(pos, (tuple, list)) and len(pos) == 2):
                raise TypeError(f"positions[{l}] must be None or a pair (row_perm, col_perm)")
            rp = np.arange(n_out) if pos[0] is None else check_permutation(f"positions[{l}][0]", pos[0], n_out)
            cp = np.arange(n_in) if pos[1] is None else check_permutation(f"positions[{l}][1]", pos[1], n_in)
            Wn = np.empty_like(W)
            Wn[np.ix_(rp, cp)] = W
            W = Wn
        if len(shape) > 2:  # a convolution: every tap of the channel pair (o, i) has the weight W(u_o, v_i)
            W = np.ascontiguousarray(np.broadcast_to(W.reshape(W.shape + (1,) * (len(shape) - 2)), tuple(shape)))
        out.append(W)
    return out


def inclusion_probabilities(w: np.ndarray, k: int) -> np.ndarray:
    """``pi = min(1, c w)`` with sum pi = k (w >= 0 flat; needs k <= #{w > 0})."""
    w = np.asarray(w, dtype=np.float64)
    npos = int(np.count_nonzero(w > 0))
    if k > npos:
        raise ValueError(f"sparsity: {k} weights to keep but only {npos} have positive graphon weight")
    if k == 0:
        return np.zeros_like(w)
    ws = np.sort(w)[::-1]
    tail = np.cumsum(ws[::-1])[::-1]  # tail[m] = sum_{i >= m} ws[i]
    m = np.arange(k)
    c = (k - m) / tail[m]
    ok = c * ws[m] <= 1.0 + 1e-12  # the first m (largest) capped, the rest proportional
    first = int(np.argmax(ok))
    return np.minimum(1.0, c[first] * w)


def _layer_streams(seed: int, L: int) -> list[np.random.Generator]:
    ss = np.random.SeedSequence(seed)
    return [np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(L)]


def _counts(sizes: Sequence[int], density: float, scope: str) -> list[int] | int:
    if scope == "global":
        return int(round(density * sum(sizes)))
    return [int(round(density * n)) for n in sizes]


def graphon_masks(weights: Sequence[np.ndarray], density: float, scope: str = "layerwise", seed: int = 0,
                  sampler: str = "keys") -> list[np.ndarray]:
    """Bool masks with exactly round(d N) kept entries (per layer or in total), drawn from ``weights``.

    ``weights``: per-layer float arrays (n_out, n_in) in [0, 1] (e.g. :func:`graphon_weights`).
    Random numbers: layer l uses its own generator spawned from ``seed``
    (``SeedSequence(seed).spawn(L)``): ``random(N)`` for the keys, or
    ``permutation(N)`` then ``random()`` for the systematic sampler.
    """
    scope = check_choice("scope", scope, ("layerwise", "global"))
    sampler = check_choice("sampler", sampler, SAMPLERS)
    seed = check_seed(seed, allow_none=False)
    flats = [np.asarray(w, dtype=np.float64).ravel() for w in weights]
    sizes = [f.size for f in flats]
    gens = _layer_streams(seed, len(flats))
    counts = _counts(sizes, density, scope)
    if sampler == "keys":
        keys = []
        for f, g in zip(flats, gens):
            u = g.random(f.size)
            with np.errstate(divide="ignore"):
                lk = np.where(f > 0, np.log(u) / np.where(f > 0, f, 1.0), -np.inf)  # log of U^(1/w)
            keys.append(lk)
        groups = [list(range(len(flats)))] if scope == "global" else [[l] for l in range(len(flats))]
        kept = [np.zeros(n, dtype=bool) for n in sizes]
        for gi, grp in enumerate(groups):
            k = counts if scope == "global" else counts[grp[0]]
            allk = np.concatenate([keys[l] for l in grp])
            npos = int(np.count_nonzero(np.isfinite(allk)))
            if k > npos:
                raise ValueError(f"sparsity: {k} weights to keep but only {npos} have positive graphon weight")
            order = np.lexsort((np.arange(allk.size), -allk))[:k]  # largest keys, then lowest flat index
            sel = np.zeros(allk.size, dtype=bool)
            sel[order] = True
            off = 0
            for l in grp:
                kept[l] = sel[off:off + sizes[l]]
                off += sizes[l]
        return [k.reshape(np.shape(w)) for k, w in zip(kept, weights)]
    # systematic
    if scope == "global":
        allw = np.concatenate(flats)
        pis = np.split(inclusion_probabilities(allw, counts), np.cumsum(sizes)[:-1])
        ks = [float(p.sum()) for p in pis]
    else:
        pis = [inclusion_probabilities(f, k) for f, k in zip(flats, counts)]
        ks = [float(k) for k in counts]
    out = []
    for l, (pi, g) in enumerate(zip(pis, gens)):
        perm = g.permutation(pi.size)
        start = g.random()
        out.append(_systematic(pi, perm, start, ks[l]).reshape(np.shape(weights[l])))
    if scope == "global":  # the per-layer expected counts need not be integers: fix the total exactly
        out = _fix_total(out, pis, counts)
    return out


def _systematic(pi: np.ndarray, perm: np.ndarray, start: float, k: float) -> np.ndarray:
    """Entries hit by the points start + j (j = 0, 1, ...) on the cumulative sums of pi[perm]."""
    cum = np.cumsum(pi[perm])
    n_pts = max(0, int(np.ceil(cum[-1] - start - 1e-12))) if cum.size else 0
    pts = start + np.arange(n_pts)
    idx = np.minimum(np.searchsorted(cum, pts, side="right"), pi.size - 1)
    sel = np.zeros(pi.size, dtype=bool)
    sel[perm[idx]] = True
    return sel


def _fix_total(masks: list[np.ndarray], pis: list[np.ndarray], k: int) -> list[np.ndarray]:
    total = sum(int(m.sum()) for m in masks)
    while total != k:
        # add (remove) the unkept (kept) entry of largest (smallest) pi, flat-index order on ties
        best = None
        for l, (m, p) in enumerate(zip(masks, pis)):
            f = m.ravel()
            cand = np.nonzero(~f if total < k else f)[0]
            if cand.size == 0:
                continue
            vals = p[cand]
            j = cand[np.argmax(vals)] if total < k else cand[np.argmin(vals)]
            v = p[j] if total < k else -p[j]
            if best is None or v > best[0]:
                best = (v, l, j)
        _, l, j = best
        f = masks[l].reshape(-1)
        f[j] = total < k
        total += 1 if total < k else -1
    return masks


def graphon_masks_reference(weights: Sequence[np.ndarray], density: float, scope: str = "layerwise",
                            seed: int = 0, sampler: str = "keys") -> list[np.ndarray]:
    """Plain twin of :func:`graphon_masks` (loops over entries, the same random numbers)."""
    flats = [np.asarray(w, dtype=np.float64).ravel() for w in weights]
    sizes = [f.size for f in flats]
    gens = _layer_streams(seed, len(flats))
    counts = _counts(sizes, density, scope)
    if sampler == "keys":
        base = 0
        groups_keys: list[list] = []
        for l, (f, g) in enumerate(zip(flats, gens)):
            u = g.random(f.size)
            ek = []
            for i in range(f.size):
                key = u[i] ** (1.0 / f[i]) if f[i] > 0 else -1.0
                ek.append((key, i if scope == "layerwise" else base + i, l, i))
            base += f.size
            groups_keys.append(ek)
        if scope == "global":
            groups_keys = [[e for grp in groups_keys for e in grp]]
            ks = [counts]
        else:
            ks = counts
        out = [np.zeros(n, dtype=bool) for n in sizes]
        for grp, k in zip(groups_keys, ks):
            grp = sorted(grp, key=lambda e: (-e[0], e[1]))
            for key, _, l, i in grp[:k]:
                out[l][i] = True
        return [m.reshape(np.shape(w)) for m, w in zip(out, weights)]
    raise ValueError("graphon_masks_reference implements sampler='keys' only")


def prune_from_graphons(model, graphons, density: float, *, scope: str = "layerwise", seed: int | None = None,
                        positions=None, sampler: str = "keys", shuffle: bool = False, unsupported: str = "raise"):
    """Prune ``model`` in place from one graphon per prunable layer (see :func:`gntk_fast.prune`,
    method ``"graphon"``). Returns a :class:`~gntk_fast.pruning.PruneResult` whose ``scores``
    are the graphon weights w_ij."""
    import secrets

    from .layers import dense_parameters, find_prunable, install_masks, is_chain
    from .result import PruneResult

    layers = find_prunable(model, unsupported=unsupported)
    shapes = [l.shape for l in layers]
    seed = check_seed(seed)
    seed = secrets.randbits(63) if seed is None else seed
    W = graphon_weights(shapes, graphons, positions)
    masks = graphon_masks(W, density, scope, seed, sampler)
    current = [l.current_mask().cpu().numpy() for l in layers]
    if any(not c.all() for c in current):
        raise ValueError("model: method 'graphon' prunes an unpruned model (some weights are already pruned)")
    tmasks = [torch.from_numpy(m.copy()).to(layers[i].theta.device) for i, m in enumerate(masks)]
    if shuffle:
        from .masks import shuffle_masks

        g = torch.Generator(device="cpu")
        g.manual_seed(int(np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)[1]) & ((1 << 63) - 1))
        tmasks = shuffle_masks(tmasks, g)
    install_masks(layers, tmasks)
    kept = int(sum(int(m.sum()) for m in masks))
    total = int(sum(m.size for m in masks))
    config = {"method": "graphon", "density": density, "sparsity": 1.0 - density, "scope": scope,
              "iterations": 1, "seed": seed, "sampler": sampler, "shuffle": bool(shuffle),
              "model": type(model).__name__}
    return PruneResult(masks=[m.cpu() for m in tmasks], names=[l.name for l in layers],
                       scores=[torch.from_numpy(np.array(w, dtype=np.float64)) for w in W],
                       history=[{"iteration": 1, "target_density": density, "density": kept / total, "kept": kept}],
                       config=config, layer_types=[l.layer_type for l in layers], dense=dense_parameters(model),
                       chain=is_chain(model, layers))
