"""The fast operations, one home each (naive twin beside every backend).

Each subpackage holds one operation: ``naive.py`` (the plain torch/numpy twin,
the oracle of the tests) beside one module per backend, and an ``__init__``
whose entry function validates its arguments once and dispatches through the
op's :class:`~gntk_fast.ops._registry.Op` (see that module for the one
``backend="auto"`` rule).
"""
from ._registry import AUTO_RULE, Backend, BackendError, Op

__all__ = ["AUTO_RULE", "Backend", "BackendError", "Op"]
