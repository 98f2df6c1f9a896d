"""Models: the NTK-parameterized masked MLP and the Synaptic-Flow ``fc`` network.

Depth convention (everywhere in gntk_fast): ``depth`` counts **hidden** layers.
The paper's and Synaptic-Flow's "L-layer" fc network (L Linear layers) is
``depth = L - 1`` here.

``MLP`` implements (docs/models.md)::

    h^0 = x,   z^l = weight_scale_l * (W^l * M^l) h^{l-1} + bias_scale_l * b^l,
    h^l = sigma(z^l) (l = 1..L),   f(x) = z^{L+1}

with NTK parameterization by default (W ~ N(0, 1), weight_scale = 1/sqrt(fan_in),
no biases). ``MLP.from_sequential`` also records the *standard*
parameterization (weight_scale = bias_scale = 1) of an ``nn.Sequential`` of
``nn.Linear`` layers so that the NTK engines can differentiate it exactly.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import (
    MAX_DEPTH,
    MAX_WIDTH,
    check_bool,
    check_choice,
    check_float,
    check_float_dtype,
    check_memory,
    check_seed,
    check_size,
    check_tensor,
)
from ..activations import Activation, resolve_activation
from ._masked import MaskedLayersMixin, _generator, init_masked_weight

__all__ = ["MaskedLinear", "MLP", "fc"]


class MaskedLinear(nn.Module):
    """A linear layer with a boolean mask buffer.

    ``forward(h) = weight_scale * (weight * weight_mask) @ h + bias_scale * bias``

    Initialisation (the MLP's NTK convention): ``weight`` ~ N(0, 1) entrywise,
    ``weight_scale`` = 1/sqrt(in_features) unless given, ``bias`` = 0, every
    weight kept. The draw uses ``generator`` when given (a CPU
    ``torch.Generator``), else a private generator seeded with ``seed``; with
    both None the seed is drawn from torch's global RNG, so ``torch.manual_seed``
    makes it reproducible.

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
    bias : Parameter, shape (out_features,), or None
    weight_mask : bool buffer, shape (out_features, in_features); True = kept
    weight_scale, bias_scale : float
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = False,
        *,
        weight_scale: float | None = None,
        bias_scale: float = 1.0,
        dtype: torch.dtype | None = None,
        device=None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_size("in_features", in_features, MAX_WIDTH)
        self.out_features = check_size("out_features", out_features, MAX_WIDTH)
        bias = check_bool("bias", bias)
        dtype = check_float_dtype("dtype", dtype)
        init_masked_weight(self, (self.out_features, self.in_features), self.in_features, bias=bias,
                           weight_scale=weight_scale, bias_scale=bias_scale, dtype=dtype, device=device,
                           generator=generator, seed=seed, what="MaskedLinear")

    def effective_weight(self) -> torch.Tensor:
        """``weight_scale * (weight * weight_mask)``, the matrix applied in forward."""
        return (self.weight * self.weight_mask) * self.weight_scale

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b = None if self.bias is None else self.bias * self.bias_scale
        return F.linear(h, self.effective_weight(), b)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, weight_scale={self.weight_scale:.4g}, "
            f"density={self.weight_mask.float().mean().item():.4g}"
        )


def _hidden_widths(width, depth) -> list[int]:
    if isinstance(width, (list, tuple)):
        if len(width) > MAX_DEPTH:
            raise ValueError(f"width must list at most {MAX_DEPTH} hidden widths (MAX_DEPTH); got {len(width)}")
        if depth is not None and check_size("depth", depth, MAX_DEPTH, min_value=0) != len(width):
            raise ValueError(
                f"depth must be None (or len(width)={len(width)}) when width is a list; got depth={depth}"
            )
        return [check_size(f"width[{i}]", w, MAX_WIDTH) for i, w in enumerate(width)]
    w = check_size("width", width, MAX_WIDTH)
    if depth is None:
        raise ValueError("depth must be given (number of hidden layers) when width is an int")
    d = check_size("depth", depth, MAX_DEPTH, min_value=0)
    return [w] * d


def _refuse_oversized_parameters(widths: Sequence[int], bias: bool, dtype: torch.dtype) -> None:
    """Refuse a network whose weights (+ masks, + biases) would not fit in memory."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    n_bytes = sum(a * b * (itemsize + 1) + (b * itemsize if bias else 0) for a, b in zip(widths[:-1], widths[1:]))
    check_memory("the model's parameters (widths, depth)", n_bytes)


class MLP(MaskedLayersMixin, nn.Module):
    """NTK-parameterized fully connected network with boolean weight masks.

    Parameters
    ----------
    d_in : int
        Input dimension d.
    width : int or list of int
        Hidden width n (repeated ``depth`` times), or the list of hidden widths
        ``[n_1, ..., n_L]`` with ``depth=None``.
    depth : int or None
        Number of hidden layers L (the paper's "L+1-layer" network).
    d_out : int
        Number of outputs k.
    activation : "relu" | "erf" | "tanh" | "identity" | callable, or a list of
        L of them (one per hidden layer).
    bias : bool
        Add biases ``bias_scale * b`` with b ~ N(0, 1) (default: no biases).
    parameterization : "ntk" | "standard"
        "ntk": W ~ N(0, w_std^2)... applied as ``w_std/sqrt(fan_in) * W`` with
        W ~ N(0, 1). "standard": W ~ N(0, w_std^2/fan_in) applied as is.
    w_std, b_std : float
        Weight and bias scales.
    seed : int in [0, 2**64 - 1] or None
        Seed of the initialisation, drawn from a private generator. An int leaves
        torch's global RNG untouched; None draws the init seed from torch's
        global RNG (advancing it), so ``torch.manual_seed`` makes it reproducible.
    dtype : torch.float32, torch.float64 or None (torch's default dtype); other
        dtypes are rejected at construction.

    Shapes: ``forward(x)`` takes (N, d_in) or (d_in,) and returns (N, d_out) or (d_out,).
    ``layers[l].weight`` is (n_{l+1}, n_l) like torch's Linear; ``masks[l]`` likewise.
    """

    def __init__(
        self,
        d_in: int,
        width: int | Sequence[int],
        depth: int | None,
        d_out: int = 1,
        activation: str | Callable | Sequence = "relu",
        bias: bool = False,
        *,
        parameterization: str = "ntk",
        w_std: float = 1.0,
        b_std: float = 1.0,
        seed: int | None = None,
        dtype: torch.dtype | None = None,
        device=None,
    ) -> None:
        super().__init__()
        d_in = check_size("d_in", d_in, MAX_WIDTH)
        d_out = check_size("d_out", d_out, MAX_WIDTH)
        hidden = _hidden_widths(width, depth)
        bias = check_bool("bias", bias)
        seed = check_seed(seed)
        dtype = check_float_dtype("dtype", dtype)
        self.parameterization = check_choice("parameterization", parameterization, ("ntk", "standard"))
        w_std = check_float("w_std", w_std, min_value=0.0, min_inclusive=False)
        b_std = check_float("b_std", b_std, min_value=0.0)
        self.widths: list[int] = [d_in, *hidden, d_out]
        _refuse_oversized_parameters(self.widths, bias, dtype)
        if isinstance(activation, (list, tuple)):
            if len(activation) != len(hidden):
                raise ValueError(
                    f"activation must be one activation or a list of {len(hidden)} (one per hidden layer); "
                    f"got a list of {len(activation)}"
                )
            self.activations: list[Activation] = [
                resolve_activation(a, f"activation[{i}]") for i, a in enumerate(activation)
            ]
        else:
            act = resolve_activation(activation)
            self.activations = [act] * len(hidden)
        gen = _generator(seed)
        self.layers = nn.ModuleList()
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:]):
            if self.parameterization == "ntk":
                ws, w_init_std = w_std / math.sqrt(n_in), 1.0
                bs, b_init_std = b_std, 1.0
            else:
                ws, w_init_std = 1.0, w_std / math.sqrt(n_in)
                bs, b_init_std = 1.0, b_std
            layer = MaskedLinear(
                n_in, n_out, bias, weight_scale=ws, bias_scale=bs, dtype=dtype, device=device, generator=gen
            )
            with torch.no_grad():
                if w_init_std != 1.0:
                    layer.weight.mul_(w_init_std)
                if layer.bias is not None:
                    layer.bias.copy_(torch.randn(n_out, generator=gen, dtype=layer.bias.dtype) * b_init_std)
            self.layers.append(layer)

    # ------------------------------------------------------------------ basics
    @property
    def d_in(self) -> int:
        return self.widths[0]

    @property
    def d_out(self) -> int:
        return self.widths[-1]

    # ----------------------------------------------------------------- forward
    def check_input(self, x, name: str = "x") -> torch.Tensor:
        """Validate a batch (N, d_in) or single input (d_in,): tensor, width, finiteness.

        The API-boundary check of the NTK engines; ``forward`` does not call it
        (it reads the data, which would break ``torch.func`` transforms and
        ``torch.compile(fullgraph=True)`` and synchronise a GPU on every call)."""
        x = check_tensor(name, x, ndim=(1, 2))
        if x.shape[-1] != self.d_in:
            raise ValueError(f"{name} must have {self.d_in} features (the model's d_in); got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            x = x.to(self.layers[0].weight.dtype)
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, d_in) -> (N, d_out), or (d_in,) -> (d_out,); cast to the weights' dtype.

        A plain module: only shapes are checked (no data-dependent control flow),
        so ``torch.func.vmap``/``jacrev`` and ``torch.compile(fullgraph=True)``
        apply. Use :meth:`check_input` to validate values."""
        if x.ndim not in (1, 2) or x.shape[-1] != self.d_in:
            raise ValueError(
                f"x must have shape (N, {self.d_in}) or ({self.d_in},) (the model's d_in); got {tuple(x.shape)}"
            )
        h = x.to(self.layers[0].weight.dtype)
        for l, layer in enumerate(self.layers):
            z = layer(h)
            h = self.activations[l](z) if l < len(self.activations) else z
        return h

    # ------------------------------------------------------------ conversions
    @classmethod
    def from_sequential(cls, module: nn.Module) -> "MLP":
        """Read an ``nn.Sequential`` of ``nn.Linear`` + elementwise activations.

        Masks are taken from ``weight_orig``/``weight_mask`` (torch.nn.utils.prune)
        or from a ``weight_mask`` buffer; otherwise all-ones. A leading
        ``nn.Flatten`` is allowed. The result records the *standard*
        parameterization (weight_scale = bias_scale = 1), copies weights and
        biases, and uses each hidden layer's activation module (ReLU/Tanh/Identity
        map to the named closed forms; other modules are used as callables and
        differentiated with autograd). Two Linear layers in a row get an
        identity activation between them.
        """
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be an nn.Module (an nn.Sequential); got {type(module).__name__}")
        flat: list[nn.Module] = []

        def walk(m: nn.Module) -> None:
            if isinstance(m, nn.Sequential):
                for child in m:
                    walk(child)
            else:
                flat.append(m)

        walk(module)
        for i, m in enumerate(flat):
            if not isinstance(m, nn.Linear) and any(True for _ in m.parameters()):
                raise ValueError(
                    f"module: layer {i} ({type(m).__name__}) holds parameters and is not an elementwise activation "
                    "or an nn.Linear: "
                    "from_sequential reads an nn.Sequential (nested ones too) of nn.Linear layers and "
                    "parameter-free elementwise activations, with an optional leading nn.Flatten; residual "
                    "blocks, convolutions and normalisation layers are not supported (gntk_fast.prune prunes "
                    "such modules directly)"
                )
        linears: list[nn.Linear] = []
        acts: list = []
        pending_act = None
        for i, m in enumerate(flat):
            if isinstance(m, nn.Flatten):
                if linears:
                    raise ValueError(f"module: nn.Flatten is only allowed before the first Linear (position {i})")
                continue
            if isinstance(m, nn.Linear):
                if linears:
                    acts.append(pending_act if pending_act is not None else "identity")
                linears.append(m)
                pending_act = None
                continue
            if isinstance(m, (nn.Dropout, nn.BatchNorm1d, nn.LayerNorm)) or list(m.parameters(recurse=False)):
                raise ValueError(
                    f"module: layer {i} ({type(m).__name__}) is not an elementwise activation; "
                    "only Linear layers and parameter-free elementwise activations are supported"
                )
            if not linears:
                if not any(isinstance(x, nn.Linear) for x in flat):
                    break
                raise ValueError(f"module: activation {type(m).__name__} before the first Linear layer")
            if pending_act is not None:
                raise ValueError(f"module: two activations in a row at position {i}; compose them into one callable")
            # our own to_sequential wrapper: keep the named activation (closed-form derivative)
            pending_act = m.act if isinstance(m, _ActivationModule) else m
        if not linears:
            raise ValueError("module contains no nn.Linear layer")
        if pending_act is not None:
            raise ValueError("module: an activation after the last Linear layer is not supported (the output must be linear)")
        widths = [linears[0].in_features] + [lin.out_features for lin in linears]
        for a, b in zip(linears[:-1], linears[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"module: Linear sizes do not chain ({a.out_features} -> {b.in_features})")
        has_bias = [lin.bias is not None for lin in linears]
        ref = linears[0]
        w0 = ref.weight_orig if hasattr(ref, "weight_orig") else ref.weight
        model = cls(
            widths[0],
            widths[1:-1],
            None,
            widths[-1],
            activation=acts if acts else "relu",
            bias=any(has_bias),
            parameterization="standard",
            seed=0,
            dtype=w0.dtype,
            device=w0.device,
        )
        with torch.no_grad():
            for l, (lin, layer) in enumerate(zip(linears, model.layers)):
                w = lin.weight_orig if hasattr(lin, "weight_orig") else lin.weight
                mask = getattr(lin, "weight_mask", None)
                layer.weight.copy_(w.detach())
                layer.weight_scale = 1.0
                layer.bias_scale = 1.0
                if mask is not None:
                    layer.weight_mask.copy_(mask.detach() != 0)
                if layer.bias is not None:
                    if lin.bias is not None:
                        layer.bias.copy_(lin.bias.detach())
                    else:
                        # this layer has no bias in the source: zero and frozen via bias_scale
                        layer.bias.zero_()
                        layer.bias_scale = 0.0
        return model

    def to_sequential(self) -> nn.Sequential:
        """An equivalent plain ``nn.Sequential`` (masks folded into ``weight_mask`` buffers
        the torch.nn.utils.prune way: weight_orig parameter + weight_mask buffer)."""
        from torch.nn.utils import prune as tprune

        mods: list[nn.Module] = []
        for l, layer in enumerate(self.layers):
            lin = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                            dtype=layer.weight.dtype, device=layer.weight.device)
            with torch.no_grad():
                lin.weight.copy_(layer.weight * layer.weight_scale)
                if layer.bias is not None:
                    lin.bias.copy_(layer.bias * layer.bias_scale)
            tprune.custom_from_mask(lin, "weight", layer.weight_mask.clone())
            mods.append(lin)
            if l < len(self.activations):
                act = self.activations[l]
                mods.append(_ActivationModule(act))
        return nn.Sequential(*mods)


class _ActivationModule(nn.Module):
    def __init__(self, act: Activation) -> None:
        super().__init__()
        self.act = act

    def forward(self, z):
        return self.act(z)

    def extra_repr(self) -> str:
        return self.act.name


def fc(
    input_dim: int,
    width: int,
    depth: int,
    num_classes: int = 10,
    *,
    bias: bool = True,
    nonlinearity: nn.Module | None = None,
    seed: int | None = None,
) -> nn.Sequential:
    """The Synaptic-Flow ``fc`` model: Flatten, Linear(input_dim, width), ReLU,
    (depth - 1) x [Linear(width, width), ReLU], Linear(width, num_classes).

    ``depth`` is the number of hidden layers (Synaptic-Flow's ``L = depth + 1``
    Linear layers). PyTorch default initialisation (kaiming-uniform weights,
    uniform biases); an int ``seed`` makes it deterministic without touching
    the global RNG state; ``seed=None`` draws from torch's global RNG.
    Sizes are bounded (MAX_WIDTH, MAX_DEPTH, and the parameters must fit in
    memory) before anything is allocated.
    """
    input_dim = check_size("input_dim", input_dim, MAX_WIDTH)
    width = check_size("width", width, MAX_WIDTH)
    depth = check_size("depth", depth, MAX_DEPTH)
    num_classes = check_size("num_classes", num_classes, MAX_WIDTH)
    bias = check_bool("bias", bias)
    seed = check_seed(seed)
    _refuse_oversized_parameters([input_dim] + [width] * depth + [num_classes], bias, torch.get_default_dtype())
    act = nonlinearity if nonlinearity is not None else nn.ReLU()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(input_dim, width, bias=bias), act]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width, bias=bias), act]
        layers.append(nn.Linear(width, num_classes, bias=bias))
        return nn.Sequential(*layers)
