"""Prunable layers of a model, a private scoring copy, and mask installation.

Which parameters are pruned (the policy of :func:`find_prunable`):

==========================================  =====================================
module                                       its parameters
==========================================  =====================================
``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``  ``weight``: pruned; ``bias``: left
(subclasses too, torch-pruned or not),       dense ("bias")
gntk_fast ``MaskedLinear``/``MaskedConv2d``
normalisation layers (``BatchNorm*``,        left dense ("normalisation")
``InstanceNorm*``, ``LayerNorm``,
``GroupNorm``, ``RMSNorm``)
any other module holding a parameter         ``ValueError`` naming the module, or,
(``nn.Embedding``, ``ConvTranspose2d``,      with ``unsupported="dense"``, left
``Conv3d``, a bare ``nn.Parameter`` used in  dense ("unsupported")
``forward``, ...)
==========================================  =====================================

The parameters left dense are listed by :func:`dense_parameters` (and in
``PruneResult.report["dense"]``), so nothing is pruned partially in silence.
Biases and normalisation parameters are left dense as in the Synaptic-Flow
code's default prunable set.

Layers are listed in module-registration order (``model.named_modules()``),
which is the forward order for ``nn.Sequential`` models such as
``gntk_fast.fc`` and for ``gntk_fast.MLP``. A weight has shape
(out, in) for linear layers and (out, in / groups, *kernel) for
convolutions: "rows" are output neurons/channels, the second axis the inputs.

Where masks live:

* gntk_fast ``MaskedLinear``/``MaskedConv2d``, and any prunable layer that
  already holds a ``weight_mask`` buffer of the weight's shape without being
  torch-pruned (it applies the buffer itself, as the Synaptic-Flow layers
  do): that buffer, in its dtype.
* otherwise the torch.nn.utils.prune way: a ``weight_orig`` parameter, a
  ``weight_mask`` buffer and a forward pre-hook computing
  ``weight = weight_orig * weight_mask``. A layer already pruned that way gets
  its ``weight_mask`` buffer overwritten (no second mask is stacked on top, so
  the installed mask is exactly the returned one).

Scoring never touches the user's model: it runs on a :class:`ScoringCopy`
(a deep copy, put in eval mode, optionally converted to the SynFlow dtype and
|.|-linearised for SynFlow), so no ``.grad``, sign flip or mode change is
left behind on the model. The raw prunable weights are the one thing the
copy does not duplicate: it holds new Parameters on the model's storage and
only reads them (one copy of the weights less while scoring).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as tprune

from .._validation import check_choice
from ..models import MLP, MaskedConv2d, MaskedLinear

__all__ = ["PrunableLayer", "find_prunable", "dense_parameters", "copy_model", "ScoringCopy", "LinearisedCopy",
           "install_masks", "is_chain", "PRUNABLE_TYPES", "MASKED_TYPES", "NORM_TYPES", "UNSUPPORTED_POLICIES"]

#: gntk_fast's own masked layers (bool ``weight_mask`` buffer applied in forward)
MASKED_TYPES: tuple[type, ...] = (MaskedLinear, MaskedConv2d)
#: torch layers whose ``weight`` is pruned; value: the weight's number of dimensions
PRUNABLE_TYPES: dict[type, int] = {nn.Linear: 2, nn.Conv1d: 3, nn.Conv2d: 4}
#: layers whose parameters are left dense by design (normalisation)
NORM_TYPES: tuple[type, ...] = tuple(
    t for t in (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, getattr(nn, "RMSNorm", None))
    if t is not None
)
#: what :func:`find_prunable` does with a parameter of a module it does not know
UNSUPPORTED_POLICIES: tuple[str, ...] = ("raise", "dense")


def _weight_ndim(module: nn.Module) -> int | None:
    """The weight's number of dimensions if ``module`` is prunable, else None."""
    if isinstance(module, MASKED_TYPES):
        return None if module.weight is None else module.weight.ndim
    for t, nd in PRUNABLE_TYPES.items():
        if isinstance(module, t):
            return nd
    return None


_STOCK_FORWARDS = {t.forward for t in PRUNABLE_TYPES}


def _own_forward(module: nn.Module) -> bool:
    """Whether the module's class overrides the stock torch ``forward`` (so it may apply its own mask)."""
    return type(module).forward not in _STOCK_FORWARDS


@dataclass
class PrunableLayer:
    """One prunable weight of a model.

    ``name`` is the module path in ``model.named_modules()``; ``theta`` the raw
    weight parameter (``weight_orig`` for torch-pruned layers, else
    ``weight``), shape (out, in, *kernel).
    """

    name: str
    module: nn.Module

    @property
    def kind(self) -> str:
        """"masked" (mask in the module's own ``weight_mask`` buffer),
        "torch_pruned" (torch.nn.utils.prune) or "plain" (unpruned torch layer)."""
        if hasattr(self.module, "weight_orig"):
            return "torch_pruned"
        if isinstance(self.module, MASKED_TYPES) or ("weight_mask" in self.module._buffers and _own_forward(self.module)):
            return "masked"
        return "plain"

    @property
    def layer_type(self) -> str:
        return type(self.module).__name__

    @property
    def theta(self) -> torch.Tensor:
        return self.module.weight_orig if self.kind == "torch_pruned" else self.module.weight

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.theta.shape)

    @property
    def in_features(self) -> int:
        """Inputs of the layer: in_features (linear) or in_channels / groups (convolution)."""
        return int(self.theta.shape[1])

    @property
    def out_features(self) -> int:
        """Outputs of the layer: out_features (linear) or out_channels (convolution)."""
        return int(self.theta.shape[0])

    @property
    def is_conv(self) -> bool:
        return self.theta.ndim > 2

    def current_mask(self) -> torch.Tensor:
        """The mask in force now, as a fresh bool tensor (all True when unpruned)."""
        m = getattr(self.module, "weight_mask", None)
        if m is None:
            return torch.ones(self.shape, dtype=torch.bool, device=self.theta.device)
        return (m.detach() != 0).clone()


def _all_finite(t: torch.Tensor) -> bool:
    """No NaN/inf in ``t`` (numpy's loop on CPU: robust on busy machines)."""
    if t.device.type == "cpu" and t.dtype in (torch.float16, torch.float32, torch.float64):
        return bool(np.isfinite(t.detach().numpy()).all())
    return bool(torch.isfinite(t).all())


def _classify(model: nn.Module) -> tuple[list[PrunableLayer], list[dict[str, Any]]]:
    """(prunable layers, the other parameters with the reason each is left dense:
    "bias", "normalisation" or "unsupported"), each parameter once."""
    layers: list[PrunableLayer] = []
    dense: list[dict[str, Any]] = []
    seen: set[int] = set()
    for mname, mod in model.named_modules():
        nd = _weight_ndim(mod)
        theta_name = None
        if nd is not None:
            theta_name = "weight_orig" if hasattr(mod, "weight_orig") else "weight"
            if isinstance(mod._parameters.get(theta_name), nn.Parameter):
                layers.append(PrunableLayer(mname, mod))
            else:
                theta_name = None
        for pname, p in mod.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if pname == theta_name:
                continue
            if theta_name is not None and pname == "bias":
                reason = "bias"
            elif isinstance(mod, NORM_TYPES):
                reason = "normalisation"
            else:
                reason = "unsupported"
            path = f"{mname}.{pname}" if mname else pname
            dense.append({"name": path, "module": type(mod).__name__, "numel": int(p.numel()), "reason": reason})
    return layers, dense


def dense_parameters(model: nn.Module) -> list[dict[str, Any]]:
    """The parameters of ``model`` that are not pruned: one dict per parameter,
    ``name`` (its path), ``module`` (the type of the module holding it),
    ``numel`` and ``reason`` ("bias", "normalisation" or "unsupported"; see
    the module docstring).

    Examples
    --------
    >>> from torch import nn
    >>> from gntk_fast.pruning import dense_parameters
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Embedding(5, 2))
    >>> [(d["name"], d["reason"]) for d in dense_parameters(net)]
    [('0.bias', 'bias'), ('1.weight', 'normalisation'), ('1.bias', 'normalisation'), ('2.weight', 'unsupported')]
    """
    return _classify(model)[1]


def find_prunable(model: nn.Module, *, unsupported: str = "raise") -> list[PrunableLayer]:
    """All prunable layers of ``model`` in registration (= forward, for
    sequential models) order.

    ``unsupported="raise"`` (default): a parameter of a module that is neither
    prunable nor left dense by design (module docstring) is a ValueError
    naming the module; ``"dense"``: such parameters are left dense (and
    listed by :func:`dense_parameters`). TypeError/ValueError name ``model``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module (gntk_fast.MLP, gntk_fast.fc, ...); got {type(model).__name__}")
    unsupported = check_choice("unsupported", unsupported, UNSUPPORTED_POLICIES)
    layers, dense = _classify(model)
    if unsupported == "raise":
        bad = [d for d in dense if d["reason"] == "unsupported"]
        if bad:
            first = bad[0]
            more = f" (and {len(bad) - 1} more parameter(s))" if len(bad) > 1 else ""
            raise ValueError(
                f"model: parameter {first['name']!r} ({first['module']}) cannot be pruned{more}: only the weights "
                "of nn.Linear, nn.Conv1d, nn.Conv2d and gntk_fast masked layers are prunable (biases and "
                "normalisation layers are left dense); pass unsupported=\"dense\" to leave it dense"
            )
    if not layers:
        raise ValueError("model contains no prunable layer (nn.Linear, nn.Conv1d, nn.Conv2d or a gntk_fast masked layer)")
    for i, layer in enumerate(layers):
        t = layer.theta
        if isinstance(t, nn.parameter.UninitializedParameter):
            raise ValueError(f"model: layer {i} ({layer.name!r}) is a lazy layer not yet initialised; run one "
                             "forward pass first")
        want = _weight_ndim(layer.module)
        if t.ndim != want or (not isinstance(layer.module, MASKED_TYPES) and t.ndim < 2):
            raise ValueError(f"model: layer {i} ({layer.name!r}) weight must be {want}-D; got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"model: layer {i} ({layer.name!r}) weight must be floating point; got {t.dtype}")
        if not _all_finite(t):
            raise ValueError(f"model: layer {i} ({layer.name!r}) weight contains NaN or infinite values")
        m = getattr(layer.module, "weight_mask", None)
        if m is not None and layer.kind == "plain":
            raise ValueError(f"model: layer {i} ({layer.name!r}) has a weight_mask buffer that its stock "
                             f"{layer.layer_type}.forward ignores (no torch.nn.utils.prune hook): remove it, or "
                             "apply masks with torch.nn.utils.prune")
        if m is not None and tuple(m.shape) != tuple(t.shape):
            raise ValueError(f"model: layer {i} ({layer.name!r}) weight_mask shape {tuple(m.shape)} != weight shape {tuple(t.shape)}")
    checked = {id(layer.theta) for layer in layers}
    for pname, t in list(model.named_parameters()) + list(model.named_buffers()):
        if id(t) in checked or not t.is_floating_point() or isinstance(t, nn.parameter.UninitializedTensorMixin):
            continue
        if not _all_finite(t):
            raise ValueError(f"model: {pname!r} contains NaN or infinite values")
    return layers


def copy_model(model: nn.Module) -> nn.Module:
    """``copy.deepcopy(model)``, also for models pruned with torch.nn.utils.prune.

    A torch-pruned module holds ``weight = weight_orig * weight_mask`` as a
    non-leaf plain attribute, which ``deepcopy`` refuses; those attributes are
    detached for the duration of the copy (the copy's pre-hooks recompute
    them at its next forward) and restored on the model afterwards.
    """
    return _copy_sharing(model, ())


def _copy_sharing(model: nn.Module, shared: Sequence[torch.Tensor]) -> nn.Module:
    """:func:`copy_model`, except that each parameter in ``shared`` becomes a
    new Parameter (``requires_grad=False``) on the *same storage* in the copy:
    no copy of those weights. The copy must then never write them in place
    (the scorers only read the raw weights)."""
    memo: dict[int, Any] = {}
    for t in shared:
        memo[id(t)] = nn.Parameter(t.detach(), requires_grad=False)
    saved: list[tuple[nn.Module, str, torch.Tensor]] = []
    for mod in model.modules():
        for hook in mod._forward_pre_hooks.values():
            if isinstance(hook, tprune.BasePruningMethod):
                name = hook._tensor_name
                t = mod.__dict__.get(name)
                if isinstance(t, torch.Tensor) and t.grad_fn is not None:
                    saved.append((mod, name, t))
    try:
        for mod, name, t in saved:
            mod.__dict__[name] = t.detach()
        return copy.deepcopy(model, memo)
    except Exception as exc:  # pragma: no cover - exotic user modules
        raise TypeError(f"model could not be copied for scoring ({exc})") from exc
    finally:
        for mod, name, t in saved:
            mod.__dict__[name] = t


class ScoringCopy:
    """A private deep copy of the model used to compute scores.

    Every prunable layer of the copy has a raw weight ``thetas[i]`` (a
    Parameter requiring grad) and a float mask buffer ``masks[i]`` (same dtype
    as the weights) that :meth:`set_masks` overwrites in place. All other
    parameters have ``requires_grad=False``. The copy is in eval mode
    (used by snip and grasp).
    """

    def __init__(self, model: nn.Module, layers: Sequence[PrunableLayer], *, dtype: torch.dtype | None = None) -> None:
        # the raw weights are shared with the model, not copied (never written in
        # place here; a dtype conversion makes new tensors)
        module = _copy_sharing(model, [layer.theta for layer in layers])
        if dtype is not None:
            module = module.to(dtype)
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        mods = dict(module.named_modules())
        self.module = module
        self.layer_modules: list[nn.Module] = []
        self.thetas: list[torch.Tensor] = []
        self.masks: list[torch.Tensor] = []
        for layer in layers:
            m = mods[layer.name]
            if layer.kind == "masked":
                theta = m.weight
            else:
                if not hasattr(m, "weight_orig"):
                    tprune.custom_from_mask(m, "weight", torch.ones_like(m.weight, dtype=torch.bool))
                theta = m.weight_orig
            mask = (m.weight_mask != 0).to(theta.dtype)
            m._buffers["weight_mask"] = mask
            theta.requires_grad_(True)
            self.layer_modules.append(m)
            self.thetas.append(theta)
            self.masks.append(mask)
        self.release()

    @property
    def dtype(self) -> torch.dtype:
        return self.thetas[0].dtype

    @property
    def device(self) -> torch.device:
        return self.thetas[0].device

    def set_masks(self, flat_mask: torch.Tensor) -> None:
        """Copy the flat bool mask (N,) (layers row-major, forward order) into the buffers."""
        parts = torch.split(flat_mask.to(self.device), [b.numel() for b in self.masks])
        with torch.no_grad():
            for buf, m in zip(self.masks, parts):
                buf.copy_(m.view(buf.shape))

    def differentiable_masks(self) -> list[torch.Tensor]:
        """Make the float mask buffers leaves requiring grad (SNIP's dL/dm) and
        return them (the buffers themselves, no copy); :meth:`restore_masks`
        turns the grad off again."""
        for mod, buf in zip(self.layer_modules, self.masks):
            buf.requires_grad_(True)
            mod._buffers["weight_mask"] = buf
        return list(self.masks)

    def restore_masks(self) -> None:
        for mod, buf in zip(self.layer_modules, self.masks):
            buf.requires_grad_(False)
            mod._buffers["weight_mask"] = buf

    def release(self) -> None:
        """Drop the derived weights ``theta * mask`` that torch-pruned layers
        keep between forwards (their pre-hook recomputes them at the next
        forward): one copy of the weights less while scores are computed."""
        for mod in self.layer_modules:
            if hasattr(mod, "weight_orig"):
                mod.__dict__.pop("weight", None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class LinearisedCopy:
    """SynFlow's |.|-linearised private copy of the model, in ``dtype``.

    Every floating parameter and buffer of the copy is replaced by its
    absolute value. Each prunable layer's weight is replaced by a leaf
    Parameter ``weights[i]`` holding the *effective* weight
    ``|theta| * mask`` (torch-pruning hooks are removed from the copy;
    masked layers keep an all-ones mask and their weight scale), which
    :meth:`set_masks` refreshes in place from the model's raw weights
    ``thetas[i]`` (not copied). Since
    ``dR/dtheta = mask * dR/dW_eff``, the SynFlow score
    ``|theta| * dR/d|theta|`` equals ``W_eff * dR/dW_eff``.
    """

    def __init__(self, model: nn.Module, layers: Sequence[PrunableLayer], *, dtype: torch.dtype) -> None:
        module = _copy_sharing(model, [layer.theta for layer in layers])  # replaced below, never written
        mods = dict(module.named_modules())
        layer_mods = [mods[layer.name] for layer in layers]
        for m in layer_mods:
            if hasattr(m, "weight_orig"):
                # drop the hook, weight_orig and weight_mask; the weight is replaced below
                tprune.remove(m, "weight")
            # the copy's weight is replaced below: no need to convert it to dtype first
            m.weight = nn.Parameter(torch.empty(0, dtype=m.weight.dtype, device=m.weight.device), requires_grad=False)
        module = module.to(dtype)
        module.eval()
        with torch.no_grad():
            for p in module.parameters():
                p.requires_grad_(False)
                if p.is_floating_point():
                    p.abs_()
            for b in module.buffers():
                if b.is_floating_point():
                    b.abs_()
        self.module = module
        self.thetas: list[torch.Tensor] = [layer.theta.detach() for layer in layers]  # the model's, not copied
        self.weights: list[nn.Parameter] = []
        for layer, m in zip(layers, layer_mods):
            w = nn.Parameter(torch.empty(layer.shape, dtype=dtype, device=layer.theta.device), requires_grad=True)
            m.weight = w
            if layer.kind == "masked":
                m.weight_mask.fill_(True)
            self.weights.append(w)

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    def set_masks(self, flat_mask: torch.Tensor) -> None:
        """W_eff = |theta| * mask for the flat bool mask (N,), written in place
        (|theta| in the copy's dtype, exact, is not kept: it is recomputed from
        the model's weight into W_eff, then multiplied by the mask)."""
        parts = torch.split(flat_mask.to(self.device), [w.numel() for w in self.weights])
        with torch.no_grad():
            for w, t, m in zip(self.weights, self.thetas, parts):
                if w.device.type == "cpu" and t.device.type == "cpu":
                    # numpy's single-threaded loop: robust on busy CPUs where
                    # torch's OpenMP elementwise kernels stall (same result)
                    out = w.data.numpy()
                    if t.dtype == w.dtype:
                        np.abs(t.numpy(), out=out)
                    else:
                        out[...] = t.numpy()  # float32 -> float64 is exact
                        np.abs(out, out=out)
                    np.multiply(out, m.view(t.shape).numpy(), out=out)
                else:
                    w.data.copy_(t)
                    w.data.abs_()
                    w.data.mul_(m.view(t.shape))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def install_masks(layers: Sequence[PrunableLayer], masks: Sequence[torch.Tensor]) -> None:
    """Write ``masks`` (bool, shaped like each weight) into the model.

    Masked layers (module docstring): copied into ``weight_mask`` (in its
    dtype). Other layers: installed with
    ``torch.nn.utils.prune.custom_from_mask``; an already torch-pruned layer
    has its ``weight_mask`` buffer overwritten and ``weight`` recomputed.
    """
    for layer, m in zip(layers, masks):
        mod = layer.module
        m = m.to(layer.theta.device)
        if layer.kind == "masked":
            with torch.no_grad():
                mod.weight_mask.copy_(m.to(mod.weight_mask.dtype))
        else:
            if hasattr(mod, "weight_orig"):
                with torch.no_grad():
                    mod.weight_mask.copy_(m.to(mod.weight_mask.dtype))
            else:
                tprune.custom_from_mask(mod, "weight", m.clone())
            # refresh the derived ``weight`` now, as a graph leaf so that the
            # pruned model can be deep-copied; the pre-hook recomputes it (with
            # its graph to weight_orig) at every forward
            with torch.no_grad():
                setattr(mod, "weight", mod.weight_orig * mod.weight_mask)


def is_chain(model: nn.Module, layers: list[PrunableLayer]) -> bool:
    """True when the prunable layers are applied one after the other in
    registration order: gntk_fast.MLP, or every layer sits in nested
    ``nn.Sequential`` containers only (no residual or custom block)."""
    if isinstance(model, MLP):
        return True
    for l in layers:
        m = model
        parts = l.name.split(".") if l.name else []
        for part in parts:
            if not isinstance(m, nn.Sequential):
                return False
            m = getattr(m, part)
    return True
