"""Pruning at initialisation: random, magnitude, SNIP, GraSP, SynFlow.

Exact semantics: ../shared/spec/pruners.md (and issue 2). One entry point::

    res = gntk_fast.prune(model, method, sparsity=None, data=None,
                          scope="global", iterations=None,
                          schedule="exponential", compat=None, seed=None,
                          *, compression=None, shuffle=False, invert=False,
                          synflow_dtype=torch.float64, progress=None)

``model``
    a ``gntk_fast.MLP`` (masks written into each ``layer.weight_mask``) or any
    ``nn.Module`` whose prunable layers are ``nn.Linear`` (e.g.
    ``gntk_fast.fc``): masks installed with
    ``torch.nn.utils.prune.custom_from_mask`` (``weight_orig`` parameter +
    ``weight_mask`` buffer; an already torch-pruned layer gets its
    ``weight_mask`` overwritten). Layers in registration order (= forward
    order of sequential models); biases are never pruned. The pruned model
    loads into plain PyTorch (state_dict of a fresh model with
    ``torch.nn.utils.prune.identity`` applied).
``method``
    "random" | "magnitude" | "snip" | "grasp" | "synflow" (scores: see
    :mod:`gntk_fast.pruning.scores`).
``sparsity`` / ``compression``
    exactly one: the pruned fraction s in [0, 1) (density d = 1 - s), or
    ``compression`` c >= 0 with d = 10**-c.
``data``
    the pruning batches for snip/grasp: an (x, y) tuple of tensors or an
    iterable of (x, y) batches; x (n, d_in) (or (n, ...) flattening to d_in
    for modules starting with nn.Flatten), y int class labels (n,); classes
    = the model's outputs (``d_out`` for gntk_fast.MLP). SynFlow only takes
    the input shape from it (all-ones batch of 1; without data, (1, d_in)).
``scope``
    "global" (one ranking over all prunable weights) or "layerwise" (each
    layer keeps the fraction d of its own weights; "local" is an alias).
``iterations``, ``schedule``
    E iterations (default 100 for synflow, 1 otherwise); at iteration
    e = 1..E the target density is d**(e/E) ("exponential") or
    1 - (1 - d) e/E ("linear"), and the current masked network is re-scored.
    ``result.history`` records target and achieved density at each step.
``compat``
    None / "clean" (default) or "synaptic-flow".

    *clean*: exactly ``round(d_e * N)`` weights kept at each iteration (per
    layer for layerwise scope), the highest scores, ties broken by flat index
    (lower index kept), NaN scores rejected (ValueError naming the layer).
    Masks are nested over iterations: a pruned weight stays pruned, and a
    model that is already pruned is pruned further (asking to keep more
    weights than are unpruned is a ValueError).

    *synaptic-flow*: the reference code of Tanaka et al. (2020). There the
    variable "sparsity" is the kept fraction d and the number *pruned* is
    ``k = int((1 - d_e) * N)``; ``threshold = torch.kthvalue(scores, k)``
    over the concatenated flat scores (global) or per layer, every weight
    with ``score <= threshold`` is pruned (ties at the threshold all
    pruned), and if k < 1 nothing changes. (pruners.md's "k = int(d * N)" is
    a slip for this.) Scores are recomputed on the masked network at each
    iteration exactly like the reference and the mask is rebuilt from them,
    so weights whose score ignores the mask (random, magnitude; snip's
    dL/dm) can come back after being pruned. The reference's SNIP/GraSP
    normalisations are applied (they never reorder scores).
``seed``
    seeds the private generators of random scores and of ``shuffle`` (the
    global RNG is never touched); same seed -> same masks. None draws fresh
    entropy (recorded in ``result.config["seed"]``).
``shuffle``
    after pruning, permute each layer's mask uniformly at random: per-layer
    kept counts preserved, positions randomised, and written back to the
    model (the reference code's shuffle is a no-op).
``invert``
    flip the rank order (prune the highest scores) by negating the scores;
    not the reference's 1/score.
``synflow_dtype``
    float64 (default): float32 over/underflows at large width/depth
    (R ~ (c sqrt(n))^L), collapsing scores to ties. float32 reproduces the
    reference code's arithmetic. Per-layer rescaling is not used because
    biases break its invariance.

Scoring runs on a private deep copy of the model in eval mode, so the
model's train/eval mode, its ``.grad`` fields and its weight signs are left
untouched.

Returns a :class:`PruneResult`: ``.masks`` (bool, one per prunable layer,
forward order, shaped like its weight), ``.report`` (per-layer density, kept
counts, dead neurons = zero fan-in or zero fan-out; totals; config;
history), ``.density``, ``.densities`` (after each iteration), ``.scores``
(last iteration), ``.save_npz(path)`` (arrays ``layer0``..``layerL``,
``allow_pickle=False``), ``.save_report(path)`` (JSON). :func:`load_masks`
reads the .npz back.

Bad input (sparsity outside [0, 1), unknown method/scope/schedule/compat,
snip/grasp without data, NaN in weights or data, wrong input width) raises
ValueError/TypeError naming the argument.
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
