"""``prune``: the one entry point of the five pruners-at-initialisation.

The user documentation is the docstring of :func:`prune`; scores live in
scores.py, the selection rules in :mod:`gntk_fast.ops.mask_select`, the mask
plumbing in masks.py, the model plumbing in layers.py.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._constants import COMPAT_MODES, PRUNING_METHODS, SCHEDULES, SCOPE_ALIASES, SCOPES
from .._threads import threads_for, torch_threads
from .._validation import (
    MAX_STEPS,
    check_bool,
    check_choice,
    check_float_dtype,
    check_int,
    check_seed,
    check_size,
    check_tensor,
    check_xy,
    density_from,
)
from ..models import MLP
from ..ops.mask_select import select_parts
from .layers import UNSUPPORTED_POLICIES, PrunableLayer, dense_parameters, find_prunable, install_masks, is_chain
from .masks import check_layer_scores, shuffle_masks, split_flat
from .result import PruneResult
from .scores import make_scorer, method_class

__all__ = ["prune", "SCOPES", "SCHEDULES", "COMPAT_MODES", "schedule_density", "default_iterations"]

#: largest number of entries of one input sample (``input_shape``)
MAX_INPUT_NUMEL = 1 << 30


def default_iterations(method: str) -> int:
    """Iterations E of ``method`` when ``prune`` is not given ``iterations``."""
    return method_class(method).default_iterations


def schedule_density(density: float, e: int, E: int, schedule: str, start: float = 1.0) -> float:
    """Target density at iteration e = 1..E, going from ``start`` (the density
    before pruning, 1 for an unpruned model) to ``density``:
    ``start * (density/start)**(e/E)`` (exponential) or
    ``start - (start - density) * (e/E)`` (linear). With ``start = 1`` these
    are the reference code's floating-point expressions ``d**(e/E)`` and
    ``1 - (1 - d) * (e/E)`` exactly."""
    if schedule == "exponential":
        return start * (density / start) ** (e / E)
    return start - (start - density) * (e / E)


def _leaves(model: nn.Module):
    """The modules of a (nested) ``nn.Sequential`` in forward order (a
    non-Sequential module is one leaf)."""
    if isinstance(model, nn.Sequential):
        for child in model:
            yield from _leaves(child)
    else:
        yield model


def _entry(model: nn.Module, layers: list[PrunableLayer]) -> tuple[PrunableLayer | None, bool]:
    """The prunable layer that first reads the input when it is known without
    running the model (gntk_fast.MLP's first layer; the first module of a
    nested ``nn.Sequential``, after an optional leading ``nn.Flatten``), and
    whether the input is flattened before it; (None, False) otherwise."""
    if isinstance(model, MLP):
        return layers[0], False
    by_module = {id(l.module): l for l in layers}
    flatten = False
    for leaf in _leaves(model):
        if isinstance(leaf, nn.Flatten) and not flatten:
            flatten = True
            continue
        return by_module.get(id(leaf)), flatten
    return None, False


def _entry_input_shape(where: str, x: torch.Tensor, entry: PrunableLayer, flatten: bool, model: nn.Module) -> None:
    """Static shape check of the input ``x`` against the first layer (:func:`_entry`)."""
    if entry.is_conv:
        nd = entry.theta.ndim  # (out, in, *kernel): the input is (n, C, *spatial)
        c_in = int(getattr(entry.module, "in_channels", entry.in_features))
        spatial = ", ".join("HW"[i] if nd == 4 else "L" for i in range(nd - 2))
        if flatten or x.ndim != nd or int(x.shape[1]) != c_in:
            raise ValueError(
                f"{where} x must be a batch of inputs (n, {c_in}, {spatial}) for the model's first layer "
                f"{entry.name!r} ({entry.layer_type} with {c_in} input channels); got shape {tuple(x.shape)}"
            )
        return
    d_in = entry.in_features
    feats = int(np.prod(x.shape[1:]))
    if isinstance(model, MLP) and x.ndim != 2:
        raise ValueError(f"{where} x must be (n, {d_in}) for gntk_fast.MLP; got shape {tuple(x.shape)}")
    if feats != d_in or (not flatten and x.shape[-1] != d_in):
        raise ValueError(
            f"{where} x has {feats} features per sample (shape {tuple(x.shape)}) but the model's first "
            f"prunable layer takes {d_in} (wrong input width)"
        )


def _batches(data: Any, model: nn.Module, layers: list[PrunableLayer]) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """``data`` as a list of validated (x, y) batches, or None."""
    if data is None:
        return None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, (torch.Tensor, np.ndarray)) for t in data):
        raw = [tuple(data)]
    else:
        try:
            raw = list(data)
        except TypeError:
            raise TypeError(
                f"data must be an (x, y) tuple of tensors or an iterable of (x, y) batches; got {type(data).__name__}"
            ) from None
    if not raw:
        raise ValueError("data is empty: give at least one (x, y) batch")
    entry, flatten = _entry(model, layers)
    device = layers[0].theta.device
    out = []
    for i, item in enumerate(raw):
        where = "data" if len(raw) == 1 else f"data[{i}]"
        if not (isinstance(item, (tuple, list)) and len(item) >= 2):
            raise TypeError(f"{where} must be an (x, y) pair; got {type(item).__name__}")
        x = check_tensor(f"{where} x", item[0])
        x, y, _ = check_xy(x, item[1], names=(f"{where} x", f"{where} y"), x_ndim=(2, 3, 4, 5),
                           dtype=None if x.is_floating_point() else layers[0].theta.dtype, device=device)
        if entry is not None:
            _entry_input_shape(where, x, entry, flatten, model)
        if out and tuple(x.shape[1:]) != tuple(out[0][0].shape[1:]):
            raise ValueError(f"{where} x has samples of shape {tuple(x.shape[1:])} but data[0] has "
                             f"{tuple(out[0][0].shape[1:])}")
        out.append((x, y))
    return out


def _input_shape(input_shape: Any, batches, model: nn.Module, layers: list[PrunableLayer]) -> tuple[int, ...] | None:
    """One sample's shape: ``input_shape`` (checked; it must agree with the
    data), else the data's, else (d_in,) when the input is a vector whose
    width the first linear layer gives; None when unknown."""
    if input_shape is not None:
        if isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
            input_shape = (input_shape,)
        if not isinstance(input_shape, (tuple, list, torch.Size)) or not 1 <= len(input_shape) <= 4:
            raise TypeError(f"input_shape must be a tuple of 1 to 4 sizes (one sample's shape, no batch dimension), "
                            f"e.g. (3, 32, 32); got {input_shape!r}")
        shape = tuple(check_size(f"input_shape[{i}]", v, MAX_INPUT_NUMEL) for i, v in enumerate(input_shape))
        if int(np.prod(shape)) > MAX_INPUT_NUMEL:
            raise ValueError(f"input_shape {shape} has more than {MAX_INPUT_NUMEL} entries")
        if batches is not None and tuple(batches[0][0].shape[1:]) != shape:
            raise ValueError(f"input_shape {shape} disagrees with the data's sample shape {tuple(batches[0][0].shape[1:])}")
        return shape
    if batches is not None:
        return tuple(int(v) for v in batches[0][0].shape[1:])
    entry, _ = _entry(model, layers)
    if entry is not None:
        return None if entry.is_conv else (entry.in_features,)
    if not any(l.is_conv for l in layers):
        return (layers[0].in_features,)  # a module of linear layers: the first registered one reads the input
    return None


def _seed(seed: Any) -> int:
    """The seed used: ``seed`` checked by :func:`check_seed`, or fresh entropy for None."""
    seed = check_seed(seed)
    return secrets.randbits(63) if seed is None else seed


def _generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Two independent private generators (scores, shuffle) from one seed."""
    s1, s2 = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    g1, g2 = torch.Generator(device="cpu"), torch.Generator(device="cpu")
    g1.manual_seed(int(s1) & ((1 << 63) - 1))
    g2.manual_seed(int(s2) & ((1 << 63) - 1))
    return g1, g2


def prune(
    model: nn.Module,
    method: str,
    sparsity: float | None = None,
    data: Any = None,
    scope: str = "global",
    iterations: int | None = None,
    schedule: str = "exponential",
    compat: str | None = None,
    seed: int | None = None,
    *,
    compression: float | None = None,
    shuffle: bool = False,
    invert: bool = False,
    synflow_dtype: torch.dtype | None = None,
    progress: bool | None = None,
    graphons: Any = None,
    positions: Any = None,
    input_shape: Any = None,
    unsupported: str = "raise",
) -> PruneResult:
    """Prune ``model`` at initialisation, in place, and return a :class:`PruneResult`.

    ``model``
        any ``nn.Module``: the weights of its ``nn.Linear``, ``nn.Conv1d`` and
        ``nn.Conv2d`` layers (e.g. ``gntk_fast.fc``, a VGG or a ResNet written
        with plain torch modules) get masks installed with
        ``torch.nn.utils.prune.custom_from_mask`` (``weight_orig`` parameter +
        ``weight_mask`` buffer; an already torch-pruned layer gets its
        ``weight_mask`` overwritten); gntk_fast's masked layers
        (``gntk_fast.MLP``, ``MaskedConv2d``) get the mask written into their
        ``weight_mask`` buffer. Layers in registration order (= forward order
        of sequential models). Biases and normalisation layers (BatchNorm,
        LayerNorm, GroupNorm, ...) are never pruned and are listed in
        ``result.report["dense"]``; a parameter of any other module
        (nn.Embedding, ConvTranspose2d, a bare nn.Parameter, ...) is a
        ValueError naming it, unless ``unsupported="dense"`` (left dense and
        listed). The pruned model loads into plain PyTorch (state_dict of a
        fresh model with ``torch.nn.utils.prune.identity`` applied).
    ``method``
        "random" | "magnitude" | "snip" | "grasp" | "synflow" (scores: see
        :mod:`gntk_fast.pruning.scores`), or "graphon": keep exactly
        round(d N) weights drawn with probabilities given by ``graphons``
        (one graphon per prunable layer; neuron i at u = (i - 1/2)/n, or at
        the ranks given by ``positions``, a list of (row_perm, col_perm)
        pairs), per layer or over all layers (``scope``); see
        :mod:`gntk_fast.pruning.graphon`. Only ``sparsity``/``compression``,
        ``scope``, ``seed`` and ``shuffle`` apply to it.
    ``sparsity`` / ``compression``
        exactly one: the pruned fraction s in [0, 1) (density d = 1 - s), or
        ``compression`` c >= 0 with d = 10**-c.
    ``data``
        the pruning batches for snip/grasp: an (x, y) tuple of tensors or an
        iterable of (x, y) batches; x a batch of inputs as the model takes them
        ((n, d_in) for linear nets, or (n, ...) flattening to d_in for modules
        starting with nn.Flatten; images (n, C, H, W) for conv nets), y int
        class labels (n,); classes = the model's outputs (``d_out`` for
        gntk_fast.MLP). SynFlow only takes the input shape from it.
    ``input_shape``
        one sample's shape without the batch dimension, e.g. (3, 32, 32):
        SynFlow's input is all-ones of shape (1, *input_shape). Taken from
        ``data`` when given; without either, (d_in,) for nets whose input
        goes to a linear layer; a conv net pruned by SynFlow without data
        needs it (ValueError otherwise).
    ``unsupported``
        "raise" (default) or "dense": what to do with parameters of modules
        that cannot be pruned (see ``model``).
    ``scope``
        "global" (one ranking over all prunable weights) or "layerwise" (each
        layer keeps the fraction d of its own weights; "local" is an alias).
    ``iterations``, ``schedule``
        E iterations (default 100 for synflow, 1 otherwise); at iteration
        e = 1..E the target density is d**(e/E) ("exponential") or
        1 - (1 - d) e/E ("linear"), and the current masked network is re-scored.
        ``result.history`` records target and achieved density at each step.
        (Clean mode on an already-pruned model of density d0 runs the schedule
        from d0: d0 (d/d0)**(e/E) or d0 - (d0 - d) e/E; identical for d0 = 1.)
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
        pruned), and if k < 1 nothing changes. Scores are recomputed on the masked network at each
        iteration exactly like the reference and the mask is rebuilt from them,
        so weights whose score ignores the mask (random, magnitude; snip's
        dL/dm) can come back after being pruned. The reference's SNIP/GraSP
        normalisations are applied (they never reorder scores), and SynFlow
        scores are computed in float32, the reference's arithmetic. Deliberate
        differences from the reference: NaN scores are rejected here too, and
        ``invert``/``shuffle`` are done right (see below).
    ``seed``
        an int in [0, 2**64 - 1] seeding the private generators of random
        scores and of ``shuffle`` (the global RNG is never touched); same seed
        -> same masks. None draws fresh entropy (recorded in
        ``result.config["seed"]``).
    ``shuffle``
        after pruning, permute each layer's mask uniformly at random: per-layer
        kept counts preserved, positions randomised, and written back to the
        model (the reference code's shuffle is a no-op).
    ``invert``
        flip the rank order (prune the highest scores) by negating the scores;
        not the reference's 1/score.
    ``synflow_dtype``
        None (default): float64 in clean mode, float32 with
        ``compat="synaptic-flow"`` (the reference code's arithmetic, so compat
        masks match the reference exactly). float32 over/underflows at large
        width/depth (R ~ (c sqrt(n))^L), collapsing scores to ties, which
        float64 avoids; ``torch.float32`` or ``torch.float64`` given
        explicitly is used in either mode. Per-layer rescaling is not used
        because biases break its invariance.
    ``progress``
        tqdm progress bar over the iterations: None (default) shows it on a
        terminal when E >= 10; True/False force it.

    Scoring runs on a private deep copy of the model in eval mode, so the
    model's train/eval mode, its ``.grad`` fields and its weight signs are left
    untouched.

    Returns a :class:`PruneResult`: ``.masks`` (bool, one per prunable layer,
    forward order, shaped like its weight), ``.report`` (per-layer density, kept
    counts, layer collapse: dead output neurons/channels = all-zero rows of
    the mask, dead inputs = all-zero input slices, zero fan-out in chained
    layers; the parameters left dense; totals; config; history), ``.density``, ``.densities`` (after each iteration), ``.scores``
    (last iteration), ``.save_npz(path)`` (arrays ``layer0``..``layerL``,
    ``allow_pickle=False``), ``.save_report(path)`` (JSON). :func:`load_masks`
    reads the .npz back.

    Bad input (sparsity outside [0, 1), unknown method/scope/schedule/compat,
    snip/grasp without data, NaN in weights or data, wrong input width or
    image channels, a parameter that cannot be pruned, synflow on a conv net
    without input_shape or data) raises ValueError/TypeError naming the
    argument.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> import gntk_fast as gf
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    ...                     nn.Linear(128, 10))
    >>> res = gf.prune(net, "synflow", 0.8, input_shape=(3, 8, 8), iterations=10, seed=0)
    >>> [tuple(m.shape) for m in res.masks]
    [(8, 3, 3, 3), (10, 128)]
    >>> sum(int(m.sum()) for m in res.masks) == round(0.2 * (8 * 27 + 1280))
    True
    >>> [d["name"] for d in res.report["dense"]]
    ['0.bias', '4.bias']
    >>> x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    >>> res = gf.prune(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    ...                              nn.Linear(128, 10)), "snip", 0.8, data=(x, y), scope="layerwise")
    >>> [round(float(m.float().mean()), 2) for m in res.masks]
    [0.2, 0.2]
    """
    if method == "graphon":
        return _prune_graphon(model, sparsity, compression, scope, iterations, compat, seed, data, shuffle, invert,
                              graphons, positions, input_shape, unsupported)
    if graphons is not None or positions is not None:
        raise ValueError(f"graphons/positions apply to method 'graphon' only; got method {method!r}")
    unsupported = check_choice("unsupported", unsupported, UNSUPPORTED_POLICIES)
    layers = find_prunable(model, unsupported=unsupported)
    plan = _validate(method, sparsity, compression, scope, iterations, schedule, compat, seed, shuffle, invert,
                     synflow_dtype, progress)
    cls = method_class(plan.method)
    batches = _batches(data, model, layers)
    if cls.needs_data and batches is None:
        raise ValueError(f"data is required for method {method!r}: pass (x, y) or an iterable of (x, y) batches")
    score_gen, shuffle_gen = _generators(plan.seed)
    shape = _input_shape(input_shape, batches, model, layers)
    if cls.needs_input_shape and shape is None:
        raise ValueError(
            f"input_shape is required for method {method!r} on this model (its input shape cannot be read from "
            "its layers, e.g. a convolution's image size): pass input_shape=(C, H, W), one sample's shape without "
            "the batch dimension, or data="
        )
    scorer = make_scorer(plan.method, model, layers, batches=batches, input_shape=shape, generator=score_gen,
                         compat=plan.is_compat, synflow_dtype=plan.synflow_dtype)
    # scoring is a chain of small ops (one layer at a time, batch of n): below
    # SMALL_WORK per op a second thread costs more than it saves (bench/README.md)
    n_batch = max((int(b[0].shape[0]) for b in batches), default=1) if batches is not None else 1
    positions_per_sample = int(np.prod(shape[1:])) if shape is not None and len(shape) > 1 else 1
    work = max(l.theta.numel() for l in layers) * n_batch * positions_per_sample
    with torch_threads(threads_for(work)):
        current, scores, history = _iterate(plan, scorer, layers)
    del scorer  # its private copy of the model goes before the masks are installed
    return _finish(plan, model, layers, current, scores, history, shuffle_gen)


def _prune_graphon(model, sparsity, compression, scope, iterations, compat, seed, data, shuffle, invert, graphons,
                   positions, input_shape, unsupported) -> PruneResult:
    """Method "graphon" (:func:`gntk_fast.pruning.graphon.prune_from_graphons`), arguments checked."""
    from .graphon import prune_from_graphons

    density = density_from(sparsity, compression)
    scope = check_choice("scope", SCOPE_ALIASES.get(scope, scope) if isinstance(scope, str) else scope, SCOPES)
    if graphons is None:
        raise ValueError("graphons is required for method 'graphon': one graphon per prunable layer")
    if iterations not in (None, 1) or compat is not None or invert or data is not None or input_shape is not None:
        raise ValueError("method 'graphon' takes no iterations, compat, invert, data or input_shape")
    return prune_from_graphons(model, graphons, density, scope=scope, seed=seed, positions=positions,
                               shuffle=check_bool("shuffle", shuffle), unsupported=unsupported)


@dataclass
class _Plan:
    """The validated arguments of one :func:`prune` call."""

    method: str
    density: float
    scope: str
    iterations: int
    schedule: str
    compat: str
    seed: int
    shuffle: bool
    invert: bool
    synflow_dtype: torch.dtype
    progress: bool | None

    @property
    def is_compat(self) -> bool:
        return self.compat == "synaptic-flow"


def _validate(method, sparsity, compression, scope, iterations, schedule, compat, seed, shuffle, invert,
              synflow_dtype, progress) -> _Plan:
    """Every scalar argument of :func:`prune`, checked (errors name the argument)."""
    method = check_choice("method", method, tuple(PRUNING_METHODS))
    density = density_from(sparsity, compression)
    scope = check_choice("scope", SCOPE_ALIASES.get(scope, scope) if isinstance(scope, str) else scope, SCOPES)
    schedule = check_choice("schedule", schedule, SCHEDULES)
    compat_mode = "clean" if compat is None else check_choice("compat", compat, COMPAT_MODES)
    E = default_iterations(method) if iterations is None else check_int("iterations", iterations, min_value=1,
                                                                          max_value=MAX_STEPS)
    shuffle = check_bool("shuffle", shuffle)
    invert = check_bool("invert", invert)
    if progress is not None:
        progress = check_bool("progress", progress)
    if synflow_dtype is None:
        synflow_dtype = torch.float32 if compat_mode == "synaptic-flow" else torch.float64
    else:
        synflow_dtype = check_float_dtype("synflow_dtype", synflow_dtype)
    return _Plan(method, density, scope, E, schedule, compat_mode, _seed(seed), shuffle, invert, synflow_dtype,
                 progress)


def _start_density(plan: _Plan, current: torch.Tensor) -> float:
    """Density the schedule starts from: 1 in compat mode (the reference's);
    in clean mode the model's current density (an already-pruned model is
    pruned further, never revived)."""
    if plan.is_compat:
        return 1.0
    start = int(torch.count_nonzero(current)) / current.numel()
    if plan.density > start:
        raise ValueError(
            f"sparsity: the model already has density {start:.6g} < the requested {plan.density:.6g}; "
            "clean mode never revives pruned weights (start from an unpruned model or ask for a higher sparsity)"
        )
    return start


def _iterate(plan: _Plan, scorer: Callable[[torch.Tensor], list[torch.Tensor]], layers: list[PrunableLayer]):
    """The schedule: at e = 1..E re-score the masked network and select the
    mask of density d_e. Returns (flat mask, last per-layer scores, history).

    The scores stay one tensor per layer: the selection reads them layer by
    layer (:func:`gntk_fast.ops.mask_select.select_parts`)."""
    names = [l.name for l in layers]
    current = torch.cat([l.current_mask().reshape(-1).cpu() for l in layers])
    total = current.numel()
    start = _start_density(plan, current)
    E = plan.iterations
    history: list[dict[str, Any]] = []
    scores: list[torch.Tensor] = []
    show = plan.progress if plan.progress is not None else (None if E >= 10 else False)
    for e in tqdm(range(1, E + 1), desc=f"prune {plan.method}", disable=(not show) if show is not None else None,
                  leave=False):
        d_e = schedule_density(plan.density, e, E, plan.schedule, start)
        scores = []  # the previous iteration's scores go before the scorer runs
        scores = scorer(current)
        check_layer_scores(scores, names)
        # intermediate clean steps cap the kept count at the unpruned one; the last is exact
        current = select_parts([-s for s in scores] if plan.invert else scores, current, d_e, plan.scope,
                               rule=plan.compat, final=e == E)
        kept = int(np.count_nonzero(current.numpy()))
        history.append({"iteration": e, "target_density": d_e, "density": kept / total, "kept": kept})
    return current, scores, history


def _finish(plan: _Plan, model: nn.Module, layers: list[PrunableLayer], current: torch.Tensor,
            scores: list[torch.Tensor], history: list[dict[str, Any]], shuffle_gen: torch.Generator) -> PruneResult:
    """Per-layer masks (shuffled if asked) installed into the model, and the result."""
    shapes = [l.shape for l in layers]
    masks = [m.clone() for m in split_flat(current, shapes)]
    if plan.shuffle:
        masks = shuffle_masks(masks, shuffle_gen)
    install_masks(layers, masks)
    config = {
        "method": plan.method,
        "density": plan.density,
        "sparsity": 1.0 - plan.density,
        "compression": -math.log10(plan.density) + 0.0,  # + 0.0: no "-0.0" for density 1
        "scope": plan.scope,
        "iterations": plan.iterations,
        "schedule": plan.schedule,
        "compat": plan.compat,
        "seed": plan.seed,
        "shuffle": plan.shuffle,
        "invert": plan.invert,
        "model": type(model).__name__,
    }
    if plan.method == "synflow":
        config["synflow_dtype"] = str(plan.synflow_dtype).replace("torch.", "")
    return PruneResult(
        masks=masks,
        names=[l.name for l in layers],
        scores=[s.detach().reshape(shape).cpu() for s, shape in zip(scores, shapes)],
        history=history,
        config=config,
        layer_types=[l.layer_type for l in layers],
        dense=dense_parameters(model),
        chain=is_chain(model, layers),
    )
