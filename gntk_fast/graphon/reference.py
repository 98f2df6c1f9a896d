"""Plain numpy SAS: the obviously-right twin of :func:`gntk_fast.graphon.sas`.

:func:`sas_reference` is :func:`~gntk_fast.graphon.sas` on the ``naive``
backend of :func:`gntk_fast.ops.sas_blocks.sas_blocks`, which unpacks, sorts
the mask explicitly and takes the mean of every block slice; the tests
require it to agree with the Numba backend exactly (same permutations,
degrees, edges and bit-identical H).
"""
from __future__ import annotations

from typing import Any

from .sas import SASResult, sas

__all__ = ["sas_reference"]


def sas_reference(
    mask: Any,
    K: int = 64,
    K_in: int | None = None,
    smooth: float | None = None,
    sort_cols: bool = True,
    *,
    n_in: int | None = None,
) -> SASResult:
    """:func:`gntk_fast.graphon.sas` computed by the plain numpy twin (same arguments and result)."""
    return sas(mask, K, K_in, smooth, sort_cols, n_in=n_in, backend="naive")
