"""Label-free statistics of masks and step graphons: degree profiles and
bipartite homomorphism densities (docs/graphons.md, "Distances between estimates").

Both accept a mask (0/1 array (n, m), numpy or torch, or a packed mask with
``n_in``) or a step graphon (a :class:`~gntk_fast.graphon.StepGraphon`, a SAS
result, or a 2-D array of block values in [0, 1] with uniform blocks). A mask
is the step graphon with n x m uniform blocks, so one weighted formula serves
both: block values A (n x m), row block widths p (sum 1), column widths q.
A conv mask (C_out, C_in, kh, kw) is its pooled channel connectivity (the
kept fraction of each channel pair's taps, :func:`gntk_fast.graphon.channel_connectivity`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .._validation import real_array
from ._masks import coerce_mask

__all__ = [
    "HomDensities",
    "hom_densities",
    "hom_densities_reference",
    "degree_profile",
    "as_weighted_matrix",
    "real_array",
]


def as_weighted_matrix(obj: Any, *, n_in: int | None = None, name: str = "obj") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, p, q)``: block values (float64, (n, m)), row widths (n,), column widths (m,).

    Masks (bool/uint8 numpy or torch, packed with ``n_in``) give uniform widths
    1/n and 1/m; a StepGraphon or SAS result gives its block widths; any other
    float 2-D array in [0, 1] is a step graphon with uniform blocks; a 4-D conv
    mask gives its pooled channel connectivity with uniform widths.
    """
    from .channels import channel_connectivity, is_conv_mask
    from .objects import StepGraphon, from_sas

    if is_conv_mask(obj) and n_in is None:
        A = channel_connectivity(obj)
        n, m_ = A.shape
        return A, np.full(n, 1.0 / n), np.full(m_, 1.0 / m_)

    if hasattr(obj, "H") and hasattr(obj, "row_edges") and hasattr(obj, "shape"):
        obj = from_sas(obj)
    if isinstance(obj, StepGraphon):
        return obj.H, np.diff(obj.row_edges), np.diff(obj.col_edges)
    if n_in is not None:
        m = coerce_mask(obj, n_in=n_in, name=name)
        A = np.unpackbits(m.data, axis=1, count=m.n_in).astype(np.float64)
    else:
        try:
            import torch

            if isinstance(obj, torch.Tensor):
                obj = obj.detach().cpu().numpy()
        except ImportError:  # pragma: no cover
            pass
        arr = real_array(name, obj)
        if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
            m = coerce_mask(arr, name=name)
            if not m.checked and m.data.size and int(m.data.max()) > 1:
                raise ValueError(f"{name} must contain only 0/1 values; found {int(m.data.max())}")
            A = m.data.astype(np.float64)
        else:
            if arr.ndim != 2 or arr.size == 0:
                raise ValueError(f"{name} must be a non-empty 2-D array; got shape {arr.shape}")
            A = arr.astype(np.float64)
            if not np.all(np.isfinite(A)) or A.min() < 0 or A.max() > 1:
                raise ValueError(f"{name} values must lie in [0, 1]")
    n, m_ = A.shape
    return A, np.full(n, 1.0 / n), np.full(m_, 1.0 / m_)


@dataclass(frozen=True)
class HomDensities:
    """Homomorphism densities of the five small bipartite motifs.

    ``edge`` K_{1,1}; ``row_cherry`` two edges sharing an output (row) vertex;
    ``col_cherry`` two edges sharing an input (column) vertex; ``path3`` the
    3-edge path (row - col - row - col); ``cycle4`` the 4-cycle K_{2,2}.
    """

    edge: float
    row_cherry: float
    col_cherry: float
    path3: float
    cycle4: float

    def as_array(self) -> np.ndarray:
        return np.array([self.edge, self.row_cherry, self.col_cherry, self.path3, self.cycle4])

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    names = ("edge", "row_cherry", "col_cherry", "path3", "cycle4")


def hom_densities(obj: Any, *, n_in: int | None = None) -> HomDensities:
    """Homomorphism densities t(F, W) of edge, cherries, 3-path and 4-cycle.

    For a mask A (n x m) with r = A 1 and c = A^T 1 these are (docs/graphons.md, "Distances between estimates"):
    edge sum(A)/(nm); row cherry sum(r^2)/(n m^2); column cherry
    sum(c^2)/(n^2 m); 3-edge path r^T A c/(n^2 m^2); 4-cycle
    ||A^T A||_F^2/(n^2 m^2), computed through the Gram matrix of the smaller
    side. For a step graphon the same sums run over blocks weighted by their
    widths. Float64 throughout (exact for masks up to ~10^4 per side).
    """
    A, p, q = as_weighted_matrix(obj, n_in=n_in)
    R = A @ q  # normalised row degrees, (n,)
    C = p @ A  # normalised column degrees, (m,)
    edge = float(p @ R)
    row_cherry = float(p @ (R * R))
    col_cherry = float(q @ (C * C))
    path3 = float((p * R) @ A @ (q * C))
    if A.shape[0] <= A.shape[1]:
        G = (A * q) @ A.T  # (n, n): sum_b q_b A_ab A_a'b
        cycle4 = float(p @ (G * G) @ p)
    else:
        G = (A.T * p) @ A  # (m, m)
        cycle4 = float(q @ (G * G) @ q)
    return HomDensities(edge, row_cherry, col_cherry, path3, cycle4)


def hom_densities_reference(obj: Any, *, n_in: int | None = None) -> HomDensities:
    """Brute-force twin of :func:`hom_densities`: the sum over every vertex map
    of the product of edge weights (einsum over all index tuples), divided by
    the number of maps. O(n^2 m^2) memory-free but slow; small inputs only."""
    A, p, q = as_weighted_matrix(obj, n_in=n_in)
    edge = np.einsum("i,j,ij->", p, q, A)
    row_cherry = np.einsum("i,j,k,ij,ik->", p, q, q, A, A)
    col_cherry = np.einsum("i,k,j,ij,kj->", p, p, q, A, A)
    # path col j' - row i - col j - row k: edges (i, j'), (i, j), (k, j)
    path3 = np.einsum("i,k,j,l,il,ij,kj->", p, p, q, q, A, A, A, optimize=False)
    cycle4 = np.einsum("i,k,j,l,ij,il,kj,kl->", p, p, q, q, A, A, A, A, optimize=False)
    return HomDensities(float(edge), float(row_cherry), float(col_cherry), float(path3), float(cycle4))


def degree_profile(obj: Any, *, n_in: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Sorted normalised degree profiles, per side.

    Returns ``{"rows": (values, widths), "cols": (values, widths)}``: the
    step function of normalised degrees (row: integral over v of W(u, v),
    i.e. kept fan-in / n_in for a mask) sorted in descending order, with the
    width of each step (summing to 1).
    """
    A, p, q = as_weighted_matrix(obj, n_in=n_in)
    out = {}
    for side, vals, widths in (("rows", A @ q, p), ("cols", p @ A, q)):
        order = np.argsort(-vals, kind="stable")
        out[side] = (vals[order], widths[order])
    return out
