"""The dual operation of the analytic Graphon NTK recursion, one entry, three backends.

For P pairs of inputs and one layer of K nodes, with the diagonals
Da (N1, K), Db (N2, K) (``s~(x, x)`` per input), the pair indices ii, jj (P,)
and the cross covariances s (P, K)::

    S[p, a], Sd[p, a] = dual of the activation at (Da[ii[p], a], Db[jj[p], a], s[p, a])
    out               = S @ BT          (BT (K, NO): the next layer's node matmul)

(``S = E[sigma(z) sigma(z')]``, ``Sd = E[sigma'(z) sigma'(z')]``, see
:mod:`gntk_fast.activations`), and the backward step of the recursion
``G' = Sd o (G @ Bb)``, ``vec = (G' o pre) @ w`` (``G' @ w`` without pre).

Rules (``dual=``): None (the activation's closed form when it has one, else
the polar quadrature), "closed", "quadrature" (polar Gaussian quadrature of
:mod:`gntk_fast.ops.dual.quadrature`, any activation), "hermite" (2-D
Gauss-Hermite; smooth activations only).

Backends, in preference order (the one ``backend="auto"`` rule of
:mod:`gntk_fast.ops._registry`):

* ``"triton"`` (native on "cuda"; on CPU tensors only when named, under
  TRITON_INTERPRET=1): fused dual + node matmul and fused backward step;
  closed forms of activations with a ``triton_dual``;
* ``"numba"`` (native on "cpu"): a fused parallel pass over the pairs built
  from the activation's ``numba_dual``; closed forms only;
* ``"naive"`` ("cpu", "cuda"): torch; every activation and rule.

:func:`plan_dual` resolves the backend and rule once (for a loop over chunks);
:func:`pair_dual` is the one-call entry.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import torch

from ..._backend import triton_available, triton_interpret
from ..._validation import check_choice, check_int
from ...activations import NAMED_ACTIVATIONS, Activation, resolve_activation
from .._registry import Op

__all__ = ["DUAL", "numba_dual_check", "DUAL_RULES", "MAX_QUAD_NODES", "DualPlan", "DualPairs", "plan_dual", "pair_dual", "resolve_rule"]

DUAL_RULES = ("closed", "quadrature", "hermite")
#: bound on ``quad_nodes`` (the polar rule evaluates the activation 4 quad_nodes^2 times per entry)
MAX_QUAD_NODES = 1024


def _triton_check(device: str, act: Activation, rule: str, **_: Any) -> str | None:
    if act.triton_dual is None:
        return f"activation {act.name!r} has no Triton dual (Activation.triton_dual)"
    if rule != "closed":
        return f"dual={rule!r} requested; the Triton kernel evaluates closed forms only"
    if not triton_available():
        return "triton is not installed"
    if device != "cuda" and not triton_interpret():
        return f"it needs CUDA tensors (or TRITON_INTERPRET=1 for the CPU interpreter); got device {device!r}"
    return None


def numba_dual_check(device: str, act: Activation, rule: str, **_: Any) -> str | None:
    """Why a Numba kernel of closed-form duals cannot serve the call, or None (shared by the ops that use them)."""
    if act.numba_dual is None:
        return f"activation {act.name!r} has no Numba dual (Activation.numba_dual)"
    if rule != "closed":
        return f"dual={rule!r} requested; the Numba kernel evaluates closed forms only"
    if device != "cpu":
        return f"it needs CPU tensors; got device {device!r}"
    if importlib.util.find_spec("numba") is None:
        return "numba is not installed"
    return None


DUAL = Op("dual")
DUAL.register("triton", "gntk_fast.ops.dual.triton:KERNELS", devices=("cuda",), check=_triton_check)
DUAL.register("numba", "gntk_fast.ops.dual.numba:KERNELS", devices=("cpu",), check=numba_dual_check)
DUAL.register("naive", "gntk_fast.ops.dual.naive:KERNELS", devices=("cpu", "cuda"))


@dataclass(frozen=True)
class DualPairs:
    """Result of :func:`pair_dual`: S, Sd (P, K) and out = S @ BT (P, NO), None without BT."""

    S: torch.Tensor
    Sd: torch.Tensor
    out: torch.Tensor | None


@dataclass(frozen=True)
class DualPlan:
    """The dual of one activation with a resolved rule and backend.

    ``pairs(Da, Db, ii, jj, s, BT) -> (S, Sd, S @ BT)`` and
    ``backward(G, Bb, Sd, w, pre) -> (G', vec)`` run on the backend;
    ``function(q11, q22, q12) -> (S, Sd)`` is the naive twin's torch function
    of the rule (used for the diagonals).
    """

    activation: Activation
    rule: str
    quad_nodes: int
    backend: str

    def _kernels(self):
        return DUAL.backends[self.backend].load()

    def pairs(self, Da, Db, ii, jj, s, BT):
        return self._kernels().pairs(self.activation, self.rule, self.quad_nodes, Da, Db, ii, jj, s, BT)

    def backward(self, G, Bb, Sd, w, pre):
        return self._kernels().backward(G, Bb, Sd, w, pre)

    def function(self):
        from .naive import dual_function

        return dual_function(self.activation, self.rule, self.quad_nodes)


def resolve_rule(act: Activation, dual: str | None) -> str:
    """The rule for ``dual`` (None: "closed" when ``act`` has a closed form, else "quadrature")."""
    if dual is None:
        return "closed" if act.dual is not None else "quadrature"
    dual = check_choice("dual", dual, DUAL_RULES)
    if dual == "closed" and act.dual is None:
        have = sorted(n for n, a in NAMED_ACTIVATIONS.items() if a.dual is not None)
        raise ValueError(f"dual='closed' but activation {act.name!r} has no closed form ({', '.join(have)} do)")
    return dual


def plan_dual(activation: Any = "relu", *, dual: str | None = None, quad_nodes: int = 32, backend: str = "auto",
              device: str | torch.device = "cpu") -> DualPlan:
    """Validate the options once and resolve the backend for tensors on ``device``.

    Raises ValueError naming ``dual`` / ``quad_nodes``, and
    :class:`~gntk_fast.ops.BackendError` when a named backend cannot serve the call.
    """
    act = resolve_activation(activation)
    rule = resolve_rule(act, dual)
    quad_nodes = check_int("quad_nodes", quad_nodes, min_value=2, max_value=MAX_QUAD_NODES)
    dev = torch.device(device).type
    b = DUAL.resolve(backend, dev, act=act, rule=rule)
    return DualPlan(act, rule, quad_nodes, b.name)


def pair_dual(activation: Any, Da: torch.Tensor, Db: torch.Tensor, ii: torch.Tensor, jj: torch.Tensor,
              s: torch.Tensor, BT: torch.Tensor | None = None, *, dual: str | None = None, quad_nodes: int = 32,
              backend: str = "auto") -> DualPairs:
    """The dual of ``activation`` on pairs (module docstring), on ``backend``.

    Da (N1, K), Db (N2, K), s (P, K), BT (K, NO) or None: one float dtype
    (float32 or float64) and device; ii, jj (P,) integer indices into Da, Db.
    """
    for name, t in (("s", s), ("Da", Da), ("Db", Db)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor; got {type(t).__name__}")
        if t.dim() != 2:
            raise ValueError(f"{name} must be 2-D; got shape {tuple(t.shape)}")
        if t.dtype not in (torch.float32, torch.float64) or t.dtype != s.dtype or t.device != s.device:
            raise ValueError(f"{name} must be float32 or float64 on the device and dtype of s; got {t.dtype} on {t.device}")
    P, K = s.shape
    for name, t, n in (("ii", ii, Da.shape[0]), ("jj", jj, Db.shape[0])):
        if not isinstance(t, torch.Tensor) or t.shape != (P,) or t.dtype.is_floating_point or t.dtype == torch.bool:
            raise ValueError(f"{name} must be an integer tensor of shape ({P},)")
        if P and (int(t.min()) < 0 or int(t.max()) >= n):
            raise ValueError(f"{name} must index rows 0..{n - 1}")
    if Da.shape[1] != K or Db.shape[1] != K:
        raise ValueError(f"Da and Db must have {K} columns (as s); got {Da.shape[1]} and {Db.shape[1]}")
    if BT is not None and (not isinstance(BT, torch.Tensor) or BT.dim() != 2 or BT.shape[0] != K or BT.dtype != s.dtype):
        raise ValueError(f"BT must be a ({K}, NO) tensor of dtype {s.dtype}")
    plan = plan_dual(activation, dual=dual, quad_nodes=quad_nodes, backend=backend, device=s.device)
    ii, jj = ii.to(device=s.device, dtype=torch.int64), jj.to(device=s.device, dtype=torch.int64)
    bt = BT if BT is not None else s.new_zeros(K, 1)
    S, Sd, out = plan.pairs(Da, Db, ii, jj, s, bt)
    return DualPairs(S, Sd, out if BT is not None else None)
