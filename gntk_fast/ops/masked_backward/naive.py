"""Plain twin of :func:`gntk_fast.ops.masked_backward.masked_backward`: one dense GEMM."""
from __future__ import annotations

import torch

__all__ = ["masked_backward"]


def masked_backward(delta: torch.Tensor, W: torch.Tensor, mask: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
    """(delta @ W) scaled row by row by sigma' of each row's input (W is zero where the mask is)."""
    N = grad.shape[0]
    out = delta @ W
    return (out.reshape(N, k, -1) * grad[:, None, :]).reshape(N * k, -1)
