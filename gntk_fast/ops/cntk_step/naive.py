"""The naive twin of the ``cntk_step`` operation (plain torch; the oracle of the tests).

A loop over the taps gathers the neighbours' rows of Y, then the dual rule's
torch function (closed form or quadrature) evaluates S and Sd.
"""
from __future__ import annotations

import torch

__all__ = ["step"]


def step(plan, Y, nbr, e1, e2, D1, D2, ii, jj, same, groups: int, mask: bool) -> torch.Tensor:
    """``out`` (B, E, 2, K) of :mod:`gntk_fast.ops.cntk_step` (module docstring)."""
    B, E, H, M = Y.shape
    K = D1.shape[2]
    T = nbr.shape[1]
    sig = Y.new_zeros(B, E, K)
    th = Y.new_zeros(B, E, K)
    own = Y.new_zeros(B, E)
    for t in range(T):
        ok = (nbr[:, t] >= 0).to(Y.dtype)[None, :]
        rows = Y[:, nbr[:, t].clamp(min=0)]  # (B, E, H, M)
        g = t if groups > 1 else 0
        sig += rows[:, :, 0, g * K:(g + 1) * K] * ok[..., None]
        if H == 2:
            th += rows[:, :, 1, g * K:(g + 1) * K] * ok[..., None]
        own += rows[:, :, 0, groups * K] * ok
    sig /= T
    th /= T
    th += sig if mask else (own / T)[..., None]
    q11 = D1[ii][:, e1]  # (B, E, K)
    q22 = D2[jj][:, e2]
    snap = same[:, None] & (e1 == e2)[None, :]
    q12 = torch.where(snap[..., None], q11, sig)
    S, Sd = plan.function()(q11, q22, q12)
    return torch.stack([S, Sd * th], dim=2)
