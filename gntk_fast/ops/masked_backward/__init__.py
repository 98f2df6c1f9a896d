"""One backward step through a masked weight matrix.

``masked_backward(delta, W, mask, grad, k)`` returns the backward signal of the
layer below,

    delta_prev[r, j] = grad[r // k, j] * sum_i delta[r, i] W[i, j] mask[i, j]

for ``delta`` (N k, n_out) (N inputs, k outputs each), ``W`` the layer's
effective weight (n_out, n_in): scaled and already zero where ``mask`` (its bool
mask) is False, and ``grad`` = sigma'(z) of the layer's input (N, n_in). The
result is (N k, n_in).

Backends, in preference order:

* ``cpp``: a sparse product over the kept weights (csrc/masked_matmul.cpp),
  work ~ N k nnz(mask) instead of N k n_out n_in, with sigma' fused. Chosen by
  "auto" on CPU when the extension has it, the mask keeps at most
  :data:`SPARSE_DENSITY` of its entries and the dense step would cost at least
  :data:`SPARSE_MIN_MACS` multiply-adds (below that, one GEMM wins);
* ``naive``: the plain twin, one dense GEMM ``delta @ W`` (W holds the mask's
  zeros, so no masked copy of W is made) scaled by ``grad``. Serves every call.

Both sum the same products; round-off differs.
"""
from __future__ import annotations

from typing import Any

import torch

from .._registry import Op

__all__ = ["masked_backward", "OP", "SPARSE_DENSITY", "SPARSE_MIN_MACS"]

#: largest kept fraction for which the sparse product beats the dense GEMM
SPARSE_DENSITY = 0.3
#: smallest dense step (N k n_out n_in multiply-adds) worth the sparse product's set-up
SPARSE_MIN_MACS = 1 << 28


def _cpp_module():
    from ... import _backend

    mod = _backend._load_c()[0]
    return mod if mod is not None and hasattr(mod, "masked_backward") else None


def _cpp_check(*, device: str, macs: int, density: float | None, **_: Any) -> str | None:
    if device != "cpu":
        return "the C++ kernel runs on CPU tensors only"
    if _cpp_module() is None:
        return "the C++ extension gntk_fast._C (with masked_backward) is not available"
    if macs < SPARSE_MIN_MACS:
        return f"the step is {macs} multiply-adds (one GEMM is faster below {SPARSE_MIN_MACS})"
    if density is not None and density > SPARSE_DENSITY:
        return f"the mask keeps {density:.2f} of its entries (the sparse product pays below {SPARSE_DENSITY})"
    return None


OP = Op("masked_backward")
OP.register("cpp", "gntk_fast.ops.masked_backward.cpp:masked_backward", devices=("cpu",), check=_cpp_check)
OP.register("naive", "gntk_fast.ops.masked_backward.naive:masked_backward", devices=("cpu", "cuda"))


def masked_backward(delta: torch.Tensor, W: torch.Tensor, mask: torch.Tensor, grad: torch.Tensor, k: int,
                    *, backend: str = "auto") -> torch.Tensor:
    """One backward step (module docstring); ``backend`` as in :mod:`gntk_fast.ops._registry`.

    Examples
    --------
    >>> import torch
    >>> from gntk_fast.ops.masked_backward import masked_backward
    >>> mask = torch.tensor([[1, 0], [1, 1], [0, 0]], dtype=torch.bool)
    >>> W = mask.to(torch.float64)  # the effective weight: zero where the mask is
    >>> masked_backward(torch.ones(1, 3, dtype=torch.float64), W, mask, torch.ones(1, 2, dtype=torch.float64), 1)
    tensor([[2., 1.]], dtype=torch.float64)
    """
    n_out, n_in = W.shape
    if delta.ndim != 2 or delta.shape[1] != n_out or tuple(mask.shape) != (n_out, n_in) or grad.ndim != 2 \
            or grad.shape[1] != n_in or delta.shape[0] != grad.shape[0] * k:
        raise ValueError(f"masked_backward: delta {tuple(delta.shape)}, W {tuple(W.shape)}, mask {tuple(mask.shape)}, "
                         f"grad {tuple(grad.shape)} and k = {k} do not fit (delta (N k, n_out), grad (N, n_in))")
    macs = int(delta.shape[0]) * n_out * n_in
    # the kept fraction (a pass over the mask) only where the sparse product could be chosen
    density = None
    if delta.device.type == "cpu" and (backend != "auto" or macs >= SPARSE_MIN_MACS):
        density = float(torch.count_nonzero(mask)) / max(1, mask.numel())
    fn = OP(backend, delta.device.type, macs=macs, density=density)
    return fn(delta, W, mask, grad, k)
