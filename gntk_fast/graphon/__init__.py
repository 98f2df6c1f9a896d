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
* predicted limit graphons (:mod:`gntk_fast.graphon.limit`):
  :func:`limit_graphon`, :func:`limit_graphon_from_scores`,
  :func:`synflow_recursion`, :func:`block_means`.
* conv masks (:mod:`gntk_fast.graphon.channels`): :func:`channel_connectivity`
  (pooled kept fraction of each channel pair's taps, or one tap),
  :func:`channel_sas` / :func:`channel_sas_trials` (``taps="pooled"|"per-tap"``;
  also reached through :func:`sas`, :func:`sas_layers`, :func:`network_graphon`
  and the distances, which accept 4-D masks).
* network graphons: :func:`network_graphon` (:class:`NetworkGraphon`), one
  order per hidden layer shared by the masks on both sides, and the variance
  graphons ``E[w^2 m]`` of a network's kept weights (:mod:`gntk_fast.graphon.network`).
* quadrature grids of a network of graphons (:mod:`gntk_fast.graphon.grid`, the
  discretisation of the analytic NTK): :func:`~gntk_fast.graphon.grid.discretise`.
* path densities (:mod:`gntk_fast.graphon.paths`): :func:`path_counts` (finite
  masks), :func:`path_density` (layered-graphon integral),
  :func:`path_density_comparison` (joint vs per-mask estimates).
* graphon design (:mod:`gntk_fast.graphon.design`): :func:`design` optimises
  one step graphon per layer at fixed density through the differentiable
  analytic kernel :func:`design_kernel`.
"""
from __future__ import annotations

import importlib
from typing import Any

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
    "limit_graphon": "gntk_fast.graphon.limit",
    "limit_graphon_from_scores": "gntk_fast.graphon.limit",
    "synflow_recursion": "gntk_fast.graphon.limit",
    "LimitGraphons": "gntk_fast.graphon.limit",
    "LayerLimit": "gntk_fast.graphon.limit",
    "block_means": "gntk_fast.graphon.limit",
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
    "NetworkGraphon": "gntk_fast.graphon.network",
    "path_counts": "gntk_fast.graphon.paths",
    "design_kernel": "gntk_fast.graphon.design",
    "DesignResult": "gntk_fast.graphon.design",
    "path_density": "gntk_fast.graphon.paths",
    "path_density_comparison": "gntk_fast.graphon.paths",
    "PathDensityComparison": "gntk_fast.graphon.paths",
    "network_graphon": "gntk_fast.graphon.network",
    "channel_connectivity": "gntk_fast.graphon.channels",
    "channel_sas": "gntk_fast.graphon.sas",
    "channel_sas_trials": "gntk_fast.graphon.sas",
    "conv_network_graphon": "gntk_fast.graphon.network",
    "tap_counts": "gntk_fast.graphon.channels",
}

# The function ``sas`` shadows its submodule ``gntk_fast.graphon.sas`` (importing a
# submodule sets the package attribute), so the SAS names are bound eagerly here;
# ``from gntk_fast.graphon.sas import SASResult`` keeps working through sys.modules.
from .sas import SASResult, sas, sas_trials, tv_smooth  # noqa: E402
# likewise ``design`` (the function) shadows its module ``gntk_fast.graphon.design``
from .design import design  # noqa: E402

__all__ = ["SASResult", "sas", "sas_trials", "tv_smooth", "design", *_LAZY]


_SUBMODULES = ("objects", "distances", "stats", "reference", "io", "estimators", "limit", "network", "paths", "grid",
               "channels")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"gntk_fast.graphon.{name}")
    if name not in _LAZY:
        raise AttributeError(f"module 'gntk_fast.graphon' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
