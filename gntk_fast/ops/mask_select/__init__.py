"""Mask selection: from flat pruning scores to a flat keep-mask (docs/pruners.md).

Scores are flat (N,) (the row-major flattened layers concatenated in forward
order; higher = keep), the current mask is flat bool (N,), ``sizes`` the
per-layer weight counts. "Flat index" is the index in that concatenation
(global scope) or within one layer (layerwise scope).

Clean rule (``rule="clean"``)
    Exactly ``k = round(d * N)`` weights are kept (Python's round: half to
    even), per layer with ``N = N_l`` for layerwise scope: the k highest
    scores among the weights kept so far (masks are nested: an already-pruned
    weight stays pruned), ties broken by flat index (the lower index is kept,
    like a stable descending sort). Asking to keep more weights than are
    unpruned is a ValueError naming ``sparsity``, unless ``final=False``
    (an intermediate iteration), which caps k at the unpruned count.

Synaptic-Flow rule (``rule="synaptic-flow"``)
    The reference code calls the kept fraction d "sparsity" and prunes
    ``k = int((1 - d) * N)`` weights: ``threshold = torch.kthvalue(scores, k)``
    over the concatenated flat scores (global) or per layer (layerwise), and
    every weight with ``score <= threshold`` is pruned, ties at the threshold
    included, so fewer than ``N - k`` weights may be kept; when ``k < 1`` the
    mask is left unchanged. The new mask is set from the scores alone (a
    weight pruned earlier comes back when its new score is above the
    threshold). ``final`` does not apply.

Backends, in preference order (see :mod:`gntk_fast.ops._registry` for the
``backend="auto"`` rule): ``histogram`` (radix selection layer by layer,
no sort, no partition, no copy of the scores, :mod:`.histogram`; it serves
every call named explicitly, and "auto" takes it from
``histogram.STREAM_MIN_SCORES`` = 2**26 scores up, below which the
partition is faster), ``numpy`` (partition-based selection,
:mod:`.numpy`) and ``naive`` (stable sort / literal ``torch.kthvalue``,
:mod:`.naive`, the test oracle). Both run on CPU copies of the scores (the
selection is a small fraction of a scoring pass on any device); the mask is
returned on ``current``'s device. :func:`select_parts` takes the scores as
one tensor per layer: the ``histogram`` backend then reads them where they
are (``prune`` selects this way, never concatenating the scores). NaN
scores are the caller's to reject (:func:`gntk_fast.pruning.masks.check_scores`
names the layer).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from ..._constants import COMPAT_MODES, SCOPE_ALIASES, SCOPES
from ..._validation import check_bool, check_choice, check_dtype, check_float, check_int, check_tensor
from .._registry import Op

__all__ = ["select_masks", "select_layer_masks", "select_parts", "OP"]

def _histogram_check(n_scores: int | None = None, named: bool = False, **_: Any) -> str | None:
    from .histogram import STREAM_MIN_SCORES

    if named or (n_scores is not None and n_scores >= STREAM_MIN_SCORES):
        return None
    return f"below {STREAM_MIN_SCORES} scores the partition of the numpy backend is faster"


OP = Op("mask_select")
OP.register("histogram", "gntk_fast.ops.mask_select.histogram:select", devices=("cpu",), check=_histogram_check)
OP.register("numpy", "gntk_fast.ops.mask_select.numpy:select", devices=("cpu",))
OP.register("naive", "gntk_fast.ops.mask_select.naive:select", devices=("cpu",))


def _selection_inputs(flat_scores: Any, current: Any, sizes: Any) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    flat = check_tensor("flat_scores", flat_scores, ndim=1)
    if flat.dtype == torch.bool or flat.is_complex():
        raise TypeError(f"flat_scores must hold real scores; got dtype {flat.dtype}")
    current = check_dtype("current", check_tensor("current", current, ndim=1), (torch.bool,), "the kept mask")
    if current.numel() != flat.numel():
        raise ValueError(f"current has {current.numel()} entries but flat_scores has {flat.numel()}")
    sizes = [check_int(f"sizes[{i}]", n, min_value=0) for i, n in enumerate(sizes)]
    if sum(sizes) != flat.numel():
        raise ValueError(f"sizes must add up to the {flat.numel()} scores; got {sum(sizes)}")
    return flat, current, sizes


def _selection_options(density: Any, scope: Any, rule: Any, final: Any) -> tuple[float, str, str, bool]:
    """Validated (density in [0, 1], scope with "local" read as "layerwise", rule, final)."""
    density = check_float("density", density, min_value=0.0, max_value=1.0)
    scope = check_choice("scope", SCOPE_ALIASES.get(scope, scope) if isinstance(scope, str) else scope, SCOPES)
    rule = check_choice("rule", rule, COMPAT_MODES)
    final = check_bool("final", final)
    return density, scope, rule, final


def select_masks(
    flat_scores: torch.Tensor,
    current: torch.Tensor,
    sizes: Sequence[int],
    density: float,
    scope: str,
    *,
    rule: str = "clean",
    final: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """The keep-mask, bool (N,) on ``current``'s device, of the selection ``rule``
    (module docstring) at kept fraction ``density`` in [0, 1].

    ``flat_scores`` (N,) real, ``current`` (N,) bool, ``sizes`` per-layer
    counts adding up to N, ``scope`` "global" or "layerwise" ("local" is an
    alias), ``backend`` "auto", "histogram", "numpy" or "naive" (an unknown name is a
    :class:`~gntk_fast.ops.BackendError`).
    """
    flat, current, sizes = _selection_inputs(flat_scores, current, sizes)
    density, scope, rule, final = _selection_options(density, scope, rule, final)
    fn = OP(backend, "cpu", n_scores=flat.numel(), named=backend != "auto")
    return fn(flat, current, sizes, density, scope, rule, final)


def select_layer_masks(
    scores: Sequence[torch.Tensor],
    current: Sequence[torch.Tensor],
    density: float,
    scope: str,
    *,
    rule: str = "clean",
    final: bool = True,
    backend: str = "auto",
) -> list[torch.Tensor]:
    """:func:`select_masks` on per-layer scores and current masks (any shapes,
    one pair per layer, forward order); returns one bool mask per layer, shaped
    like its scores."""
    shapes = [tuple(s.shape) for s in scores]
    cur = torch.cat([c.reshape(-1) for c in current]).to(torch.bool)
    keep = select_parts(scores, cur, density, scope, rule=rule, final=final, backend=backend)
    return [p.reshape(shape).clone() for p, shape in zip(torch.split(keep, [s.numel() for s in scores]), shapes)]


def select_parts(
    scores: Sequence[torch.Tensor],
    current: torch.Tensor,
    density: float,
    scope: str,
    *,
    rule: str = "clean",
    final: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """:func:`select_masks` on per-layer scores (any shapes, forward order) and
    the flat current bool mask (N,): the same flat keep-mask. The
    ``histogram`` backend reads the layers where they are (scores of one
    float dtype); otherwise the scores are concatenated and passed to
    :func:`select_masks`."""
    if not isinstance(scores, (list, tuple)) or not scores:
        raise TypeError("scores must be a non-empty list of per-layer score tensors")
    scores = [check_tensor(f"scores[{i}]", t) for i, t in enumerate(scores)]
    sizes = [int(t.numel()) for t in scores]
    n = sum(sizes)
    b = OP.resolve(backend, "cpu", n_scores=n, named=backend != "auto")
    if b.name == "histogram" and len({t.dtype for t in scores}) == 1 and scores[0].is_floating_point():
        current = check_dtype("current", check_tensor("current", current, ndim=1), (torch.bool,), "the kept mask")
        if current.numel() != n:
            raise ValueError(f"current has {current.numel()} entries but the scores have {n}")
        density, scope, rule, final = _selection_options(density, scope, rule, final)
        return b.load()(scores, current, sizes, density, scope, rule, final)
    flat = torch.cat([t.detach().reshape(-1) for t in scores])
    return select_masks(flat, current, sizes, density, scope, rule=rule, final=final, backend=backend)
