"""Estimating every layer of a pruned network, and saving/loading SAS estimates.

:func:`sas_layers` runs SAS on each mask of a network in forward order: mask 0
(the input layer, columns = pixels) with ``sort_cols=False`` and one column
block per input, every other layer with rows and columns sorted. K is clamped
per side to the layer's size (the 10-class output layer has only 10 rows).

npz layout of :func:`save_estimates` (``allow_pickle=False``), for layers
i = 0..N-1: ``H{i}`` (K_out, K_in) float64, ``H_raw{i}``, ``row_perm{i}``,
``col_perm{i}``, ``row_degrees{i}``, ``col_degrees{i}``, ``row_edges{i}``,
``col_edges{i}`` (int64), ``shape{i}`` (2,), ``sort_cols{i}`` (bool),
``n_trials{i}``, ``smooth{i}`` (NaN = off), ``H_trials{i}`` (only for trial
averages), ``taps{i}`` (only for a pooled conv-mask estimate, T > 1 taps per
channel pair); and ``n_layers``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._io import load_npz, save_npz
from .._validation import check_choice, check_int
from .channels import TAPS
from .sas import SASResult, sas

__all__ = ["sas_layers", "save_estimates", "load_estimates"]

_FIELDS = ("H", "H_raw", "row_perm", "col_perm", "row_degrees", "col_degrees", "row_edges", "col_edges")
_LAYER_KEYS = (*_FIELDS, "shape", "sort_cols", "n_trials", "smooth", "H_trials", "taps")
_KIND_NAMES = {"iu": "an integer array", "f": "a float array", "b": "a bool"}


def sas_layers(masks: Sequence[Any], K: int = 64, *, input_layer: bool = True, smooth: float | None = None,
               taps: str = "pooled") -> list:
    """SAS of every mask of a network (forward order, shapes (n_out, n_in)).

    ``input_layer=True`` treats mask 0 as the input layer (columns kept in
    pixel order, one block per input; for a conv mask, one block per image
    channel). ``K`` is clamped to each side's size. Accepts a list of
    arrays/tensors or a :class:`~gntk_fast.pruning.PruneResult`. Conv masks
    (C_out, C_in, kh, kw) are estimated through their channel connectivity
    (:func:`gntk_fast.graphon.channel_sas`): one pooled SASResult per layer, or
    with ``taps="per-tap"`` a list of one SASResult per tap in that layer's place.
    A 2-D mask right after a conv mask whose columns are P > 1 times that
    layer's channels is a flatten readout (columns in (channel, pixel) order):
    it is estimated over channels with its P pixels as taps, as
    :func:`gntk_fast.pai.network_graphon` does.

    Examples
    --------
    >>> import gntk_fast as gf
    >>> from gntk_fast.graphon import sas_layers
    >>> net = gf.ConvNet(1, 8, 2, 10, seed=0)
    >>> [e.H.shape for e in sas_layers(net.masks, K=4)]
    [(4, 1), (4, 4), (4, 4)]
    """
    masks = getattr(masks, "masks", masks)
    if not isinstance(masks, (list, tuple)) or len(masks) == 0:
        raise ValueError("masks must be a non-empty list of 2-D or 4-D masks (or a PruneResult)")
    K = check_int("K", K, min_value=1)
    taps = check_choice("taps", taps, TAPS)
    out = []
    prev = None
    for i, m in enumerate(masks):
        shape = tuple(getattr(m, "shape", np.shape(m)))
        if len(shape) not in (2, 4):
            raise ValueError(f"masks[{i}] must be 2-D (n_out, n_in) or 4-D (C_out, C_in, kh, kw); got shape {shape}")
        if len(shape) == 2 and prev is not None and len(prev) == 4 and shape[1] != prev[0] and shape[1] % prev[0] == 0:
            m = m.reshape(shape[0], prev[0], shape[1] // prev[0], 1)  # flatten readout: pixels as taps
            shape = tuple(m.shape)
        prev = shape
        k_out = min(K, shape[0])
        if i == 0 and input_layer:
            out.append(sas(m, k_out, sort_cols=False, smooth=smooth, taps=taps))
        else:
            out.append(sas(m, k_out, min(K, shape[1]), smooth=smooth, taps=taps))
    return out


def save_estimates(estimates: Sequence[SASResult], path: str | Path) -> Path:
    """Write a list of SAS results to ``path`` (.npz, layout in the module
    docstring), atomically: an interrupted write leaves no file."""
    if isinstance(estimates, SASResult):
        estimates = [estimates]
    if len(estimates) == 0:
        raise ValueError("estimates must be a non-empty list of SASResult")
    arrays: dict[str, np.ndarray] = {"n_layers": np.array(len(estimates), dtype=np.int64)}
    for i, e in enumerate(estimates):
        if not isinstance(e, SASResult):
            raise TypeError(f"estimates[{i}] must be a SASResult; got {type(e).__name__}")
        for f in _FIELDS:
            arrays[f"{f}{i}"] = np.asarray(getattr(e, f))
        arrays[f"shape{i}"] = np.array(e.shape, dtype=np.int64)
        arrays[f"sort_cols{i}"] = np.array(bool(e.sort_cols))
        arrays[f"n_trials{i}"] = np.array(e.n_trials, dtype=np.int64)
        arrays[f"smooth{i}"] = np.array(np.nan if e.smooth is None else e.smooth, dtype=np.float64)
        if e.taps != 1:
            arrays[f"taps{i}"] = np.array(e.taps, dtype=np.int64)
        if e.H_trials is not None:
            arrays[f"H_trials{i}"] = np.asarray(e.H_trials)
        # what load_estimates would refuse is refused here, naming the estimate's field
        _load_layer(arrays, i, "save_estimates", key=lambda f, i=i: f"estimates[{i}].{f}")
    return save_npz(path, arrays)


def load_estimates(path: str | Path) -> list[SASResult]:
    """Read what :func:`save_estimates` wrote, validating every field.

    Checked per layer i: presence of every key; dtype kinds (integer
    perms/degrees/edges/shape/counts, float estimates, bool ``sort_cols``);
    ``shape`` two positive ints (n_out, n_in); ``n_trials`` >= 1; ``H`` and
    ``H_raw`` (K_out, K_in) finite in [0, 1] with 1 <= K <= n; edges strictly
    increasing from 0 to n; perms permutations of range(n) and degrees in
    [0, n_other], shaped (n,) or (T, n); ``H_trials`` (T, K_out, K_in).
    Any violation (and an unreadable file) is a ValueError naming the file
    and the key; a missing file is a FileNotFoundError.
    """
    z = load_npz(path, "SAS estimates file")
    where = f"SAS estimates file {path}"
    if "n_layers" not in z:
        raise ValueError(f"{where} is not a SAS estimates file (no 'n_layers' key)")
    n_layers = _scalar(z, "n_layers", "iu", where)
    if n_layers < 1:
        raise ValueError(f"{where}: n_layers must be >= 1; got {n_layers}")
    return [_load_layer(z, i, where) for i in range(n_layers)]


def _get(z: dict[str, np.ndarray], key: str, kinds: str, where: str) -> np.ndarray:
    if key not in z:
        raise ValueError(f"{where} lacks {key!r}")
    a = z[key]
    if a.dtype.kind not in kinds:
        raise ValueError(f"{where}: {key} has dtype {a.dtype}; expected {_KIND_NAMES[kinds]}")
    return a


def _scalar(z: dict[str, np.ndarray], key: str, kinds: str, where: str):
    a = _get(z, key, kinds, where)
    if a.shape != ():
        raise ValueError(f"{where}: {key} must be a scalar; got shape {a.shape}")
    return a.item()


def _require_shape(a: np.ndarray, key: str, shapes: list[tuple[int, ...]], where: str, why: str = "") -> None:
    if a.shape not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{where}: {key} has shape {a.shape}; expected {want}{why}")


def _load_layer(z: dict[str, np.ndarray], i: int, where: str, key=None) -> SASResult:
    """Layer ``i`` of a file's arrays, validated. ``key(f)`` is the name an error
    gives field ``f`` (default: the file's key ``f{i}``)."""
    if key is None:
        key = lambda f: f"{f}{i}"  # noqa: E731
    z = {key(f): z[f"{f}{i}"] for f in _LAYER_KEYS if f"{f}{i}" in z}  # this layer's arrays, by their shown names
    shape = _get(z, key("shape"), "iu", where)
    if shape.shape != (2,) or (shape < 1).any():
        raise ValueError(f"{where}: {key('shape')} must be two positive ints (n_out, n_in); got {shape.tolist()}")
    n_out, n_in = (int(s) for s in shape)
    T = _scalar(z, key("n_trials"), "iu", where)
    if T < 1:
        raise ValueError(f"{where}: {key('n_trials')} must be >= 1; got {T}")
    sort_cols = _scalar(z, key("sort_cols"), "b", where)
    taps = _scalar(z, key("taps"), "iu", where) if key("taps") in z else 1
    if taps < 1:
        raise ValueError(f"{where}: {key('taps')} must be >= 1; got {taps}")
    smooth = _scalar(z, key("smooth"), "f", where)
    if not (np.isnan(smooth) or smooth >= 0):
        raise ValueError(f"{where}: {key('smooth')} must be NaN (off) or >= 0; got {smooth}")
    kw = {f: _get(z, key(f), "f" if f.startswith("H") else "iu", where) for f in _FIELDS}
    ks = []
    for side, n in (("row", n_out), ("col", n_in)):
        edges = kw[f"{side}_edges"]
        if edges.ndim != 1 or not 2 <= edges.size <= n + 1:
            raise ValueError(f"{where}: {key(side + '_edges')} must be 1-D with 2 to {n + 1} block edges; "
                             f"got shape {edges.shape}")
        if edges[0] != 0 or edges[-1] != n or (np.diff(edges) <= 0).any():
            raise ValueError(f"{where}: {key(side + '_edges')} must increase strictly from 0 to {n}; got {edges.tolist()}")
        ks.append(edges.size - 1)
    K = tuple(ks)  # the block counts of the edges; the estimates must agree with them
    H, H_raw = kw["H"], kw["H_raw"]
    if H.shape == H_raw.shape and H.ndim == 2 and H.shape != K:  # both estimates agree: the edges are wrong
        for side, k, k_est in (("row", K[0], H.shape[0]), ("col", K[1], H.shape[1])):
            if k != k_est:
                raise ValueError(f"{where}: {key(side + '_edges')} has shape ({k + 1},); expected ({k_est + 1},) "
                                 f"({key('H')} and {key('H_raw')} have shape {H.shape})")
    for f in ("H", "H_raw"):
        _require_shape(kw[f], key(f), [K], where, f" (the blocks of {key('row_edges')} and {key('col_edges')})")
        if not (np.isfinite(kw[f]).all() and kw[f].min() >= 0 and kw[f].max() <= 1):
            raise ValueError(f"{where}: {key(f)} must hold values in [0, 1]")
    H = kw["H"]
    for side, n, n_other in (("row", n_out, n_in), ("col", n_in, n_out)):
        perm, deg = kw[f"{side}_perm"], kw[f"{side}_degrees"]
        shapes = [(T, n)] if T > 1 else [(n,), (1, n)]
        _require_shape(perm, key(side + "_perm"), shapes, where)
        _require_shape(deg, key(side + "_degrees"), shapes, where)
        if not (np.sort(perm, axis=-1) == np.arange(n)).all():
            raise ValueError(f"{where}: {key(side + '_perm')} is not a permutation of range({n})")
        if deg.min() < 0 or deg.max() > n_other * taps:
            raise ValueError(f"{where}: {key(side + '_degrees')} must lie in [0, {n_other * taps}]")
    H_trials = z.get(key("H_trials"))
    if H_trials is not None:
        H_trials = _get(z, key("H_trials"), "f", where)
        _require_shape(H_trials, key("H_trials"), [(T, *H.shape)], where)
    return SASResult(**kw, shape=(n_out, n_in), sort_cols=bool(sort_cols),
                     smooth=None if np.isnan(smooth) else float(smooth), n_trials=int(T), H_trials=H_trials,
                     taps=int(taps))
