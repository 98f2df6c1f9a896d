"""The C++ backend of :func:`gntk_fast.ops.masked_backward.masked_backward`: a sparse
product over the kept weights (csrc/masked_matmul.cpp), sigma' fused."""
from __future__ import annotations

import torch

import gntk_fast.ops.masked_backward as _op

__all__ = ["masked_backward"]


def masked_backward(delta: torch.Tensor, W: torch.Tensor, mask: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
    C = _op._cpp_module()
    return torch.from_numpy(C.masked_backward(delta.contiguous().numpy(), W.contiguous().numpy(),
                                              mask.contiguous().numpy(), grad.contiguous().numpy(), k))
