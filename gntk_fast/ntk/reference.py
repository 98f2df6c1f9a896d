"""The Jacobian oracle of the empirical NTK (docs/graphon-ntk.md sections 1, 2).

:func:`empirical_ntk_reference`: torch.func ``jacrev`` + ``vmap`` over a
functional forward of the masked network (parameters passed as a dict, like
``torch.func.functional_call``), gradients only with respect to the parameters
of the chosen convention, contracted chunk by chunk (the Jacobian of a column
chunk is recomputed for every row chunk, so memory stays at two chunks). It
builds (chunks of) the N x P Jacobian on purpose: it is the plain,
obviously-right oracle of the tests of :func:`gntk_fast.ntk.empirical_ntk`,
not a fast path. (The twin of one layer's term is
:mod:`gntk_fast.ops.entk_layer.naive`.)

Conventions
-----------
The network is ``z^l = ws_l (W^l * M^l) h^{l-1} + bs_l b^l``. The parameters
are differentiated through the *effective masked weight* ``V^l = W^l * M^l``:
``d f / d V^l_ij = ws_l delta^l_i h^{l-1}_j`` at every position (i, j).

* ``trainable="mask"``: only kept weights are parameters, so the Jacobian of
  ``V^l`` is multiplied by ``M^l`` (pruned entries contribute zero).
* ``trainable="all"``: every weight position is a parameter (the paper's
  variance-modulated network); the mask only shapes the forward/backward signal.

Biases are parameters when the layer has one and ``bias_scale != 0`` (a layer
with ``bias_scale == 0`` has a frozen zero bias, see ``MLP.from_sequential``).
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm
from torch.func import jacrev, vmap

from .._validation import check_bool, check_choice, check_int
from .empirical import EmpiricalNTK, check_result_finite, prepare_inputs

__all__ = ["empirical_ntk_reference"]

_CHUNK_BYTES = 256 * 2**20  # target size of one Jacobian chunk


def _layer_params(model, dtype):
    """Per layer: (V = W*M, mask, ws, b or None, bs); V/b detached copies in ``dtype``."""
    out = []
    for layer in model.layers:
        v = (layer.weight.detach() * layer.weight_mask).to(dtype)
        b = None
        if layer.bias is not None and layer.bias_scale != 0.0:
            b = layer.bias.detach().to(dtype)
        out.append((v, layer.weight_mask, float(layer.weight_scale), b, float(layer.bias_scale)))
    return out


def _flat_params(params) -> dict:
    """The differentiated tensors by name: "V{l}" (masked weight), "b{l}" (bias)."""
    flat = {}
    for l, (v, _, _, b, _) in enumerate(params):
        flat[f"V{l}"] = v
        if b is not None:
            flat[f"b{l}"] = b
    return flat


def _jacobian_fn(params, acts, k: int, trainable: str, dtype):
    """``jacobian(x)`` for a chunk x (n, d_in): per layer the (n, k, P_l) Jacobian
    of f with respect to that layer's parameters (kept weights only when
    ``trainable == "mask"``, then its bias)."""
    L1 = len(params)
    flat = _flat_params(params)

    def f(p, x):
        h = x
        for l, (_, _, ws, b, bs) in enumerate(params):
            z = ws * (p[f"V{l}"] @ h)
            if b is not None:
                z = z + bs * p[f"b{l}"]
            h = acts[l].fn(z) if l < L1 - 1 else z
        return h  # (k,)

    jac = vmap(jacrev(f), in_dims=(None, 0))

    def jacobian(x):
        J = jac(flat, x)
        per = []
        for l, (_, mask, _, b, _) in enumerate(params):
            JV = J[f"V{l}"]  # (n, k, out, in)
            if trainable == "mask":
                JV = JV * mask.to(dtype)
            parts = [JV.reshape(x.shape[0], k, -1)]
            if b is not None:
                parts.append(J[f"b{l}"].reshape(x.shape[0], k, -1))
            per.append(torch.cat(parts, dim=2))
        return per

    return jacobian


def _contract(Ja: torch.Tensor, Jb: torch.Tensor, trace: bool) -> torch.Tensor:
    if trace:
        return torch.einsum("acp,bcp->ab", Ja, Jb)
    return torch.einsum("acp,bdp->abcd", Ja, Jb)


def _default_chunk(params, k: int, dtype) -> int:
    n_par = sum(v.numel() + (0 if b is None else b.numel()) for v, _, _, b, _ in params)
    itemsize = torch.empty((), dtype=dtype).element_size()
    return max(1, min(1024, _CHUNK_BYTES // max(1, k * n_par * itemsize)))


def _blockwise_layers(jacobian, x1, x2, n_layers: int, k: int, trace: bool, chunk_size: int, dtype):
    """Per layer the kernel block by block: Jacobian chunks of x1 rows times x2
    (None: x1, upper blocks only, mirrored) columns."""
    sym = x2 is None
    xb = x1 if sym else x2
    N1, N2 = x1.shape[0], xb.shape[0]
    shape = (N1, N2) if trace else (N1, N2, k, k)
    layers_out = [torch.zeros(shape, dtype=dtype, device=x1.device) for _ in range(n_layers)]
    starts1, starts2 = range(0, N1, chunk_size), range(0, N2, chunk_size)
    n_blocks = sum(1 for s1 in starts1 for s2 in starts2 if not (sym and s2 < s1))
    bar = tqdm(total=n_blocks, desc="eNTK reference (Jacobian blocks)", disable=n_blocks < 16, leave=False)
    with torch.no_grad():
        for s1 in starts1:
            Ja = jacobian(x1[s1 : s1 + chunk_size])
            for s2 in starts2:
                if sym and s2 < s1:
                    continue
                Jb = Ja if (sym and s2 == s1) else jacobian(xb[s2 : s2 + chunk_size])
                for l in range(n_layers):
                    blk = _contract(Ja[l], Jb[l], trace)
                    layers_out[l][s1 : s1 + chunk_size, s2 : s2 + chunk_size] = blk
                    if sym and s2 != s1:
                        mirrored = blk.transpose(0, 1)
                        if not trace:
                            mirrored = mirrored.transpose(2, 3)
                        layers_out[l][s2 : s2 + chunk_size, s1 : s1 + chunk_size] = mirrored
                bar.update(1)
    bar.close()
    return layers_out


def empirical_ntk_reference(
    model,
    x1,
    x2=None,
    *,
    trace: bool = True,
    trainable: str = "mask",
    chunk_size: int | None = None,
    per_layer: bool = False,
    dtype: torch.dtype | None = None,
):
    """The empirical NTK by explicit Jacobians (torch.func jacrev + vmap).

    Parameters
    ----------
    model : gntk_fast.MLP
    x1 : (N1, d_in) tensor;  x2 : (N2, d_in) tensor or None (= x1)
    trace : bool
        True: ``Theta[a, b] = sum_c sum_p J_c(a)_p J_c(b)_p`` of shape (N1, N2);
        False: ``Theta[a, b, c, c'] = sum_p J_c(a)_p J_c'(b)_p`` of shape (N1, N2, k, k).
    trainable : "mask" | "all"  (see the module docstring)
    chunk_size : int or None
        Inputs per Jacobian chunk (default: as many as fit in ~256 MiB).
    per_layer : bool
        Return an :class:`~gntk_fast.ntk.empirical.EmpiricalNTK` with each
        layer's contribution (weight + bias terms).
    dtype : torch.float32 | torch.float64 | None (the model's dtype)

    Returns
    -------
    Theta, or ``EmpiricalNTK(kernel=Theta, per_layer=[Theta_1, ..., Theta_{L+1}])``.
    """
    trace = check_bool("trace", trace)
    per_layer = check_bool("per_layer", per_layer)
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    x1, x2, dtype, _ = prepare_inputs(model, x1, x2, dtype)
    params = _layer_params(model, dtype)
    k = model.d_out
    if chunk_size is None:
        chunk_size = _default_chunk(params, k, dtype)
    chunk_size = check_int("chunk_size", chunk_size, min_value=1)
    jacobian = _jacobian_fn(params, model.activations, k, trainable, dtype)
    layers_out = _blockwise_layers(jacobian, x1, x2, len(params), k, trace, chunk_size, dtype)
    total = layers_out[0].clone()
    for t in layers_out[1:]:
        total += t
    check_result_finite(total, x2 is None, dtype)
    return EmpiricalNTK(total, layers_out) if per_layer else total
