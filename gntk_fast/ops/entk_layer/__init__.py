"""The masked eNTK layer term, one operation with three backends.

:func:`masked_ntk_layer` computes the unscaled bilinear form of one masked
layer (docs/graphon-ntk.md §1)

    traced: out[a, b]        = sum_{i,j} M_ij (sum_c D1[a,c,i] D2[b,c,i]) H1[a,j] H2[b,j]     (N1, N2)
    full:   out[a, b, c, c'] = sum_{i,j} M_ij D1[a,c,i] D2[b,c',i] H1[a,j] H2[b,j]           (N1, N2, k, k)

Backends (:data:`ENTK_LAYER`, in preference order)
    ``triton``  Triton kernels (:mod:`.triton`): CUDA tensors, float32 only
                (CPU tensors only under ``TRITON_INTERPRET=1``, when named explicitly)
    ``cpp``     the C++/OpenMP extension (:mod:`.cpp`): CPU tensors, float32/float64
    ``naive``   the twin (:mod:`.naive`): blocks of kept edges, any device and dtype

``backend="auto"`` follows :data:`gntk_fast.ops.AUTO_RULE`: on CUDA float32
-> triton, CUDA float64 -> naive, CPU -> cpp (naive when the extension is not
built). An explicitly named backend that cannot serve the call raises
:class:`~gntk_fast.ops.BackendError`.
"""
from __future__ import annotations

import torch

from ... import _backend
from ..._validation import check_bool
from .._registry import BackendError, Op
from ._common import COMPLEMENT_DENSITY, check_layer_args, delta_gram, dense_layer_term, layer_term_diagonal, output_shape, symmetrize

__all__ = ["masked_ntk_layer", "ENTK_LAYER", "BackendError", "COMPLEMENT_DENSITY", "delta_gram", "dense_layer_term",
           "layer_term_diagonal", "symmetrize"]


def _triton_check(device: str, dtype: torch.dtype, **_) -> str | None:
    if dtype != torch.float32:
        return f"its kernels take float32 tensors only; got {dtype} (use backend='auto', 'cpp' or 'naive')"
    if not _backend.triton_available():
        return "triton does not import"
    if device == "cuda":
        return None
    if device == "cpu":
        from .triton import kernels_interpreted

        if kernels_interpreted():
            return None
        return "it needs CUDA tensors (or TRITON_INTERPRET=1 set before triton is imported, for the CPU interpreter)"
    return f"it needs CUDA tensors; got {device} tensors"


def _cpp_check(device: str, **_) -> str | None:
    if device != "cpu":
        return f"it needs CPU tensors; got {device} tensors"
    if not _backend.cpp_available():
        return "the C++ extension gntk_fast._C is not built (or fails to import)"
    return None


#: the op's registry: triton (CUDA), cpp (CPU), naive (CPU and CUDA), in preference order
ENTK_LAYER = Op("masked eNTK layer term")
ENTK_LAYER.register("triton", "gntk_fast.ops.entk_layer.triton:masked_ntk_layer_triton", devices=("cuda",),
                    check=_triton_check)
ENTK_LAYER.register("cpp", "gntk_fast.ops.entk_layer.cpp:masked_ntk_layer_cpp", devices=("cpu",), check=_cpp_check)
ENTK_LAYER.register("naive", "gntk_fast.ops.entk_layer.naive:masked_ntk_layer_naive", devices=("cpu", "cuda"))


def masked_ntk_layer(D1, H1, D2=None, H2=None, mask=None, *, trace: bool = True, backend: str = "auto",
                     tf32: bool = False) -> torch.Tensor:
    """Unscaled masked eNTK layer term (see the module docstring for the formula).

    Parameters
    ----------
    D1 : (N1, k, n_out) float32/float64 tensor: backward signals delta^l (df_c/dz^l_i) of x1
    H1 : (N1, n_in) same dtype and device: the layer's inputs h^{l-1} of x1
    D2, H2 : the same for x2, or both None for x2 = x1 (the result is then exactly symmetric)
    mask : (n_out, n_in) bool tensor (True = kept weight), or None for all kept
    trace : True -> (N1, N2) summed over c = c'; False -> (N1, N2, k, k)
    backend : "auto" | "triton" | "cpp" | "naive" (see the module docstring)
    tf32 : allow TF32 tensor-core products (about 1e-3 relative error) where a
        backend has them (triton); exact backends ignore it.

    Returns
    -------
    A tensor of D1's dtype and device, without the 1/n_in scale (the caller applies it).

    Raises ValueError/TypeError naming the argument for bad shapes, dtypes,
    devices or non-finite values; :class:`BackendError` when the named backend
    cannot serve the call.
    """
    D1, H1, D2, H2, mask, trace = check_layer_args(D1, H1, D2, H2, mask, trace)
    tf32 = check_bool("tf32", tf32)
    impl = ENTK_LAYER(backend, D1.device.type, dtype=D1.dtype)
    if D1.numel() == 0 or H1.numel() == 0 or (D2 is not None and D2.shape[0] == 0):
        return torch.zeros(output_shape(D1, D2, trace), dtype=D1.dtype, device=D1.device)  # an empty sum
    return impl(D1, H1, D2, H2, mask, trace=trace, tf32=tf32)
