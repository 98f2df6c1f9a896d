"""Mask plumbing shared by the package's masked networks (MLP, ConvNet).

A network with a ``layers`` ModuleList of masked layers (each with a ``weight``
parameter and a boolean ``weight_mask`` buffer), its ``widths`` (input size,
hidden widths or channels, output size) and its per-layer ``activations`` gets
``masks``, ``weights``, ``set_masks``, ``density``, ``depth`` and
``activation`` from :class:`MaskedLayersMixin`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from .._validation import check_float, check_memory, check_seed, check_tensor
from ..activations import Activation, resolve_activation

__all__ = ["MaskedLayersMixin", "bool_mask", "init_masked_weight"]


def bool_mask(name: str, m, shape: tuple[int, ...]) -> torch.Tensor:
    """A bool tensor of ``shape`` from a bool or 0/1 tensor (ValueError naming ``name`` otherwise)."""
    m = check_tensor(name, m, ndim=len(shape))
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (like the layer's weight); got {tuple(m.shape)}")
    if m.dtype != torch.bool:
        if m.is_floating_point() and not bool(torch.isfinite(m).all()):
            raise ValueError(f"{name} contains non-finite values")
        if not bool(((m == 0) | (m == 1)).all()):
            raise ValueError(f"{name} must be boolean or hold only 0 and 1")
        m = m != 0
    return m


def _generator(seed: int | None) -> torch.Generator:
    """A private CPU generator seeded with ``seed``; None draws the seed from
    torch's global RNG (so ``torch.manual_seed`` makes it reproducible)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
    return gen


def init_masked_weight(layer: nn.Module, shape: tuple[int, ...], fan_in: int, *, bias: bool, weight_scale: Any,
                       bias_scale: Any, dtype: torch.dtype, device: Any, generator: Any, seed: Any, what: str) -> None:
    """Give a masked layer its parameters: an N(0, 1) ``weight`` of ``shape`` (drawn on the
    CPU from ``generator``, or from a generator seeded with ``seed``), a zero ``bias`` of
    ``shape[0]`` entries when ``bias``, an all-True bool ``weight_mask`` buffer, and the
    NTK scales ``weight_scale`` (default ``1 / sqrt(fan_in)``) and ``bias_scale``.
    Refuses (naming ``what``) weights that would not fit in memory."""
    check_memory(f"{what} weights", math.prod(shape) * (torch.empty((), dtype=dtype).element_size() + 1))
    if generator is None:
        generator = _generator(check_seed(seed))
    elif not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")
    w = torch.randn(*shape, generator=generator, dtype=dtype)
    layer.weight = nn.Parameter(w.to(device))
    layer.bias = nn.Parameter(torch.zeros(shape[0], dtype=dtype, device=device)) if bias else None
    layer.register_buffer("weight_mask", torch.ones(shape, dtype=torch.bool, device=device))
    layer.weight_scale = check_float("weight_scale", 1.0 / math.sqrt(fan_in) if weight_scale is None else weight_scale)
    layer.bias_scale = check_float("bias_scale", bias_scale)


class MaskedLayersMixin:
    """``masks``, ``weights``, ``set_masks`` and ``density`` over ``self.layers``;
    ``depth`` and ``activation`` from ``self.widths`` and ``self.activations``."""

    layers: torch.nn.ModuleList
    widths: list[int]
    activations: list[Activation]

    @property
    def depth(self) -> int:
        """Number of hidden layers L (a ConvNet's conv layers): ``len(widths) - 2``."""
        return len(self.widths) - 2

    @property
    def activation(self) -> Activation:
        """The activation when every hidden layer shares one (same name and same
        function), else a ValueError; identity for a model without hidden layers."""
        kinds = {(a.name, id(a.fn)) for a in self.activations}
        if len(kinds) > 1:
            raise ValueError(f"this {type(self).__name__} has per-layer activations; use .activations")
        return self.activations[0] if self.activations else resolve_activation("identity")

    @property
    def masks(self) -> list[torch.Tensor]:
        """The boolean mask buffers, one per layer in forward order (views, not copies)."""
        return [layer.weight_mask for layer in self.layers]

    @property
    def weights(self) -> list[torch.Tensor]:
        return [layer.weight for layer in self.layers]

    def set_masks(self, masks: Sequence[torch.Tensor]):
        """Copy ``masks`` (one bool or 0/1 tensor per layer, shaped like its weight) into the buffers."""
        if not isinstance(masks, (list, tuple)) or len(masks) != len(self.layers):
            n = len(masks) if isinstance(masks, (list, tuple)) else type(masks).__name__
            raise ValueError(f"masks must be a list of {len(self.layers)} tensors (one per layer); got {n}")
        checked = [bool_mask(f"masks[{i}]", m, tuple(layer.weight.shape)) for i, (m, layer) in enumerate(zip(masks, self.layers))]
        with torch.no_grad():
            for m, layer in zip(checked, self.layers):
                layer.weight_mask.copy_(m.to(layer.weight_mask.device))
        return self

    def density(self) -> float:
        """Fraction of all weights kept."""
        return sum(int(m.sum()) for m in self.masks) / sum(m.numel() for m in self.masks)
