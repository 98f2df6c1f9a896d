"""The empirical NTK of any masked torch module, without its Jacobian.

For a module ``f`` with trainable parameters theta (k outputs per input) the
kernel is a sum over parameters of J J^T (see :func:`gntk_fast.ntk.empirical_ntk`)::

    traced: Theta[a, b]        = sum_c sum_p  df_c(x_a)/dtheta_p  df_c(x_b)/dtheta_p
    full:   Theta[a, b, c, c'] = sum_p        df_c(x_a)/dtheta_p  df_c'(x_b)/dtheta_p

where p runs over the *kept* entries of masked weights (the mask of a
``torch.nn.utils.prune`` reparametrisation, ``weight_orig`` * ``weight_mask``,
or the ``weight_mask`` buffer of the package's masked layers), every bias,
every BatchNorm affine parameter and every other parameter with
``requires_grad``. Pruned entries contribute nothing.

Mode: the kernel is that of the module in **eval mode** (BatchNorm uses its
running statistics, dropout is off), so that every input's outputs depend on
that input alone; the module is switched to eval for the computation and its
modes are restored afterwards. BatchNorm without running statistics couples
the inputs of a batch and is refused.

How it is computed (one dispatch rule, :func:`_fast_layer`)
    * ``nn.Linear`` / the package's ``MaskedLinear`` (2-D inputs): the layer's
      input h and backward signal delta = df/dz; the weight term is the masked
      layer term of :mod:`gntk_fast.ops.entk_layer` (the MLP kernels).
    * ``nn.Conv2d`` (groups = 1, any stride, dilation, padding and padding
      mode) / the package's ``MaskedConv2d`` and ``nn.Linear`` on inputs with
      extra dimensions: the per-example gradient of the kept weights from the
      input patches (``F.unfold``) and delta, the term of
      :mod:`gntk_fast.ops.entk_conv`.
    * biases of those layers (sum of delta over positions) and BatchNorm affine
      parameters (eval mode: ``d y / d gamma = x_hat``, ``d y / d beta = 1``):
      small per-example gradient vectors, contracted by one GEMM.
    * every other trainable parameter (LayerNorm, grouped convolutions, a
      module used twice in one forward, custom parameters, ...): the generic
      path, ``torch.func.vmap(jacrev(functional_call))`` over a tile of inputs
      and only those parameters.

The signals come from one forward pass with forward hooks on the fast layers
(their inputs, and their outputs kept as autograd nodes) and one backward pass
per output (k in all) to those outputs only. Inputs are processed in tiles
(``block``): memory is the output plus the signals of two tiles, never the
N x P Jacobian.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, vmap
from tqdm.auto import tqdm

from .._validation import check_batch, check_float_dtype, check_int, check_memory, check_tensor
from ..ops.entk_conv import ENTK_CONV
from ..ops.entk_layer import ENTK_LAYER
from ..ops.entk_layer import delta_gram, dense_layer_term, layer_term_diagonal, symmetrize
from ._tiles import _tile_bounds, _tile_pairs

__all__ = ["module_ntk", "module_nngp", "module_ntk_vp", "functional_ntk", "check_module"]

#: working-set budget of one pair of tiles of a module (signals of both tiles)
_TILE_BUDGET = 1 << 30
_MAX_BLOCK = 8192


# ------------------------------------------------------------------ model inspection
@dataclass
class _Layer:
    """A parameterised module and how its parameters' Jacobian is obtained.

    kind: "linear" | "conv" (fast weight term), "affine" (BatchNorm), or "generic"
    """

    name: str
    module: nn.Module
    kind: str
    weight: str | None = None  # attribute of the differentiated weight ("weight" / "weight_orig")
    mask: torch.Tensor | None = None  # bool, (n_out, q); None: every entry kept
    bias: str | None = None
    bias_mask: torch.Tensor | None = None
    ws: float = 1.0
    bs: float = 1.0
    conv: dict = field(default_factory=dict)  # kernel_size, stride, dilation, pad, mode
    generic: list = field(default_factory=list)  # [(full parameter name, attribute)] of the generic path


def _mask_of(module: nn.Module, attr: str) -> tuple[str | None, torch.Tensor | None]:
    """(the differentiated attribute, its bool mask or None) of parameter ``attr``:
    ``attr_orig`` with a ``attr_mask`` buffer (torch.nn.utils.prune), else ``attr``."""
    params = dict(module.named_parameters(recurse=False))
    if f"{attr}_orig" in params and isinstance(getattr(module, f"{attr}_mask", None), torch.Tensor):
        p = f"{attr}_orig"
        return (p if params[p].requires_grad else None), getattr(module, f"{attr}_mask").detach() != 0
    p = params.get(attr)
    return (attr if p is not None and p.requires_grad else None), None


def _gf_masked_classes():
    from .. import models

    return tuple(c for c in (getattr(models, "MaskedLinear", None), getattr(models, "MaskedConv2d", None))
                 if c is not None)


def _fast_layer(name: str, m: nn.Module) -> _Layer | None:
    """The one dispatch rule: the fast description of module ``m``, or None (generic path)."""
    gf_classes = _gf_masked_classes()
    if isinstance(m, gf_classes):  # the package's masked layers: weight * weight_mask, scaled
        w = "weight" if m.weight.requires_grad else None
        b = "bias" if m.bias is not None and m.bias.requires_grad and float(m.bias_scale) != 0.0 else None
        mask = m.weight_mask.detach()
        if m.weight.ndim == 2:
            return _Layer(name, m, "linear", w, mask, b, None, float(m.weight_scale), float(m.bias_scale))
        k = int(m.kernel_size)
        r = (k - 1) // 2
        conv = dict(kernel_size=(k, k), stride=(1, 1), dilation=(1, 1), pad=(r, r, r, r),
                    mode="circular" if m.padding == "circular" else "constant")
        return _Layer(name, m, "conv", w, mask.reshape(mask.shape[0], -1), b, None, float(m.weight_scale),
                      float(m.bias_scale), conv)
    if isinstance(m, nn.Linear):
        w, mask = _mask_of(m, "weight")
        b, bmask = _mask_of(m, "bias")
        return _Layer(name, m, "linear", w, mask, b, bmask)
    if isinstance(m, nn.Conv2d) and m.groups == 1:
        w, mask = _mask_of(m, "weight")
        b, bmask = _mask_of(m, "bias")
        pad = tuple(int(v) for v in m._reversed_padding_repeated_twice)
        conv = dict(kernel_size=tuple(m.kernel_size), stride=tuple(m.stride), dilation=tuple(m.dilation), pad=pad,
                    mode="constant" if m.padding_mode == "zeros" else m.padding_mode)
        if mask is not None:
            mask = mask.reshape(mask.shape[0], -1)
        return _Layer(name, m, "conv", w, mask, b, bmask, conv=conv)
    if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
        if not m.track_running_stats or m.running_mean is None:
            raise ValueError(f"model: BatchNorm layer {name!r} has no running statistics, so its output for one "
                             "input depends on the other inputs of the batch and no per-input kernel exists; "
                             "use track_running_stats=True")
        w, mask = _mask_of(m, "weight")
        b, bmask = _mask_of(m, "bias")
        return _Layer(name, m, "affine", w, mask, b, bmask)
    return None


def _own_trainable(m: nn.Module) -> dict:
    return {n: p for n, p in m.named_parameters(recurse=False) if p.requires_grad}


def _collect(model: nn.Module) -> list[_Layer]:
    """Every module with trainable parameters, in ``named_modules`` order, with its path."""
    layers = []
    for name, m in model.named_modules():
        own = _own_trainable(m)
        if not own:
            continue
        lay = _fast_layer(name, m)
        if lay is None:
            lay = _Layer(name, m, "generic")
        handled = {a for a in (lay.weight, lay.bias) if a is not None}
        lay.generic = [(f"{name}.{a}" if name else a, a) for a in own if a not in handled]
        if lay.kind != "generic" and lay.weight is None and lay.bias is None:
            lay.kind = "generic"
        layers.append(lay)
    return layers


def _demote(lay: _Layer) -> None:
    """Move a fast layer's parameters to the generic path."""
    lay.kind = "generic"
    lay.generic = [(f"{lay.name}.{a}" if lay.name else a, a) for a in _own_trainable(lay.module)]


def _param_device_dtype(model: nn.Module):
    ps = [p for p in model.parameters() if p.is_floating_point()]
    if not ps:
        raise ValueError("model has no floating-point parameters")
    return ps[0].device, ps[0].dtype


def check_module(model) -> nn.Module:
    """``model`` must be an ``nn.Module`` with at least one trainable parameter, all of them finite."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    n = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        n += 1
        if p.is_floating_point() and not bool(torch.isfinite(p.detach()).all()):
            raise ValueError(f"model parameter {name!r} contains NaN or infinite values")
    if n == 0:
        raise ValueError("model has no trainable parameter (requires_grad=True): its eNTK is zero")
    return model


class _EvalMode:
    """Switch a module to eval mode and restore every submodule's mode afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        for m, t in self.modes:
            m.training = t


# ------------------------------------------------------------------ signals of one tile
@dataclass
class _Sig:
    """Signals of one tile of inputs: per fast layer (h, delta); per layer its vector Jacobians."""

    index: int
    n: int
    k: int
    H: dict
    D: dict
    vec: dict  # layer name -> (B, k, p) Jacobian of its biases / affine / generic parameters


def _flat_out(out, n: int) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model: its forward must return one tensor; got {type(out).__name__}")
    if out.ndim == 0 or out.shape[0] != n:
        raise ValueError(f"model: its output must have the inputs' batch dimension {n} first; "
                         f"got shape {tuple(out.shape)}")
    return out.reshape(n, -1)


class _Plan:
    """The model's layers, checked once by a probe forward (which fast layers run exactly once)."""

    def __init__(self, model: nn.Module, x_probe: torch.Tensor) -> None:
        self.model = model
        self.layers = _collect(model)
        calls: dict[str, int] = {}
        handles = []
        for lay in self.layers:
            if lay.kind != "generic":
                handles.append(lay.module.register_forward_hook(
                    lambda m, a, o, name=lay.name: calls.__setitem__(name, calls.get(name, 0) + 1)))
        try:
            with torch.no_grad():
                out = _flat_out(model(x_probe), x_probe.shape[0])
        finally:
            for h in handles:
                h.remove()
        self.k = out.shape[1]
        for lay in self.layers:
            if lay.kind != "generic" and calls.get(lay.name, 0) != 1:
                _demote(lay)  # shared or unused: the generic path handles it exactly
            if lay.kind == "linear" and lay.mask is not None and bool(lay.mask.all()):
                lay.mask = None
            if lay.kind == "conv" and lay.mask is not None and bool(lay.mask.all()):
                lay.mask = None
        self.fast = [lay for lay in self.layers if lay.kind != "generic"]
        self.generic_params = [(full, lay, attr) for lay in self.layers for full, attr in lay.generic]

    def signals(self, x: torch.Tensor, index: int = 0) -> _Sig:
        B = x.shape[0]
        caps: dict[str, tuple] = {}

        def hook(m, args, out, name):
            caps[name] = (args[0].detach().clone(), out)
            return out.clone()  # later in-place operations act on the copy, not on the captured node

        handles = [lay.module.register_forward_hook(lambda m, a, o, name=lay.name: hook(m, a, o, name))
                   for lay in self.fast]
        try:
            with torch.enable_grad():
                f = _flat_out(self.model(x), B)
        finally:
            for h in handles:
                h.remove()
        k = f.shape[1]
        H, D = {}, {}
        if self.fast:
            zs = [caps[lay.name][1] for lay in self.fast]
            for lay, g in zip(self.fast, self._backward(f, zs)):
                H[lay.name] = caps[lay.name][0]
                D[lay.name] = g.transpose(0, 1)  # (B, k, ...), a view of the (k, B, ...) result
            del zs, caps, f
        vec = {}
        for lay in self.fast:
            parts = self._vector_parts(lay, H[lay.name], D[lay.name])
            if parts:
                vec[lay.name] = parts
        if self.generic_params:
            for name, J in self._generic_jacobian(x).items():
                vec.setdefault(name, []).append(J)
        vec = {n: (p[0] if len(p) == 1 else torch.cat(p, 2)) for n, p in vec.items()}
        return _Sig(index, B, k, H, D, vec)

    batched_backward = True

    def _backward(self, f: torch.Tensor, zs: list) -> list:
        """``d f_c / d z`` for every captured output z and every output c: (k, B, *z.shape[1:]) each.

        One backward pass batched over the k outputs (``is_grads_batched``, the
        output basis as grad_outputs); where an operation of the module has no
        batching rule for its backward, one backward pass per output."""
        B, k = f.shape
        if self.batched_backward:
            basis = torch.eye(k, dtype=f.dtype, device=f.device)[:, None, :].expand(k, B, k)
            try:
                g = torch.autograd.grad(f, zs, grad_outputs=basis, is_grads_batched=True, allow_unused=True,
                                        retain_graph=True)
                return [torch.zeros((k, *z.shape), dtype=z.dtype, device=z.device) if gi is None else gi.detach()
                        for gi, z in zip(g, zs)]
            except RuntimeError:
                self.batched_backward = False
        out = [torch.empty((k, *z.shape), dtype=z.dtype, device=z.device) for z in zs]
        for c in range(k):
            g = torch.autograd.grad(f[:, c].sum(), zs, retain_graph=c < k - 1, allow_unused=True)
            for o, gi in zip(out, g):
                if gi is None:
                    o[c].zero_()
                else:
                    o[c].copy_(gi)
        return out

    @staticmethod
    def _vector_parts(lay: _Layer, h: torch.Tensor, d: torch.Tensor) -> list:
        """The (B, k, p) Jacobians of a fast layer's bias / BatchNorm affine parameters."""
        B, k = d.shape[0], d.shape[1]
        parts = []
        if lay.kind == "affine":
            m = lay.module
            shape = (1, -1) + (1,) * (h.ndim - 2)
            xhat = (h - m.running_mean.to(h.dtype).reshape(shape)) / torch.sqrt(
                m.running_var.to(h.dtype).reshape(shape) + m.eps)
            dims = tuple(range(3, d.ndim))
            if lay.weight is not None:  # sum_p delta_p xhat_p as a batched product (no B x k x C x p temporary)
                jg = torch.einsum("bkcp,bcp->bkc", d.reshape(B, k, d.shape[2], -1),
                                  xhat.reshape(B, xhat.shape[1], -1)) if dims else d * xhat[:, None]
                parts.append(jg if lay.mask is None else jg * lay.mask.to(jg.dtype))
            if lay.bias is not None:
                jb = d.sum(dims) if dims else d
                parts.append(jb if lay.bias_mask is None else jb * lay.bias_mask.to(jb.dtype))
            return parts
        if lay.bias is not None:
            if lay.kind == "linear":
                jb = d.reshape(B, k, -1, d.shape[-1]).sum(2)
            else:
                jb = d.reshape(B, k, d.shape[2], -1).sum(3)
            jb = jb * lay.bs
            parts.append(jb if lay.bias_mask is None else jb * lay.bias_mask.to(jb.dtype))
        return parts

    def _generic_jacobian(self, x: torch.Tensor) -> dict:
        """Per owning layer, the (B, k, p) Jacobian of the generic parameters (torch.func)."""
        params = {full: getattr(lay.module, attr).detach() for full, lay, attr in self.generic_params}
        model = self.model

        def f(p, xi):
            return functional_call(model, p, (xi.unsqueeze(0),)).reshape(-1)

        J = vmap(jacrev(f), in_dims=(None, 0))(params, x)
        B = x.shape[0]
        out: dict[str, list] = {}
        for full, lay, attr in self.generic_params:
            out.setdefault(lay.name, []).append(J[full].reshape(B, J[full].shape[1], -1))
        return {n: torch.cat(v, 2) for n, v in out.items()}


# ------------------------------------------------------------------ terms of a pair of tiles
def _patches(lay: _Layer, h: torch.Tensor, d: torch.Tensor):
    """(D (B, k, n_out, p), U (B, q, p)) of a conv layer or of a linear layer on >2-D inputs."""
    B, k = d.shape[0], d.shape[1]
    if lay.kind == "linear":
        n_in, n_out = h.shape[-1], d.shape[-1]
        U = h.reshape(B, -1, n_in).transpose(1, 2)
        return d.reshape(B, k, -1, n_out).transpose(2, 3), U
    g = lay.conv
    if any(g["pad"]):
        h = F.pad(h, g["pad"], mode=g["mode"])
    U = F.unfold(h, g["kernel_size"], dilation=g["dilation"], stride=g["stride"])
    return d.reshape(B, k, d.shape[2], -1), U


def _weight_term(lay, s1: _Sig, s2: _Sig | None, *, trace, diagonal, layer_fn, conv_backend, tf32):
    h1, d1 = s1.H[lay.name], s1.D[lay.name]
    if lay.kind == "linear" and h1.ndim == 2:
        if diagonal:
            return layer_term_diagonal(d1, h1, lay.mask, trace=trace)
        h2, d2 = (None, None) if s2 is None else (s2.H[lay.name], s2.D[lay.name])
        if lay.mask is None:
            t = dense_layer_term(d1, h1, d2, h2, trace=trace)
            return symmetrize(t, trace) if s2 is None else t
        return layer_fn(d1.contiguous(), h1, None if d2 is None else d2.contiguous(), h2, lay.mask,
                        trace=trace, tf32=tf32)
    D1, U1 = _patches(lay, h1, d1)
    D2 = U2 = None
    if s2 is not None and not diagonal:
        D2, U2 = _patches(lay, s2.H[lay.name], s2.D[lay.name])
    return ENTK_CONV(conv_backend, D1.device.type)(D1, U1, D2, U2, lay.mask, trace=trace, diagonal=diagonal)


def _vec_term(J1, J2, *, trace, diagonal):
    if diagonal:
        return (J1 * J1).sum((1, 2)) if trace else torch.bmm(J1, J1.transpose(1, 2))
    t = delta_gram(J1, J2, trace)
    return symmetrize(t, trace) if J2 is None else t


def _pair_terms(plan: _Plan, s1: _Sig, s2: _Sig | None, *, per_layer, **opts) -> list:
    """[total] or [total, per-layer terms...] of a pair of tiles (s2 None: the diagonal tile)."""
    terms = {}
    trace, diagonal = opts["trace"], opts["diagonal"]
    for lay in plan.fast:
        if lay.kind in ("linear", "conv") and lay.weight is not None:
            t = _weight_term(lay, s1, s2, **opts) * (lay.ws ** 2)
            terms[lay.name] = t
    if per_layer:
        for name, J1 in s1.vec.items():
            t = _vec_term(J1, None if s2 is None else s2.vec[name], trace=trace, diagonal=diagonal)
            terms[name] = terms[name] + t if name in terms else t
    elif s1.vec:
        names = list(s1.vec)
        J1 = torch.cat([s1.vec[n] for n in names], 2)
        J2 = None if s2 is None else torch.cat([s2.vec[n] for n in names], 2)
        terms["(vectors)"] = _vec_term(J1, J2, trace=trace, diagonal=diagonal)
    vals = list(terms.values())
    total = vals[0].clone()
    for t in vals[1:]:
        total += t
    if not per_layer:
        return [total]
    return [total] + [terms.get(lay.name, torch.zeros_like(total)) for lay in plan.layers]


# ------------------------------------------------------------------ tile engine
def run_tiles(signals: Callable, terms: Callable, x1, x2, outs, *, block, progress, trace, diagonal,
              check: Callable) -> None:
    """Fill ``outs`` ([total] or [total, per-layer...]) tile pair by tile pair.

    ``signals(x_tile, index)`` returns a tile's signals (with ``.index``),
    ``terms(s1, s2 or None)`` the list of terms of a pair (s2 None: the
    diagonal tile of x1 against itself, or the diagonal when ``diagonal``).
    x2 None: pairs i <= j, mirrored."""
    sym = x2 is None
    xb = x1 if sym else x2
    b1 = _tile_bounds(x1.shape[0], block)
    if diagonal:
        show = len(b1) >= 16 if progress is None else progress
        for i in tqdm(range(len(b1)), desc="eNTK diagonal tiles", unit="tile", disable=not show, leave=False):
            r0, r1 = b1[i]
            vals = terms(signals(x1[r0:r1], i), None)
            check(vals[0])
            for out, v in zip(outs, vals):
                out[r0:r1] = v
        return
    b2 = _tile_bounds(xb.shape[0], block)
    pairs = list(_tile_pairs(len(b1), len(b2), sym))
    show = len(pairs) >= 16 if progress is None else progress
    outer = inner = None
    with tqdm(total=len(pairs), desc="eNTK tiles", unit="tile", disable=not show, leave=False) as bar:
        for i, j in pairs:
            if outer is None or outer.index != i:
                reuse = sym and inner is not None and inner.index == i
                outer = inner if reuse else signals(x1[slice(*b1[i])], i)
            diag_tile = sym and i == j
            if not diag_tile and (inner is None or inner.index != j):
                inner = None
                inner = signals(xb[slice(*b2[j])], j)
            vals = terms(outer, None if diag_tile else inner)
            check(vals[0])
            (r0, r1), (c0, c1) = b1[i], b2[j]
            for out, tile in zip(outs, vals):
                out[r0:r1, c0:c1] = tile
                if sym and not diag_tile:
                    out[c0:c1, r0:r1] = tile.transpose(0, 1) if trace else tile.permute(1, 0, 3, 2)
            bar.update(1)


def _kernel_shape(n1, n2, k, trace, diagonal):
    if diagonal:
        return (n1,) if trace else (n1, k, k)
    return (n1, n2) if trace else (n1, n2, k, k)


def _prepare(model, x1, x2, dtype, diagonal):
    check_module(model)
    device, mdtype = _param_device_dtype(model)
    dtype = mdtype if dtype is None else check_float_dtype("dtype", dtype)
    x1 = check_batch("x1", x1, device=device, dtype=dtype)
    if x2 is not None:
        if diagonal:
            raise ValueError("x2 must be None with diagonal=True (the diagonal is K(x1_i, x1_i))")
        x2 = check_batch("x2", x2, device=device, dtype=dtype)
        if x2.shape[1:] != x1.shape[1:]:
            raise ValueError(f"x2 must have x1's per-input shape {tuple(x1.shape[1:])}; got {tuple(x2.shape[1:])}")
    if any(p.dtype != dtype for p in model.parameters() if p.is_floating_point()) or any(
            b.dtype != dtype for b in model.buffers() if b.is_floating_point()):
        model = copy.deepcopy(model).to(dtype)  # the caller's model is left as it is
    return model, x1, x2, dtype


def default_module_block(plan: _Plan, x: torch.Tensor, k: int, trace: bool, per_layer: bool) -> int:
    """Inputs per tile such that two tiles' signals (inputs and k backward signals of
    every fast layer, the vector Jacobians) and the output tiles stay within 1 GiB."""
    sizes = []
    hooks = [lay.module.register_forward_hook(
        lambda m, a, o: sizes.append(a[0][:1].numel() + k * o[:1].numel())) for lay in plan.fast]
    try:
        with torch.no_grad():
            plan.model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    n_gen = sum(getattr(lay.module, a).numel() for _, lay, a in plan.generic_params)
    item = x.element_size()
    per_input = (sum(sizes) + k * n_gen + 64) * item
    quad = (1 if trace else k * k) * item * ((len(plan.layers) + 2) if per_layer else 2)
    b = int((math.sqrt(per_input ** 2 * 4 + 4 * quad * _TILE_BUDGET) - 2 * per_input) / (2 * quad))
    return max(1, min(_MAX_BLOCK, b))


def module_ntk(model, x1, x2=None, *, trace=True, diagonal=False, per_layer=False, backend="auto", tf32=False,
               dtype=None, block=None, progress=None, out_path=None, fill_file=None, check=None):
    """The module path of :func:`gntk_fast.ntk.empirical_ntk` (arguments validated there except the module's).

    Returns (outs, names): the total kernel first, then (``per_layer``) one term per
    module with trainable parameters, named by its path in ``named_modules``."""
    model, x1, x2, dtype = _prepare(model, x1, x2, dtype, diagonal)
    layer_backend = backend if backend in ENTK_LAYER.names else "auto"
    conv_backend = "naive" if backend == "naive" else "auto"
    with _EvalMode(model):
        plan = _Plan(model, x1[:1])
        k = plan.k
        if block is None:
            block = default_module_block(plan, x1, k, trace, per_layer)
        layer_fn = ENTK_LAYER(layer_backend, x1.device.type, dtype=dtype)
        names = [lay.name or "(root)" for lay in plan.layers]
        n2 = x1.shape[0] if x2 is None else x2.shape[0]
        shape = _kernel_shape(x1.shape[0], n2, k, trace, diagonal)
        opts = dict(trace=trace, diagonal=diagonal, layer_fn=layer_fn, conv_backend=conv_backend, tf32=tf32)

        def fill(outs):
            run_tiles(plan.signals, lambda s1, s2: _pair_terms(plan, s1, s2, per_layer=per_layer, **opts),
                      x1, x2, outs, block=block, progress=progress, trace=trace, diagonal=diagonal, check=check)

        if out_path is not None:
            return fill_file(out_path, shape, dtype, fill), names
        n_out = len(names) + 1 if per_layer else 1
        check_memory("the eNTK" + (" and its per-layer terms" if per_layer else ""),
                     math.prod(shape) * x1.element_size() * n_out)
        outs = [torch.empty(shape, dtype=dtype, device=x1.device) for _ in range(n_out)]
        fill(outs)
        return outs, names


# ------------------------------------------------------------------ NNGP
def _last_linear_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    linear = (nn.Linear, *[c for c in _gf_masked_classes() if c.__name__ == "MaskedLinear"])
    seen = []
    hooks = [m.register_forward_hook(lambda m, a, o, name=name: seen.append((name, a[0].detach())))
             for name, m in model.named_modules() if isinstance(m, linear)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    if not seen:
        raise ValueError("model: it calls no nn.Linear layer, so it has no last hidden layer (the input of "
                         "the final nn.Linear) to take the NNGP of")
    return seen[-1][1].reshape(x.shape[0], -1)


def module_nngp(model, x1, x2=None, *, dtype=None, block=None):
    """See :func:`gntk_fast.ntk.empirical_nngp`."""
    model, x1, x2, dtype = _prepare(model, x1, x2, dtype, False)
    block = 256 if block is None else check_int("block", block, min_value=1)
    with _EvalMode(model):
        def feats(x):
            return torch.cat([_last_linear_features(model, x[i:i + block]) for i in range(0, x.shape[0], block)])

        f1 = feats(x1)
        f2 = f1 if x2 is None else feats(x2)
    K = (f1 @ f2.T) / f1.shape[1]
    return symmetrize(K, True) if x2 is None else K


# ------------------------------------------------------------------ kernel-vector products
def module_ntk_vp(model, x, v, *, trace=True, dtype=None, block=None):
    """See :func:`gntk_fast.ntk.empirical_ntk_vp`."""
    model, x, _, dtype = _prepare(model, x, None, dtype, False)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    with _EvalMode(model):
        N = x.shape[0]
        with torch.no_grad():
            k = _flat_out(model(x[:1]), 1).shape[1]
        v = check_tensor("v", v)
        want = (N,) if trace else (N, k)
        if tuple(v.shape) != want:
            raise ValueError(f"v must have shape {want} (N" + ("" if trace else ", k") + f"); got {tuple(v.shape)}")
        if v.device != x.device:
            raise ValueError(f"v is on {v.device} but x is on {x.device}")
        v = v.to(dtype)
        if not bool(torch.isfinite(v).all()):
            raise ValueError("v contains NaN or infinite values")
        block = max(1, min(N, 256)) if block is None else check_int("block", block, min_value=1)
        params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        n_dirs = k if trace else 1
        # u_c = J_c^T v (traced: one per output c) = the gradient of sum_b v_b f_c(x_b)
        us = [{n: torch.zeros_like(p) for n, p in params.items()} for _ in range(n_dirs)]
        live = {n: p.detach().requires_grad_(True) for n, p in params.items()}
        for s in range(0, N, block):
            xb, vb = x[s:s + block], v[s:s + block]
            with torch.enable_grad():
                f = _flat_out(functional_call(model, live, (xb,)), xb.shape[0])
                for c in range(n_dirs):
                    obj = (f[:, c] * vb).sum() if trace else (f * vb).sum()
                    g = torch.autograd.grad(obj, list(live.values()), retain_graph=c < n_dirs - 1, allow_unused=True)
                    for n, gi in zip(names, g):
                        if gi is not None:
                            us[c][n] += gi
        out = torch.zeros(want, dtype=dtype, device=x.device)
        for s in range(0, N, block):
            xb = x[s:s + block]
            for c in range(n_dirs):
                _, t = torch.func.jvp(lambda p, xb=xb: functional_call(model, p, (xb,)), (params,), (us[c],))
                t = t.reshape(xb.shape[0], -1)
                if trace:
                    out[s:s + block] += t[:, c]
                else:
                    out[s:s + block] += t
    if not bool(torch.isfinite(out).all()):
        raise ValueError("x: the kernel-vector product is not finite (the network overflows in "
                         f"{dtype}; try dtype=torch.float64)")
    return out


# ------------------------------------------------------------------ function-level form
def _function_params(params, masks):
    """params: a dict name -> tensor or a tuple/list of tensors; masks: None or the same
    structure (entries None or bool/0-1 tensors shaped like the parameter)."""
    if isinstance(params, dict):
        keys = list(params)
    elif isinstance(params, (tuple, list)):
        keys = list(range(len(params)))
    else:
        raise TypeError(f"params must be a dict of tensors or a tuple/list of tensors; got {type(params).__name__}")
    if not keys:
        raise ValueError("params must hold at least one tensor")
    for key in keys:
        p = params[key]
        if not isinstance(p, torch.Tensor) or not p.is_floating_point():
            raise TypeError(f"params[{key!r}] must be a floating-point tensor; got {type(p).__name__}")
        if not bool(torch.isfinite(p).all()):
            raise ValueError(f"params[{key!r}] contains NaN or infinite values")
    mk = {}
    if masks is not None:
        if isinstance(params, dict):
            if not isinstance(masks, dict):
                raise TypeError(f"masks must be a dict like params (or None); got {type(masks).__name__}")
            extra = set(masks) - set(params)
            if extra:
                raise ValueError(f"masks has keys that are not in params: {sorted(map(str, extra))}")
            items = masks.items()
        else:
            if not isinstance(masks, (tuple, list)) or len(masks) != len(params):
                raise ValueError(f"masks must be a tuple/list of {len(params)} entries like params (or None)")
            items = enumerate(masks)
        for key, m in items:
            if m is None:
                continue
            m = check_tensor(f"masks[{key!r}]", m)
            if tuple(m.shape) != tuple(params[key].shape):
                raise ValueError(f"masks[{key!r}] must have the shape of params[{key!r}] "
                                 f"{tuple(params[key].shape)}; got {tuple(m.shape)}")
            if m.dtype != torch.bool:
                if not bool(((m == 0) | (m == 1)).all()):
                    raise ValueError(f"masks[{key!r}] must be boolean or hold only 0 and 1")
                m = m != 0
            mk[key] = m.to(params[key].device)
    return keys, mk


@dataclass
class _FnSig:
    index: int
    J: list  # per parameter, (B, k, p)


def functional_ntk(f, params, masks, x1, x2, *, trace, diagonal, per_layer, block, progress, check):
    """The kernel of ``f(params, x)`` over the kept entries of ``params`` (see :func:`gntk_fast.ntk.empirical_ntk_fn`)."""
    keys, mk = _function_params(params, masks)
    p0 = params[keys[0]]
    dtype, device = p0.dtype, p0.device
    x1 = check_batch("x1", x1, device=device, dtype=dtype)
    if x2 is not None:
        if diagonal:
            raise ValueError("x2 must be None with diagonal=True (the diagonal is K(x1_i, x1_i))")
        x2 = check_batch("x2", x2, device=device, dtype=dtype)
    detached = type(params)({kk: params[kk].detach() for kk in keys}) if isinstance(params, dict) \
        else type(params)(p.detach() for p in params)

    def f1(p, xi):
        return f(p, xi.unsqueeze(0)).reshape(-1)

    with torch.no_grad():
        out0 = f(detached, x1[:1])
    if not isinstance(out0, torch.Tensor) or out0.ndim == 0 or out0.shape[0] != 1:
        raise ValueError("f: f(params, x) must return a tensor with x's batch dimension first")
    k = out0.reshape(1, -1).shape[1]
    jac = vmap(jacrev(f1), in_dims=(None, 0))
    n_par = sum(params[kk].numel() for kk in keys)
    if block is None:
        per_input = k * n_par * p0.element_size()
        block = max(1, min(_MAX_BLOCK, _TILE_BUDGET // max(1, 2 * per_input)))

    def signals(x, index):
        J = jac(detached, x)
        B = x.shape[0]
        out = []
        for kk in keys:
            Jk = J[kk]
            if kk in mk:
                Jk = Jk * mk[kk].to(Jk.dtype)
            out.append(Jk.reshape(B, k, -1))
        return _FnSig(index, out)

    def terms(s1, s2):
        if per_layer:
            per = [_vec_term(a, None if s2 is None else b, trace=trace, diagonal=diagonal)
                   for a, b in zip(s1.J, s1.J if s2 is None else s2.J)]
            total = per[0].clone()
            for t in per[1:]:
                total += t
            return [total] + per
        J1 = torch.cat(s1.J, 2)
        return [_vec_term(J1, None if s2 is None else torch.cat(s2.J, 2), trace=trace, diagonal=diagonal)]

    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    shape = _kernel_shape(x1.shape[0], n2, k, trace, diagonal)
    outs = [torch.empty(shape, dtype=dtype, device=device) for _ in range(len(keys) + 1 if per_layer else 1)]
    run_tiles(signals, terms, x1, x2, outs, block=block, progress=progress, trace=trace, diagonal=diagonal,
              check=check)
    return outs, [str(kk) for kk in keys]
