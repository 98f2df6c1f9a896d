"""Pruning at initialisation: random, magnitude, SNIP, GraSP, SynFlow.

Exact semantics: ../shared/spec/pruners.md (and issue 2). One entry point,
:func:`prune` (full documentation there)::

    res = gntk_fast.prune(model, method, sparsity=None, data=None,
                          scope="global", iterations=None,
                          schedule="exponential", compat=None, seed=None,
                          *, compression=None, shuffle=False, invert=False,
                          synflow_dtype=torch.float64, progress=None)
    res.masks, res.report, res.history, res.save_npz("m.npz")

Modules: ``scores`` (the five scores and the SynFlow hand twin), ``masks``
(clean and Synaptic-Flow selection rules, their plain twins, shuffling),
``layers`` (prunable layers, private scoring copies, mask installation),
``result`` (:class:`PruneResult`, the layer-collapse report, npz I/O).
The ``gntk-fast prune`` command lives in :mod:`gntk_fast.cli.prune`.
"""
from __future__ import annotations

from .core import COMPAT_MODES, DEFAULT_ITERATIONS, SCHEDULES, SCOPES, prune, schedule_density
from .masks import (
    clean_masks,
    clean_masks_reference,
    compat_masks,
    compat_masks_reference,
    select_clean,
    select_compat,
    shuffle_masks,
)
from .result import PruneResult, load_masks, mask_report
from .scores import METHODS, synflow_scores_reference

__all__ = [
    "prune",
    "PruneResult",
    "METHODS",
    "SCOPES",
    "SCHEDULES",
    "COMPAT_MODES",
    "DEFAULT_ITERATIONS",
    "schedule_density",
    "load_masks",
    "mask_report",
    "clean_masks",
    "compat_masks",
    "clean_masks_reference",
    "compat_masks_reference",
    "select_clean",
    "select_compat",
    "shuffle_masks",
    "synflow_scores_reference",
]
