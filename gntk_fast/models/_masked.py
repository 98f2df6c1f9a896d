"""Mask plumbing shared by the package's masked networks (MLP, ConvNet).

A network with a ``layers`` ModuleList of masked layers (each with a ``weight``
parameter and a boolean ``weight_mask`` buffer), its ``widths`` (input size,
hidden widths or channels, output size) and its per-layer ``activations`` gets
``masks``, ``weights``, ``set_masks``, ``density``, ``depth`` and
``activation`` from :class:`MaskedLayersMixin`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .._validation import check_tensor
from ..activations import Activation, resolve_activation

__all__ = ["MaskedLayersMixin", "bool_mask"]


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
