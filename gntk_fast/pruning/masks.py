"""Mask plumbing of ``prune``: flat/per-layer views, the NaN check, shuffling.

Masks travel through ``prune`` flat: the row-major flattened layers
concatenated in forward order; scores travel as one tensor per layer (never
concatenated, so the scores of very wide layers exist once). The selection
rules themselves (clean and Synaptic-Flow) are the operation
:func:`gntk_fast.ops.mask_select.select_masks` (per-layer form
:func:`~gntk_fast.ops.mask_select.select_parts`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["check_scores", "check_layer_scores", "shuffle_masks", "split_flat"]


def split_flat(flat: torch.Tensor, shapes: Sequence[tuple[int, ...]]) -> list[torch.Tensor]:
    """Per-layer views of a flat tensor (row-major, forward order)."""
    sizes = [int(np.prod(s)) for s in shapes]
    return [p.view(s) for p, s in zip(torch.split(flat, sizes), shapes)]


def check_scores(flat: torch.Tensor, shapes: Sequence[tuple[int, ...]], names: Sequence[str]) -> None:
    """NaN in the flat scores is a ValueError naming the (first) layer."""
    if flat.numel() == 0:
        return
    peak = flat.numpy().max() if flat.device.type == "cpu" else flat.max()  # NaN propagates through max
    if not bool(np.isnan(float(peak))):
        return
    for i, (s, name) in enumerate(zip(split_flat(flat, shapes), names)):
        n = int(torch.isnan(s).sum())
        if n:
            raise ValueError(
                f"scores: layer {i} ({name!r}) has {n} NaN score(s); the ranking is undefined "
                "(check the weights and data for extreme values)"
            )


def check_layer_scores(scores: Sequence[torch.Tensor], names: Sequence[str]) -> None:
    """:func:`check_scores` on per-layer scores (one tensor per layer)."""
    for i, (s, name) in enumerate(zip(scores, names)):
        if s.numel() == 0:
            continue
        peak = s.numpy().max() if s.device.type == "cpu" else s.max()  # NaN propagates through max
        if not bool(np.isnan(float(peak))):
            continue
        raise ValueError(
            f"scores: layer {i} ({name!r}) has {int(torch.isnan(s).sum())} NaN score(s); the ranking is undefined "
            "(check the weights and data for extreme values)"
        )


def shuffle_masks(masks: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Each layer's mask with its entries permuted uniformly at random
    (``torch.randperm`` with ``generator``): the per-layer kept count is kept,
    the positions are random."""
    out = []
    for m in masks:
        perm = torch.randperm(m.numel(), generator=generator).to(m.device)
        out.append(m.reshape(-1)[perm].reshape(m.shape).clone())
    return out
