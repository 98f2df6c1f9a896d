"""Triton backend of the masked eNTK layer term (kernels in ``_triton_kernels``).

For one layer with mask M (n_out x n_in), backward signals D = delta^l
(N x k x n_out) and activations H = h^{l-1} (N x n_in) the term is
(docs/graphon-ntk.md section 1, without the 1/n_{l-1} scale):

    traced: T[a,b]      = sum_{c,i,j} M_ij D1[a,c,i] D2[b,c,i]  H1[a,j] H2[b,j]     (N1, N2)
    full:   T[a,b,c,c'] = sum_{i,j}   M_ij D1[a,c,i] D2[b,c',i] H1[a,j] H2[b,j]     (N1, N2, k, k)

Algorithm ("implicit Jacobian GEMM")
------------------------------------
The per-layer Jacobian of input a with respect to the kept weights is
J[a, c, e] = D[a, c, i_e] H[a, j_e] for kept edge e = (i_e, j_e), so T is the
GEMM J1 J2^T with the nnz kept edges as the reduction dimension. The kernel
never stores J: each program owns an output tile and gathers BM x BK slices
of J on the fly from the (small, cache-resident) D and H, feeding tl.dot.
Work is N1 N2 nnz MACs (traced k > 1: the reduction runs over (c, e); full:
output rows are (a, c) pairs, the same kernel), i.e. exactly the sparse work,
on tensor cores. Its roofline is a TF32 matmul of equal size.

* ``mask=None`` (all kept) uses the factorisation
  T = (D1 D2^T) o (H1 H2^T), fused in one Triton kernel (two K loops, Hadamard
  epilogue): N^2 (k n_out + n_in) instead of N^2 k n_out n_in work.
* Density above :data:`~gntk_fast.ops.entk_layer._common.COMPLEMENT_DENSITY`:
  T = T_dense - T_{not M}, the sparse kernel walking the *pruned* edges, so the
  work is proportional to min(nnz, n_out n_in - nnz).
* Edge order: column-blocked CSR (blocks of 64 columns on CUDA) so the
  gathered H segment of a tile stays in L1 (see :func:`default_col_block`).
* x2 = None: only the upper-triangle output tiles are launched, then mirrored
  (the result is exactly symmetric).
* Split-K over the edges when there are too few output tiles to fill the GPU;
  partial tiles are summed in a fixed order (deterministic, no atomics).
* float32 only, fp32 accumulation; ``tf32=True`` lets tl.dot use TF32 tensor
  cores (~1e-3 relative), otherwise the exact fp32 ("ieee") dot is used.
  float64 is served by the other backends of the op (the registry's check
  refuses it here).

How it is tested: the kernels run on CPU tensors under the Triton interpreter
(``TRITON_INTERPRET=1`` set before triton is imported) against the naive twin,
and are compiled ahead of time for sm_90a with the tile configurations of
:func:`_config` (tests/test_entk_triton.py), which checks that they compile
and that tf32=True reaches the tensor cores (wgmma). bench/bench_entk_gpu.py
times them on a GPU and sweeps tiles / edge order.
"""
from __future__ import annotations

import math
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from ..._validation import check_bool, check_dtype, check_int, check_tensor
from ._common import use_complement

__all__ = [
    "masked_ntk_layer_triton",
    "prepare_mask",
    "default_col_block",
    "MaskEdges",
    "LAUNCHES",
    "kernels_interpreted",
]

#: Triton kernel launches so far, by kernel: "sparse", "dense"
LAUNCHES: Counter = Counter()


try:  # triton is optional at import time; the call raises a clear error without it
    from . import _triton_kernels as _K

    _TRITON_ERROR: str | None = None
except Exception as exc:  # pragma: no cover - only on installs without triton
    _K = None
    _TRITON_ERROR = f"{type(exc).__name__}: {exc}"


def kernels_interpreted() -> bool:
    """True when the kernels were built by the Triton CPU interpreter (TRITON_INTERPRET=1
    was set before this module was imported): they then accept CPU tensors."""
    if _K is None:
        return False
    return type(_K.sparse_entk_kernel).__name__ == "InterpretedFunction"


# ----------------------------------------------------------------------------- masks
@dataclass(frozen=True)
class MaskEdges:
    """A mask prepared for the kernel (build once per mask with :func:`prepare_mask`).

    shape:      (n_out, n_in) of the mask
    nnz:        number of kept weights
    complement: True when ``rows``/``cols`` list the *pruned* edges (density > 1/2)
    rows, cols: int32 edge coordinates that the sparse kernel walks, on the
                mask's device, in column-blocked CSR order (see ``col_block``)
    col_block:  edges are ordered by (j // col_block, i, j); 0 = plain CSR (i, j)
    version:    the mask tensor's ``_version`` when prepared (staleness check)
    """

    shape: tuple[int, int]
    nnz: int
    complement: bool
    rows: torch.Tensor
    cols: torch.Tensor
    col_block: int = 0
    version: int = -1

    @property
    def density(self) -> float:
        n = self.shape[0] * self.shape[1]
        return self.nnz / n if n else 0.0

    @property
    def device(self) -> torch.device:
        return self.rows.device


_CACHE: dict[int, tuple[Any, int, str, MaskEdges]] = {}
_CACHE_MAX = 32


def default_col_block(device: torch.device) -> int:
    """Column block of the edge order: 64 on CUDA, 0 (plain CSR) elsewhere.

    Why: a program gathers H[a_tile, j_e] and D[a_tile, :, i_e] for its BM rows.
    In plain CSR order every mask row i sweeps all n_in columns of the H tile
    (BM x n_in floats, 2 MiB at BM = 128, n_in = 4096), far more than L1, so H
    is re-read from L2 once per mask row. Ordering the edges by column blocks
    of 64 keeps the H segment (BM x 64 floats per side, 32 KiB) L1-resident
    while the block's rows are swept; D is then read once per column block,
    sequentially in i. The order changes only the fp32 summation order.
    (Reasoned from the memory hierarchy; the bench's sweep measures it.)
    """
    return 64 if device.type == "cuda" else 0


def _edge_list(walk: torch.Tensor, col_block: int) -> tuple[torch.Tensor, torch.Tensor]:
    if col_block <= 0 or col_block >= walk.shape[1]:
        rows, cols = torch.nonzero(walk, as_tuple=True)
        return rows, cols
    n_out, n_in = walk.shape
    nb = -(-n_in // col_block)
    padded = torch.zeros(n_out, nb * col_block, dtype=torch.bool, device=walk.device)
    padded[:, :n_in] = walk
    blk, rows, jj = torch.nonzero(padded.view(n_out, nb, col_block).permute(1, 0, 2), as_tuple=True)
    return rows, blk * col_block + jj


def prepare_mask(mask: torch.Tensor, *, complement: bool | None = None, col_block: int | None = None) -> MaskEdges:
    """Edge lists of a bool mask (n_out, n_in) for :func:`masked_ntk_layer_triton`.

    ``complement=None`` lists the pruned edges when the density exceeds
    :data:`~gntk_fast.ops.entk_layer._common.COMPLEMENT_DENSITY` (then T = T_dense - T_pruned); True/False force
    it. ``col_block`` (None: :func:`default_col_block`) sets the edge order
    (j // col_block, i, j); 0 means plain CSR. Results are cached per mask
    tensor (keyed by identity, invalidated when the tensor is modified in
    place), so repeated calls are free.
    """
    mask = check_dtype("mask", check_tensor("mask", mask, ndim=2), (torch.bool,), "True = kept weight")
    if complement is not None:
        complement = check_bool("complement", complement)
    if col_block is None:
        col_block = default_col_block(mask.device)
    col_block = check_int("col_block", col_block, min_value=0)
    key = id(mask)
    tag = f"{complement}/{col_block}"
    hit = _CACHE.get(key)
    if hit is not None:
        ref, version, tag_hit, edges = hit
        if ref() is mask and version == mask._version and tag_hit == tag:
            return edges
    n_out, n_in = mask.shape
    nnz = int(torch.count_nonzero(mask))
    total = n_out * n_in
    use_comp = use_complement(nnz, total, complement)
    rows, cols = _edge_list(~mask if use_comp else mask, col_block)
    edges = MaskEdges(
        shape=(int(n_out), int(n_in)),
        nnz=nnz,
        complement=use_comp,
        rows=rows.to(torch.int32).contiguous(),
        cols=cols.to(torch.int32).contiguous(),
        col_block=col_block,
        version=int(mask._version),
    )
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    if key not in _CACHE:  # drop the edge lists with the mask (they can be large on a GPU)
        weakref.finalize(mask, _CACHE.pop, key, None)
    _CACHE[key] = (weakref.ref(mask), int(mask._version), tag, edges)
    return edges


# ----------------------------------------------------------------------------- launch
def _config(kind: str, tf32: bool, R1: int, R2: int, device: torch.device) -> dict:
    """Tile configuration of ``kind`` ("sparse" | "dense").

    Interpreter (CPU): the smallest legal tl.dot tiles (fast; exercises ragged tails).
    CUDA: chosen by compiling for sm_90a and reading ``ptxas -v``: the largest
    tiles that use no register spills (bench/bench_entk_gpu.py sweeps them on a GPU).
    The gathers make the sparse kernel register-hungry (one 64-bit address per
    gathered element): BK = 32 spills at every tile size, BK = 16 does not
    (128x128x16 / 8 warps: 179 registers with TF32; the FMA "ieee" dot needs
    64x64x16 / 4 warps, 232 registers). The dense kernel holds two accumulators:
    TF32 128x128x32 / 8 warps (241 registers), ieee 64x64x32 / 8 warps, 2 stages.
    Small outputs (< 512 rows) use 64-row tiles so more programs run.
    """
    if device.type != "cuda":
        return dict(BM=16, BN=16, BK=16, num_warps=4, num_stages=1)
    big = min(R1, R2) >= 512
    if kind == "sparse":
        if tf32 and big:
            return dict(BM=128, BN=128, BK=16, num_warps=8, num_stages=3)
        return dict(BM=64, BN=64, BK=16, num_warps=4, num_stages=3)
    if not tf32:
        return dict(BM=64, BN=64, BK=32, num_warps=8, num_stages=2)
    if big:
        return dict(BM=128, BN=128, BK=32, num_warps=8, num_stages=3)
    return dict(BM=64, BN=64, BK=32, num_warps=4, num_stages=3)


def _tiles(R1: int, R2: int, BM: int, BN: int, symmetric: bool, device) -> tuple[torch.Tensor, torch.Tensor]:
    gm, gn = math.ceil(R1 / BM), math.ceil(R2 / BN)
    tm = torch.arange(gm).repeat_interleave(gn)
    tn = torch.arange(gn).repeat(gm)
    if symmetric:
        keep = tm <= tn
        tm, tn = tm[keep], tn[keep]
    return tm.to(torch.int32).to(device), tn.to(torch.int32).to(device)


def _num_splits(n_tiles: int, n_edges: int, R1: int, R2: int, cfg: dict, device) -> int:
    if device.type != "cuda" or n_edges == 0:
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    want = math.ceil(2 * sms / max(1, n_tiles))
    by_work = max(1, n_edges // (cfg["BK"] * 16))  # >= 16 edge chunks per split
    by_mem = max(1, (1 << 28) // max(1, R1 * R2))  # partial buffers <= 1 GiB of fp32
    return int(max(1, min(want, by_work, by_mem, 64)))


def _launch(D1, H1, D2, H2, edges: MaskEdges | None, trace: bool, tf32: bool, symmetric: bool,
            config: dict | None = None) -> torch.Tensor:
    """Run the kernels on validated float32 inputs; returns the (R1, R2) output matrix."""
    N1, k, n_out = D1.shape
    N2 = D2.shape[0]
    n_in = H1.shape[1]
    if trace:
        R1, R2, kloop, hdiv = N1, N2, k, 1
    else:
        R1, R2, kloop, hdiv = N1 * k, N2 * k, 1, k
    device = D1.device
    precision = "tf32" if tf32 else "ieee"

    def conf(kind):
        cfg = dict(_config(kind, tf32, R1, R2, device))
        if config:
            cfg.update(config)
        if symmetric and cfg["BM"] != cfg["BN"]:
            raise ValueError("symmetric launches need BM == BN")
        tm, tn = _tiles(R1, R2, cfg["BM"], cfg["BN"], symmetric, device)
        return cfg, tm, tn, dict(num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])

    if edges is None or edges.complement:
        cfg, tm, tn, meta = conf("dense")
        out = torch.zeros(R1, R2, dtype=torch.float32, device=device)
        ld = k * n_out if trace else n_out
        _K.dense_entk_kernel[(tm.numel(),)](
            D1, H1, D2, H2, tm, tn, out,
            R1, R2, ld, n_in,
            ld, n_in, ld, n_in, R2,
            HDIV=hdiv, BM=cfg["BM"], BN=cfg["BN"], BK=cfg["BK"], PRECISION=precision, **meta,
        )
        LAUNCHES["dense"] += 1
        if edges is None:
            return out
    else:
        out = None
    cfg, tm, tn, meta = conf("sparse")
    BM, BN, BK = cfg["BM"], cfg["BN"], cfg["BK"]
    n_tiles = tm.numel()
    n_edges = edges.rows.numel()
    splits = int(cfg.get("splits") or _num_splits(n_tiles, n_edges, R1, R2, cfg, device))
    per_split = max(BK, math.ceil(math.ceil(n_edges / splits) / BK) * BK)
    splits = max(1, math.ceil(n_edges / per_split)) if n_edges else 1
    part = torch.zeros(splits, R1, R2, dtype=torch.float32, device=device)
    _K.sparse_entk_kernel[(n_tiles, splits)](
        D1, H1, D2, H2, edges.rows, edges.cols, tm, tn, part,
        R1, R2, n_edges, per_split,
        n_out, n_in, n_out, n_in, R1 * R2, R2,
        KLOOP=kloop, HDIV=hdiv, BM=BM, BN=BN, BK=BK, PRECISION=precision, **meta,
    )
    LAUNCHES["sparse"] += 1
    sparse = part[0] if splits == 1 else part.sum(0)
    if out is None:
        return sparse
    out -= sparse
    return out


def masked_ntk_layer_triton(D1, H1, D2=None, H2=None, mask=None, *, trace: bool = True,
                            tf32: bool = False) -> torch.Tensor:
    """Unscaled masked layer term on the Triton kernels (arguments already validated).

    D1 (N1, k, n_out), H1 (N1, n_in) float32 tensors on CUDA (CPU tensors under
    the interpreter); D2/H2 the second set, or None for the first (only the
    upper-triangle tiles run and the result is exactly symmetric); mask
    (n_out, n_in) bool tensor, a :class:`MaskEdges` from :func:`prepare_mask`,
    or None (all kept). ``trace`` True -> (N1, N2), False -> (N1, N2, k, k).
    ``tf32`` lets tl.dot use TF32 tensor cores (about 1e-3 relative error).
    """
    if _K is None:
        raise RuntimeError(f"the triton backend is unavailable (triton failed to import: {_TRITON_ERROR})")
    symmetric = D2 is None
    N1, k, _ = D1.shape
    N2 = N1 if symmetric else D2.shape[0]
    edges = None
    if mask is not None:
        edges = mask if isinstance(mask, MaskEdges) else prepare_mask(mask)
    D1, H1 = D1.contiguous(), H1.contiguous()
    D2, H2 = (D1, H1) if symmetric else (D2.contiguous(), H2.contiguous())
    out = _launch(D1, H1, D2, H2, edges, trace, tf32, symmetric)
    if symmetric:
        out = torch.triu(out) + torch.triu(out, 1).T
    if not trace:
        out = out.reshape(N1, k, N2, k).permute(0, 2, 1, 3).contiguous()
    return out


def _edges_to_mask(edges: MaskEdges) -> torch.Tensor:
    """The bool mask a :class:`MaskEdges` was prepared from."""
    m = torch.zeros(edges.shape, dtype=torch.bool, device=edges.device)
    m[edges.rows.long(), edges.cols.long()] = True
    return ~m if edges.complement else m
