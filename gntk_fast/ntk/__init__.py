"""Neural tangent kernels of masked MLPs.

* :func:`empirical_ntk` / :func:`empirical_ntk_fn`: the finite-width eNTK
  (spec graphon-ntk.md sections 1, 2), backends "torch" (reference), "cpp", "triton".
* :func:`graphon_ntk`: the analytic infinite-width Graphon NTK (spec section 3);
  :class:`GraphonNTK` its result with the NNGP; :func:`graphon_ntk_reference`
  the per-pair oracle.

Names are imported lazily from their modules.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "empirical_ntk": "gntk_fast.ntk.empirical",
    "empirical_ntk_fn": "gntk_fast.ntk.empirical",
    "empirical_ntk_reference": "gntk_fast.ntk.reference",
    "graphon_ntk": "gntk_fast.ntk.analytic",
    "graphon_ntk_reference": "gntk_fast.ntk.analytic_reference",
    "GraphonNTK": "gntk_fast.ntk.analytic_reference",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gntk_fast.ntk' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
