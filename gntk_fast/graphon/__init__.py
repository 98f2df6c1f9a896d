"""Graphon toolkit: graphon objects, SAS estimation, distances between estimates.

Names are imported lazily from their modules (docs/graphons.md), except the
SAS names, bound eagerly because the function ``sas`` shares its module's name.
Submodules (``objects``, ``distances``, ``stats``, ``reference``, ``io``)
are reachable as attributes too:

* objects: :class:`ConstantGraphon`, :class:`FunctionGraphon`, :class:`StepGraphon`,
  :class:`InputGraphon`, :func:`as_graphon`, :func:`from_sas`, :func:`neuron_positions`.
* SAS: :func:`sas`, :func:`sas_trials`, :class:`SASResult`, :func:`tv_smooth`
  (Numba kernels) and :func:`sas_reference` (plain numpy twin).
* per-network estimates and files: :func:`sas_layers`, :func:`save_estimates`,
  :func:`load_estimates` (:mod:`gntk_fast.graphon.io`).
* distances: :func:`histogram_distance`, :func:`cut_norm` / :func:`cut_distance`
  (:class:`CutNorm`: value + exact flag), :func:`cut_norm_reference`,
  :func:`degree_profile_distance`, :func:`hom_distance`.
* statistics: :func:`hom_densities` (:class:`HomDensities`),
  :func:`hom_densities_reference`, :func:`degree_profile`.
* more estimators behind SAS's interface (:mod:`gntk_fast.graphon.estimators`):
  :func:`usvt`, :func:`network_histogram` (automatic block count),
  :func:`largest_gap`, with plain twins ``*_reference``; :func:`estimate_error`.
* conv masks (:mod:`gntk_fast.graphon.channels`): :func:`channel_connectivity`
  (pooled kept fraction of each channel pair's taps, or one tap),
  :func:`channel_sas` / :func:`channel_sas_trials` (``taps="pooled"|"per-tap"``;
  also reached through :func:`sas`, :func:`sas_layers`, the distances and
  :func:`gntk_fast.pai.network_graphon`, which accept 4-D masks).
* quadrature grids of a network of graphons (:mod:`gntk_fast.graphon.grid`, the
  discretisation of the analytic NTK): :func:`~gntk_fast.graphon.grid.discretise`.

The theory of pruning-at-initialisation masks built on this toolkit
(predicted limit graphons, network graphons, path densities, graphon design)
lives in :mod:`gntk_fast.pai`; its names are no longer attributes of this
package (``gf.pai.limit_graphon`` is ``gf.pai.limit_graphon``).
"""
from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY = {
    "Graphon": "gntk_fast.graphon.objects",
    "ConstantGraphon": "gntk_fast.graphon.objects",
    "FunctionGraphon": "gntk_fast.graphon.objects",
    "StepGraphon": "gntk_fast.graphon.objects",
    "InputGraphon": "gntk_fast.graphon.objects",
    "as_graphon": "gntk_fast.graphon.objects",
    "from_sas": "gntk_fast.graphon.objects",
    "neuron_positions": "gntk_fast.graphon.objects",
    "named_graphon": "gntk_fast.graphon.objects",
    "sas_reference": "gntk_fast.graphon.reference",
    "usvt_reference": "gntk_fast.graphon.reference",
    "network_histogram_reference": "gntk_fast.graphon.reference",
    "largest_gap_reference": "gntk_fast.graphon.reference",
    "usvt": "gntk_fast.graphon.estimators",
    "usvt_matrix": "gntk_fast.graphon.estimators",
    "network_histogram": "gntk_fast.graphon.estimators",
    "largest_gap": "gntk_fast.graphon.estimators",
    "estimate": "gntk_fast.graphon.estimators",
    "estimate_error": "gntk_fast.graphon.estimators",
    "ESTIMATORS": "gntk_fast.graphon.estimators",
    "sas_layers": "gntk_fast.graphon.io",
    "save_estimates": "gntk_fast.graphon.io",
    "load_estimates": "gntk_fast.graphon.io",
    "CutNorm": "gntk_fast.graphon.distances",
    "histogram_distance": "gntk_fast.graphon.distances",
    "cut_norm": "gntk_fast.graphon.distances",
    "cut_norm_reference": "gntk_fast.graphon.distances",
    "cut_distance": "gntk_fast.graphon.distances",
    "degree_profile_distance": "gntk_fast.graphon.distances",
    "hom_distance": "gntk_fast.graphon.distances",
    "HomDensities": "gntk_fast.graphon.stats",
    "hom_densities": "gntk_fast.graphon.stats",
    "hom_densities_reference": "gntk_fast.graphon.stats",
    "degree_profile": "gntk_fast.graphon.stats",
    "channel_connectivity": "gntk_fast.graphon.channels",
    "channel_sas": "gntk_fast.graphon.sas",
    "channel_sas_trials": "gntk_fast.graphon.sas",
    "tap_counts": "gntk_fast.graphon.channels",
}

# The function ``sas`` shadows its submodule ``gntk_fast.graphon.sas`` (importing a
# submodule sets the package attribute), so the SAS names are bound eagerly here;
# ``from gntk_fast.graphon.sas import SASResult`` keeps working through sys.modules.
from .sas import SASResult, sas, sas_trials, tv_smooth  # noqa: E402

__all__ = ["SASResult", "sas", "sas_trials", "tv_smooth", *_LAZY]


_SUBMODULES = ("objects", "distances", "stats", "reference", "io", "estimators", "grid", "channels")

#: the theory of pruning-at-initialisation masks, which has its own package (gntk_fast.pai) above this one
_MOVED = {name: "gntk_fast.pai" for name in (
    "ResidualDistribution", "LayerLimit", "LimitGraphons", "limit_graphon", "limit_graphon_from_scores", "factor_fit",
    "synflow_recursion", "block_means", "NetworkGraphon", "network_graphon", "conv_network_graphon", "path_counts",
    "path_density", "PathDensityComparison", "path_density_comparison", "DesignResult", "design_kernel",
    "limit", "network", "paths", "design")}

__getattr__, __dir__ = lazy_attributes("gntk_fast.graphon", _LAZY, _SUBMODULES, moved=_MOVED)
