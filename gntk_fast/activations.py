"""Elementwise activations: one :class:`Activation` object each, one registry.

An activation carries everything the library computes with it (like a
neural-tangents stax layer that carries its kernel function):

* ``fn`` and its derivative ``grad`` (the finite network, the eNTK);
* ``dual``: the closed form of its Gaussian expectations, for a centred pair
  ``(z, z') ~ N(0, [[q11, q12], [q12, q22]])``::

      S(q11, q22, q12)  = E[sigma(z) sigma(z')]
      Sd(q11, q22, q12) = E[sigma'(z) sigma'(z')]

  as ``dual(q11, q22, q12) -> (S, Sd)`` on broadcastable torch tensors (the
  broadcast shape and dtype), or None: then the analytic Graphon NTK
  integrates numerically (:mod:`gntk_fast.ops.dual.quadrature`);
* ``numba_dual``: the same closed form as a scalar function
  ``(q11, q22, q12) -> (S, Sd)`` of floats written with :mod:`math` (Numba
  compiles it into the fused pair kernel of :mod:`gntk_fast.ops.dual.numba`),
  or None;
* ``triton_dual``: a ``@triton.jit`` function ``(q11, q22, q12) -> (S, Sd)``
  on blocks, or its ``"module:attribute"`` (imported on first use, so this
  module never imports Triton), or None. It is inlined into the fused kernel
  of :mod:`gntk_fast.ops.dual.triton`; it must also run under the CPU
  interpreter (``TRITON_INTERPRET=1``), which rules out ``libdevice`` calls.

Named activations ("relu", "erf", "tanh", "identity") are the entries of
:data:`NAMED_ACTIVATIONS`; :func:`register_activation` adds one (a single
call makes a new activation available by name to models, the eNTK and every
backend of the analytic kernel that it has a piece for). Any other
elementwise callable (a function or an ``nn.Module`` such as ``nn.GELU()``)
becomes ``Activation("custom", fn, autograd derivative)``.

Closed forms of the named activations
-------------------------------------
* relu (arc-cosine kernel of degree 1, *no* factor 2), with the stable angle
  ``theta = atan2(sqrt(max(q11 q22 - q12^2, 0)), q12)`` (never a bare arccos)::

      S  = (sqrt(q11 q22 - q12^2) + (pi - theta) q12) / (2 pi)
      Sd = (pi - theta) / (2 pi)

  The scalar Numba form computes the same angle without ``atan2`` (a
  polynomial arc tangent on a reduced range, selects only, accurate to
  rounding), so that Numba loops over it vectorise.

  Where q11 = 0 or q22 = 0 the pre-activation is identically 0 and, with the
  convention relu'(0) = 0 used by the finite network, Sd = 0.
* erf::

      S  = (2/pi) arcsin(2 q12 / sqrt((1 + 2 q11)(1 + 2 q22)))
      Sd = (4/pi) / sqrt((1 + 2 q11)(1 + 2 q22) - 4 q12^2)

  (the arcsine argument clipped to [-1, 1], the radicand of Sd to >= 1).
* identity: S = q12, Sd = 1.
* tanh: no closed form (quadrature).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping, Union

import torch
from torch import nn

__all__ = [
    "Activation",
    "resolve_activation",
    "register_activation",
    "NAMED_ACTIVATIONS",
    "relu_dual",
    "erf_dual",
    "identity_dual",
]

ActivationLike = Union[str, Callable[[torch.Tensor], torch.Tensor], "Activation"]
DualFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]

_INV2PI = 0.5 / math.pi


@dataclass(frozen=True)
class Activation:
    """An elementwise activation with everything computed from it (module docstring).

    name:        registry key, or ``"custom"`` for an unregistered callable
    fn, grad:    the activation and its derivative (elementwise, torch)
    dual:        closed form ``(q11, q22, q12) -> (S, Sd)`` (torch, broadcasting) or None
    numba_dual:  scalar closed form for Numba (``math`` functions only) or None
    triton_dual: ``@triton.jit`` block closed form, its ``"module:attribute"``, or None
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor], torch.Tensor]
    dual: DualFn | None = None
    numba_dual: Callable[[float, float, float], tuple[float, float]] | None = None
    triton_dual: Any = None

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


# ----------------------------------------------------------------- closed forms (torch)
def relu_dual(q11: torch.Tensor, q22: torch.Tensor, q12: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ReLU closed form (arc-cosine, stable atan2 angle). See module docstring."""
    det = torch.clamp(q11 * q22 - q12 * q12, min=0.0)
    s = torch.sqrt(det)
    theta = torch.atan2(s, q12)
    pt = math.pi - theta
    S = (s + pt * q12) * _INV2PI
    Sd = pt * _INV2PI
    Sd = torch.where((q11 > 0) & (q22 > 0), Sd, torch.zeros_like(Sd))
    return S, Sd


def erf_dual(q11: torch.Tensor, q22: torch.Tensor, q12: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Erf closed form (arcsine kernel). See module docstring."""
    p = (1.0 + 2.0 * q11) * (1.0 + 2.0 * q22)
    S = (2.0 / math.pi) * torch.asin(torch.clamp(2.0 * q12 / torch.sqrt(p), -1.0, 1.0))
    Sd = (4.0 / math.pi) / torch.sqrt(torch.clamp(p - 4.0 * q12 * q12, min=1.0))
    return S, Sd


def identity_dual(q11: torch.Tensor, q22: torch.Tensor, q12: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Identity: S = q12, Sd = 1."""
    S = torch.broadcast_tensors(q11, q22, q12)[2].clone()
    return S, torch.ones_like(S)


# ----------------------------------------------------------------- closed forms (scalar, for Numba)
# atan(y) = y P(y^2) on |y| <= tan(pi/8): P interpolates atan(sqrt t)/sqrt t at 12 Chebyshev
# nodes of [0, tan(pi/8)^2] (computed in 50-digit arithmetic; the interpolation error is 3e-18)
_ATAN_P = (1.0, -0.3333333333333312, 0.19999999999940837, -0.14285714279244968, 0.11111110744657099,
           -0.09090896801472813, 0.07692045194561481, -0.06662950246036792, 0.05846866752275139,
           -0.05035049795312439, 0.03796390316111083, -0.017803896394812564)
_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7, _P8, _P9, _P10, _P11 = _ATAN_P
_TAN_PI_8 = 0.41421356237309503


def _relu_dual_scalar(q11: float, q22: float, c: float) -> tuple[float, float]:  # pragma: no cover - compiled
    # pi - atan2(r, c) without a libm call, in selects only (so that a Numba loop over it compiled with
    # error_model="numpy" vectorises): phi = atan(min(r, |c|) / max(r, |c|)) in [0, pi/4], reduced to
    # |y| <= tan(pi/8) by atan(x) = pi/4 + atan((x - 1) / (x + 1)); then the quadrant of (c, r), r >= 0
    # (a negative zero c counts as negative, as in atan2)
    det = q11 * q22 - c * c
    det = max(det, 0.0)
    r = math.sqrt(det)
    ac = abs(c)
    big = r > ac
    lo = ac if big else r
    hi = r if big else ac
    x = lo / (hi if hi > 0.0 else 1.0)
    red = x > _TAN_PI_8
    y = (x - 1.0) / (x + 1.0) if red else x
    t = y * y
    p = ((((((((((_P11 * t + _P10) * t + _P9) * t + _P8) * t + _P7) * t + _P6) * t + _P5) * t + _P4) * t + _P3)
          * t + _P2) * t + _P1) * t + _P0
    phi = y * p + (0.25 * math.pi if red else 0.0)
    neg = math.copysign(1.0, c) < 0.0
    pt = (0.5 * math.pi - phi if big else phi) if neg else (0.5 * math.pi + phi if big else math.pi - phi)
    sd = pt * _INV2PI if ((q11 > 0.0) & (q22 > 0.0)) else 0.0
    return (r + pt * c) * _INV2PI, sd


def _erf_dual_scalar(q11: float, q22: float, c: float) -> tuple[float, float]:  # pragma: no cover - compiled
    q = (1.0 + 2.0 * q11) * (1.0 + 2.0 * q22)
    x = min(1.0, max(-1.0, 2.0 * c / math.sqrt(q)))
    return (2.0 / math.pi) * math.asin(x), (4.0 / math.pi) / math.sqrt(max(q - 4.0 * c * c, 1.0))


def _identity_dual_scalar(q11: float, q22: float, c: float) -> tuple[float, float]:  # pragma: no cover - compiled
    return c, 1.0


# ----------------------------------------------------------------- elementwise functions
def _drelu(z):
    return (z > 0).to(z.dtype)


def _derf(z):
    return (2.0 / math.sqrt(math.pi)) * torch.exp(-z * z)


def _dtanh(z):
    t = torch.tanh(z)
    return 1.0 - t * t


def _identity(z):
    return z


# ----------------------------------------------------------------- the registry
_REGISTRY: dict[str, Activation] = {}
#: name -> :class:`Activation` (read-only view; add entries with :func:`register_activation`)
NAMED_ACTIVATIONS: Mapping[str, Activation] = MappingProxyType(_REGISTRY)

_TRITON = "gntk_fast.ops.dual.triton:"


def register_activation(act: Activation, *, replace: bool = False) -> Activation:
    """Make ``act`` available by its name everywhere an activation is accepted.

    ``act.name`` must be a new lower-case name (``replace=True`` overwrites an
    existing entry); returns ``act``.
    """
    if not isinstance(act, Activation):
        raise TypeError(f"act must be an Activation; got {type(act).__name__}")
    if not isinstance(act.name, str) or not act.name or act.name != act.name.lower() or act.name == "custom":
        raise ValueError(f"act.name must be a non-empty lower-case name other than 'custom'; got {act.name!r}")
    for field in ("fn", "grad"):
        if not callable(getattr(act, field)):
            raise TypeError(f"act.{field} must be callable")
    for field in ("dual", "numba_dual"):
        if getattr(act, field) is not None and not callable(getattr(act, field)):
            raise TypeError(f"act.{field} must be callable or None")
    t = act.triton_dual
    if t is not None and not callable(t) and not (isinstance(t, str) and ":" in t):
        raise TypeError("act.triton_dual must be a @triton.jit function, a 'module:attribute' string or None")
    if act.name in _REGISTRY and not replace and _REGISTRY[act.name] is not act:
        raise ValueError(f"act.name {act.name!r} is already registered (pass replace=True to overwrite it)")
    _REGISTRY[act.name] = act
    return act


register_activation(Activation("relu", torch.relu, _drelu, relu_dual, _relu_dual_scalar, _TRITON + "relu_dual"))
register_activation(Activation("erf", torch.erf, _derf, erf_dual, _erf_dual_scalar, _TRITON + "erf_dual"))
register_activation(Activation("tanh", torch.tanh, _dtanh))
register_activation(
    Activation("identity", _identity, torch.ones_like, identity_dual, _identity_dual_scalar, _TRITON + "identity_dual")
)

# torch.nn modules that are exactly one of the named activations
_MODULE_NAMES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Identity: "identity"}


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
    """Turn a registered name, an elementwise callable or an nn.Module into an :class:`Activation`."""
    if isinstance(act, Activation):
        return act
    if isinstance(act, str):
        key = act.lower()
        if key not in _REGISTRY:
            raise ValueError(f"{name} must be one of {sorted(_REGISTRY)} or a callable; got {act!r}")
        return _REGISTRY[key]
    if isinstance(act, nn.Module) and type(act) in _MODULE_NAMES:
        return _REGISTRY[_MODULE_NAMES[type(act)]]
    if callable(act):
        return Activation("custom", act, _autograd_derivative(act))
    raise TypeError(f"{name} must be a string or a callable; got {type(act).__name__}")
