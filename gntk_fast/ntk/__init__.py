"""Neural tangent kernels of masked MLPs.

* :func:`empirical_ntk` / :func:`empirical_ntk_fn`: the finite-width eNTK
  (docs/graphon-ntk.md sections 1, 2); ``backend`` names the backend of the
  masked layer term (:mod:`gntk_fast.ops.entk_layer`: "triton", "cpp", "naive");
  ``per_layer=True`` returns an :class:`EmpiricalNTK`.
* :func:`empirical_ntk_reference`: the Jacobian oracle (torch.func).
* :func:`graphon_ntk`: the analytic infinite-width Graphon NTK (docs/graphon-ntk.md section 3);
  ``backend`` names the backend of the dual activation
  (:mod:`gntk_fast.ops.dual`: "triton", "numba", "naive"); ``return_nngp=True``
  returns a :class:`GraphonNTK`; :func:`graphon_ntk_reference` is the per-pair oracle.
* :func:`graphon_cntk`: the analytic Graphon CNTK of a sparse conv net with
  channel graphons (shared or per-tap, :class:`TapGraphons`; docs/graphon-cntk.md);
  :func:`graphon_cntk_reference` is its per-pair oracle.

Names are imported lazily from their modules.
"""
from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY = {
    "empirical_ntk": "gntk_fast.ntk.empirical",
    "empirical_ntk_fn": "gntk_fast.ntk.empirical",
    "EmpiricalNTK": "gntk_fast.ntk.empirical",
    "empirical_nngp": "gntk_fast.ntk.empirical",
    "empirical_ntk_vp": "gntk_fast.ntk.empirical",
    "empirical_ntk_reference": "gntk_fast.ntk.reference",
    "graphon_ntk": "gntk_fast.ntk.analytic",
    "graphon_ntk_reference": "gntk_fast.ntk.analytic_reference",
    "GraphonNTK": "gntk_fast.ntk.analytic_reference",
    "graphon_cntk": "gntk_fast.ntk.conv",
    "graphon_cntk_reference": "gntk_fast.ntk.conv_reference",
    "TapGraphons": "gntk_fast.ntk._conv_grid",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_attributes("gntk_fast.ntk", _LAZY)
