"""The C++ (OpenMP, pybind11) backend of the masked eNTK layer term: ``csrc/entk.cpp``.

Design (timings: bench/bench_entk.py, results in bench/results/entk.json)
-------------------------------------------------------------------------
* The mask goes to CSR after dropping dead rows (D = 0 for every input) and
  dead columns (H = 0 for every input, e.g. MNIST's empty border pixels).
* Pairs of inputs are tiled as MA x NB blocks: 16 x 16 float32 / 8 x 16 float64
  with AVX-512 (chosen at run time when the CPU has it; ``GNTK_ENTK_ISA=avx2``
  forces the baseline), else 16 x 6 float32 / 8 x 6 float64 (AVX2). For each
  kept row i the kernel accumulates the row's sparse Gram block
  ``G_i[a, b] = sum_{j kept} H1[a,j] H2[b,j]`` in registers (AVX2: one
  2-vector load, 6 broadcasts and 12 FMAs per kept weight; AVX-512: one load,
  16 broadcasts, 16 FMAs; no work on pruned weights) and folds it into the
  output with ``sum_c D1[a,c,i] D2[b,c,i]`` (traced) or the k x k outer
  product (full: k^2 FMAs per row and pair; traced k > 1: the k-term dot
  product per pair and row). This outer-product form reads
  MA + NB numbers per kept weight instead of the MA * NB of a gather of
  ``h_j(a) h_j(b)`` products, so it runs at the FMA rate, not the load rate.
* Packing: H and D are copied per block of inputs into the tile order (the D
  blocks are k times H's size), block by block in parallel; with x2 None and a
  square tile (AVX-512 float32: 16 x 16) one packed copy serves both sides.
* Threads: the threads of one OpenMP parallel region pull tiles from an atomic
  counter (dynamic load balance). On an oversubscribed machine set
  OMP_WAIT_POLICY=passive.
* Symmetric inputs (x2 None): only tiles holding a pair a <= b are computed.
* Above :data:`~gntk_fast.ops.entk_layer._common.COMPLEMENT_DENSITY` the
  wrapper computes ``dense GEMMs - kernel(~mask)``.
"""
from __future__ import annotations

import torch

from ..._backend import require_cpp
from ._common import dense_layer_term, symmetrize, use_complement

__all__ = ["masked_ntk_layer_cpp"]


def masked_ntk_layer_cpp(D1, H1, D2=None, H2=None, mask=None, *, trace: bool = True, tf32: bool = False,
                         complement: bool | None = None) -> torch.Tensor:
    """Unscaled masked layer term on CPU with the C++ kernel (arguments already validated).

    D1 (N1, k, n_out), H1 (N1, n_in) float32/float64 CPU tensors; D2/H2 the second
    set or None (the first set: only pairs a <= b are computed, the result is
    exactly symmetric on every path); mask (n_out, n_in) bool or None (all ones: two GEMMs).
    ``trace`` True -> (N1, N2), False -> (N1, N2, k, k). ``tf32`` is ignored
    (exact products). ``complement`` forces (True) or forbids (False) the
    complement trick; None decides by density (> ``COMPLEMENT_DENSITY``).
    """
    if mask is None:
        out = dense_layer_term(D1, H1, D2, H2, trace=trace)
        return symmetrize(out, trace) if D2 is None else out
    C = require_cpp()
    use_comp = use_complement(int(torch.count_nonzero(mask)), mask.numel(), complement)
    arrays = [t.detach().contiguous().numpy() if t is not None else None for t in (D1, H1, D2, H2)]

    def kernel(m: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(C.entk_masked_layer(*arrays, m.detach().contiguous().numpy(), trace))

    if not use_comp:
        return kernel(mask)
    out = dense_layer_term(D1, H1, D2, H2, trace=trace) - kernel(~mask)
    return symmetrize(out, trace) if D2 is None else out
