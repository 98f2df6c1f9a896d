"""Pruning scores (one iteration): one :class:`PruningMethod` subclass per score.

The registry is :data:`gntk_fast._constants.PRUNING_METHODS` (name ->
"module:Class", imported on first use by :func:`method_class`), so a new
score is one class and one registration, and the command line reads the
names without importing torch.

Every scorer is built once per ``prune`` call (so the SynFlow copy in its dtype is
reused across its 100 iterations) and called with the current flat bool mask
(N,) (the row-major flattened layers, concatenated in forward order); it
returns the scores as a list of flat per-layer tensors (forward order), never
concatenated. Higher score = more important (kept first).

Memory: scoring runs layer list by layer list, with each layer's gradient
accumulated in place and turned into its score in place, and what is no
longer needed (mask leaves, gradients, the derived weights of the private
copy) freed before the next step, so the peak stays at a few copies of the
weights besides the model.

=========  ==============================================================
random     i.i.d. N(0, 1), private ``torch.Generator`` (global RNG untouched)
magnitude  |theta|  (raw weight: ``weight_orig`` of torch-pruned layers; for
           gntk_fast.MLP the N(0, 1) parameter, without 1/sqrt(fan_in))
snip       |theta * dL/d(theta*m)| = |dL/dm|, gradient summed over the
           pruning batches before the abs, L = mean cross-entropy
grasp      theta * (H g) signed: g = sum_b grad L_b (no graph),
           Hg = grad_theta sum_b (g . grad L_b), logits / T (T = 200)
synflow    |theta * dR/dtheta|, R = sum of the output of the |.|-linearised
           network (every parameter and buffer abs'ed) on an all-ones input
           of batch 1 (float64 in clean mode, float32 in compat mode)
=========  ==============================================================

Gradients are taken with respect to the raw weight ``theta`` of the *masked*
network (effective weight ``theta * m``), so for grasp/synflow a pruned
weight has score 0, as in the Synaptic-Flow code. For gntk_fast.MLP the
1/sqrt(fan_in) scales are part of the network.

SynFlow precision: R grows like (c sqrt(n))^L, so float32 overflows or
underflows at large width/depth (scores collapse to 0 or inf and ties appear).
The scores are computed on a private copy of the network in the dtype ``prune``
passes: float64 by default in clean mode, float32 by default with
``compat="synaptic-flow"`` (the reference code's arithmetic). Per-layer
rescaling is not used: the ranking is invariant to a positive per-layer scale
only when there are no biases (the biases of ``fc`` would need the matching
cumulative scale), so float64 is the safe choice.

``compat=True`` applies the reference code's normalisations (snip: divide by
the sum of all scores, skipped when that sum is 0; grasp: divide by
|sum| + 1e-10); they are positive scalars and never reorder scores.

``synflow_scores_reference`` is the plain twin of the SynFlow scorer for chains
of Linear layers with ReLU/identity activations (explicit forward/backward
vectors, no autograd); the tests compare the two.
"""
from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._constants import METHODS, PRUNING_METHODS
from .._validation import check_choice
from .layers import LinearisedCopy, PrunableLayer, ScoringCopy

__all__ = ["METHODS", "GRASP_TEMPERATURE", "PruningMethod", "ScoreContext", "method_class", "make_scorer",
           "synflow_scores_reference", "RandomScore", "MagnitudeScore", "SnipScore", "GraspScore", "SynFlowScore"]

GRASP_TEMPERATURE = 200.0
GRASP_EPS = 1e-10

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def _cross_entropy_output(out: torch.Tensor, y: torch.Tensor) -> None:
    if out.ndim != 2:
        raise ValueError(f"model output must be (batch, classes) for the cross-entropy; got shape {tuple(out.shape)}")
    if int(y.max()) >= out.shape[1]:
        raise ValueError(f"data: labels must lie in [0, {out.shape[1]}) (the model's number of outputs); got max {int(y.max())}")


def _sum_all(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The sum of all entries, reduced exactly as ``torch.cat(...).sum()`` is
    (the compat normalisations divide by it; a differently rounded sum could
    merge or split ties). The concatenation is transient and made only when
    the gradients are already freed."""
    if len(tensors) == 1:
        return tensors[0].reshape(-1).sum()
    return torch.cat([t.reshape(-1) for t in tensors]).sum()


@dataclass
class ScoreContext:
    """What a :class:`PruningMethod` may use, fixed for one ``prune`` call.

    ``model`` the user's model (never modified: scorers needing a forward
    build a private copy, :class:`~.layers.ScoringCopy`); ``layers`` its
    prunable layers (forward order); ``batches`` the validated (x, y) pruning
    batches or None; ``input_shape`` one sample's shape (no batch dimension)
    or None when unknown; ``generator`` the private generator of random
    scores; ``compat`` True for the Synaptic-Flow code's normalisations;
    ``synflow_dtype`` the dtype of SynFlow's linearised copy.
    """

    model: nn.Module
    layers: Sequence[PrunableLayer]
    batches: Batches | None = None
    input_shape: tuple[int, ...] | None = None
    generator: torch.Generator | None = None
    compat: bool = False
    synflow_dtype: torch.dtype = torch.float64


class PruningMethod(abc.ABC):
    """One pruning score: the unit a new method is written as.

    A subclass sets ``name`` (its key in the registry
    :data:`gntk_fast._constants.PRUNING_METHODS`), ``needs_data`` (the
    (x, y) batches are required), ``needs_input_shape`` (one sample's shape
    is required, e.g. for an all-ones input) and ``default_iterations``, builds
    what it reuses across iterations in ``__init__(ctx)`` (a
    :class:`ScoreContext`) and implements :meth:`score`. It is the analogue
    of ``torch.nn.utils.prune.BasePruningMethod.compute_mask`` and of the
    Synaptic-Flow code's ``Pruner.score``; selection (thresholds, scope,
    schedule) is not its business.

    Examples
    --------
    A score keeping the smallest weights is, in a module ``mypkg.scores``::

        class SmallestFirst(PruningMethod):
            name = "smallest"

            def score(self, mask):
                return [-l.theta.detach().abs().reshape(-1) for l in self.ctx.layers]

    registered with ``PRUNING_METHODS["smallest"] = "mypkg.scores:SmallestFirst"``,
    after which ``gf.prune(model, "smallest", 0.9)`` uses it. The built-in scores:

    >>> from gntk_fast.pruning.scores import MagnitudeScore, PruningMethod
    >>> issubclass(MagnitudeScore, PruningMethod), MagnitudeScore.name, MagnitudeScore.needs_data
    (True, 'magnitude', False)
    """

    name: ClassVar[str]
    needs_data: ClassVar[bool] = False
    needs_input_shape: ClassVar[bool] = False
    default_iterations: ClassVar[int] = 1

    def __init__(self, ctx: ScoreContext) -> None:
        self.ctx = ctx

    @abc.abstractmethod
    def score(self, mask: torch.Tensor) -> list[torch.Tensor]:
        """Scores of the network masked by the flat bool ``mask`` (N,): one
        flat tensor per prunable layer, forward order; higher = keep."""

    def __call__(self, mask: torch.Tensor) -> list[torch.Tensor]:
        return self.score(mask)


def method_class(name: str) -> type[PruningMethod]:
    """The :class:`PruningMethod` registered as ``name`` in
    :data:`gntk_fast._constants.PRUNING_METHODS` (imported on first use).

    Examples
    --------
    >>> from gntk_fast.pruning import method_class
    >>> cls = method_class("synflow")
    >>> cls.__name__, cls.default_iterations, cls.needs_data
    ('SynFlowScore', 100, False)
    """
    name = check_choice("method", name, tuple(PRUNING_METHODS))
    target = PRUNING_METHODS[name]
    cls = _LOADED.get(target)
    if cls is None:
        mod, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(mod), attr)
        if not (isinstance(cls, type) and issubclass(cls, PruningMethod) and cls.name == name):
            raise TypeError(f"PRUNING_METHODS[{name!r}] = {target!r} is not a PruningMethod named {name!r}")
        _LOADED[target] = cls
    return cls


_LOADED: dict[str, type[PruningMethod]] = {}


class RandomScore(PruningMethod):
    """i.i.d. N(0, 1) scores from the private generator (one flat draw of N per iteration)."""

    name = "random"

    def score(self, mask):
        sizes = [l.theta.numel() for l in self.ctx.layers]
        # one draw of n (the stream of one flat draw), seen layer by layer
        draw = torch.randn(sum(sizes), generator=self.ctx.generator, dtype=torch.float32)
        return list(torch.split(draw, sizes))


class MagnitudeScore(PruningMethod):
    """|theta|, the raw weight."""

    name = "magnitude"

    def score(self, mask):
        return [l.theta.detach().abs().reshape(-1) for l in self.ctx.layers]


class _GradientScore(PruningMethod):
    """A data-driven method: it scores through a differentiable copy of the
    model's masked layers (:class:`ScoringCopy`), made once per pruning run."""

    needs_data = True

    def __init__(self, ctx: ScoreContext) -> None:
        super().__init__(ctx)
        self.work = ScoringCopy(ctx.model, ctx.layers)


class SnipScore(_GradientScore):
    """|dL/dm| = |theta * dL/d(theta m)|, the gradient summed over the batches."""

    name = "snip"

    def score(self, mask):
        work, batches, compat = self.work, self.ctx.batches, self.ctx.compat
        work.set_masks(mask)
        leaves = work.differentiable_masks()
        grads: list[torch.Tensor | None] = [None] * len(leaves)
        try:
            for x, y in batches:
                out = _forward(work, x)
                _cross_entropy_output(out, y)
                loss = F.cross_entropy(out, y)
                gs = list(torch.autograd.grad(loss, leaves, allow_unused=True))
                del out, loss
                _accumulate(grads, gs)
                del gs
        finally:
            work.restore_masks()
            work.release()
        del leaves
        # dL/dm = theta * dL/d(theta*m): the SNIP saliency before the abs, in place
        scores = [torch.zeros(w.numel(), dtype=work.dtype, device=work.device) if g is None else g.abs_().reshape(-1)
                  for g, w in zip(grads, work.thetas)]
        del grads
        if compat:
            norm = _sum_all(scores)
            if bool(norm > 0):  # the reference divides by 0 here (NaN masks); all-zero scores stay 0
                for t in scores:
                    t /= norm
        return scores


def _accumulate(acc: list[torch.Tensor | None], gs: list[torch.Tensor | None]) -> None:
    """``acc[i] += gs[i]`` in place (None = nothing yet / no gradient); a
    first gradient becomes the accumulator itself after ``+ 0.0``, which is
    bitwise what adding it to zeros gives. ``gs`` is emptied as it goes."""
    for i in range(len(gs)):
        gi, gs[i] = gs[i], None
        if gi is None:  # a layer the forward does not use (score 0)
            continue
        if acc[i] is None:
            acc[i] = gi.add_(0.0) if gi.is_contiguous() and not gi._is_view() else gi + 0.0
        else:
            acc[i].add_(gi)
        del gi


class GraspScore(_GradientScore):
    """theta * (H g), signed; logits / T (T = 200)."""

    name = "grasp"

    def score(self, mask):
        work, batches, compat = self.work, self.ctx.batches, self.ctx.compat
        T = GRASP_TEMPERATURE
        work.set_masks(mask)
        thetas = work.thetas
        # gradients summed over the batches in place in the first one; 0.0 is
        # added to it so that the sum is bitwise 0 + g_1 + g_2 ... (-0.0 -> +0.0)
        g: list[torch.Tensor | None] = [None] * len(thetas)
        for x, y in batches:
            out = _forward(work, x)
            _cross_entropy_output(out, y)
            gs = list(torch.autograd.grad(F.cross_entropy(out / T, y), thetas, allow_unused=True))
            del out
            _accumulate(g, gs)
            del gs
        g = [torch.zeros_like(t) if gi is None else gi for gi, t in zip(g, thetas)]
        work.release()
        hg: list[torch.Tensor | None] = [None] * len(thetas)
        for x, y in batches:
            out = _forward(work, x)
            gs = torch.autograd.grad(F.cross_entropy(out / T, y), thetas, create_graph=True, allow_unused=True)
            del out
            z = sum((gi * gc).sum() for gi, gc in zip(gs, g) if gi is not None)
            del gs
            work.release()
            if not isinstance(z, torch.Tensor) or not z.requires_grad:
                continue  # the loss does not depend on the weights at all
            hs = list(torch.autograd.grad(z, thetas, allow_unused=True))
            del z
            _accumulate(hg, hs)
            del hs
        del g
        # theta * Hg, in place in the Hessian-vector product (the product commutes exactly)
        scores = [torch.zeros(t.numel(), dtype=t.dtype, device=t.device) if h is None
                  else h.mul_(t.detach()).reshape(-1) for t, h in zip(thetas, hg)]
        del hg
        if compat:
            norm = torch.abs(_sum_all(scores)) + GRASP_EPS
            for t in scores:
                t /= norm
        return scores


class SynFlowScore(PruningMethod):
    """|theta * dR/dtheta|, R = output sum of the |.|-linearised network on an all-ones input of batch 1."""

    name = "synflow"
    needs_input_shape = True
    default_iterations = 100

    def __init__(self, ctx: ScoreContext) -> None:
        super().__init__(ctx)
        self.work = LinearisedCopy(ctx.model, ctx.layers, dtype=ctx.synflow_dtype)
        self.ones = torch.ones((1, *ctx.input_shape), dtype=self.work.dtype, device=self.work.device)

    def score(self, mask):
        work = self.work
        work.set_masks(mask)
        R = _forward(work, self.ones, "input_shape").sum()
        grads = list(torch.autograd.grad(R, work.weights, allow_unused=True))
        del R
        cpu = work.device.type == "cpu"
        scores = []
        for i, w in enumerate(work.weights):
            g = grads[i]
            grads[i] = None
            if g is None:
                scores.append(torch.zeros(w.numel(), dtype=w.dtype, device=w.device))
                continue
            # |theta| * m * dR/dW_eff = |theta| * dR/dtheta, in place in the gradient;
            # W_eff >= 0, abs() guards activations with negative slopes on the linearised net
            if cpu:  # numpy's loop (see LinearisedCopy.set_masks)
                gn = g.numpy()
                np.multiply(w.detach().numpy(), gn, out=gn)
                np.abs(gn, out=gn)
            else:
                g.mul_(w.detach()).abs_()
            scores.append(g.reshape(-1))
        return scores


def make_scorer(method: str, model: nn.Module, layers: Sequence[PrunableLayer], *, batches: Batches | None,
                input_shape: tuple[int, ...] | None, generator: torch.Generator, compat: bool,
                synflow_dtype: torch.dtype = torch.float64) -> PruningMethod:
    """The registered :class:`PruningMethod` ``method``, built for one ``prune`` call."""
    cls = method_class(method)
    if cls.needs_data and batches is None:
        raise ValueError(f"data is required for method {method!r}: pass (x, y) or an iterable of (x, y) batches")
    if cls.needs_input_shape and input_shape is None:
        raise ValueError(f"input_shape is required for method {method!r} on this model")
    return cls(ScoreContext(model, layers, batches, input_shape, generator, compat, synflow_dtype))


def _forward(work, x: torch.Tensor, what: str = "data") -> torch.Tensor:
    """``work(x)`` in the copy's dtype; a shape error of the model becomes a
    ValueError naming ``what`` ("data" or "input_shape")."""
    try:
        return work(x.to(work.dtype))
    except RuntimeError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "out of memory" in msg:
            raise
        raise ValueError(f"{what}: inputs of shape {tuple(x.shape)} (batch first) do not fit the model: {msg}") from None


# ---------------------------------------------------------------- reference twin
def synflow_scores_reference(
    weights: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor | None] | None = None,
    scales: Sequence[float] | None = None,
    bias_scales: Sequence[float] | None = None,
    activation: str = "relu",
) -> list[torch.Tensor]:
    """SynFlow scores of a chain ``z_l = s_l (W_l * M_l) h_{l-1} + c_l b_l``,
    ``h_l = relu(z_l)`` (``activation="relu"``) or ``h_l = z_l``
    (``"identity"``), computed by hand in float64.

    With every parameter replaced by |.| and an all-ones input, all
    pre-activations are >= 0, so ReLU acts as the identity on the forward pass
    (its derivative at exactly 0 is 0, as in torch: such a unit has zero
    activation, so every score through it is 0 either way). Forward vectors
    ``a_l``, backward vectors ``v_l = dR/dz_l``; ``dR/dW_l = s_l M_l * v_l a_{l-1}^T``
    and the score is ``|W_l| * dR/dW_l``. Shapes: ``weights[l]`` (n_{l+1}, n_l).
    """
    if activation not in ("relu", "identity"):
        raise ValueError(f"activation must be 'relu' or 'identity'; got {activation!r}")
    L = len(weights)
    Ws = [w.detach().to(torch.float64).abs() for w in weights]
    Ms = [m.detach().to(torch.float64) for m in masks]
    bs = [None if b is None else b.detach().to(torch.float64).abs() for b in (biases or [None] * L)]
    ss = [1.0] * L if scales is None else [float(s) for s in scales]
    cs = [1.0] * L if bias_scales is None else [float(c) for c in bias_scales]
    a = [torch.ones(Ws[0].shape[1], dtype=torch.float64)]
    zs = []
    for l in range(L):
        z = ss[l] * (Ws[l] * Ms[l]) @ a[-1]
        if bs[l] is not None:
            z = z + abs(cs[l]) * bs[l]
        zs.append(z)
        a.append(z)  # relu(z) = z for z >= 0
    v = torch.ones(Ws[-1].shape[0], dtype=torch.float64)
    scores: list[torch.Tensor] = [torch.empty(0)] * L
    for l in reversed(range(L)):
        if l < L - 1 and activation == "relu":
            v = v * (zs[l] > 0).to(torch.float64)  # relu'(z) (torch convention at 0)
        grad = ss[l] * Ms[l] * torch.outer(v, a[l])
        scores[l] = Ws[l] * grad
        v = (ss[l] * (Ws[l] * Ms[l])).T @ v
    return scores
