"""Numerical Gaussian expectations ``(S, Sd)`` of any activation.

For a centred pair ``(z, z') ~ N(0, [[q11, q12], [q12, q22]])``,
``S = E[sigma(z) sigma(z')]`` and ``Sd = E[sigma'(z) sigma'(z')]``; both rules
write the pair in the Cholesky coordinates ``(z, z') = (a g1, b g1 + c g2)``
of a standard normal ``g``.

* :func:`quadrature_dual` (the default rule): polar coordinates
  ``g = r (cos phi, sin phi)``, Gauss-Legendre in the angle on each of the
  four arcs between the lines where z = 0 or z' = 0, and Gauss-Legendre in the
  radius on [0, R] with ``R = sqrt(2 * 40)`` (the Gaussian tail beyond R is
  below 1e-17). On the arcs the integrand of an activation with a kink or a
  jump at 0 (relu, its step derivative, leaky relu) is smooth, so the rule
  converges exponentially for those as for erf, tanh, gelu, ...
* :func:`hermite_dual`: the textbook 2-D Gauss-Hermite tensor rule;
  exponentially accurate for smooth activations, but only algebraically
  convergent at a kink or jump (relu: errors ~1e-3 even at 48^2 nodes).

Inputs are broadcastable tensors (variances >= 0, |q12| <= sqrt(q11 q22));
the results have the broadcast shape and dtype (computed in float64).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from ..._validation import check_int
from ...activations import Activation, resolve_activation

__all__ = ["quadrature_dual", "hermite_dual"]

_R_MAX = math.sqrt(80.0)
_CHUNK = 1 << 22  # entries x nodes evaluated at once (bounds the temporary memory)


@lru_cache(maxsize=16)
def _legendre01(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def _cholesky(q11, q22, q12):
    """Flattened float64 ``(a, b, c)`` with ``z = a g1, z' = b g1 + c g2``, and the shape/dtype."""
    q11, q22, q12 = torch.broadcast_tensors(q11, q22, q12)
    shape, dtype = q11.shape, q11.dtype
    q11, q22, q12 = (t.reshape(-1).to(torch.float64) for t in (q11, q22, q12))
    a = torch.sqrt(torch.clamp(q11, min=0.0))
    pos = a > 0
    b = torch.where(pos, q12 / torch.where(pos, a, torch.ones_like(a)), torch.zeros_like(a))
    # c^2 = det / q11 (not q22 - b^2): exactly 0 when q12 = q11 = q22, so a perfectly
    # correlated pair is not given a spurious angle of sqrt(eps) by rounding
    det = torch.clamp(q11 * q22 - q12 * q12, min=0.0)
    c = torch.where(pos, torch.sqrt(det / torch.where(pos, q11, torch.ones_like(a))), torch.sqrt(torch.clamp(q22, min=0.0)))
    return a, b, c, shape, dtype


def _integrate(act: Activation, a, b, c, points, per: int):
    """``sum w act(z) act(z')`` and the same for ``act.grad``, over chunks of ``per`` entries.

    ``points(sl) -> (g1, g2, w)``: the nodes and weights of the entries ``sl``,
    shaped (e, m, n) or broadcastable to it."""
    S = torch.empty_like(a)
    Sd = torch.empty_like(a)
    for s0 in range(0, len(a), per):
        sl = slice(s0, s0 + per)
        g1, g2, w = points(sl)
        z = a[sl, None, None] * g1
        zp = b[sl, None, None] * g1 + c[sl, None, None] * g2
        S[sl] = (w * act.fn(z) * act.fn(zp)).sum((1, 2))
        Sd[sl] = (w * act.grad(z) * act.grad(zp)).sum((1, 2))
    return S, Sd


def quadrature_dual(
    act: Activation | str | Callable, q11: torch.Tensor, q22: torch.Tensor, q12: torch.Tensor, nodes: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, Sd)`` by the polar rule (module docstring): ``nodes`` (>= 2)
    Gauss-Legendre nodes per angular arc (4 arcs) and in the radius, i.e.
    ``4 * nodes^2`` activation evaluations per entry."""
    act = resolve_activation(act)
    nodes = check_int("quad_nodes", nodes, min_value=2)
    a, b, c, shape, dtype = _cholesky(q11, q22, q12)
    dev = a.device
    # the 4 break angles: z = 0 at phi = pi/2, 3pi/2; z' = rho cos(phi - alpha) with
    # alpha = atan2(c, b) vanishes at alpha +- pi/2, i.e. at phi0 and phi0 + pi
    phi0 = torch.remainder(torch.atan2(c, b) + 0.5 * math.pi, math.pi)  # in [0, pi)
    brk = torch.stack([torch.full_like(phi0, 0.5 * math.pi), torch.full_like(phi0, 1.5 * math.pi), phi0, phi0 + math.pi], 1)
    brk, _ = torch.sort(brk, dim=1)
    ends = torch.cat([brk, brk[:, :1] + 2.0 * math.pi], 1)  # (E, 5)
    lo, width = ends[:, :-1], ends[:, 1:] - ends[:, :-1]  # (E, 4)
    xg, wg = (torch.from_numpy(t).to(dev) for t in _legendre01(nodes))
    phi = (lo[:, :, None] + width[:, :, None] * xg).reshape(len(a), -1)  # (E, 4n)
    wphi = (width[:, :, None] * wg).reshape(len(a), -1)
    r = _R_MAX * xg  # (n,)
    wr = _R_MAX * wg * r * torch.exp(-0.5 * r * r) / (2.0 * math.pi)
    cphi, sphi = torch.cos(phi), torch.sin(phi)

    def points(sl):  # (e, 4n, n)
        return cphi[sl, :, None] * r, sphi[sl, :, None] * r, wphi[sl, :, None] * wr

    S, Sd = _integrate(act, a, b, c, points, max(1, _CHUNK // (4 * nodes * nodes)))
    return S.reshape(shape).to(dtype), Sd.reshape(shape).to(dtype)


def hermite_dual(
    act: Activation | str | Callable, q11: torch.Tensor, q22: torch.Tensor, q12: torch.Tensor, nodes: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, Sd)`` by the 2-D Gauss-Hermite tensor rule (``nodes^2`` points, module docstring)."""
    act = resolve_activation(act)
    nodes = check_int("quad_nodes", nodes, min_value=1)
    a, b, c, shape, dtype = _cholesky(q11, q22, q12)
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    x = torch.from_numpy(x).to(a.device)
    w = torch.from_numpy(w / math.sqrt(2.0 * math.pi)).to(a.device)
    g1, g2, W = x[None, :, None], x[None, None, :], (w[:, None] * w[None, :])[None]  # shared by every entry
    S, Sd = _integrate(act, a, b, c, lambda sl: (g1, g2, W), max(1, _CHUNK // (nodes * nodes)))
    return S.reshape(shape).to(dtype), Sd.reshape(shape).to(dtype)
