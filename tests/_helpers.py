"""Helpers shared by the tests (imported as ``from _helpers import rel``)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _f64(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def rel(a: Any, b: Any, *, norm: str = "fro") -> float:
    """Relative error ``||a - b|| / ||b||`` in float64 on the CPU.

    ``norm="fro"``: the Frobenius (2-) norm of all entries; ``norm="max"``:
    the largest absolute entry. When ``b`` is exactly zero the absolute error
    ``||a - b||`` is returned (so zero only when ``a`` is zero too).
    """
    a, b = _f64(a), _f64(b)
    if norm == "fro":
        nb, err = float(b.norm()), float((a - b).norm())
    elif norm == "max":
        nb, err = float(b.abs().max()), float((a - b).abs().max())
    else:
        raise ValueError(f"norm must be 'fro' or 'max'; got {norm!r}")
    return err / nb if nb > 0 else err
