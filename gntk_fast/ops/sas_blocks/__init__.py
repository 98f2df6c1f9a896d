"""SAS degrees and block averaging of one 0/1 mask (docs/graphons.md, "SAS", steps 1-4).

For a mask M of shape (n_out, n_in): row degrees r = M 1 and column degrees
c = M^T 1; rows (and columns when ``sort_cols``) sorted by degree descending
with a stable sort; sorted rows cut into K blocks and columns into K_in
blocks at the edges ``floor(b * n / K)``; ``H[a, b]`` the mean of M over
block (a, b).

Backends, in preference order (see :mod:`gntk_fast.ops._registry` for the
``backend="auto"`` rule): ``numba`` (nogil kernels over row ranges in
threads, :mod:`.numba`), ``naive`` (explicit sort and block slices,
:mod:`.naive`, the test oracle). Both run on the CPU (a torch mask on
another device is copied to the CPU by the mask coercion) and give
bit-identical results.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._validation import MAX_BLOCKS, check_bool, check_int, check_size
from ..._masks import MaskInput, coerce_mask
from .._registry import Op

__all__ = ["SASBlocks", "sas_blocks", "resolve_blocks", "OP"]


def _numba_missing(**_: Any) -> str | None:
    return None if importlib.util.find_spec("numba") is not None else "numba is not installed"


OP = Op("sas_blocks")
OP.register("numba", "gntk_fast.ops.sas_blocks.numba:sas_blocks", devices=("cpu",), check=_numba_missing)
OP.register("naive", "gntk_fast.ops.sas_blocks.naive:sas_blocks", devices=("cpu",))


@dataclass
class SASBlocks:
    """Block averages of one mask.

    H : float64 (K, K_in), block means in sorted order.
    row_perm, col_perm : int64 (n_out,), (n_in,); ``row_perm[t]`` is the original
        index of the t-th row in sorted order (``col_perm = arange(n_in)`` when
        columns are not sorted).
    row_degrees, col_degrees : int64 (n_out,), (n_in,), in the original order.
    row_edges, col_edges : int64 (K + 1,), (K_in + 1,), block edges in sorted positions.
    """

    H: np.ndarray
    row_perm: np.ndarray
    col_perm: np.ndarray
    row_degrees: np.ndarray
    col_degrees: np.ndarray
    row_edges: np.ndarray
    col_edges: np.ndarray


def resolve_blocks(K: Any, K_in: Any, sort_cols: bool, n_out: int, n_in: int) -> tuple[int, int]:
    """Validated (K, K_in): ints in [1, MAX_BLOCKS], K <= n_out, K_in <= n_in;
    ``K_in=None`` means K when ``sort_cols``, else n_in (one block per column)."""
    K = check_size("K", K, MAX_BLOCKS)
    if K_in is None:
        K_in = K if sort_cols else n_in
    K_in = check_size("K_in", K_in, MAX_BLOCKS)
    if K > n_out:
        raise ValueError(f"K={K} is larger than the number of rows (n_out={n_out}); use K <= {n_out}")
    if K_in > n_in:
        raise ValueError(f"K_in={K_in} is larger than the number of columns (n_in={n_in}); use K_in <= {n_in}")
    return K, K_in


def sas_blocks(
    mask: Any,
    K: int,
    K_in: int | None = None,
    sort_cols: bool = True,
    *,
    n_in: int | None = None,
    name: str = "mask",
    backend: str = "auto",
    threads: int | None = None,
) -> SASBlocks:
    """Degrees, stable descending sorts and block means of one mask.

    ``mask``: a 0/1 array or tensor (n_out, n_in), a bit-packed uint8 mask
    (n_out, ceil(n_in/8)) with ``n_in`` given, or an already coerced
    :class:`~gntk_fast._masks.MaskInput` (see that module). ``K``,
    ``K_in``: row and column blocks (:func:`resolve_blocks`). ``name`` is the
    argument name used in error messages. ``backend``: "auto", "numba" or
    "naive" (an explicitly named backend that cannot run is a
    :class:`~gntk_fast.ops.BackendError`). ``threads``: threads over row
    ranges of the numba backend (None = numba's default; results do not
    depend on it).
    """
    m = mask if isinstance(mask, MaskInput) else coerce_mask(mask, n_in=n_in, name=name)
    sort_cols = check_bool("sort_cols", sort_cols)
    K, K_in = resolve_blocks(K, K_in, sort_cols, m.n_out, m.n_in)
    threads = None if threads is None else check_int("threads", threads, min_value=1)
    fn = OP(backend, "cpu")
    return SASBlocks(*fn(m, K, K_in, sort_cols, name, threads))
