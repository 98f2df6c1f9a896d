"""The empirical NTK of a masked MLP without Jacobians (spec graphon-ntk.md §1, §2).

One batched masked forward and backward gives, for every layer l and input a,
the layer's input ``h^{l-1}(a)`` (H, (N, n_in)) and backward signal
``delta^l(a) = d f / d z^l`` (D, (N, k, n_out)) by explicit recursion::

    delta^{L+1} = I_k,   delta^l = ((ws_{l+1} W^{l+1} * M^{l+1})^T delta^{l+1}) * sigma'(z^l)

Layer l then contributes (``ws`` = weight_scale, ``bs`` = bias_scale)::

    ws^2 * sum_ij [M_ij or 1] D_ij(a, b) H_j(a, b)  +  bs^2 * sum_i D_i(a, b)     (bias term if trainable)

with D_i(a, b) = sum_c delta_ic(a) delta_ic(b) (traced) or delta_ic(a) delta_ic'(b)
(full), H_j(a, b) = h_j(a) h_j(b). Dense masks and ``trainable="all"``
factorise into two GEMMs; masked layers go to the layer-term operation
:func:`gntk_fast.ops.entk_layer.masked_ntk_layer` (``backend`` names its backend:
triton on CUDA, C++ on CPU, the naive twin otherwise). The Jacobian oracle is
the separate function :func:`gntk_fast.ntk.reference.empirical_ntk_reference`.

Conventions: ``trainable="mask"`` (default) - only kept weights are parameters;
``trainable="all"`` - every weight position is a parameter, the mask only
shapes the forward/backward signals (the paper's Theorem 1 network, plus the
read-out layer's term). A layer with ``bias_scale == 0`` (a frozen zero bias,
see ``MLP.from_sequential``) has no bias term.
"""
from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Callable

import torch

from .._validation import check_bool, check_choice, check_tensor
from ..ops.entk_layer import ENTK_LAYER
from ..ops.entk_layer._common import delta_gram, dense_layer_term, symmetrize

__all__ = ["empirical_ntk", "empirical_ntk_fn", "forward_backward", "EmpiricalNTK", "prepare_inputs"]


@dataclass
class EmpiricalNTK:
    """An eNTK with its per-layer split (``per_layer=True``).

    kernel:    Theta, (N1, N2) traced or (N1, N2, k, k) full
    per_layer: [Theta_1, ..., Theta_{L+1}], each layer's contribution (weight
               and bias terms), each of Theta's shape; they sum to ``kernel``
    """

    kernel: torch.Tensor
    per_layer: list[torch.Tensor]


def _check_model(model):
    from ..models import MLP

    if not isinstance(model, MLP):
        raise TypeError(f"model must be a gntk_fast.MLP (use MLP.from_sequential for an nn.Sequential); got {type(model).__name__}")


def _check_weights_finite(model) -> None:
    """Every weight finite. A sum is finite only when every term is (a NaN or an
    infinity makes it NaN or infinite), so one reduction decides the usual case;
    the elementwise test runs only when the sum is not finite (overflow of huge
    finite weights included)."""
    for l, layer in enumerate(model.layers):
        w = layer.weight.detach()
        if math.isfinite(float(w.sum(dtype=torch.float64))):
            continue
        if not bool(torch.isfinite(w).all()):
            raise ValueError(f"model weight of layer {l} contains NaN or infinite values")


def _validate_model(model) -> None:
    _check_model(model)
    for l, layer in enumerate(model.layers):
        m = layer.weight_mask
        if m.dtype != torch.bool:
            raise ValueError(f"model mask of layer {l} must be a bool tensor; got dtype {m.dtype}")
        if tuple(m.shape) != tuple(layer.weight.shape):
            raise ValueError(
                f"model mask of layer {l} must have shape {tuple(layer.weight.shape)} (like its weight); got {tuple(m.shape)}"
            )
        if m.device != layer.weight.device:
            raise ValueError(f"model mask of layer {l} is on {m.device} but its weight is on {layer.weight.device}")
        if layer.bias is not None and not bool(torch.isfinite(layer.bias).all()):
            raise ValueError(f"model bias of layer {l} contains NaN or infinite values")
    _check_weights_finite(model)


def _check_dtype(dtype) -> None:
    if not isinstance(dtype, torch.dtype) or dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32, torch.float64 or None; got {dtype!r}")


def _check_x(model, name: str, x, device, dtype) -> torch.Tensor:
    x = check_tensor(name, x, ndim=(1, 2))
    if x.is_complex():
        raise TypeError(f"{name} must be real-valued; got dtype {x.dtype}")
    if x.device != device:
        raise ValueError(f"{name} is on {x.device} but the model is on {device}; move them to one device")
    x = model.check_input(x, name)
    if x.ndim == 1:
        x = x.unsqueeze(0)
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one input; got shape {tuple(x.shape)}")
    return x.to(dtype)


def prepare_inputs(model, x1, x2, dtype):
    """Validate (model, x1, x2, dtype) and return (x1, x2 or None, dtype, device).

    Shared by :func:`empirical_ntk` and the Jacobian reference so that both
    reject the same inputs: x1/x2 must be (N, d_in) (or (d_in,)) finite tensors
    on the model's device; the model's masks must be bool tensors shaped like
    its weights, and its weights and biases finite.
    """
    _check_model(model)
    device = model.layers[0].weight.device
    for name, x in (("x1", x1), ("x2", x2)):
        if isinstance(x, torch.Tensor) and x.device != device:
            raise ValueError(f"{name} is on {x.device} but the model is on {device}; move them to one device")
    _validate_model(model)
    if dtype is None:
        dtype = model.layers[0].weight.dtype
    _check_dtype(dtype)
    x1 = _check_x(model, "x1", x1, device, dtype)
    x2 = None if x2 is None else _check_x(model, "x2", x2, device, dtype)
    return x1, x2, dtype, device


def check_result_finite(theta: torch.Tensor, sym: bool, dtype: torch.dtype) -> torch.Tensor:
    """Raise ValueError (naming x1/x2) when the kernel is not finite although the
    inputs and weights are: the network overflowed in ``dtype`` (huge inputs or
    weights) or the activation is undefined on its pre-activations (e.g. log of
    a negative number). Never hand back a silent NaN/inf kernel."""
    if not bool(torch.isfinite(theta).all()):
        names = "x1" if sym else "x1/x2"
        raise ValueError(
            f"{names}: the eNTK is not finite although the inputs are: the network overflows in {dtype} "
            "(very large inputs or weights; try dtype=torch.float64) or its activation is not finite there"
        )
    return theta


def _check_options(trace, per_layer, tf32, trainable, backend):
    """Validate the options shared by :func:`empirical_ntk` and :func:`empirical_ntk_fn`."""
    trace = check_bool("trace", trace)
    per_layer = check_bool("per_layer", per_layer)
    tf32 = check_bool("tf32", tf32)
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    backend = check_choice("backend", backend, ("auto", *ENTK_LAYER.names))
    return trace, per_layer, tf32, trainable, backend


#: the backward pass's sparse product serves masks at most this dense, in steps whose
#: dense GEMM has at least this many multiply-adds N k n_l n_{l-1} (below, the GEMM is as fast)
_SPARSE_BACKWARD_DENSITY = 0.3
_SPARSE_BACKWARD_MIN_MACS = 1 << 28


def _cpp_module():
    """gntk_fast._C when it imports and has the sparse backward product, else None."""
    from .. import _backend

    mod = _backend._load_c()[0]
    return mod if mod is not None and hasattr(mod, "masked_backward") else None


def forward_backward(model, x: torch.Tensor, dtype: torch.dtype | None = None):
    """Masked forward + explicit backward for a batch.

    Parameters
    ----------
    model : gntk_fast.MLP;  x : (N, d_in) tensor on the model's device
    dtype : computation dtype (default: the model's)

    On CPU with the C++ extension, a step through a weight matrix whose mask keeps at most
    ``_SPARSE_BACKWARD_DENSITY`` of its entries, in a step of at least
    ``_SPARSE_BACKWARD_MIN_MACS`` dense multiply-adds, runs as a sparse product over the
    kept weights (``gntk_fast._C.masked_backward``);
    otherwise it is one dense GEMM. Both sum the same products (round-off differs).

    Returns
    -------
    (Hs, Ds): per layer l = 1..L+1, ``Hs[l-1]`` = h^{l-1} of shape (N, n_{l-1}) and
    ``Ds[l-1]`` = delta^l of shape (N, k, n_l) with ``delta^l[a, c, i] = d f_c(x_a) / d z^l_i``.
    """
    dtype = dtype or model.layers[0].weight.dtype
    Ws = [(layer.weight.detach() * layer.weight_mask).to(dtype).mul_(layer.weight_scale) for layer in model.layers]
    h = x.to(dtype)
    Hs, grads = [], []
    L1 = len(model.layers)
    with torch.no_grad():
        for l, layer in enumerate(model.layers):
            Hs.append(h)
            z = h @ Ws[l].T
            if layer.bias is not None and layer.bias_scale != 0.0:
                z = z + layer.bias_scale * layer.bias.detach().to(dtype)
            if l < L1 - 1:
                act = model.activations[l]
                grads.append(act.grad(z).to(dtype))
                h = act.fn(z)
        N, k = x.shape[0], model.d_out
        delta = torch.eye(k, dtype=dtype, device=x.device).expand(N, k, k)
        Ds = [None] * L1
        C = _cpp_module() if x.device.type == "cpu" else None
        for l in range(L1 - 1, -1, -1):
            Ds[l] = delta
            if l == 0:
                break
            mask = model.layers[l].weight_mask
            if (C is not None and N * k * mask.numel() >= _SPARSE_BACKWARD_MIN_MACS
                    and int(torch.count_nonzero(mask)) <= _SPARSE_BACKWARD_DENSITY * mask.numel()):
                # sparse: work ~ N k nnz(M) instead of N k n_l n_{l-1} (csrc/masked_matmul.cpp), sigma' fused
                delta = torch.from_numpy(C.masked_backward(
                    delta.reshape(N * k, -1).contiguous().numpy(), Ws[l].contiguous().numpy(),
                    mask.contiguous().numpy(), grads[l - 1].contiguous().numpy(), k))
                delta = delta.reshape(N, k, -1)
            else:
                # one (N k, n_l) x (n_l, n_{l-1}) GEMM (a batched matmul would re-read W N times),
                # scaled in place by sigma'(z^{l-1}) (no second (N, k, n) array)
                delta = (delta.reshape(N * k, -1) @ Ws[l]).reshape(N, k, -1).mul_(grads[l - 1][:, None, :])
    return Hs, Ds


def _check_signals_finite(name: str, Hs, Ds, dtype) -> None:
    if not all(bool(torch.isfinite(t).all()) for t in (*Hs, *Ds)):  # before the kernels see them
        raise ValueError(f"{name}: the network's activations or backward signals are not finite in {dtype} "
                         "(overflow from very large inputs or weights: try dtype=torch.float64; "
                         "or an activation that is not finite there)")


def _layer_term(layer, D1, H1, D2, H2, layer_fn, *, trace, trainable, tf32, shape, dtype, device):
    """One layer's contribution ws^2 * (weight term) + bs^2 * (bias term)."""
    mask = layer.weight_mask
    n_kept = int(torch.count_nonzero(mask))
    if trainable == "all" or n_kept == mask.numel():
        w = dense_layer_term(D1, H1, D2, H2, trace=trace)
    elif n_kept == 0:
        w = None
    else:
        w = layer_fn(D1, H1, D2, H2, mask, trace=trace, tf32=tf32)
    term = w * (float(layer.weight_scale) ** 2) if w is not None else None
    if layer.bias is not None and layer.bias_scale != 0.0:
        b = delta_gram(D1, D2, trace) * (float(layer.bias_scale) ** 2)
        term = b if term is None else term + b
    if term is None:
        term = torch.zeros(shape, dtype=dtype, device=device)
    return symmetrize(term, trace) if D2 is None else term  # the bias GEMM is symmetric up to round-off


def empirical_ntk(
    model,
    x1,
    x2=None,
    *,
    trace: bool = True,
    trainable: str = "mask",
    backend: str = "auto",
    dtype: torch.dtype | None = None,
    per_layer: bool = False,
    tf32: bool = False,
):
    """The empirical NTK of a masked MLP.

    Parameters
    ----------
    model : gntk_fast.MLP (any parameterization, with or without biases; for an
        ``nn.Sequential`` use ``MLP.from_sequential``)
    x1 : (N1, d_in) tensor (or (d_in,)), on the model's device
    x2 : (N2, d_in) tensor or None. None means x1: the result is exactly symmetric
        and only pairs a <= b are computed.
    trace : True -> Theta[a, b] = sum_c <df_c(x1_a)/dp, df_c(x2_b)/dp>, shape (N1, N2);
        False -> Theta[a, b, c, c'] = <df_c(x1_a)/dp, df_c'(x2_b)/dp>, shape (N1, N2, k, k).
    trainable : "mask" (only kept weights are parameters) | "all" (every weight is).
        Biases (where the layer has one and bias_scale != 0) are parameters in both.
    backend : the backend of the masked layer term: "auto" | "triton" | "cpp" | "naive"
        (see :mod:`gntk_fast.ops.entk_layer`; "auto": triton for CUDA float32,
        cpp on CPU, else the naive twin). A named backend that cannot serve the
        call raises :class:`gntk_fast.ops.BackendError`.
    dtype : torch.float32 / torch.float64 / None (the model's dtype)
    per_layer : return an :class:`EmpiricalNTK` with each layer's contribution
    tf32 : allow TF32 tensor-core products in the masked-layer kernels (triton:
        about 1e-3 relative error, much faster on Ampere/Hopper). Exact backends
        ignore it; the default False keeps exact fp32 products.

    Returns
    -------
    Theta, or ``EmpiricalNTK(kernel=Theta, per_layer=[Theta_1, ..., Theta_{L+1}])``
    when ``per_layer`` (the entries have Theta's shape and sum to it).
    """
    trace, per_layer, tf32, trainable, backend = _check_options(trace, per_layer, tf32, trainable, backend)
    x1, x2, dtype, device = prepare_inputs(model, x1, x2, dtype)
    layer_fn = ENTK_LAYER(backend, device.type, dtype=dtype)
    sym = x2 is None
    H1s, D1s = forward_backward(model, x1, dtype)
    _check_signals_finite("x1", H1s, D1s, dtype)
    H2s, D2s = (H1s, D1s) if sym else forward_backward(model, x2, dtype)
    _check_signals_finite("x2", H2s, D2s, dtype)
    N1, N2, k = x1.shape[0], (x1 if sym else x2).shape[0], model.d_out
    shape = (N1, N2) if trace else (N1, N2, k, k)
    terms = []
    for l, layer in enumerate(model.layers):
        D2, H2 = (None, None) if sym else (D2s[l].contiguous(), H2s[l])
        terms.append(_layer_term(layer, D1s[l].contiguous(), H1s[l], D2, H2, layer_fn, trace=trace,
                                 trainable=trainable, tf32=tf32, shape=shape, dtype=dtype, device=device))
    total = terms[0].clone()
    for t in terms[1:]:
        total += t
    check_result_finite(total, sym, dtype)
    return EmpiricalNTK(total, terms) if per_layer else total


def empirical_ntk_fn(
    model,
    *,
    trace: bool = True,
    trainable: str = "mask",
    backend: str = "auto",
    dtype: torch.dtype | None = None,
    per_layer: bool = False,
    tf32: bool = False,
) -> Callable:
    """Neural-tangents style factory: returns ``ntk(x1, x2=None)`` =
    :func:`empirical_ntk` ``(model, x1, x2, ...)`` with the options fixed here
    (validated now, so a bad option or model fails at construction)."""
    _check_model(model)
    trace, per_layer, tf32, trainable, backend = _check_options(trace, per_layer, tf32, trainable, backend)
    if dtype is not None:
        _check_dtype(dtype)

    def ntk(x1, x2=None):
        return empirical_ntk(model, x1, x2, trace=trace, trainable=trainable, backend=backend, dtype=dtype,
                             per_layer=per_layer, tf32=tf32)

    return ntk
