"""GPU benchmarks of the Triton eNTK backend (B1 and B4 on CUDA).

B1-GPU: N = 1024 inputs (MNIST test images when GNTK_MNIST_DIR / ../shared/data/mnist
        has them, else seeded Gaussian inputs of the same shape: the kernel's cost
        does not depend on the values), 784 -> 4 x 4096 -> 1, ReLU, random masks
        of density 0.2 on every layer, float32. Reports
          * ours end to end (``empirical_ntk(backend="triton")``, exact fp32 dot),
          * the layer kernels alone, exact fp32 and TF32,
          * the TF32 (and fp32) matmul "roofline" doing the same number of
            multiply-adds as the kernels (N(N+1)/2 * sum_l nnz_l),
          * the dense-mask GEMM (N(N+1)/2 * sum_l n_in n_out, 1/density times the kept work; named as such),
          * the Jacobian reference (``empirical_ntk_reference``) at N_ref inputs
            (default 128, env GNTK_BENCH_NREF; the reference builds
            chunk x P Jacobians, P = 53M, so N = 1024 is out of its reach), against
            ours at the same N_ref, with peak memory of both,
          * sweeps of kernel tile configurations and of the edge order
            (column block) on the widest layer.
B4-GPU: widths 256 ... 4096 at N = 1024: time and peak memory, log-log slopes.

Without CUDA the whole file skips (it still collects, so CI smoke mode keeps it
importable). Smoke mode on a GPU uses tiny sizes. Results:
bench/results/entk_gpu_b1.json and entk_gpu_b4.json with the device name.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from gntk_fast.spectral import loglog_slope

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="GPU benchmarks (Triton eNTK, B1/B4 at N=1024, width 4096) need a CUDA GPU; none here",
)

DENSITY = 0.2


def _sync():
    torch.cuda.synchronize()


def _inputs(n: int, d_in: int, seed: int = 0) -> torch.Tensor:
    from gntk_fast import data

    try:
        mnist_dir = os.environ.get("GNTK_MNIST_DIR") or os.path.join(
            os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
        x, _ = data.load("mnist", "test", n=n, data_dir=mnist_dir, seed=seed)
        if d_in == x.shape[1]:
            return x
    except (FileNotFoundError, ValueError):
        pass
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_in, generator=g)


def _model(width: int, depth: int, d_in: int, seed: int = 0):
    from gntk_fast.models import MLP

    model = MLP(d_in, width, depth, 1, "relu", seed=seed).cuda()
    g = torch.Generator().manual_seed(seed + 1)
    masks = [torch.rand(tuple(m.shape), generator=g) < DENSITY for m in model.masks]
    model.set_masks([m.cuda() for m in masks])
    return model


def _peak(fn):
    _sync()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    _sync()
    return torch.cuda.max_memory_allocated() - base


def _matmul_time(timeit, n: int, macs: float, tf32: bool) -> float:
    """Median time of an (n x K) @ (K x n) float32 matmul with n*n*K = macs."""
    K = max(1, math.ceil(macs / (n * n)))
    a = torch.randn(n, K, device="cuda")
    b = torch.randn(K, n, device="cuda")
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        return timeit(lambda: a @ b, repeat=5, warmup=2, sync=_sync)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def _kernels_fn(model, x, tf32: bool):
    """The layer kernels alone on precomputed signals (masks prepared once)."""
    from gntk_fast.ntk.empirical import forward_backward
    from gntk_fast.ops.entk_layer.triton import masked_ntk_layer_triton, prepare_mask

    Hs, Ds = forward_backward(model, x)
    Ds = [d.contiguous() for d in Ds]
    edges = [prepare_mask(m) for m in model.masks]

    def run():
        return [masked_ntk_layer_triton(D, H, mask=e, tf32=tf32) for D, H, e in zip(Ds, Hs, edges)]

    return run, Hs, Ds, edges


def test_b1_gpu(smoke, bench_report, timeit):
    import gntk_fast as gf
    from gntk_fast.ops.entk_layer import triton as te

    N, width, depth, d_in = (64, 128, 2, 784) if smoke else (1024, 4096, 4, 784)
    n_ref = 16 if smoke else int(os.environ.get("GNTK_BENCH_NREF", "128"))
    repeat = 1 if smoke else 5
    model = _model(width, depth, d_in)
    x = _inputs(N, d_in).cuda()
    ours = lambda: gf.empirical_ntk(model, x, backend="triton")  # noqa: E731
    t_ours = timeit(ours, repeat=repeat, warmup=1, sync=_sync)
    mem_ours = _peak(ours)
    k_ieee, Hs, Ds, edges = _kernels_fn(model, x, tf32=False)
    k_tf32, _, _, _ = _kernels_fn(model, x, tf32=True)
    t_k_ieee = timeit(k_ieee, repeat=repeat, warmup=1, sync=_sync)
    t_k_tf32 = timeit(k_tf32, repeat=repeat, warmup=1, sync=_sync)
    # agreement of TF32 kernels with the exact ones (sanity of what is timed)
    a = sum(k_ieee())
    b = sum(k_tf32())
    tf32_rel = float((a - b).abs().max() / a.abs().max())

    nnz = sum(int(m.sum()) for m in model.masks)
    dense = sum(m.numel() for m in model.masks)
    pairs = N * (N + 1) / 2
    t_roof_tf32 = _matmul_time(timeit, N, pairs * nnz, tf32=True)
    t_roof_fp32 = _matmul_time(timeit, N, pairs * nnz, tf32=False)
    t_dense_gemm = _matmul_time(timeit, N, pairs * dense, tf32=True)

    row = dict(
        device=torch.cuda.get_device_name(), N=N, width=width, depth=depth, density=DENSITY,
        nnz=nnz, t_ours_s=t_ours, t_kernels_fp32_s=t_k_ieee, t_kernels_tf32_s=t_k_tf32,
        t_roofline_tf32_s=t_roof_tf32, t_roofline_fp32_s=t_roof_fp32, t_dense_mask_work_gemm_tf32_s=t_dense_gemm,
        frac_of_tf32_roofline=t_roof_tf32 / t_k_tf32, frac_of_fp32_roofline=t_roof_fp32 / t_k_ieee,
        dense_mask_work_gemm_over_ours=t_dense_gemm / t_ours, tf32_max_rel_diff=tf32_rel,
        peak_mem_ours_bytes=mem_ours,
    )
    try:
        from gntk_fast.ntk.reference import empirical_ntk_reference
    except ImportError as exc:  # the reference lives in another module; guard
        row["reference"] = f"unavailable: {exc}"
    else:
        xr = x[:n_ref]
        ref = lambda: empirical_ntk_reference(model, xr, chunk_size=16)  # noqa: E731
        ours_r = lambda: gf.empirical_ntk(model, xr, backend="triton")  # noqa: E731
        t_ref = timeit(ref, repeat=1 if smoke else 3, warmup=1, sync=_sync)
        t_ours_r = timeit(ours_r, repeat=repeat, warmup=1, sync=_sync)
        mem_ref = _peak(ref)
        mem_ours_r = _peak(ours_r)
        err = float((ours_r() - ref()).abs().max() / ref().abs().max())
        assert err < 1e-4, f"triton eNTK disagrees with the reference: {err}"
        row.update(N_ref=n_ref, t_reference_s=t_ref, t_ours_at_N_ref_s=t_ours_r, speedup_vs_reference=t_ref / t_ours_r,
                   peak_mem_reference_bytes=mem_ref, peak_mem_ours_at_N_ref_bytes=mem_ours_r,
                   mem_ratio_ours_over_reference=mem_ours_r / max(1, mem_ref), max_rel_err_vs_reference=err)
    # tile-configuration sweep on the widest masked layer (TF32)
    l = max(range(len(Ds)), key=lambda i: edges[i].rows.numel())
    sweep = {}
    for cfg in ([(64, 64, 16, 4, 3), (128, 128, 16, 8, 3)] if smoke else
                [(64, 64, 16, 4, 3), (64, 64, 32, 4, 3), (128, 128, 16, 8, 3), (128, 128, 16, 8, 4),
                 (128, 128, 32, 8, 3), (128, 128, 16, 4, 3)]):
        BM, BN, BK, w, s = cfg
        if BM != BN:
            continue  # symmetric launches need square tiles
        conf = dict(BM=BM, BN=BN, BK=BK, num_warps=w, num_stages=s)
        fn = lambda: te._launch(Ds[l], Hs[l], Ds[l], Hs[l], edges[l], True, True, True, config=conf)  # noqa: E731
        sweep["x".join(map(str, cfg))] = timeit(fn, repeat=repeat, warmup=1, sync=_sync)
    row["tile_sweep_widest_layer_s"] = sweep
    # edge order: plain CSR vs column blocks (default 64 on CUDA), default tiles, TF32
    order = {}
    mask_l = model.masks[l]
    for cb in ([0, 64] if smoke else [0, 32, 64, 128, 256, 1024]):
        e_cb = te.prepare_mask(mask_l, col_block=cb)
        fn = lambda: te._launch(Ds[l], Hs[l], Ds[l], Hs[l], e_cb, True, True, True)  # noqa: E731
        order[str(cb)] = timeit(fn, repeat=repeat, warmup=1, sync=_sync)
    row["col_block_sweep_widest_layer_s"] = order
    bench_report.add("entk_gpu_b1", **row)
    assert tf32_rel < 1e-2


def test_b4_gpu(smoke, bench_report, timeit):
    import gntk_fast as gf

    N = 64 if smoke else 1024
    widths = [32, 64, 128] if smoke else [256, 512, 1024, 2048, 4096]
    x = _inputs(N, 784).cuda()
    times, mems = [], []
    for w in widths:
        model = _model(w, 4, 784)
        fn = lambda: gf.empirical_ntk(model, x, backend="triton")  # noqa: E731
        t = timeit(fn, repeat=1 if smoke else 3, warmup=1, sync=_sync)
        m = _peak(fn)
        times.append(t)
        mems.append(m)
        bench_report.add("entk_gpu_b4", device=torch.cuda.get_device_name(), N=N, width=w, t_ours_s=t, peak_mem_bytes=m)
        del model
        torch.cuda.empty_cache()
    slope_t = loglog_slope(widths, times, missing=math.nan)
    slope_m = loglog_slope(widths, np.maximum(mems, 1), missing=math.nan)
    bench_report.add("entk_gpu_b4", loglog_slope_time=slope_t, loglog_slope_peak_mem=slope_m)
    assert all(math.isfinite(t) and t > 0 for t in times)
