"""Models: masked NTK-parameterised networks and plain PyTorch reference architectures.

* :mod:`.mlp`: :class:`MaskedLinear`, :class:`MLP` and the Synaptic-Flow
  :func:`fc` network;
* :mod:`.conv`: :class:`MaskedConv2d` and the convolutional :class:`ConvNet`;
* :mod:`.zoo`: plain ``nn.Module`` :func:`vgg` (VGG-11/16) and :func:`resnet20`.

Depth convention (everywhere in gntk_fast): ``depth`` counts **hidden**
layers (the conv layers of a :class:`ConvNet`). The parameterisations are
written out in docs/models.md.
"""
from __future__ import annotations

from .conv import PADDINGS, READOUTS, ConvNet, MaskedConv2d
from .mlp import MLP, MaskedLinear, fc
from .zoo import VGG_PLANS, BasicBlock, ResNet, VGG, resnet20, vgg

__all__ = [
    "MaskedLinear",
    "MLP",
    "fc",
    "MaskedConv2d",
    "ConvNet",
    "PADDINGS",
    "READOUTS",
    "vgg",
    "resnet20",
    "VGG",
    "ResNet",
    "BasicBlock",
    "VGG_PLANS",
]
