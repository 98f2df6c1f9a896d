"""Path densities: input-to-output paths through kept weights (docs/limit-graphons.md, section 3).

For a layered graphon ``[W^1 (u_1, j), W^2 (u_2, u_1), ..., W^{L+1} (c, u_L)]``
(the argument ``graphons`` of :func:`gntk_fast.graphon_ntk`: input coordinate j,
hidden positions u_l, outputs c) the path density of input coordinate j is
the homomorphism density of a path through the layers,

    P(j) = (1/k) sum_c  integral W^{L+1}(c, u_L) W^L(u_L, u_{L-1}) ... W^1(u_1, j) du_1 ... du_L,

averaged over the k outputs. Its finite counterpart for masks
``[M^1 (n_1, d), ..., M^{L+1} (k, n_L)]`` is the number of paths from input j to
the outputs through kept weights divided by the dense count
``k n_1 ... n_L``: ``P_n(j) = (1/k) 1^T M^{L+1} ... M^1 e_j / (n_1 ... n_L)``.

Both need ONE position per hidden neuron across the two masks it touches:
the per-mask SAS estimates sort a hidden layer differently as rows and as
columns, and their path integral is not the network's (see
:func:`path_density_comparison`, which reports both).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["path_counts", "path_density", "PathDensityComparison", "path_density_comparison"]


def _dense(masks: Sequence[Any]) -> list[np.ndarray]:
    from .._masks import check_uint8_values, coerce_mask

    if hasattr(masks, "masks") and not isinstance(masks, (list, tuple)):
        masks = masks.masks  # a PruneResult
    if hasattr(masks, "ndim") or isinstance(masks, (str, bytes)) or not hasattr(masks, "__len__") or len(masks) < 2:
        raise TypeError("masks must be a list of at least 2 masks [(n_1, d), ..., (k, n_L)]")
    out = []
    for i, m in enumerate(masks):
        mi = coerce_mask(m, name=f"masks[{i}]")
        if not mi.checked:
            check_uint8_values(f"masks[{i}]", mi.data)
        a = mi.data.astype(np.float64)
        if i > 0 and a.shape[1] != out[-1].shape[0]:
            raise ValueError(f"masks[{i}] has {a.shape[1]} columns but masks[{i - 1}] has {out[-1].shape[0]} rows")
        out.append(a)
    return out


def path_counts(masks: Sequence[Any]) -> np.ndarray:
    """Normalised finite path counts ``P_n(j)``, float64 (d,) (see the module docstring).

    ``masks``: list of L + 1 0/1 masks (numpy/torch; first the input layer
    (n_1, d), last the read-out (k, n_L)), or a PruneResult. The count is
    accumulated in float64 one layer at a time, divided by each width as it
    goes, so it neither overflows nor underflows at large depth and width.
    """
    ms = _dense(masks)
    v = np.full(ms[-1].shape[0], 1.0 / ms[-1].shape[0])
    for M in reversed(ms[1:]):
        v = (v @ M) / M.shape[1]
    return v @ ms[0]


def path_density(graphons: Sequence[Any], d: int, *, K: int = 256, quadrature: str = "gauss-legendre",
                 n_outputs: int = 1) -> np.ndarray:
    """The layered-graphon path density ``P(j)`` for j = 1..d, float64 (d,).

    ``graphons`` as in :func:`gntk_fast.graphon_ntk` (numbers, callables,
    block matrices, SAS results, graphon objects; e.g. ``network_graphon(...).graphons``).
    The integrals use the NTK's discretisation (:mod:`gntk_fast.graphon.grid`):
    exact for step and constant graphons, ``K`` Gauss-Legendre (or midpoint)
    nodes per hidden layer touched by a callable graphon. ``n_outputs``: k
    read-out outputs at ``(c - 1/2)/k`` (for a read-out graphon with one row
    per output, k = its number of rows).
    """
    from ..graphon.grid import discretise

    grid = discretise(graphons, d, K=K, quadrature=quadrature, n_outputs=n_outputs)
    v = grid.R.mean(0)  # (K_L,): the read-out averaged over outputs
    for l in range(grid.depth - 1, 0, -1):
        v = (v * grid.w[l]) @ grid.B[l - 1]
    return (v * grid.w[0]) @ grid.A


@dataclass
class PathDensityComparison:
    """Finite path counts against the path integrals of two estimates of the same masks.

    finite : (d,) normalised path counts of the masks.
    joint : (d,) path density of the joint estimate (:func:`network_graphon`, one order per hidden layer).
    per_mask : (d,) path density of the per-mask SAS estimates chained as if their orders agreed.
    err_joint, err_per_mask : relative L2 errors ``||P - finite|| / ||finite||`` (NaN when
        the masks leave no input-to-output path).
    """

    finite: np.ndarray
    joint: np.ndarray
    per_mask: np.ndarray
    err_joint: float
    err_per_mask: float


def path_density_comparison(masks: Sequence[Any], K: int = 64) -> PathDensityComparison:
    """Path counts of ``masks`` vs the path densities of their joint and per-mask estimates (K blocks)."""
    from .network import network_graphon
    from ..graphon.objects import from_sas

    ms = _dense(masks)
    d, k = ms[0].shape[1], ms[-1].shape[0]
    finite = path_counts(ms)
    net = network_graphon(ms, K=K)
    joint = path_density(net.graphons, d, n_outputs=k)
    per = path_density([from_sas(e) for e in net.per_mask], d, n_outputs=k)
    norm = float(np.linalg.norm(finite))
    if norm == 0.0:  # no input-to-output path at all: a relative error is undefined
        return PathDensityComparison(finite, joint, per, float("nan"), float("nan"))
    return PathDensityComparison(finite, joint, per, float(np.linalg.norm(joint - finite)) / norm,
                                 float(np.linalg.norm(per - finite)) / norm)
