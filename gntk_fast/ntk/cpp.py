"""The C++ (OpenMP, pybind11) masked eNTK layer kernel: ``csrc/entk.cpp``.

:func:`masked_ntk_layer_cpp` has the same signature as the Triton layer kernel
(``gntk_fast.ntk.triton_entk.masked_ntk_layer_triton``) so that both plug into
:func:`gntk_fast.ntk.empirical.empirical_ntk` alike.

Design (measured on the 2-core AMD EPYC (Zen 5) of the development machine,
AVX2+FMA build with a run-time AVX-512 kernel; see bench/bench_entk.py and bench/results/entk.json)
-----------------------------------------------------------------------------
* The mask goes to CSR after dropping dead rows (D = 0 for every input) and
  dead columns (H = 0 for every input, e.g. MNIST's empty border pixels).
* Pairs of inputs are tiled as MA x NB blocks: 16 x 16 float32 / 8 x 16 float64
  with AVX-512 (chosen at run time when the CPU has it; ``GNTK_ENTK_ISA=avx2``
  forces the baseline), else 16 x 6 float32 / 8 x 6 float64 (AVX2). For
  each kept row i the kernel accumulates the row's sparse Gram block
  ``G_i[a, b] = sum_{j kept} H1[a,j] H2[b,j]`` in registers (AVX2: one
  2-vector load, 6 broadcasts and 12 FMAs per kept weight; AVX-512: one load,
  16 broadcasts, 16 FMAs; no work on pruned weights) and
  folds it into the output with ``sum_c D1[a,c,i] D2[b,c,i]`` (traced) or the
  k x k outer product (full: k^2 FMAs per row and pair). This outer-product
  form reads MA + NB numbers per kept weight instead of the MA * NB of the
  issue's "X[j, tile] = h_j(a) h_j(b)" gather-accumulate (whose X tile also
  has to be built and kept in cache), so it runs at the FMA rate, not the load
  rate. Measured on this machine (N = 128, 1024 x 1024 layer, density 0.2,
  2 threads, quiet moment): AVX-512 ~75-115 GMAC/s, AVX2 ~55-70 GMAC/s, where a
  GMAC is one (pair, kept weight) multiply-add.
* Threads: the threads of one OpenMP parallel region pull tiles from an atomic
  counter (dynamic load balance; 13% faster than a per-call std::thread pool
  on the idle machine). On an oversubscribed machine set OMP_WAIT_POLICY=passive.
* Symmetric inputs (x2 None): only tiles holding a pair a <= b are computed.
* Above a density threshold the wrapper uses the complement trick
  ``dense GEMMs - kernel(~mask)`` (see :data:`COMPLEMENT_DENSITY`).
"""
from __future__ import annotations

import torch

from .._backend import require_cpp
from ._layer import check_layer_args, dense_layer_term

__all__ = ["masked_ntk_layer_cpp", "COMPLEMENT_DENSITY"]

#: Above this mask density the layer term is computed as the dense GEMM
#: factorisation minus the kernel on the complement mask. The dense part is two
#: small GEMMs, O(N^2 (n_in + k n_out)), negligible next to the kernel's
#: O(N^2 nnz), so the cost is ~ min(nnz, n_out n_in - nnz) and the crossover is
#: density 1/2. Measured (N = 128, 1024 x 1024 layer, float32, 2 loaded cores):
#: density 0.5 direct 0.066 s vs complement 0.059 s (a tie within noise);
#: density 0.95 direct 0.171 s vs complement 0.045 s.
COMPLEMENT_DENSITY = 0.5


def masked_ntk_layer_cpp(D1, H1, D2=None, H2=None, mask=None, *, trace: bool = True,
                         complement: bool | None = None) -> torch.Tensor:
    """Unscaled masked layer term on CPU with the C++ kernel.

    Parameters
    ----------
    D1 : (N1, k, n_out) float32/float64 CPU tensor (backward signals delta^l)
    H1 : (N1, n_in) same dtype (inputs of the layer, h^{l-1})
    D2, H2 : the second set, or None for the first (symmetric; only a <= b computed)
    mask : (n_out, n_in) bool tensor, or None for all ones (two dense GEMMs)
    trace : True -> (N1, N2) summed over outputs c; False -> (N1, N2, k, k)
    complement : force (True) or forbid (False) the complement trick; None decides
        by density (> :data:`COMPLEMENT_DENSITY`).

    Returns
    -------
    ``sum_{i,j} M_ij D1[a,c,i] D2[b,c',i] H1[a,j] H2[b,j]`` (traced over c = c').
    """
    D1, H1, D2, H2, mask = check_layer_args(D1, H1, D2, H2, mask, trace)
    if D1.device.type != "cpu":
        raise ValueError(f"backend 'cpp' needs CPU tensors; D1 is on {D1.device} (use backend='triton' on CUDA)")
    if mask is None:
        return dense_layer_term(D1, H1, D2, H2, trace=trace)
    C = require_cpp()
    density = float(mask.sum()) / mask.numel()
    use_comp = density > COMPLEMENT_DENSITY if complement is None else bool(complement)

    def kernel(m):
        arrays = [t.detach().contiguous().numpy() if t is not None else None for t in (D1, H1, D2, H2)]
        return torch.from_numpy(C.entk_masked_layer(*arrays, m.detach().contiguous().numpy(), trace))

    if use_comp:
        return dense_layer_term(D1, H1, D2, H2, trace=trace) - kernel(~mask)
    return kernel(mask)
