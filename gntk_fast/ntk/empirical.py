"""The empirical NTK of a masked MLP without Jacobians (spec graphon-ntk.md §1, §2).

One batched masked forward and backward gives, for every layer l and input a,
the layer's input ``h^{l-1}(a)`` (H, (N, n_in)) and backward signal
``delta^l(a) = d f / d z^l`` (D, (N, k, n_out)) by explicit recursion::

    delta^{L+1} = I_k,   delta^l = ((ws_{l+1} W^{l+1} * M^{l+1})^T delta^{l+1}) * sigma'(z^l)

Layer l then contributes (``ws`` = weight_scale, ``bs`` = bias_scale)::

    ws^2 * sum_ij [M_ij or 1] D_ij(a, b) H_j(a, b)  +  bs^2 * sum_i D_i(a, b)     (bias term if trainable)

with D_i(a, b) = sum_c delta_ic(a) delta_ic(b) (traced) or delta_ic(a) delta_ic'(b)
(full), H_j(a, b) = h_j(a) h_j(b). Dense masks and ``trainable="all"``
factorise into two GEMMs; masked layers go to a layer kernel (C++ on CPU,
Triton on CUDA). Backend ``"torch"`` is the Jacobian reference
(:func:`gntk_fast.ntk.reference.empirical_ntk_reference`).

Conventions: ``trainable="mask"`` (default) - only kept weights are parameters;
``trainable="all"`` - every weight position is a parameter, the mask only
shapes the forward/backward signals (the paper's Theorem 1 network, plus the
read-out layer's term). A layer with ``bias_scale == 0`` (a frozen zero bias,
see ``MLP.from_sequential``) has no bias term.
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch

from .._backend import cpp_available, triton_available, triton_interpret
from .._validation import check_bool, check_choice
from ._layer import delta_gram, dense_layer_term
from .reference import _check_result_finite, empirical_ntk_reference, prepare_inputs

__all__ = ["empirical_ntk", "empirical_ntk_fn", "forward_backward", "BACKENDS"]

BACKENDS = ("auto", "torch", "cpp", "triton")


def forward_backward(model, x: torch.Tensor, dtype: torch.dtype | None = None):
    """Masked forward + explicit backward for a batch.

    Parameters
    ----------
    model : gntk_fast.MLP;  x : (N, d_in) tensor on the model's device
    dtype : computation dtype (default: the model's)

    Returns
    -------
    (Hs, Ds): per layer l = 1..L+1, ``Hs[l-1]`` = h^{l-1} of shape (N, n_{l-1}) and
    ``Ds[l-1]`` = delta^l of shape (N, k, n_l) with ``delta^l[a, c, i] = d f_c(x_a) / d z^l_i``.
    """
    dtype = dtype or model.layers[0].weight.dtype
    Ws = [(layer.weight.detach() * layer.weight_mask).to(dtype) * layer.weight_scale for layer in model.layers]
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
        for l in range(L1 - 1, -1, -1):
            Ds[l] = delta
            if l > 0:
                # one (N k, n_l) x (n_l, n_{l-1}) GEMM (a batched matmul would re-read W N times)
                delta = (delta.reshape(N * k, -1) @ Ws[l]).reshape(N, k, -1) * grads[l - 1][:, None, :]
    return Hs, Ds


def _resolve_backend(backend: str, device: torch.device) -> str:
    backend = check_choice("backend", backend, BACKENDS)
    if backend == "auto":
        if device.type == "cuda":
            return "triton"
        if cpp_available():
            return "cpp"
        warnings.warn("backend='auto': the C++ extension is unavailable; using the slow torch reference", RuntimeWarning)
        return "torch"
    if backend == "cpp":
        if device.type != "cpu":
            raise ValueError(f"backend 'cpp' needs CPU tensors; the model is on {device}")
        if not cpp_available():
            from .._backend import require_cpp

            try:
                require_cpp()
            except RuntimeError as exc:
                raise RuntimeError(f"backend 'cpp' is unavailable: {exc}") from exc
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend 'triton' is unavailable: triton does not import")
        if device.type == "cpu" and not triton_interpret():
            raise ValueError("backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for the CPU interpreter)")
    return backend


def _layer_kernel(backend: str) -> Callable:
    if backend == "cpp":
        from .cpp import masked_ntk_layer_cpp

        return masked_ntk_layer_cpp
    try:
        from .triton_entk import masked_ntk_layer_triton
    except ImportError as exc:  # the Triton module is optional
        raise RuntimeError(f"backend 'triton' is unavailable: gntk_fast.ntk.triton_entk does not import ({exc})") from exc
    return masked_ntk_layer_triton


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
    backend : "auto" (triton for CUDA tensors, cpp on CPU) | "cpp" | "triton" | "torch" (reference)
    dtype : torch.float32 / torch.float64 / None (the model's dtype)
    per_layer : also return each layer's contribution (weight + bias term of layer l)
    tf32 : triton backend only: let the masked-layer kernels use TF32 tensor-core
        products (about 1e-3 relative error, much faster on Ampere/Hopper). The
        default False keeps exact fp32 products. Ignored by the other backends.

    Returns
    -------
    Theta, or ``(Theta, [Theta_1, ..., Theta_{L+1}])`` when ``per_layer``; the
    list's entries have Theta's shape and sum to it.
    """
    trace = check_bool("trace", trace)
    per_layer = check_bool("per_layer", per_layer)
    tf32 = check_bool("tf32", tf32)
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    check_choice("backend", backend, BACKENDS)
    x1, x2, dtype, device = prepare_inputs(model, x1, x2, dtype)
    backend = _resolve_backend(backend, device)
    if backend == "torch":
        return empirical_ntk_reference(model, x1, x2, trace=trace, trainable=trainable, per_layer=per_layer, dtype=dtype)
    kernel = _layer_kernel(backend)
    kernel_options = {"trace": trace, "tf32": tf32} if backend == "triton" else {"trace": trace}
    sym = x2 is None
    H1s, D1s = forward_backward(model, x1, dtype)
    H2s, D2s = (H1s, D1s) if sym else forward_backward(model, x2, dtype)
    for name, Hs, Ds in (("x1", H1s, D1s), ("x2", H2s, D2s)):
        if not all(bool(torch.isfinite(t).all()) for t in (*Hs, *Ds)):  # before the kernels see them
            raise ValueError(f"{name}: the network's activations or backward signals are not finite in {dtype} "
                             "(overflow from very large inputs or weights: try dtype=torch.float64; "
                             "or an activation that is not finite there)")
    terms = []
    for l, layer in enumerate(model.layers):
        D1, H1 = D1s[l].contiguous(), H1s[l]
        D2, H2 = (None, None) if sym else (D2s[l].contiguous(), H2s[l])
        mask = layer.weight_mask
        n_kept = int(mask.sum())
        if trainable == "all" or n_kept == mask.numel():
            w = dense_layer_term(D1, H1, D2, H2, trace=trace)
        elif n_kept == 0:
            w = None
        else:
            w = kernel(D1, H1, D2, H2, mask, **kernel_options)
        ws2 = float(layer.weight_scale) ** 2
        term = w * ws2 if w is not None else None
        if layer.bias is not None and layer.bias_scale != 0.0:
            b = delta_gram(D1, D2, trace) * (float(layer.bias_scale) ** 2)
            term = b if term is None else term + b
        if term is None:
            N2 = x1.shape[0] if sym else x2.shape[0]
            shape = (x1.shape[0], N2) if trace else (x1.shape[0], N2, model.d_out, model.d_out)
            term = torch.zeros(shape, dtype=dtype, device=device)
        if sym:  # exact symmetry (the kernels mirror already; GEMMs may differ by round-off)
            term = 0.5 * (term + (term.T if trace else term.permute(1, 0, 3, 2)))
        terms.append(term)
    total = terms[0].clone()
    for t in terms[1:]:
        total += t
    _check_result_finite(total, sym, dtype)
    return (total, terms) if per_layer else total


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
    from ..models import MLP

    if not isinstance(model, MLP):
        raise TypeError(f"model must be a gntk_fast.MLP (use MLP.from_sequential for an nn.Sequential); got {type(model).__name__}")
    trace = check_bool("trace", trace)
    per_layer = check_bool("per_layer", per_layer)
    tf32 = check_bool("tf32", tf32)
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    check_choice("backend", backend, BACKENDS)
    if dtype is not None and dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32, torch.float64 or None; got {dtype!r}")

    def ntk(x1, x2=None):
        return empirical_ntk(model, x1, x2, trace=trace, trainable=trainable, backend=backend, dtype=dtype,
                             per_layer=per_layer, tf32=tf32)

    return ntk
