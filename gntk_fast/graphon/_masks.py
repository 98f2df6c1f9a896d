"""The mask helpers of the graphon toolkit, defined one layer down in
:mod:`gntk_fast._masks` (shared with the SAS kernels of :mod:`gntk_fast.ops`)."""
from __future__ import annotations

from .._masks import MaskInput, block_edges, check_uint8_values, coerce_mask, descending_stable_order, ordered_block_means

__all__ = ["MaskInput", "block_edges", "check_uint8_values", "coerce_mask", "descending_stable_order", "ordered_block_means"]
