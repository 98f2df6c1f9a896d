"""Theory of pruning-at-initialisation masks: what the graphon limit of a pruned network is.

This package sits above the graphon toolkit (:mod:`gntk_fast.graphon`), the
pruners (:mod:`gntk_fast.pruning`) and the kernels (:mod:`gntk_fast.ntk`),
and uses them to predict and read the limits of pruning-at-initialisation
(PaI) masks (docs/limit-graphons.md). Names are imported lazily from their
modules, except :func:`design`, bound eagerly because the function shares its
module's name:

* predicted limit graphons (:mod:`gntk_fast.pai.limit`): :func:`limit_graphon`
  (run the pruner on ``n_networks`` fresh networks, or the factorised saliency
  prediction), :func:`limit_graphon_from_scores`, :func:`synflow_recursion`
  (graphon-level SynFlow), :func:`block_means`, :func:`factor_fit`.
* network graphons (:mod:`gntk_fast.pai.network`): :func:`network_graphon`
  (:class:`NetworkGraphon`), one order per hidden layer shared by the masks on
  both sides, the variance graphons ``E[w^2 m]`` of a network's kept weights,
  and :func:`conv_network_graphon` for conv masks (channels as neurons).
* path densities (:mod:`gntk_fast.pai.paths`): :func:`path_counts` (finite
  masks), :func:`path_density` (layered-graphon integral),
  :func:`path_density_comparison` (joint vs per-mask estimates).
* graphon design (:mod:`gntk_fast.pai.design`): :func:`design` optimises one
  step graphon per layer at fixed density through the differentiable analytic
  kernel :func:`design_kernel`.

These names used to be attributes of :mod:`gntk_fast.graphon`
(``gf.graphon.limit_graphon``, ``gf.graphon.network_graphon``, ...); they
now live here only (``gf.pai.limit_graphon``, ``gf.pai.network_graphon``, ...):
the graphon toolkit knows nothing of pruning.

Examples
--------
>>> import gntk_fast as gf
>>> masks = [[[1, 0], [1, 1]], [[1, 1]]]
>>> gf.pai.path_counts(masks).tolist()
[1.0, 0.5]
"""
from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY = {
    "ResidualDistribution": "gntk_fast.pai.limit",
    "LayerLimit": "gntk_fast.pai.limit",
    "LimitGraphons": "gntk_fast.pai.limit",
    "limit_graphon": "gntk_fast.pai.limit",
    "limit_graphon_from_scores": "gntk_fast.pai.limit",
    "factor_fit": "gntk_fast.pai.limit",
    "synflow_recursion": "gntk_fast.pai.limit",
    "block_means": "gntk_fast.pai.limit",
    "NetworkGraphon": "gntk_fast.pai.network",
    "network_graphon": "gntk_fast.pai.network",
    "conv_network_graphon": "gntk_fast.pai.network",
    "path_counts": "gntk_fast.pai.paths",
    "path_density": "gntk_fast.pai.paths",
    "PathDensityComparison": "gntk_fast.pai.paths",
    "path_density_comparison": "gntk_fast.pai.paths",
    "DesignResult": "gntk_fast.pai.design",
    "design_kernel": "gntk_fast.pai.design",
}

# The function ``design`` shadows its submodule ``gntk_fast.pai.design`` (importing a
# submodule sets the package attribute), so it is bound eagerly here;
# ``from gntk_fast.pai.design import design_kernel`` keeps working through sys.modules.
from .design import design  # noqa: E402

__all__ = ["design", *_LAZY]

_SUBMODULES = ("limit", "network", "paths")

__getattr__, __dir__ = lazy_attributes("gntk_fast.pai", _LAZY, _SUBMODULES)
