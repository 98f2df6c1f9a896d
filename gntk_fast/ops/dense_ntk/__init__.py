"""The NTK of a network with one quadrature node per layer (every graphon constant).

When every graphon of the network is constant, each hidden layer of the
analytic recursion (docs/graphon-ntk.md section 3) has a single node and the
kernel is the NTK of a dense bias-free network whose layer l has weight
variance ``v_l`` (the constant variance graphon, or the mask graphon) and
whose gradient term of layer l is weighted by ``c_l`` (the mask graphon: the
kept fraction that counts the layer's parameters). For inputs x1 (N1, d),
x2 (N2, d) and ``q = x.x'/d``, per pair of inputs (x, x')::

    s^1 = v_1 q,   o^1 = c_1 q
    (S^l, Sd^l) = dual of the activation at [[s^l(x,x), s^l], [s^l, s^l(x',x')]]
    s^{l+1} = v_{l+1} S^l,   o^{l+1} = c_{l+1} S^l,       l = 1..L
    NNGP = s^{L+1}            (v_{L+1} is summed over the k outputs)
    G^L = v_{L+1} Sd^L,   G^l = v_{l+1} Sd^l G^{l+1}
    trainable="mask":  Theta = o^{L+1} + sum_{l=1}^L G^l o^l
    trainable="all":   Theta = k S^L + sum_{l=1}^L G^l S^{l-1}    (S^0 = q)

The diagonals ``s^l(x, x)`` come from the same recursion on (x, x). Every pair
of identical inputs takes ``s^l(x, x')`` from the diagonal, bit for bit (the
arc-cosine's derivative is infinite at correlation 1, so the GEMM's rounding
in q would cost ~1e-8 in the kernel there). The closed forms of the scale
factors (docs/graphon-ntk.md, "Constant graphons"): for a positively
homogeneous activation (ReLU), ``Theta_mask = V sum_l (c_l / v_l) T_l`` and
``Theta_all = sum_l (V / v_l) T_l`` with ``V = prod_l v_l`` and ``T_l`` the
dense NTK's layer-l term.

Backends, in preference order (the one ``backend="auto"`` rule of
:mod:`gntk_fast.ops._registry`):

* ``"numba"`` (CPU; activations with a scalar closed form ``numba_dual``,
  rule "closed"): one GEMM ``x1 x2^T`` (row blocks of the upper triangle
  only when x2 = x1), then one fused parallel pass over the pairs that runs the whole forward and backward recursion per row of pairs
  in place in the GEMM's output (only i <= j when x2 = x1, then mirrored).
  Working memory beside the (N1, N2) result (and the NNGP when asked):
  O(L N) for the diagonals plus O(L N2) per thread;
* ``"naive"`` (CPU, CUDA; every activation and rule): the twin, torch
  expressions over the whole (N1, N2) matrix, layer by layer.

:func:`dense_ntk` is the one entry (validation once, dispatch through the
registry).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..._validation import MAX_WIDTH, check_bool, check_choice, check_int
from ..dual import numba_dual_check, plan_dual
from .._registry import Op

__all__ = ["OP", "dense_ntk", "DenseNTK"]


def _numba_check(device: str, act, rule: str, **_: Any) -> str | None:
    return numba_dual_check(device=device, act=act, rule=rule)


OP = Op("dense_ntk")
OP.register("numba", "gntk_fast.ops.dense_ntk.numba:dense_ntk", devices=("cpu",), check=_numba_check)
OP.register("naive", "gntk_fast.ops.dense_ntk.naive:dense_ntk", devices=("cpu", "cuda"))


@dataclass(frozen=True)
class DenseNTK:
    """Result of :func:`dense_ntk`: the kernel (N1, N2) and the output NNGP (None unless asked)."""

    kernel: torch.Tensor
    nngp: torch.Tensor | None


def _scales(name: str, values: Any, n: int | None) -> tuple[float, ...]:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().tolist()
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers; got {type(values).__name__}") from None
    if len(out) < 2 or (n is not None and len(out) != n):
        want = "at least 2" if n is None else str(n)
        raise ValueError(f"{name} must have {want} entries (one per layer, input to read-out); got {len(out)}")
    if not all(math.isfinite(v) and v >= 0.0 for v in out):
        raise ValueError(f"{name} must be finite numbers >= 0; got {list(out)}")
    return out


def dense_ntk(x1: torch.Tensor, x2: torch.Tensor | None, scales: Sequence[float], *,
              own_scales: Sequence[float] | None = None, activation: Any = "relu", trainable: str = "mask",
              n_outputs: int = 1, return_nngp: bool = False, dual: str | None = None, quad_nodes: int = 32,
              backend: str = "auto", progress: bool | None = None) -> DenseNTK:
    """The kernel of the recursion in the module docstring.

    Parameters
    ----------
    x1 : (N1, d) float32 or float64 tensor.
    x2 : (N2, d) tensor of x1's dtype and device, or None (x2 = x1: the
        symmetric kernel, exactly symmetric).
    scales : L + 1 numbers >= 0, ``v_1 .. v_{L+1}`` (the read-out's summed
        over the outputs). L = len(scales) - 1 hidden layers.
    own_scales : L + 1 numbers >= 0, ``c_1 .. c_{L+1}``, or None (= scales).
        Used by ``trainable="mask"`` only.
    activation, dual, quad_nodes : as in :func:`gntk_fast.ops.dual.plan_dual`.
    trainable : "mask" or "all" (module docstring).
    n_outputs : k, the read-out outputs (the factor of ``"all"``'s read-out term).
    return_nngp : also return the output NNGP.
    backend : "auto", "numba" or "naive".
    progress : tqdm bar over the pairs (None: only for long calls).

    Returns
    -------
    DenseNTK
        ``kernel`` (N1, N2) of x1's dtype and device and ``nngp`` (or None).

    Examples
    --------
    >>> import torch
    >>> from gntk_fast.ops.dense_ntk import dense_ntk
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> res = dense_ntk(x, None, [1.0, 1.0], return_nngp=True)
    >>> res.nngp  # q = I / 2 and S = q / 2 at identical inputs, 1 / (4 pi) between orthogonal ones
    tensor([[0.2500, 0.0796],
            [0.0796, 0.2500]], dtype=torch.float64)
    """
    for name, t in (("x1", x1), ("x2", x2)):
        if t is None and name == "x2":
            continue
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise TypeError(f"{name} must be a 2-D torch tensor; got {type(t).__name__}")
        if t.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{name} must be float32 or float64; got {t.dtype}")
    if x1.shape[0] < 1 or x1.shape[1] < 1:
        raise ValueError(f"x1 must be a non-empty (N, d) matrix; got shape {tuple(x1.shape)}")
    if x2 is not None:
        if x2.dtype != x1.dtype or x2.device != x1.device:
            raise ValueError(f"x2 must have x1's dtype and device ({x1.dtype} on {x1.device}); got {x2.dtype} on {x2.device}")
        if x2.shape[0] < 1 or x2.shape[1] != x1.shape[1]:
            raise ValueError(f"x2 must be a non-empty (N, {x1.shape[1]}) matrix; got shape {tuple(x2.shape)}")
    v = _scales("scales", scales, None)
    c = v if own_scales is None else _scales("own_scales", own_scales, len(v))
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    k = check_int("n_outputs", n_outputs, min_value=1, max_value=MAX_WIDTH)
    return_nngp = check_bool("return_nngp", return_nngp)
    if progress is not None:
        progress = check_bool("progress", progress)
    plan = plan_dual(activation, dual=dual, quad_nodes=quad_nodes, backend="naive", device=x1.device)
    fn = OP(backend, x1.device.type, act=plan.activation, rule=plan.rule)
    theta, nngp = fn(plan, x1.contiguous(), None if x2 is None else x2.contiguous(), v, c, trainable, k,
                     return_nngp, progress)
    return DenseNTK(theta, nngp)
