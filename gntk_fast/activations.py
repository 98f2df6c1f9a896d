"""Elementwise activations with their derivatives.

Named activations (``"relu"``, ``"erf"``, ``"tanh"``, ``"identity"``) have exact
closed-form derivatives; any other elementwise callable (a function or an
``nn.Module`` such as ``nn.GELU()``) is differentiated with autograd.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import torch
from torch import nn

__all__ = ["Activation", "resolve_activation", "NAMED_ACTIVATIONS"]

ActivationLike = Union[str, Callable[[torch.Tensor], torch.Tensor], "Activation"]


def _relu(z):
    return torch.relu(z)


def _drelu(z):
    return (z > 0).to(z.dtype)


def _erf(z):
    return torch.erf(z)


def _derf(z):
    return (2.0 / torch.pi**0.5) * torch.exp(-z * z)


def _tanh(z):
    return torch.tanh(z)


def _dtanh(z):
    t = torch.tanh(z)
    return 1.0 - t * t


def _identity(z):
    return z


def _didentity(z):
    return torch.ones_like(z)


NAMED_ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "relu": (_relu, _drelu),
    "erf": (_erf, _derf),
    "tanh": (_tanh, _dtanh),
    "identity": (_identity, _didentity),
}

# torch.nn modules that are exactly one of the named activations
_MODULE_NAMES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Identity: "identity"}


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``fn`` with derivative ``grad``; ``name`` is one of
    NAMED_ACTIVATIONS or ``"custom"`` for a callable."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def _autograd_derivative(fn: Callable) -> Callable:
    def grad(z: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            y = fn(zz)
            if y.shape != zz.shape:
                raise ValueError("activation must be elementwise (output shape equals input shape)")
            (g,) = torch.autograd.grad(y.sum(), zz)
        return g.detach()

    return grad


def resolve_activation(act: ActivationLike, name: str = "activation") -> Activation:
    """Turn a name, an elementwise callable or an nn.Module into an :class:`Activation`."""
    if isinstance(act, Activation):
        return act
    if isinstance(act, str):
        key = act.lower()
        if key not in NAMED_ACTIVATIONS:
            raise ValueError(
                f"{name} must be one of {sorted(NAMED_ACTIVATIONS)} or a callable; got {act!r}"
            )
        fn, dfn = NAMED_ACTIVATIONS[key]
        return Activation(key, fn, dfn)
    if isinstance(act, nn.Module) and type(act) in _MODULE_NAMES:
        return resolve_activation(_MODULE_NAMES[type(act)])
    if callable(act):
        return Activation("custom", act, _autograd_derivative(act))
    raise TypeError(f"{name} must be a string or a callable; got {type(act).__name__}")
