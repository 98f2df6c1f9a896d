"""Gaussian expectations of activations (the "dual" kernels of spec section 3).

For a centred Gaussian pair ``(z, z') ~ N(0, [[q11, q12], [q12, q22]])``::

    S(q11, q22, q12)  = E[sigma(z) sigma(z')]
    Sd(q11, q22, q12) = E[sigma'(z) sigma'(z')]

All functions take broadcastable torch tensors and return ``(S, Sd)`` of the
broadcast shape and dtype.

Closed forms
------------
* relu (arc-cosine kernel of degree 1, *no* factor 2), with the stable angle
  ``theta = atan2(sqrt(max(q11 q22 - q12^2, 0)), q12)`` (never a bare arccos)::

      S  = (sqrt(q11 q22 - q12^2) + (pi - theta) q12) / (2 pi)
      Sd = (pi - theta) / (2 pi)

  Where q11 = 0 or q22 = 0 the pre-activation is identically 0 and, with the
  convention relu'(0) = 0 used by the finite network, Sd = 0.
* erf::

      S  = (2/pi) arcsin(2 q12 / sqrt((1 + 2 q11)(1 + 2 q22)))
      Sd = (4/pi) / sqrt((1 + 2 q11)(1 + 2 q22) - 4 q12^2)

* identity: S = q12, Sd = 1.

Quadrature (any activation)
---------------------------
:func:`quadrature_dual` integrates over the standard normal plane
``(z, z') = (a g1, b g1 + c g2)`` (Cholesky factor of the covariance) in polar
coordinates ``g = r (cos phi, sin phi)``: Gauss-Legendre in the angle on each
of the four arcs between the lines where z = 0 or z' = 0, and Gauss-Legendre
in the radius on [0, R] with ``R = sqrt(2 * 40)`` (the Gaussian tail beyond R
is below 1e-17). A 2-D Gauss-Hermite tensor rule would be the textbook
choice, but it converges only algebraically for activations with a kink or a
jump at 0 (relu, its step derivative: errors ~1e-3 even at 256^2 nodes); on
the arcs the integrand of every such activation is smooth, so this rule
converges exponentially for relu, leaky relu, erf, tanh, gelu, ...
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from .._validation import check_int
from ..activations import Activation, resolve_activation

__all__ = [
    "CLOSED_FORMS",
    "relu_dual",
    "erf_dual",
    "identity_dual",
    "quadrature_dual",
    "hermite_dual",
    "dual_fn",
]

_R_MAX = math.sqrt(80.0)


def relu_dual(q11: torch.Tensor, q22: torch.Tensor, q12: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ReLU closed form (arc-cosine, stable atan2 angle). See module docstring."""
    det = torch.clamp(q11 * q22 - q12 * q12, min=0.0)
    s = torch.sqrt(det)
    theta = torch.atan2(s, q12)
    pt = math.pi - theta
    S = (s + pt * q12) * (0.5 / math.pi)
    Sd = pt * (0.5 / math.pi)
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


CLOSED_FORMS: dict[str, Callable] = {"relu": relu_dual, "erf": erf_dual, "identity": identity_dual}


@lru_cache(maxsize=16)
def _legendre01(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def quadrature_dual(
    act: Activation | str | Callable,
    q11: torch.Tensor,
    q22: torch.Tensor,
    q12: torch.Tensor,
    nodes: int = 32,
    *,
    chunk_elems: int = 1 << 22,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, Sd)`` for any activation by polar Gaussian quadrature.

    Parameters
    ----------
    act : activation name, callable or :class:`~gntk_fast.activations.Activation`
    q11, q22, q12 : broadcastable tensors (variances >= 0, |q12| <= sqrt(q11 q22))
    nodes : int >= 2
        Gauss-Legendre nodes per angular arc (4 arcs) and in the radius:
        ``4 * nodes^2`` activation evaluations per entry.
    chunk_elems : int
        Entries x nodes processed at once (bounds the temporary memory).
    """
    act = resolve_activation(act)
    nodes = check_int("quad_nodes", nodes, min_value=2)
    q11, q22, q12 = torch.broadcast_tensors(q11, q22, q12)
    shape, dtype = q11.shape, q11.dtype
    q11, q22, q12 = (t.reshape(-1).to(torch.float64) for t in (q11, q22, q12))
    # Cholesky of [[q11, q12], [q12, q22]]: z = a g1, z' = b g1 + c g2
    a = torch.sqrt(torch.clamp(q11, min=0.0))
    b = torch.where(a > 0, q12 / torch.where(a > 0, a, torch.ones_like(a)), torch.zeros_like(a))
    # c^2 = det / q11 (not q22 - b^2): exactly 0 when q12 = q11 = q22, so a perfectly
    # correlated pair is not given a spurious angle of sqrt(eps) by rounding
    det = torch.clamp(q11 * q22 - q12 * q12, min=0.0)
    c = torch.where(a > 0, torch.sqrt(det / torch.where(a > 0, q11, torch.ones_like(a))), torch.sqrt(torch.clamp(q22, min=0.0)))
    # the 4 break angles: z = 0 at phi = pi/2, 3pi/2; z' = rho cos(phi - alpha) with
    # alpha = atan2(c, b) vanishes at alpha +- pi/2, i.e. at phi0 and phi0 + pi
    phi0 = torch.remainder(torch.atan2(c, b) + 0.5 * math.pi, math.pi)  # in [0, pi)
    brk = torch.stack([torch.full_like(phi0, 0.5 * math.pi), torch.full_like(phi0, 1.5 * math.pi), phi0, phi0 + math.pi], 1)
    brk, _ = torch.sort(brk, dim=1)
    ends = torch.cat([brk, brk[:, :1] + 2.0 * math.pi], 1)  # (E, 5)
    lo, width = ends[:, :-1], ends[:, 1:] - ends[:, :-1]  # (E, 4)
    xg, wg = (torch.from_numpy(t) for t in _legendre01(nodes))
    phi = (lo[:, :, None] + width[:, :, None] * xg).reshape(len(a), -1)  # (E, 4n)
    wphi = (width[:, :, None] * wg).reshape(len(a), -1)
    r = _R_MAX * xg  # (n,)
    wr = _R_MAX * wg * r * torch.exp(-0.5 * r * r) / (2.0 * math.pi)
    cphi, sphi = torch.cos(phi), torch.sin(phi)
    S = torch.empty_like(a)
    Sd = torch.empty_like(a)
    per = max(1, chunk_elems // (4 * nodes * nodes))
    for s in range(0, len(a), per):
        sl = slice(s, s + per)
        g1 = cphi[sl, :, None] * r  # (e, 4n, n)
        g2 = sphi[sl, :, None] * r
        z = a[sl, None, None] * g1
        zp = b[sl, None, None] * g1 + c[sl, None, None] * g2
        w = wphi[sl, :, None] * wr  # (e, 4n, n)
        S[sl] = (w * act.fn(z) * act.fn(zp)).sum((1, 2))
        Sd[sl] = (w * act.grad(z) * act.grad(zp)).sum((1, 2))
    return S.reshape(shape).to(dtype), Sd.reshape(shape).to(dtype)


def hermite_dual(
    act: Activation | str | Callable, q11: torch.Tensor, q22: torch.Tensor, q12: torch.Tensor, nodes: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, Sd)`` by the textbook 2-D Gauss-Hermite tensor rule (``nodes^2`` points)
    in the Cholesky coordinates ``(z, z') = (a g1, b g1 + c g2)``.

    Exponentially accurate for smooth activations (erf, tanh, gelu); for a kink
    or jump at 0 (relu and its step derivative) it converges only
    algebraically, which is why :func:`quadrature_dual` is the default rule.
    """
    act = resolve_activation(act)
    nodes = check_int("quad_nodes", nodes, min_value=1)
    q11, q22, q12 = torch.broadcast_tensors(q11, q22, q12)
    shape, dtype = q11.shape, q11.dtype
    q11, q22, q12 = (t.reshape(-1, 1, 1).to(torch.float64) for t in (q11, q22, q12))
    a = torch.sqrt(torch.clamp(q11, min=0.0))
    safe = torch.where(a > 0, a, torch.ones_like(a))
    b = torch.where(a > 0, q12 / safe, torch.zeros_like(a))
    det = torch.clamp(q11 * q22 - q12 * q12, min=0.0)
    c = torch.where(a > 0, torch.sqrt(det / torch.where(a > 0, q11, torch.ones_like(a))), torch.sqrt(torch.clamp(q22, min=0.0)))
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    x = torch.from_numpy(x)
    w = torch.from_numpy(w / math.sqrt(2.0 * math.pi))
    W = w[:, None] * w[None, :]
    S = torch.empty(a.shape[0], dtype=torch.float64)
    Sd = torch.empty_like(S)
    per = max(1, (1 << 22) // (nodes * nodes))
    for s0 in range(0, a.shape[0], per):
        sl = slice(s0, s0 + per)
        z = a[sl] * x[:, None]  # (e, n, 1)
        zp = b[sl] * x[:, None] + c[sl] * x[None, :]  # (e, n, n)
        S[sl] = (W * act.fn(z) * act.fn(zp)).sum((1, 2))
        Sd[sl] = (W * act.grad(z) * act.grad(zp)).sum((1, 2))
    return S.reshape(shape).to(dtype), Sd.reshape(shape).to(dtype)


def dual_fn(activation, dual: str = "auto", quad_nodes: int = 32) -> tuple[Callable, str]:
    """The function ``(q11, q22, q12) -> (S, Sd)`` for ``activation`` and a label.

    ``dual="auto"`` uses the closed form when one exists (relu, erf, identity)
    and the quadrature otherwise; ``"closed"`` requires a closed form;
    ``"quadrature"`` always integrates numerically (the polar rule, to test the
    closed forms); ``"hermite"`` uses the plain 2-D Gauss-Hermite rule
    (:func:`hermite_dual`; accurate only for smooth activations).
    """
    act = resolve_activation(activation)
    if dual not in ("auto", "closed", "quadrature", "hermite"):
        raise ValueError(f"dual must be one of 'auto', 'closed', 'quadrature', 'hermite'; got {dual!r}")
    check_int("quad_nodes", quad_nodes, min_value=2)
    if dual == "hermite":

        def gh(q11, q22, q12):
            return hermite_dual(act, q11, q22, q12, quad_nodes)

        return gh, f"{act.name} (2-D Gauss-Hermite, {quad_nodes}^2 nodes)"
    if dual in ("auto", "closed") and act.name in CLOSED_FORMS:
        return CLOSED_FORMS[act.name], f"{act.name} (closed form)"
    if dual == "closed":
        raise ValueError(f"dual='closed' but activation {act.name!r} has no closed form (relu, erf, identity do)")

    def fn(q11, q22, q12):
        return quadrature_dual(act, q11, q22, q12, quad_nodes)

    return fn, f"{act.name} (polar quadrature, {quad_nodes} nodes)"
