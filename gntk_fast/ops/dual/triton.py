"""Triton backend of the dual operation: fused dual + node matmul, fused backward step.

For a chunk of P input pairs and one hidden layer, :func:`triton_dual_matmul`
computes in one kernel

    S[p, a], Sd[p, a] = dual of [[Da[ii[p], a], s[p, a]], [s[p, a], Db[jj[p], a]]]
    out[p, n]         = sum_a S[p, a] * BT[a, n]

(the next layer's pre-activation covariance s~, or the NNGP when BT is the
read-out vector): the diagonals are gathered in-kernel, S never makes a round
trip through memory before the matmul, and S, Sd are written once (by the
programs of the first column block) for the backward pass. The dual is the
activation's ``triton_dual``, a ``@triton.jit`` function
``(q11, q22, q12) -> (S, Sd)`` on blocks passed to the kernel as a
``tl.constexpr`` and inlined.

:func:`triton_backward_step` is the fused backward step of the recursion::

    G'[p, a] = Sd[p, a] * sum_w G[p, w] Bb[w, a]
    vec[p]  += sum_a w[a] G'[p, a] (* pre[p, a] for trainable="mask")

(the matmul, the derivative factor and the layer's kernel term in one kernel;
the per-block partial sums of ``vec`` are added atomically).

Triton has no atan2/asin that also run under the CPU interpreter, so this
module carries the Cephes arctangent (rational minimax on [0, 0.66] with the
pi/4 reduction; relative error ~1e-16), used for the relu angle
theta = atan2(r, c) and for erf's arcsine in :func:`relu_dual`,
:func:`erf_dual` (the Triton pieces of the named activations of
:mod:`gntk_fast.activations`, whose torch closed forms are the reference the
tests compare with). float32 and float64; the fp32 matmul uses IEEE
precision (no TF32). The tests run the kernels under TRITON_INTERPRET=1.
"""
from __future__ import annotations

import importlib
from functools import lru_cache

import torch
import triton
import triton.language as tl

from ...activations import Activation
from .naive import DualKernels

__all__ = ["triton_dual_matmul", "triton_backward_step", "relu_dual", "erf_dual", "identity_dual", "pairs", "KERNELS"]


@triton.jit
def _atan01(a):
    """atan(a) for 0 <= a <= 1 (Cephes atan.c, double precision coefficients)."""
    big = a > 0.66
    x = tl.where(big, (a - 1.0) / (a + 1.0), a)
    z = x * x
    num = (((-8.750608600031904122785e-1 * z - 1.615753718733365076637e1) * z - 7.500855792314704667340e1) * z
           - 1.228866684490136173410e2) * z - 6.485021904942025371773e1
    den = ((((z + 2.485846490142306297962e1) * z + 1.650270098316988542046e2) * z + 4.328810604912902668951e2) * z
           + 4.853903996359136964868e2) * z + 1.945506571482613964425e2
    y = x + x * (z * num / den)
    return tl.where(big, 0.7853981633974483096 + (y + 3.061616997868382943065e-17), y)


@triton.jit
def _atan2_nonneg(r, c):
    """atan2(r, c) for r >= 0, in [0, pi]; atan2(0, 0) = 0."""
    ac = tl.abs(c)
    hi = tl.maximum(r, ac)
    lo = tl.minimum(r, ac)
    a = tl.where(hi > 0, lo / tl.where(hi > 0, hi, 1.0), 0.0)
    t = _atan01(a)
    t = tl.where(r > ac, 1.5707963267948966192 - t, t)
    return tl.where(c < 0, 3.14159265358979323846 - t, t)


@triton.jit
def relu_dual(q11, q22, c):
    """relu's dual (stable atan2 angle; Sd = 0 where q11 = 0 or q22 = 0)."""
    r = tl.sqrt(tl.maximum(q11 * q22 - c * c, 0.0))
    pt = 3.14159265358979323846 - _atan2_nonneg(r, c)
    S = (r + pt * c) * 0.15915494309189533577
    Sd = tl.where((q11 > 0) & (q22 > 0), pt * 0.15915494309189533577, 0.0)
    return S, Sd


@triton.jit
def erf_dual(q11, q22, c):
    """erf's dual (arcsine kernel; arcsin(x) = atan2(|x|, sqrt(1 - x^2)) with the sign of x)."""
    q = (1.0 + 2.0 * q11) * (1.0 + 2.0 * q22)
    x = tl.minimum(tl.maximum(2.0 * c / tl.sqrt(q), -1.0), 1.0)
    ax = tl.abs(x)
    asn = _atan2_nonneg(ax, tl.sqrt(tl.maximum(1.0 - ax * ax, 0.0)))
    S = 0.63661977236758134308 * tl.where(x < 0, -asn, asn)
    Sd = 1.27323954473516268615 / tl.sqrt(tl.maximum(q - 4.0 * c * c, 1.0))
    return S, Sd


@triton.jit
def identity_dual(q11, q22, c):
    """identity's dual: S = q12, Sd = 1."""
    return c, c * 0.0 + 1.0


@triton.jit
def _tile(P, N, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr):
    """Row offsets (program axis 0), column offsets (axis 1) and their bounds masks."""
    rp = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    return rp, rn, rp < P, rn < N


@triton.jit
def _dual_mm_kernel(
    s_ptr, da_ptr, db_ptr, ii_ptr, jj_ptr, bt_ptr, out_ptr, S_ptr, Sd_ptr,
    P, K, NO,
    DUAL: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rp, rn, mp, mn = _tile(P, NO, BLOCK_P, BLOCK_N)
    ii = tl.load(ii_ptr + rp, mask=mp, other=0)
    jj = tl.load(jj_ptr + rp, mask=mp, other=0)
    acc = tl.zeros((BLOCK_P, BLOCK_N), dtype=s_ptr.dtype.element_ty)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        mk = rk < K
        m2 = mp[:, None] & mk[None, :]
        c = tl.load(s_ptr + rp[:, None] * K + rk[None, :], mask=m2, other=0.0)
        q11 = tl.load(da_ptr + ii[:, None] * K + rk[None, :], mask=m2, other=0.0)
        q22 = tl.load(db_ptr + jj[:, None] * K + rk[None, :], mask=m2, other=0.0)
        S, Sd = DUAL(q11, q22, c)
        S = tl.where(m2, S, 0.0).to(c.dtype)
        Sd = Sd.to(c.dtype)
        if tl.program_id(1) == 0:
            tl.store(S_ptr + rp[:, None] * K + rk[None, :], S, mask=m2)
            tl.store(Sd_ptr + rp[:, None] * K + rk[None, :], Sd, mask=m2)
        b = tl.load(bt_ptr + rk[:, None] * NO + rn[None, :], mask=mk[:, None] & mn[None, :], other=0.0)
        acc += tl.dot(S, b, input_precision="ieee")
    tl.store(out_ptr + rp[:, None] * NO + rn[None, :], acc, mask=mp[:, None] & mn[None, :])


@lru_cache(maxsize=None)
def _load(target: str):
    mod, _, attr = target.partition(":")
    return getattr(importlib.import_module(mod), attr)


def jit_dual(act: Activation):
    """The ``@triton.jit`` dual of ``act`` (its ``triton_dual``, imported when a string)."""
    t = act.triton_dual
    return _load(t) if isinstance(t, str) else t


def triton_dual_matmul(act: Activation, Da, Db, ii, jj, s, BT, *, block_p: int = 32, block_k: int = 32,
                       block_n: int = 32):
    """``(S, Sd, S @ BT)`` for the pairs (see module docstring).

    ``act`` has a ``triton_dual``. Da (N1, K), Db (N2, K), s (P, K), BT (K, NO)
    share one float dtype and device; ii, jj are (P,) int64. Returns S, Sd
    (P, K) and out (P, NO).
    """
    dual = jit_dual(act)
    s = s.contiguous()
    Da, Db, BT = Da.contiguous(), Db.contiguous(), BT.contiguous()
    P, K = s.shape
    NO = BT.shape[1]
    S = torch.empty_like(s)
    Sd = torch.empty_like(s)
    out = torch.empty(P, NO, dtype=s.dtype, device=s.device)
    block_n = max(16, min(block_n, triton.next_power_of_2(NO)))
    grid = (triton.cdiv(P, block_p), triton.cdiv(NO, block_n))
    _dual_mm_kernel[grid](
        s, Da, Db, ii.contiguous(), jj.contiguous(), BT, out, S, Sd, P, K, NO,
        DUAL=dual, BLOCK_P=block_p, BLOCK_K=block_k, BLOCK_N=block_n,
    )
    return S, Sd, out


@triton.jit
def _bwd_kernel(
    g_ptr, bb_ptr, sd_ptr, w_ptr, pre_ptr, gn_ptr, vec_ptr,
    P, KI, KO,
    HAS_PRE: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rp, rn, mp, mn = _tile(P, KO, BLOCK_P, BLOCK_N)
    acc = tl.zeros((BLOCK_P, BLOCK_N), dtype=g_ptr.dtype.element_ty)
    for k0 in range(0, KI, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        mk = rk < KI
        g = tl.load(g_ptr + rp[:, None] * KI + rk[None, :], mask=mp[:, None] & mk[None, :], other=0.0)
        b = tl.load(bb_ptr + rk[:, None] * KO + rn[None, :], mask=mk[:, None] & mn[None, :], other=0.0)
        acc += tl.dot(g, b, input_precision="ieee")
    m2 = mp[:, None] & mn[None, :]
    sd = tl.load(sd_ptr + rp[:, None] * KO + rn[None, :], mask=m2, other=0.0)
    gn = sd * acc
    tl.store(gn_ptr + rp[:, None] * KO + rn[None, :], gn, mask=m2)
    w = tl.load(w_ptr + rn, mask=mn, other=0.0)
    t = gn * w[None, :]
    if HAS_PRE:
        t = t * tl.load(pre_ptr + rp[:, None] * KO + rn[None, :], mask=m2, other=0.0)
    tl.atomic_add(vec_ptr + rp, tl.sum(t, axis=1), mask=mp)


def triton_backward_step(G, Bb, Sd, w, pre=None, *, block_p: int = 32, block_k: int = 32, block_n: int = 32):
    """``(G', vec)`` of one backward step (see module docstring).

    G (P, KI), Bb (KI, KO), Sd (P, KO), w (KO,), pre (P, KO) or None; one dtype
    and device. Returns G' (P, KO) and vec (P,).
    """
    G, Bb, Sd, w = G.contiguous(), Bb.contiguous(), Sd.contiguous(), w.contiguous()
    P, KI = G.shape
    KO = Bb.shape[1]
    Gn = torch.empty(P, KO, dtype=G.dtype, device=G.device)
    vec = torch.zeros(P, dtype=G.dtype, device=G.device)
    pre_t = pre.contiguous() if pre is not None else Sd
    grid = (triton.cdiv(P, block_p), triton.cdiv(KO, block_n))
    _bwd_kernel[grid](
        G, Bb, Sd, w, pre_t, Gn, vec, P, KI, KO,
        HAS_PRE=pre is not None, BLOCK_P=block_p, BLOCK_K=block_k, BLOCK_N=block_n,
    )
    return Gn, vec


def pairs(act: Activation, rule: str, quad_nodes: int, Da, Db, ii, jj, s, BT):
    """``(S, Sd, S @ BT)`` (closed forms only; ``rule`` and ``quad_nodes`` are checked by the registry)."""
    return triton_dual_matmul(act, Da, Db, ii, jj, s, BT)


KERNELS = DualKernels(pairs, triton_backward_step)
