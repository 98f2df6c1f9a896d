"""The naive twin of the dual operation (plain torch; the oracle of the tests).

``pairs`` gathers the diagonals of the pairs and evaluates the dual of the
activation with the chosen rule (its torch closed form ``Activation.dual``,
the polar quadrature or the Gauss-Hermite rule of
:mod:`gntk_fast.ops.dual.quadrature`), then multiplies by ``BT``;
``backward`` is the backward step of the recursion as two torch expressions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


from ...activations import Activation
from .quadrature import hermite_dual, quadrature_dual

__all__ = ["DualKernels", "dual_function", "pairs", "backward", "KERNELS"]


@dataclass(frozen=True)
class DualKernels:
    """One backend's two kernels (shapes in :mod:`gntk_fast.ops.dual`)."""

    pairs: Callable  # (act, rule, quad_nodes, Da, Db, ii, jj, s, BT) -> (S, Sd, S @ BT)
    backward: Callable  # (G, Bb, Sd, w, pre) -> (G', vec)


def dual_function(act: Activation, rule: str, quad_nodes: int) -> Callable:
    """``(q11, q22, q12) -> (S, Sd)`` of ``act`` by ``rule`` ("closed",
    "quadrature" or "hermite"; "closed" needs ``act.dual``)."""
    if rule == "closed":
        return act.dual
    integrate = quadrature_dual if rule == "quadrature" else hermite_dual

    def fn(q11, q22, q12):
        return integrate(act, q11, q22, q12, quad_nodes)

    return fn


def pairs(act: Activation, rule: str, quad_nodes: int, Da, Db, ii, jj, s, BT):
    """``(S, Sd, S @ BT)`` of the pairs ``(Da[ii[p]], Db[jj[p]], s[p])``."""
    S, Sd = dual_function(act, rule, quad_nodes)(Da[ii], Db[jj], s)
    return S, Sd, S @ BT


def backward(G, Bb, Sd, w, pre):
    """One backward step: ``G' = Sd o (G @ Bb)`` and ``(G' o pre) @ w`` (``G' @ w`` when pre is None)."""
    Gn = Sd * (G @ Bb)
    return Gn, (Gn * pre if pre is not None else Gn) @ w


KERNELS = DualKernels(pairs, backward)
