"""Plain twins of the mask selection rules (the oracle of the tests).

*clean*: among the weights kept so far, a stable descending sort of the
scores and the first k kept (k = round(d * N), capped at the unpruned count
when not ``final``). *synaptic-flow*: written like the Synaptic-Flow code,
``threshold = torch.kthvalue(scores, k)`` with ``k = int((1 - d) * N)`` and
``torch.where(score <= threshold, 0, 1)``; unchanged when k < 1.
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["select"]


def _clean(s: torch.Tensor, c: torch.Tensor, density: float, final: bool) -> torch.Tensor:
    kept_idx = torch.nonzero(c).reshape(-1)
    k = round(density * s.numel())
    if not final:
        k = min(k, kept_idx.numel())
    if k > kept_idx.numel():
        raise ValueError(f"sparsity: {k} weights to keep but only {kept_idx.numel()} are unpruned")
    order = torch.sort(s[kept_idx], descending=True, stable=True).indices
    keep = torch.zeros(s.numel(), dtype=torch.bool)
    keep[kept_idx[order[:k]]] = True
    return keep


def _compat(s: torch.Tensor, c: torch.Tensor, density: float) -> torch.Tensor:
    k = int((1.0 - density) * s.numel())
    if k < 1:
        return c.clone()
    threshold, _ = torch.kthvalue(s, k)
    return torch.where(s <= threshold, torch.tensor(0.0), torch.tensor(1.0)) != 0


def select(flat: torch.Tensor, current: torch.Tensor, sizes: Sequence[int], density: float, scope: str,
           rule: str, final: bool) -> torch.Tensor:
    """Flat bool mask (N,) from flat scores (N,) and the flat current mask (N,);
    ``sizes`` are the per-layer weight counts (layerwise scope ranks each layer alone)."""
    s, c = flat.detach().cpu(), current.detach().cpu().to(torch.bool)
    if scope == "global":
        pieces = [(s, c)]
    else:
        pieces = list(zip(torch.split(s, list(sizes)), torch.split(c, list(sizes))))
    rule_fn = (lambda si, ci: _clean(si, ci, density, final)) if rule == "clean" else (lambda si, ci: _compat(si, ci, density))
    return torch.cat([rule_fn(si, ci) for si, ci in pieces]).to(current.device)
