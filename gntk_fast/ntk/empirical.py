"""The empirical NTK of a masked MLP without Jacobians (docs/graphon-ntk.md §1, §2).

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
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .._io import atomic_path, check_output_path
from .._validation import (
    check_batch,
    check_bool,
    check_choice,
    check_float_dtype,
    check_int,
    check_memory,
    check_path,
)
from ..ops.entk_layer import (
    ENTK_LAYER,
    delta_gram,
    dense_layer_term,
    layer_term_diagonal,
    symmetrize,
)
from ..ops.masked_backward import masked_backward
from ._tiles import _tile_bounds, _tile_pairs

__all__ = ["empirical_ntk", "empirical_ntk_fn", "empirical_nngp", "empirical_ntk_vp", "forward_backward",
           "EmpiricalNTK", "prepare_inputs", "default_block"]


@dataclass
class EmpiricalNTK:
    """An eNTK with its per-layer split (``per_layer=True``).

    kernel:    Theta, (N1, N2) traced or (N1, N2, k, k) full ((N1,) / (N1, k, k) diagonal)
    per_layer: [Theta_1, ..., Theta_{L+1}], each layer's contribution (weight
               and bias terms), each of Theta's shape; they sum to ``kernel``
    names:     for a general module, the path (``named_modules``) of the module
               of each entry of ``per_layer`` (each module with trainable
               parameters, its own parameters only); for the function-level
               form the parameter names; None for a ``gf.MLP`` (layer order)
    """

    kernel: torch.Tensor
    per_layer: list[torch.Tensor]
    names: list[str] | None = None


def _require_mlp(model):
    from ..models import MLP

    if not isinstance(model, MLP):
        raise TypeError(f"model must be a gntk_fast.MLP (use MLP.from_sequential for an nn.Sequential); got {type(model).__name__}")


def _all_finite(t: torch.Tensor) -> bool:
    """No NaN or infinity in ``t``. A sum is finite only when every term is (a NaN
    or an infinity makes it NaN or infinite), so one reduction decides the usual
    case; the elementwise test runs only when the sum is not finite (overflow
    of huge finite values included)."""
    if math.isfinite(float(t.sum())):
        return True
    return bool(torch.isfinite(t).all())


def _require_finite_weights(model) -> None:
    """Every weight finite (a ValueError naming the first bad layer)."""
    for l, layer in enumerate(model.layers):
        if not _all_finite(layer.weight.detach()):
            raise ValueError(f"model weight of layer {l} contains NaN or infinite values")


def _validate_model(model) -> None:
    _require_mlp(model)
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
    _require_finite_weights(model)


def _mlp_inputs(model, name: str, x, device, dtype) -> torch.Tensor:
    """A batch (N, d_in) or one input (d_in,) for the MLP, as a batch (N, d_in) in ``dtype``."""
    x = model.check_input(check_batch(name, x, device=device, dtype=dtype, ndim=(1, 2)), name)
    return x.unsqueeze(0) if x.ndim == 1 else x


def prepare_inputs(model, x1, x2, dtype):
    """Validate (model, x1, x2, dtype) and return (x1, x2 or None, dtype, device).

    Shared by :func:`empirical_ntk` and the Jacobian reference so that both
    reject the same inputs: x1/x2 must be (N, d_in) (or (d_in,)) finite tensors
    on the model's device; the model's masks must be bool tensors shaped like
    its weights, and its weights and biases finite.
    """
    _require_mlp(model)
    device = model.layers[0].weight.device
    for name, x in (("x1", x1), ("x2", x2)):
        if isinstance(x, torch.Tensor) and x.device != device:
            raise ValueError(f"{name} is on {x.device} but the model is on {device}; move them to one device")
    _validate_model(model)
    if dtype is None:
        dtype = model.layers[0].weight.dtype
    check_float_dtype("dtype", dtype)
    x1 = _mlp_inputs(model, "x1", x1, device, dtype)
    x2 = None if x2 is None else _mlp_inputs(model, "x2", x2, device, dtype)
    return x1, x2, dtype, device


def check_result_finite(theta: torch.Tensor, sym: bool, dtype: torch.dtype) -> torch.Tensor:
    """Raise ValueError (naming x1/x2) when the kernel is not finite although the
    inputs and weights are: the network overflowed in ``dtype`` (huge inputs or
    weights) or the activation is undefined on its pre-activations (e.g. log of
    a negative number). Never hand back a silent NaN/inf kernel."""
    if not _all_finite(theta):
        names = "x1" if sym else "x1/x2"
        raise ValueError(
            f"{names}: the eNTK is not finite although the inputs are: the network overflows in {dtype} "
            "(very large inputs or weights; try dtype=torch.float64) or its activation is not finite there"
        )
    return theta


def _entk_options(trace, per_layer, tf32, trainable, backend):
    """Validate the options shared by :func:`empirical_ntk` and :func:`empirical_ntk_fn`."""
    trace = check_bool("trace", trace)
    per_layer = check_bool("per_layer", per_layer)
    tf32 = check_bool("tf32", tf32)
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    backend = check_choice("backend", backend, ("auto", *ENTK_LAYER.names))
    return trace, per_layer, tf32, trainable, backend


def forward_backward(model, x: torch.Tensor, dtype: torch.dtype | None = None):
    """Masked forward + explicit backward for a batch.

    Parameters
    ----------
    model : gntk_fast.MLP;  x : (N, d_in) tensor on the model's device
    dtype : computation dtype (default: the model's)

    Each step through a weight matrix is the ``masked_backward`` operation
    (:mod:`gntk_fast.ops.masked_backward`): on CPU a sparse product over the kept
    weights where the mask is sparse and the step large, else one dense GEMM (the
    registry's "auto" rule). Both sum the same products (round-off differs).

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
        for l in range(L1 - 1, -1, -1):
            Ds[l] = delta
            if l == 0:
                break
            delta = masked_backward(delta.reshape(N * k, -1), Ws[l], model.layers[l].weight_mask, grads[l - 1],
                                    k).reshape(N, k, -1)
    return Hs, Ds


def _require_finite_signals(name: str, Hs, Ds, dtype) -> None:
    if not all(_all_finite(t) for t in (*Hs, *Ds)):  # before the kernels see them
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


#: working-set budget of one pair of input tiles (H and D of the tiles, the
#: kernel's packed copies, the output tile): the default ``block`` keeps the
#: estimate of :func:`default_block` under it
_TILE_BUDGET = 256 * 2**20
_MAX_BLOCK = 8192


def default_block(model, *, trace: bool = True, per_layer: bool = False, dtype: torch.dtype | None = None) -> int:
    """Inputs per tile such that one pair of tiles stays within ``_TILE_BUDGET``
    (256 MiB) by the estimate

        3 tiles' signals  (H and D of every layer, ReLU derivatives, the
                           backward temporary, one layer's packed copy)
      + c output tiles    (B x B, times k^2 untraced; c = 4, or L + 5 with
                           per-layer terms)

    (three tiles: two in use, a third while the next one is computed).
    A multiple of 16 (the C++ kernel's pair tile) in [16, 8192]."""
    dtype = dtype or model.layers[0].weight.dtype
    item = torch.empty((), dtype=dtype).element_size()
    k = model.d_out
    sizes = [tuple(layer.weight.shape) for layer in model.layers]  # (n_out, n_in)
    per_input = sum(n_in + k * n_out for n_out, n_in in sizes) + sum(n_out for n_out, _ in sizes[:-1])
    per_input += max(n_in + k * n_out for n_out, n_in in sizes) + max(k * n_out for n_out, _ in sizes)
    lin = 3 * per_input * item
    quad = (1 if trace else k * k) * item * ((len(sizes) + 5) if per_layer else 4)
    b = int((math.sqrt(lin * lin + 4 * quad * _TILE_BUDGET) - lin) / (2 * quad))  # lin b + quad b^2 = budget
    return max(16, min(_MAX_BLOCK, b // 16 * 16))


@dataclass
class _Tile:
    """The signals of one tile of inputs: ``Hs[l]`` (B, n_in), ``Ds[l]`` (B, k, n_out) contiguous."""

    index: int
    Hs: list
    Ds: list


def _signals(model, x, bounds, index, dtype, name, check: bool) -> _Tile:
    i0, i1 = bounds[index]
    Hs, Ds = forward_backward(model, x[i0:i1], dtype)
    if check:  # each tile's signals are checked the first time they are computed
        _require_finite_signals(name, Hs, Ds, dtype)
    return _Tile(index, Hs, [D.contiguous() for D in Ds])


def _tile_terms(model, t1: _Tile, t2: _Tile | None, layer_fn, *, trace, trainable, tf32, dtype, device):
    """The layer terms of one pair of tiles (t2 None: the diagonal tile, exactly symmetric)."""
    B1, k = t1.Hs[0].shape[0], model.d_out
    B2 = B1 if t2 is None else t2.Hs[0].shape[0]
    shape = (B1, B2) if trace else (B1, B2, k, k)
    terms = []
    for l, layer in enumerate(model.layers):
        D2, H2 = (None, None) if t2 is None else (t2.Ds[l], t2.Hs[l])
        terms.append(_layer_term(layer, t1.Ds[l], t1.Hs[l], D2, H2, layer_fn, trace=trace,
                                 trainable=trainable, tf32=tf32, shape=shape, dtype=dtype, device=device))
    return terms


def _fill(model, x1, x2, outs, layer_fn, *, block, progress, trace, trainable, tf32, dtype, device) -> None:
    """Every pair of tiles into ``outs`` (the total, then each layer's term when
    per-layer terms are asked for): tile (i, j) of x1 x x2, or i <= j mirrored
    onto (j, i) when x2 is None. Each tile's H and D are recomputed from its inputs."""
    sym = x2 is None
    xb = x1 if sym else x2
    b1, b2 = _tile_bounds(x1.shape[0], block), _tile_bounds(xb.shape[0], block)
    pairs = list(_tile_pairs(len(b1), len(b2), sym))
    show = len(pairs) >= 16 if progress is None else progress
    outer = inner = None
    opts = dict(trace=trace, trainable=trainable, tf32=tf32, dtype=dtype, device=device)
    with tqdm(total=len(pairs), desc="eNTK tiles", unit="tile", disable=not show, leave=False) as bar:
        for i, j in pairs:
            if outer is None or outer.index != i:
                reuse = sym and inner is not None and inner.index == i
                outer = inner if reuse else _signals(model, x1, b1, i, dtype, "x1", check=not reuse)
            diagonal = sym and i == j
            if not diagonal and (inner is None or inner.index != j):
                inner = None  # released before the next tile is computed
                # row 0 meets every inner tile (x2's, or x1's tiles j > 0): each is checked once
                inner = _signals(model, xb, b2, j, dtype, "x1" if sym else "x2", check=i == 0)
            terms = _tile_terms(model, outer, None if diagonal else inner, layer_fn, **opts)
            total = terms[0].clone()
            for t in terms[1:]:
                total += t
            check_result_finite(total, sym, dtype)
            (r0, r1), (c0, c1) = b1[i], b2[j]
            for out, tile in zip(outs, [total] + (terms if len(outs) > 1 else [])):
                out[r0:r1, c0:c1] = tile
                if sym and not diagonal:
                    out[c0:c1, r0:r1] = tile.transpose(0, 1) if trace else tile.permute(1, 0, 3, 2)
            bar.update(1)


def _output_file(out, per_layer: bool, device) -> Path | None:
    if check_path("out", out, allow_none=True) is None:
        return None
    if per_layer:
        raise ValueError("out: per_layer=True needs the per-layer terms in memory; "
                         "it cannot be combined with out=PATH")
    if device.type != "cpu":
        raise ValueError(f"out: a memory-mapped result needs CPU inputs; the model is on {device}")
    return check_output_path(out, "out")


def _mlp_diagonal(model, x1, outs, *, block, progress, trace, trainable, dtype) -> None:
    """K(x_a, x_a) of a gf.MLP tile by tile: each layer's diagonal from its signals
    (:func:`~gntk_fast.ops.entk_layer.layer_term_diagonal`), no pair of inputs formed."""
    from .module import run_tiles

    def signals(x, index):
        Hs, Ds = forward_backward(model, x, dtype)
        _require_finite_signals("x1", Hs, Ds, dtype)
        return _Tile(index, Hs, Ds)

    def terms(t, _):
        per = []
        for l, layer in enumerate(model.layers):
            mask = layer.weight_mask
            dense = trainable == "all" or bool(mask.all())
            term = layer_term_diagonal(t.Ds[l], t.Hs[l], None if dense else mask, trace=trace)
            term = term * float(layer.weight_scale) ** 2
            if layer.bias is not None and layer.bias_scale != 0.0:
                D = t.Ds[l]
                b = (D * D).sum((1, 2)) if trace else torch.bmm(D, D.transpose(1, 2))
                term = term + b * float(layer.bias_scale) ** 2
            per.append(term)
        total = per[0].clone()
        for p in per[1:]:
            total += p
        return [total] + (per if len(outs) > 1 else [])

    run_tiles(signals, terms, x1, None, outs, block=block, progress=progress, trace=trace, diagonal=True,
              check=lambda t: check_result_finite(t, True, dtype))


def empirical_ntk(
    model,
    x1,
    x2=None,
    *,
    trace: bool = True,
    diagonal: bool = False,
    trainable: str = "mask",
    backend: str = "auto",
    dtype: torch.dtype | None = None,
    per_layer: bool = False,
    tf32: bool = False,
    out=None,
    block: int | None = None,
    progress: bool | None = None,
):
    """The empirical NTK of a masked network: a ``gf.MLP`` or any ``torch.nn.Module``.

    ``Theta = sum over parameters p of J_p J_p^T`` with ``J_p[a, c] = d f_c(x_a) / d p``,
    over every trainable parameter: the kept entries of masked weights (pruned
    entries contribute nothing), biases, BatchNorm affine parameters, any other
    parameter with ``requires_grad``.

    Parameters
    ----------
    model : gntk_fast.MLP, or any torch.nn.Module. Masks are read from the
        ``weight_mask`` buffers of the package's masked layers and from
        ``torch.nn.utils.prune`` reparametrisations (``weight_orig`` *
        ``weight_mask``). A general module's kernel is that of the module in
        **eval mode** (BatchNorm with its running statistics, dropout off), so
        that each input's outputs depend on that input only; its modes are
        restored afterwards. Its ``nn.Linear`` and ``nn.Conv2d`` weights take
        fast paths (:mod:`gntk_fast.ntk.module`), its other parameters the
        generic ``torch.func`` path; its output ``(N, ...)`` is flattened to
        ``(N, k)``.
    x1 : (N1, ...) tensor on the model's device (an MLP also takes (d_in,))
    x2 : (N2, ...) tensor or None. None means x1: the result is exactly symmetric
        and only pairs a <= b are computed.
    trace : True -> Theta[a, b] = sum_c <df_c(x1_a)/dp, df_c(x2_b)/dp>, shape (N1, N2);
        False -> Theta[a, b, c, c'] = <df_c(x1_a)/dp, df_c'(x2_b)/dp>, shape (N1, N2, k, k).
    diagonal : True -> only K(x1_a, x1_a): shape (N1,) traced, (N1, k, k) full
        (x2 must be None); the cost is linear in N1.
    trainable : "mask" (only kept weights are parameters) | "all" (every weight
        is; a ``gf.MLP`` only). Biases (where the layer has one and
        bias_scale != 0) are parameters in both.
    backend : the backend of the masked linear-layer term: "auto" | "triton" | "cpp" | "naive"
        (see :mod:`gntk_fast.ops.entk_layer`; "auto": triton for CUDA float32,
        cpp on CPU, else the naive twin). A named backend that cannot serve the
        call raises :class:`gntk_fast.ops.BackendError`. For a general module
        "naive" also selects the naive twin of the convolution term
        (:mod:`gntk_fast.ops.entk_conv`), otherwise its "auto" backend.
    dtype : torch.float32 / torch.float64 / None (the model's dtype; a general
        module of another dtype is copied and converted, the caller's is untouched)
    per_layer : return an :class:`EmpiricalNTK` with each layer's contribution
        (in memory only: not with ``out``); for a general module one entry per
        module with trainable parameters, its path in ``EmpiricalNTK.names``
    tf32 : allow TF32 tensor-core products in the masked-layer kernels (triton:
        about 1e-3 relative error, much faster on Ampere/Hopper). Exact backends
        ignore it; the default False keeps exact fp32 products.
    out : None (the result is returned as a tensor) or a file path (CPU only):
        the kernel is written tile by tile into a memory-mapped ``.npy`` file
        (``numpy.lib.format.open_memmap``, dtype float32/float64 like the
        kernel, Theta's shape) so no second copy of it is ever held. The file
        is created under a temporary name beside ``path`` and renamed to
        ``path`` only when complete; on an error or Ctrl-C the temporary file
        is removed and no file appears. Read it with
        ``numpy.load(path, mmap_mode="r")``.
    block : inputs per tile, an int >= 1 (default: one pair of tiles' working
        set within 256 MiB for an MLP (:func:`default_block`), 1 GiB for a
        general module). The pairs are computed tile pair by tile pair (x1 tile
        i x x2 tile j; x2 None: i <= j, mirrored), each tile's forward/backward
        signals recomputed from its inputs, so memory is the output plus one
        pair of tiles at every N. The result does not depend on ``block``
        beyond floating-point round-off.
    progress : tqdm bar over the tile pairs: None (default) shows it when there
        are at least 16, True/False always/never.

    Returns
    -------
    Theta, or ``EmpiricalNTK(kernel=Theta, per_layer=[...], names=...)``
    when ``per_layer`` (the entries have Theta's shape and sum to it); with
    ``out`` the :class:`pathlib.Path` of the written ``.npy`` file.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from torch.nn.utils import prune
    >>> import gntk_fast as gf
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
    ...                     nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    >>> _ = prune.random_unstructured(net[0], "weight", amount=0.5)
    >>> x = torch.randn(5, 1, 8, 8)
    >>> gf.empirical_ntk(net, x).shape
    torch.Size([5, 5])
    >>> gf.empirical_ntk(net, x, trace=False, diagonal=True).shape
    torch.Size([5, 3, 3])
    """
    from ..models import MLP

    trace, per_layer, tf32, trainable, backend = _entk_options(trace, per_layer, tf32, trainable, backend)
    diagonal = check_bool("diagonal", diagonal)
    if progress is not None:
        progress = check_bool("progress", progress)
    if block is not None:
        block = check_int("block", block, min_value=1)
    if not isinstance(model, MLP):
        return _module_entry(model, x1, x2, trace=trace, diagonal=diagonal, trainable=trainable, backend=backend,
                             dtype=dtype, per_layer=per_layer, tf32=tf32, out=out, block=block, progress=progress)
    if diagonal and x2 is not None:
        raise ValueError("x2 must be None with diagonal=True (the diagonal is K(x1_i, x1_i))")
    x1, x2, dtype, device = prepare_inputs(model, x1, x2, dtype)
    if block is None:
        block = default_block(model, trace=trace, per_layer=per_layer, dtype=dtype)
    path = _output_file(out, per_layer, device)
    layer_fn = ENTK_LAYER(backend, device.type, dtype=dtype)
    N1, N2, k = x1.shape[0], (x1 if x2 is None else x2).shape[0], model.d_out
    if diagonal:
        shape = (N1,) if trace else (N1, k, k)
        fill = lambda outs: _mlp_diagonal(model, x1, outs, block=block, progress=progress, trace=trace,  # noqa: E731
                                          trainable=trainable, dtype=dtype)
    else:
        shape = (N1, N2) if trace else (N1, N2, k, k)
        fill = lambda outs: _fill(model, x1, x2, outs, layer_fn, block=block, progress=progress,  # noqa: E731
                                  trace=trace, trainable=trainable, tf32=tf32, dtype=dtype, device=device)
    if path is not None:
        return _fill_file(path, shape, dtype, fill)
    item = torch.empty((), dtype=dtype).element_size()
    check_memory("the eNTK (N1 x N2" + ("" if trace else " x k x k") + ")",
                 math.prod(shape) * item * (len(model.layers) + 1 if per_layer else 1))
    outs = [torch.empty(shape, dtype=dtype, device=device) for _ in range(len(model.layers) + 1 if per_layer else 1)]
    fill(outs)
    return EmpiricalNTK(outs[0], outs[1:]) if per_layer else outs[0]


def _module_entry(model, x1, x2, *, trace, diagonal, trainable, backend, dtype, per_layer, tf32, out, block,
                  progress):
    """The general-module path of :func:`empirical_ntk` (see :mod:`gntk_fast.ntk.module`)."""
    from .module import check_module, module_ntk

    check_module(model)
    if trainable != "mask":
        raise ValueError("trainable='all' is defined for a gntk_fast.MLP only; a general module's kernel is "
                         "over its kept weights (trainable='mask')")
    if dtype is not None:
        check_float_dtype("dtype", dtype)
    device = next(p.device for p in model.parameters())
    path = _output_file(out, per_layer, device)
    check = lambda t: check_result_finite(t, x2 is None, t.dtype)  # noqa: E731
    outs, names = module_ntk(model, x1, x2, trace=trace, diagonal=diagonal, per_layer=per_layer, backend=backend,
                             tf32=tf32, dtype=dtype, block=block, progress=progress, out_path=path,
                             fill_file=_fill_file, check=check)
    if path is not None:
        return outs
    return EmpiricalNTK(outs[0], outs[1:], names) if per_layer else outs[0]


def _fill_file(path: Path, shape, dtype, fill) -> Path:
    """Run ``fill([tensor view of a new .npy memmap])`` and publish the file atomically."""
    with atomic_path(path) as tmp:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32 if dtype == torch.float32 else np.float64,
                                       shape=shape)
        try:
            fill([torch.from_numpy(mm)])
            mm.flush()
        finally:
            del mm
    return path


def empirical_ntk_fn(
    f,
    params=None,
    masks=None,
    *,
    trace: bool = True,
    diagonal: bool = False,
    trainable: str = "mask",
    backend: str = "auto",
    dtype: torch.dtype | None = None,
    per_layer: bool = False,
    tf32: bool = False,
    block: int | None = None,
    progress: bool | None = None,
) -> Callable:
    """Neural-tangents style factory of eNTK functions, in two forms.

    * **Module form** ``empirical_ntk_fn(model, **options)`` (``params`` None):
      returns ``ntk(x1, x2=None)`` = :func:`empirical_ntk` ``(model, x1, x2, ...)``
      with the options fixed here (validated now, so a bad option or model fails
      at construction). ``model`` is a ``gf.MLP`` or any ``nn.Module``.
    * **Function form** ``empirical_ntk_fn(f, params, masks=None, **options)``
      for a function ``f(params, x)`` of a batch ``x`` (torch.func style, e.g.
      ``lambda p, x: torch.func.functional_call(net, p, (x,))``) returning
      ``(N, ...)`` (flattened to ``(N, k)``): returns ``ntk(x1, x2=None, params=None)``
      (``params`` overrides the ones given here, as in neural-tangents'
      ``ntk_fn(x1, x2, params)``). ``params`` is a dict of tensors (or a
      tuple/list of tensors); ``masks`` the same structure with bool (or 0/1)
      tensors shaped like their parameter or None (all kept): the kernel is
      over the kept entries. ``f`` is opaque here, so the Jacobian of each tile
      of inputs is computed by ``vmap(jacrev(f))`` (memory: ``block`` x k x P
      numbers; no fast layer paths, ``backend``/``tf32``/``trainable`` are not
      used). ``per_layer`` splits the kernel by parameter
      (``EmpiricalNTK.names`` = the parameter names). Each input ``x[i]`` is
      passed to ``f`` as a batch of one, so ``f`` must treat inputs
      independently (e.g. BatchNorm in eval mode).

    Options as for :func:`empirical_ntk` (trace, diagonal, per_layer, dtype, block, progress).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from torch.func import functional_call
    >>> import gntk_fast as gf
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    >>> params = {n: p.detach() for n, p in net.named_parameters()}
    >>> masks = {"0.weight": torch.rand(8, 4) < 0.5}
    >>> ntk = gf.empirical_ntk_fn(lambda p, x: functional_call(net, p, (x,)), params, masks)
    >>> ntk(torch.randn(3, 4)).shape
    torch.Size([3, 3])
    >>> gf.empirical_ntk_fn(net, trace=False)(torch.randn(3, 4)).shape   # module form
    torch.Size([3, 3, 2, 2])
    """
    trace, per_layer, tf32, trainable, backend = _entk_options(trace, per_layer, tf32, trainable, backend)
    diagonal = check_bool("diagonal", diagonal)
    if dtype is not None:
        check_float_dtype("dtype", dtype)
    if block is not None:
        block = check_int("block", block, min_value=1)
    if progress is not None:
        progress = check_bool("progress", progress)
    if params is None:
        if masks is not None:
            raise ValueError("masks is for the function form empirical_ntk_fn(f, params, masks); "
                             "a module's masks are read from the module")
        from ..models import MLP
        from .module import check_module

        model = f
        if isinstance(model, MLP):
            _require_mlp(model)
        else:
            check_module(model)

        def ntk(x1, x2=None):
            return empirical_ntk(model, x1, x2, trace=trace, diagonal=diagonal, trainable=trainable, backend=backend,
                                 dtype=dtype, per_layer=per_layer, tf32=tf32, block=block, progress=progress)

        return ntk
    if not callable(f) or isinstance(f, torch.nn.Module):
        raise TypeError(f"f must be a function f(params, x) when params is given; got {type(f).__name__} "
                        "(for a module use empirical_ntk_fn(model) without params)")
    from .module import _function_params, functional_ntk

    _function_params(params, masks)
    given = params

    def ntk_fn(x1, x2=None, params=None):
        p = given if params is None else params
        if dtype is not None:
            p = {k: v.to(dtype) for k, v in p.items()} if isinstance(p, dict) else type(p)(v.to(dtype) for v in p)
        check = lambda t: check_result_finite(t, x2 is None, t.dtype)  # noqa: E731
        outs, names = functional_ntk(f, p, masks, x1, x2, trace=trace, diagonal=diagonal, per_layer=per_layer,
                                     block=block, progress=progress, check=check)
        return EmpiricalNTK(outs[0], outs[1:], names) if per_layer else outs[0]

    return ntk_fn


def empirical_nngp(model, x1, x2=None, *, dtype: torch.dtype | None = None, block: int | None = None):
    """The empirical NNGP kernel: the kernel of the last hidden layer's features.

    The **last hidden layer** is the input of the final ``nn.Linear`` (or the
    package's ``MaskedLinear``) that the module's forward calls: with
    ``phi(x)`` that input (flattened per example, n numbers),

        K[a, b] = <phi(x1_a), phi(x2_b)> / n

    (the covariance of the read-out's pre-activations over a N(0, 1/n) read-out
    weight draw, without its bias; it is not affected by the read-out's mask).
    Computed in eval mode (see :func:`empirical_ntk`), ``block`` inputs per
    forward (default 256).

    Parameters
    ----------
    model : gntk_fast.MLP or any torch.nn.Module calling at least one nn.Linear
    x1 : (N1, ...) tensor;  x2 : (N2, ...) tensor or None (x1; the result is exactly symmetric)
    dtype : torch.float32 / torch.float64 / None (the model's)
    block : inputs per forward pass

    Returns
    -------
    (N1, N2) tensor.

    Examples
    --------
    >>> import torch
    >>> import gntk_fast as gf
    >>> net = gf.MLP(5, 16, 2, 1, seed=0)
    >>> gf.empirical_nngp(net, torch.randn(4, 5)).shape
    torch.Size([4, 4])
    """
    from .module import module_nngp

    if block is not None:
        block = check_int("block", block, min_value=1)
    if dtype is not None:
        check_float_dtype("dtype", dtype)
    return module_nngp(model, x1, x2, dtype=dtype, block=block)


def empirical_ntk_vp(model, x, v, *, trace: bool = True, dtype: torch.dtype | None = None,
                     block: int | None = None):
    """The product of the eNTK of ``x`` with a vector, ``K v``, without forming K.

    ``K v = J (J^T v)``: one vector-Jacobian product (``u = J^T v``, a backward
    pass per block of inputs) and one Jacobian-vector product (``J u``, forward
    mode, ``torch.func.jvp``), per output when traced. Memory: the parameters
    (k copies when traced) and one block's activations, never N x N nor N x P,
    so it serves N for which the N x N kernel does not fit: conjugate gradient
    (or any Krylov method) on this product is the large-N path, e.g. for kernel
    regression ``(K + lambda I) alpha = y``. The kernel is over every trainable
    parameter's kept entries (pruned entries have zero gradient), in eval mode,
    as :func:`empirical_ntk` with ``trainable="mask"``.

    Parameters
    ----------
    model : gntk_fast.MLP or any torch.nn.Module
    x : (N, ...) tensor on the model's device
    v : (N,) tensor when ``trace`` (``K`` = the traced (N, N) kernel), else
        (N, k) (``K`` = the full kernel as an (N k) x (N k) matrix)
    trace : bool
    dtype : torch.float32 / torch.float64 / None (the model's)
    block : inputs per forward/backward pass (default min(N, 256))

    Returns
    -------
    ``K v``, of v's shape.

    Examples
    --------
    Kernel regression by conjugate gradient, ``(K + lam I) alpha = y``:

    >>> import torch
    >>> import gntk_fast as gf
    >>> net = gf.MLP(5, 32, 2, 1, seed=0, dtype=torch.float64)
    >>> x, y = torch.randn(40, 5, dtype=torch.float64), torch.randn(40, dtype=torch.float64)
    >>> lam = 1e-2
    >>> op = lambda v: gf.empirical_ntk_vp(net, x, v) + lam * v
    >>> alpha = torch.zeros_like(y); r = y - op(alpha); p = r.clone(); rs = r @ r
    >>> for _ in range(200):
    ...     Ap = op(p); a = rs / (p @ Ap); alpha += a * p; r -= a * Ap
    ...     rs, rs_old = r @ r, rs
    ...     if rs.sqrt() < 1e-10: break
    ...     p = r + (rs / rs_old) * p
    >>> K = gf.empirical_ntk(net, x)
    >>> bool(torch.allclose((K + lam * torch.eye(40, dtype=torch.float64)) @ alpha, y, atol=1e-8))
    True
    """
    from .module import module_ntk_vp

    trace = check_bool("trace", trace)
    if block is not None:
        block = check_int("block", block, min_value=1)
    if dtype is not None:
        check_float_dtype("dtype", dtype)
    return module_ntk_vp(model, x, v, trace=trace, dtype=dtype, block=block)
