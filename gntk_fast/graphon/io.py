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
averages); and ``n_layers``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._validation import check_int
from .sas import SASResult, sas

__all__ = ["sas_layers", "save_estimates", "load_estimates"]

_FIELDS = ("H", "H_raw", "row_perm", "col_perm", "row_degrees", "col_degrees", "row_edges", "col_edges")


def sas_layers(masks: Sequence[Any], K: int = 64, *, input_layer: bool = True, smooth: float | None = None) -> list[SASResult]:
    """SAS of every mask of a network (forward order, shapes (n_out, n_in)).

    ``input_layer=True`` treats mask 0 as the input layer (columns kept in
    pixel order, one block per input). ``K`` is clamped to each side's size.
    Accepts a list of arrays/tensors or a :class:`~gntk_fast.pruning.PruneResult`.
    """
    masks = getattr(masks, "masks", masks)
    if not isinstance(masks, (list, tuple)) or len(masks) == 0:
        raise ValueError("masks must be a non-empty list of 2-D masks (or a PruneResult)")
    K = check_int("K", K, min_value=1)
    out = []
    for i, m in enumerate(masks):
        shape = tuple(getattr(m, "shape", np.shape(m)))
        if len(shape) != 2:
            raise ValueError(f"masks[{i}] must be 2-D; got shape {shape}")
        k_out = min(K, shape[0])
        if i == 0 and input_layer:
            out.append(sas(m, k_out, sort_cols=False, smooth=smooth))
        else:
            out.append(sas(m, k_out, min(K, shape[1]), smooth=smooth))
    return out


def save_estimates(estimates: Sequence[SASResult], path: str | Path) -> Path:
    """Write a list of SAS results to ``path`` (.npz, layout in the module docstring)."""
    if isinstance(estimates, SASResult):
        estimates = [estimates]
    arrays: dict[str, np.ndarray] = {"n_layers": np.array(len(estimates))}
    for i, e in enumerate(estimates):
        if not isinstance(e, SASResult):
            raise TypeError(f"estimates[{i}] must be a SASResult; got {type(e).__name__}")
        for f in _FIELDS:
            arrays[f"{f}{i}"] = np.asarray(getattr(e, f))
        arrays[f"shape{i}"] = np.array(e.shape, dtype=np.int64)
        arrays[f"sort_cols{i}"] = np.array(e.sort_cols)
        arrays[f"n_trials{i}"] = np.array(e.n_trials)
        arrays[f"smooth{i}"] = np.array(np.nan if e.smooth is None else e.smooth)
        if e.H_trials is not None:
            arrays[f"H_trials{i}"] = e.H_trials
    path = Path(path)
    np.savez_compressed(path, **arrays)
    return path


def load_estimates(path: str | Path) -> list[SASResult]:
    """Read what :func:`save_estimates` wrote."""
    with np.load(Path(path), allow_pickle=False) as z:
        if "n_layers" not in z.files:
            raise ValueError(f"path: {path} is not a SAS estimates file (no 'n_layers' key)")
        out = []
        for i in range(int(z["n_layers"])):
            kw = {f: z[f"{f}{i}"] for f in _FIELDS}
            smooth = float(z[f"smooth{i}"])
            out.append(SASResult(
                **kw, shape=tuple(int(s) for s in z[f"shape{i}"]), sort_cols=bool(z[f"sort_cols{i}"]),
                smooth=None if np.isnan(smooth) else smooth, n_trials=int(z[f"n_trials{i}"]),
                H_trials=z[f"H_trials{i}"] if f"H_trials{i}" in z.files else None,
            ))
        return out
