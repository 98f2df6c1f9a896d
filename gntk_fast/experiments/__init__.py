"""Experiments reproducing the paper's studies.

Explicit lazy export list: public name -> module (imported on first use).

* :func:`graphon_convergence` / :class:`GraphonConvergence`
  (:mod:`gntk_fast.experiments.graphon_convergence`): SAS estimates of pruned
  fc masks converging with width.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "graphon_convergence": "gntk_fast.experiments.graphon_convergence",
    "GraphonConvergence": "gntk_fast.experiments.graphon_convergence",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gntk_fast.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
