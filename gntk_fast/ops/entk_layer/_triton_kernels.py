"""Triton kernels of the masked eNTK layer term (see :mod:`gntk_fast.ops.entk_layer.triton`).

Two kernels, both "GEMMs over an implicit operand":

``sparse_entk_kernel`` (the implicit Jacobian GEMM)
    The kept edges e = (i_e, j_e) of the mask (any order; column-blocked CSR
    by default, see ``triton.default_col_block``) are the reduction
    dimension. Output rows r index D rows ``r * KLOOP + c`` (``c`` runs over
    ``KLOOP`` output channels summed in the kernel: k when traced, 1 when full)
    and H rows ``r // HDIV`` (HDIV = k when full, 1 when traced). A program
    owns a BM x BN output tile and, for its share of the edges (split-K over
    ``tl.program_id(1)``), gathers

        J1[r, e] = D1[r*KLOOP + c, i_e] * H1[r // HDIV, j_e]     (BM x BK)
        J2[s, e] = D2[s*KLOOP + c, i_e] * H2[s // HDIV, j_e]     (BN x BK)

    and accumulates ``tl.dot(J1, J2^T)`` in fp32. Cost: R1 R2 KLOOP nnz MACs on
    tensor cores (TF32 when allowed, else exact fp32 "ieee" dot). The
    (N x nnz) Jacobian only ever exists as one BM x BK register tile.

``dense_entk_kernel`` (mask all-ones; also the base of the complement trick)
    T = (D1 D2^T) o (H1[rows] H2[rows]^T): two K loops in one tile, fused
    Hadamard product in the epilogue. Cost R1 R2 (LD + n_in) MACs.

Tiles to compute are listed explicitly (``TM``, ``TN`` int32 arrays), so the
symmetric case launches only the upper-triangle tiles.
"""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["sparse_entk_kernel", "dense_entk_kernel"]


@triton.jit
def _tile(TM, TN, pid, R1, R2, BM: tl.constexpr, BN: tl.constexpr):
    """Output rows (BM,) and columns (BN,) of the listed tile ``pid``, with their in-range masks."""
    rm = tl.load(TM + pid) * BM + tl.arange(0, BM)
    rn = tl.load(TN + pid) * BN + tl.arange(0, BN)
    return rm, rn, rm < R1, rn < R2


@triton.jit
def _gram_tile(A, B, arow, brow, mm, mn, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
               PRECISION: tl.constexpr):
    """``sum_k A[arow + k] B[brow + k]`` over k < K for a tile: (BM, BN) fp32."""
    kk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in range(0, K, BK):
        mk = (k0 + kk) < K
        a = tl.load(A + arow[:, None] + (k0 + kk)[None, :], mask=mm[:, None] & mk[None, :], other=0.0)
        b = tl.load(B + brow[:, None] + (k0 + kk)[None, :], mask=mn[:, None] & mk[None, :], other=0.0)
        acc = tl.dot(a, tl.trans(b), acc, input_precision=PRECISION)
    return acc


@triton.jit
def sparse_entk_kernel(
    D1, H1, D2, H2, EI, EJ, TM, TN, OUT,
    R1, R2, NNZ, E_PER_SPLIT,
    sd1, sh1, sd2, sh2, so_split, so_row,
    KLOOP: tl.constexpr, HDIV: tl.constexpr,
    BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid_s = tl.program_id(1)
    rm, rn, mm, mn = _tile(TM, TN, tl.program_id(0), R1, R2, BM, BN)
    hrow1 = (rm // HDIV).to(tl.int64) * sh1
    hrow2 = (rn // HDIV).to(tl.int64) * sh2
    drow1 = (rm * KLOOP).to(tl.int64) * sd1
    drow2 = (rn * KLOOP).to(tl.int64) * sd2
    e_start = pid_s * E_PER_SPLIT
    e_end = tl.minimum(e_start + E_PER_SPLIT, NNZ)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for e0 in range(e_start, e_end, BK):
        offs = e0 + tl.arange(0, BK)
        me = offs < e_end
        ei = tl.load(EI + offs, mask=me, other=0)
        ej = tl.load(EJ + offs, mask=me, other=0)
        m1 = mm[:, None] & me[None, :]
        m2 = mn[:, None] & me[None, :]
        h1 = tl.load(H1 + hrow1[:, None] + ej[None, :], mask=m1, other=0.0)
        h2 = tl.load(H2 + hrow2[:, None] + ej[None, :], mask=m2, other=0.0)
        for c in range(KLOOP):
            d1 = tl.load(D1 + drow1[:, None] + c * sd1 + ei[None, :], mask=m1, other=0.0)
            d2 = tl.load(D2 + drow2[:, None] + c * sd2 + ei[None, :], mask=m2, other=0.0)
            acc = tl.dot(d1 * h1, tl.trans(d2 * h2), acc, input_precision=PRECISION)
    optr = OUT + pid_s.to(tl.int64) * so_split + rm.to(tl.int64)[:, None] * so_row + rn[None, :]
    tl.store(optr, acc, mask=mm[:, None] & mn[None, :])


@triton.jit
def dense_entk_kernel(
    D1, H1, D2, H2, TM, TN, OUT,
    R1, R2, LD, NIN,
    sd1, sh1, sd2, sh2, so_row,
    HDIV: tl.constexpr,
    BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
    PRECISION: tl.constexpr,
):
    rm, rn, mm, mn = _tile(TM, TN, tl.program_id(0), R1, R2, BM, BN)
    # G_D = D1 D2^T over the LD columns of the D rows, G_H = H1 H2^T over the n_in columns of the H rows
    acc_d = _gram_tile(D1, D2, rm.to(tl.int64) * sd1, rn.to(tl.int64) * sd2, mm, mn, LD, BM, BN, BK, PRECISION)
    acc_h = _gram_tile(H1, H2, (rm // HDIV).to(tl.int64) * sh1, (rn // HDIV).to(tl.int64) * sh2, mm, mn, NIN,
                       BM, BN, BK, PRECISION)
    optr = OUT + rm.to(tl.int64)[:, None] * so_row + rn[None, :]
    tl.store(optr, acc_d * acc_h, mask=mm[:, None] & mn[None, :])
