"""Pure-torch oracles of the empirical NTK (spec graphon-ntk.md sections 1, 2).

* :func:`empirical_ntk_reference`: torch.func ``jacrev`` + ``vmap`` over a
  functional forward of the masked network (parameters passed as a dict, like
  ``torch.func.functional_call``), gradients only with respect to the
  parameters of the chosen convention, contracted chunk by chunk (the Jacobian
  of a column chunk is recomputed for every row chunk, so memory stays at two
  chunks). It builds (chunks of) the N x P
  Jacobian on purpose: it is the plain, obviously-right oracle of every test,
  not a fast path.
* :func:`masked_ntk_layer_reference`: the per-layer bilinear form
  ``sum_ij M_ij D_i(a, b) H_j(a, b)`` by direct summation, the twin of the C++
  and Triton layer kernels.

Conventions (both functions)
----------------------------
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

from .._validation import check_bool, check_choice, check_int, check_tensor

__all__ = ["empirical_ntk_reference", "masked_ntk_layer_reference"]

_CHUNK_BYTES = 256 * 2**20  # target size of one Jacobian chunk


def _validate_model(model) -> None:
    from ..models import MLP

    if not isinstance(model, MLP):
        raise TypeError(f"model must be a gntk_fast.MLP (use MLP.from_sequential for an nn.Sequential); got {type(model).__name__}")
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
        if not bool(torch.isfinite(layer.weight).all()):
            raise ValueError(f"model weight of layer {l} contains NaN or infinite values")
        if layer.bias is not None and not bool(torch.isfinite(layer.bias).all()):
            raise ValueError(f"model bias of layer {l} contains NaN or infinite values")


def prepare_inputs(model, x1, x2, dtype):
    """Validate (model, x1, x2, dtype) and return (x1, x2 or None, dtype, device).

    Shared by the reference and the fast path so that both reject the same inputs:
    x1/x2 must be (N, d_in) (or (d_in,)) finite tensors on the model's device.
    """
    from ..models import MLP

    if not isinstance(model, MLP):
        raise TypeError(f"model must be a gntk_fast.MLP (use MLP.from_sequential for an nn.Sequential); got {type(model).__name__}")
    device = model.layers[0].weight.device
    for name, x in (("x1", x1), ("x2", x2)):
        if isinstance(x, torch.Tensor) and x.device != device:
            raise ValueError(f"{name} is on {x.device} but the model is on {device}; move them to one device")
    _validate_model(model)
    if dtype is None:
        dtype = model.layers[0].weight.dtype
    if not isinstance(dtype, torch.dtype) or dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32, torch.float64 or None; got {dtype!r}")
    xs = []
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None:
            xs.append(None)
            continue
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
        xs.append(x.to(dtype))
    return xs[0], xs[1], dtype, device


def _check_result_finite(theta: torch.Tensor, sym: bool, dtype: torch.dtype) -> torch.Tensor:
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
        Also return the list of each layer's contribution (weight + bias terms).
    dtype : torch.float32 | torch.float64 | None (the model's dtype)

    Returns
    -------
    Theta, or ``(Theta, [Theta_1, ..., Theta_{L+1}])`` when ``per_layer``.
    """
    trace = check_bool("trace", trace)
    per_layer = check_bool("per_layer", per_layer)
    trainable = check_choice("trainable", trainable, ("mask", "all"))
    x1, x2, dtype, _ = prepare_inputs(model, x1, x2, dtype)
    params = _layer_params(model, dtype)
    acts = model.activations
    L1 = len(params)
    k = model.d_out
    n_par = sum(v.numel() + (0 if b is None else b.numel()) for v, _, _, b, _ in params)
    itemsize = torch.empty((), dtype=dtype).element_size()
    if chunk_size is None:
        chunk_size = max(1, min(1024, _CHUNK_BYTES // max(1, k * n_par * itemsize)))
    chunk_size = check_int("chunk_size", chunk_size, min_value=1)

    names = []
    flat = {}
    for l, (v, _, _, b, _) in enumerate(params):
        flat[f"V{l}"] = v
        names.append(f"V{l}")
        if b is not None:
            flat[f"b{l}"] = b
            names.append(f"b{l}")

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
        """Per layer: (n, k, P_l) Jacobian chunk."""
        J = jac(flat, x)
        per = []
        for l, (v, mask, _, b, _) in enumerate(params):
            JV = J[f"V{l}"]  # (n, k, out, in)
            if trainable == "mask":
                JV = JV * mask.to(dtype)
            parts = [JV.reshape(x.shape[0], k, -1)]
            if b is not None:
                parts.append(J[f"b{l}"].reshape(x.shape[0], k, -1))
            per.append(torch.cat(parts, dim=2))
        return per

    def contract(Ja, Jb):
        if trace:
            return torch.einsum("acp,bcp->ab", Ja, Jb)
        return torch.einsum("acp,bdp->abcd", Ja, Jb)

    sym = x2 is None
    xb = x1 if sym else x2
    N1, N2 = x1.shape[0], xb.shape[0]
    shape = (N1, N2) if trace else (N1, N2, k, k)
    layers_out = [torch.zeros(shape, dtype=dtype, device=x1.device) for _ in range(L1)]
    starts1 = list(range(0, N1, chunk_size))
    starts2 = list(range(0, N2, chunk_size))
    n_blocks = sum(1 for s1 in starts1 for s2 in starts2 if not (sym and s2 < s1))
    bar = tqdm(total=n_blocks, desc="eNTK reference (Jacobian blocks)", disable=n_blocks < 16, leave=False)
    with torch.no_grad():
        for s1 in starts1:
            Ja = jacobian(x1[s1 : s1 + chunk_size])
            for s2 in starts2:
                if sym and s2 < s1:
                    continue
                Jb = Ja if (sym and s2 == s1) else jacobian(xb[s2 : s2 + chunk_size])
                for l in range(L1):
                    blk = contract(Ja[l], Jb[l])
                    layers_out[l][s1 : s1 + chunk_size, s2 : s2 + chunk_size] = blk
                    if sym and s2 != s1:
                        mirrored = blk.transpose(0, 1)
                        if not trace:
                            mirrored = mirrored.transpose(2, 3)
                        layers_out[l][s2 : s2 + chunk_size, s1 : s1 + chunk_size] = mirrored
                bar.update(1)
    bar.close()
    total = layers_out[0].clone()
    for t in layers_out[1:]:
        total += t
    _check_result_finite(total, sym, dtype)
    return (total, layers_out) if per_layer else total


def masked_ntk_layer_reference(D1, H1, D2=None, H2=None, mask=None, *, trace: bool = True):
    """Unscaled layer term by direct summation: the twin of the layer kernels.

    ``out[a, b] = sum_{i, j} M_ij (sum_c D1[a, c, i] D2[b, c, i]) H1[a, j] H2[b, j]``
    (traced, (N1, N2)), or ``out[a, b, c, c'] = sum_ij M_ij D1[a, c, i] D2[b, c', i] H1[a, j] H2[b, j]``
    (full, (N1, N2, k, k)).

    D1 : (N1, k, n_out), H1 : (N1, n_in); D2/H2 likewise for the second set
    (None: the first set); mask : (n_out, n_in) bool or None (all ones).
    Computed in one einsum per row of inputs: O(N1 N2 n_out n_in) work, memory O(N2 (n_out + n_in)).
    """
    D1 = check_tensor("D1", D1, ndim=3)
    H1 = check_tensor("H1", H1, ndim=2)
    D2 = D1 if D2 is None else check_tensor("D2", D2, ndim=3)
    H2 = H1 if H2 is None else check_tensor("H2", H2, ndim=2)
    n_out, n_in = D1.shape[2], H1.shape[1]
    M = torch.ones(n_out, n_in, dtype=D1.dtype, device=D1.device) if mask is None else mask.to(D1.dtype)
    rows = []
    for a in range(D1.shape[0]):
        Y = (H1[a] * H2) @ M.T  # (N2, n_out): sum_j M_ij H1[a,j] H2[b,j]
        if trace:
            rows.append(torch.einsum("ci,bci,bi->b", D1[a], D2, Y))
        else:
            rows.append(torch.einsum("ci,bdi,bi->bcd", D1[a], D2, Y))
    return torch.stack(rows)



