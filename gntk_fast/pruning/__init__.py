"""Pruning at initialisation: random, magnitude, SNIP, GraSP, SynFlow, graphon;
of any torch module whose prunable layers are Linear / Conv1d / Conv2d.

One entry point, :func:`prune` (full documentation in its docstring)::

    res = gntk_fast.prune(model, method, sparsity=None, data=None,
                          scope="global", iterations=None,
                          schedule="exponential", compat=None, seed=None,
                          *, compression=None, shuffle=False, invert=False,
                          synflow_dtype=None, progress=None,
                          input_shape=None, unsupported="raise")
    res.masks, res.report, res.history, res.save_npz("m.npz")

Modules: ``scores`` (the registry of :class:`PruningMethod` classes, one per
score, and the SynFlow hand twin), ``masks``
(flat/per-layer views, the NaN check, shuffling), ``layers`` (prunable
layers, private scoring copies, mask installation), ``result``
(:class:`PruneResult`, the layer-collapse report, npz I/O). The clean and
Synaptic-Flow selection rules are the operation
:func:`gntk_fast.ops.mask_select.select_masks` (re-exported here with its
per-layer form :func:`select_layer_masks`). The ``gntk-fast prune`` command
lives in :mod:`gntk_fast.cli.prune`.
"""
from __future__ import annotations

from .._constants import COMPAT_MODES, METHODS, PRUNING_METHODS, SCHEDULES, SCOPE_ALIASES, SCOPES
from ..ops.mask_select import select_layer_masks, select_masks
from .core import default_iterations, prune, schedule_density
from .layers import dense_parameters
from .masks import shuffle_masks
from .result import PruneResult, load_masks, mask_report
from .scores import PruningMethod, ScoreContext, method_class, synflow_scores_reference

#: pruning iterations E per method when ``prune`` is not given ``iterations``
DEFAULT_ITERATIONS: dict[str, int] = {m: default_iterations(m) for m in METHODS}

__all__ = [
    "prune",
    "PruneResult",
    "METHODS",
    "PRUNING_METHODS",
    "PruningMethod",
    "ScoreContext",
    "method_class",
    "dense_parameters",
    "default_iterations",
    "SCOPES",
    "SCOPE_ALIASES",
    "SCHEDULES",
    "COMPAT_MODES",
    "DEFAULT_ITERATIONS",
    "schedule_density",
    "load_masks",
    "mask_report",
    "select_masks",
    "select_layer_masks",
    "shuffle_masks",
    "synflow_scores_reference",
]
