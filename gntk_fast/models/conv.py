"""NTK-parameterised masked convolutional networks: ``MaskedConv2d`` and ``ConvNet``.

Parameterisation (docs/models.md states it in full). Layer l = 1..L of a
``ConvNet`` maps C_{l-1} channels to C_l channels on an H x W grid with a
centred k x k window (k odd, stride 1)::

    z^l_o(p) = w_std / sqrt(C_{l-1} k^2) * sum_{i, a, b} (W^l * M^l)[o, i, a, b] h^{l-1}_i(p + (a - r, b - r))
               + b_std * b^l_o,                    r = (k - 1) / 2,
    h^l = sigma(z^l),   h^0 = x,

with W^l ~ N(0, 1) entrywise and M^l the boolean mask (the window's taps
outside the image read the circularly wrapped pixel for ``padding="circular"``,
a zero for ``padding="same"``). This is PyTorch's cross-correlation, so
``effective_weight`` is exactly the kernel handed to ``F.conv2d``. Readouts:

* ``"gap"``: f(x) = w_std / sqrt(C_L) * (W * M) mean_p h^L(p) (+ b_std b);
* ``"flatten"``: f(x) = w_std / sqrt(C_L H W) * (W * M) vec(h^L) (+ b_std b),
  ``vec`` in PyTorch's (channel, row, column) order.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._constants import PADDINGS, READOUTS
from .._validation import (
    MAX_DEPTH,
    MAX_IMAGE,
    MAX_KERNEL,
    MAX_WIDTH,
    check_bool,
    check_choice,
    check_float,
    check_float_dtype,
    check_memory,
    check_odd_size,
    check_seed,
    check_size,
    check_tensor,
)
from ..activations import Activation, resolve_activation
from ._masked import MaskedLayersMixin, _generator, init_masked_weight
from .mlp import MaskedLinear

__all__ = ["MaskedConv2d", "ConvNet", "PADDINGS", "READOUTS"]


def _image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, (list, tuple)):
        if len(image_size) != 2:
            raise ValueError(f"image_size must be an int or a pair (H, W); got {image_size!r}")
        h, w = image_size
        return check_size("image_size[0]", h, MAX_IMAGE), check_size("image_size[1]", w, MAX_IMAGE)
    s = check_size("image_size", image_size, MAX_IMAGE)
    return s, s


def _wraps_once(padding: str, kernel_size: int, hw: tuple[int, int]) -> bool:
    """Circular padding wraps the window around the image at most once: r <= H and r <= W."""
    r = (kernel_size - 1) // 2
    return padding != "circular" or (hw[0] >= r and hw[1] >= r)


class MaskedConv2d(nn.Module):
    """A stride-1, size-preserving 2-D convolution with a boolean mask buffer.

    ``forward(h) = conv2d(pad(h), weight_scale * (weight * weight_mask)) + bias_scale * bias``

    Initialisation (the NTK convention of :class:`MaskedLinear`): ``weight`` ~
    N(0, 1) entrywise, ``weight_scale`` = 1/sqrt(in_channels * k^2) unless given
    (the fan-in of a conv is C_in k^2), ``bias`` = 0, every tap kept.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Odd window side k (the window is centred on each pixel).
    bias : bool
        Add ``bias_scale * bias`` per output channel.
    padding : "circular" | "same"
        Pixels outside the image: the wrapped-around pixel ("circular", a
        torus) or zero ("same"). Either way the output keeps the input's H x W.
    weight_scale, bias_scale : float
    dtype, device, generator, seed
        As for :class:`MaskedLinear`.

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels, k, k)
    bias : Parameter, shape (out_channels,), or None
    weight_mask : bool buffer shaped like ``weight``; True = kept

    Examples
    --------
    >>> import torch
    >>> from gntk_fast.models import MaskedConv2d
    >>> conv = MaskedConv2d(3, 4, 3, seed=0)
    >>> conv(torch.randn(2, 3, 8, 8)).shape
    torch.Size([2, 4, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        bias: bool = False,
        *,
        padding: str = "circular",
        weight_scale: float | None = None,
        bias_scale: float = 1.0,
        dtype: torch.dtype | None = None,
        device=None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_size("in_channels", in_channels, MAX_WIDTH)
        self.out_channels = check_size("out_channels", out_channels, MAX_WIDTH)
        self.kernel_size = check_odd_size("kernel_size", kernel_size, MAX_KERNEL)
        self.padding = check_choice("padding", padding, PADDINGS)
        bias = check_bool("bias", bias)
        dtype = check_float_dtype("dtype", dtype)
        k = self.kernel_size
        init_masked_weight(self, (self.out_channels, self.in_channels, k, k), self.in_channels * k * k, bias=bias,
                           weight_scale=weight_scale, bias_scale=bias_scale, dtype=dtype, device=device,
                           generator=generator, seed=seed, what="MaskedConv2d")

    @property
    def fan_in(self) -> int:
        """C_in k^2, the number of inputs of one output pixel."""
        return self.in_channels * self.kernel_size**2

    def effective_weight(self) -> torch.Tensor:
        """``weight_scale * (weight * weight_mask)``, the kernel applied in forward."""
        return (self.weight * self.weight_mask) * self.weight_scale

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H, W)."""
        b = None if self.bias is None else self.bias * self.bias_scale
        r = (self.kernel_size - 1) // 2
        if self.padding == "circular":
            if r:
                h = F.pad(h, (r, r, r, r), mode="circular")
            return F.conv2d(h, self.effective_weight(), b)
        return F.conv2d(h, self.effective_weight(), b, padding=r)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.kernel_size}, padding={self.padding!r}, bias={self.bias is not None}, "
            f"weight_scale={self.weight_scale:.4g}, density={self.weight_mask.float().mean().item():.4g}"
        )


def _channel_list(channels, depth) -> list[int]:
    if isinstance(channels, (list, tuple)):
        if len(channels) == 0 or len(channels) > MAX_DEPTH:
            raise ValueError(f"channels must list between 1 and {MAX_DEPTH} layer widths; got {len(channels)}")
        if depth is not None and check_size("depth", depth, MAX_DEPTH) != len(channels):
            raise ValueError(
                f"depth must be None (or len(channels)={len(channels)}) when channels is a list; got depth={depth}"
            )
        return [check_size(f"channels[{i}]", c, MAX_WIDTH) for i, c in enumerate(channels)]
    c = check_size("channels", channels, MAX_WIDTH)
    if depth is None:
        raise ValueError("depth must be given (number of conv layers) when channels is an int")
    return [c] * check_size("depth", depth, MAX_DEPTH)


class ConvNet(MaskedLayersMixin, nn.Module):
    """NTK-parameterised convolutional network with boolean masks on every weight.

    ``depth`` masked conv layers (stride 1, odd ``kernel_size``, size-preserving
    ``padding``), an activation after each, then the readout: global average
    pooling and a masked dense layer (``"gap"``), or flattening and a masked
    dense layer (``"flatten"``, which needs ``image_size``). The formulas are in
    the module docstring and docs/models.md.

    Parameters
    ----------
    in_channels : int
        Input channels C_0.
    channels : int or list of int
        Channels C of every conv layer (with ``depth``), or the list
        ``[C_1, ..., C_L]`` with ``depth=None``.
    depth : int or None
        Number of conv layers L.
    n_out : int
        Number of outputs k.
    kernel_size : int, odd
    padding : "circular" | "same"
    readout : "gap" | "flatten"
    image_size : int or (H, W), required for ``readout="flatten"``
        The input images' size. With ``"gap"`` it is optional; when given,
        inputs of another size are refused.
    activation : "relu" | "erf" | "tanh" | "identity" | callable, or a list
        of L of them (one per conv layer).
    bias : bool
        Biases ``b_std * b`` on every layer, b ~ N(0, 1) (default: none).
    w_std, b_std : float
        Weight and bias scales sigma_w, sigma_b.
    seed : int or None
        Seed of a private generator (None: drawn from torch's global RNG).
    dtype : torch.float32, torch.float64 or None (torch's default dtype)

    Attributes
    ----------
    layers : ModuleList
        The L :class:`MaskedConv2d` then the readout :class:`MaskedLinear`.
    widths : list of int
        ``[C_0, C_1, ..., C_L, n_out]``.

    Examples
    --------
    >>> import torch
    >>> import gntk_fast as gf
    >>> net = gf.ConvNet(1, 16, 2, 10, seed=0)
    >>> net(torch.randn(5, 1, 8, 8)).shape
    torch.Size([5, 10])
    >>> [tuple(m.shape) for m in net.masks]
    [(16, 1, 3, 3), (16, 16, 3, 3), (10, 16)]
    """

    def __init__(
        self,
        in_channels: int,
        channels: int | Sequence[int],
        depth: int | None,
        n_out: int = 1,
        *,
        kernel_size: int = 3,
        padding: str = "circular",
        readout: str = "gap",
        image_size: int | tuple[int, int] | None = None,
        activation: str | Callable | Sequence = "relu",
        bias: bool = False,
        w_std: float = 1.0,
        b_std: float = 1.0,
        seed: int | None = None,
        dtype: torch.dtype | None = None,
        device=None,
    ) -> None:
        super().__init__()
        in_channels = check_size("in_channels", in_channels, MAX_WIDTH)
        hidden = _channel_list(channels, depth)
        n_out = check_size("n_out", n_out, MAX_WIDTH)
        self.kernel_size = check_odd_size("kernel_size", kernel_size, MAX_KERNEL)
        self.padding = check_choice("padding", padding, PADDINGS)
        self.readout = check_choice("readout", readout, READOUTS)
        if image_size is None:
            if self.readout == "flatten":
                raise ValueError('image_size must be given (H, W) when readout="flatten" (the dense layer\'s fan-in)')
            self.image_size: tuple[int, int] | None = None
        else:
            self.image_size = _image_size(image_size)
            if not _wraps_once(self.padding, self.kernel_size, self.image_size):
                raise ValueError(
                    f"image_size must be at least (kernel_size - 1) / 2 = {(self.kernel_size - 1) // 2} on each side "
                    f'for padding="circular"; got {self.image_size}'
                )
        bias = check_bool("bias", bias)
        seed = check_seed(seed)
        dtype = check_float_dtype("dtype", dtype)
        w_std = check_float("w_std", w_std, min_value=0.0, min_inclusive=False)
        b_std = check_float("b_std", b_std, min_value=0.0)
        self.w_std, self.b_std = w_std, b_std
        self.widths: list[int] = [in_channels, *hidden, n_out]
        k2 = self.kernel_size**2
        readout_in = hidden[-1] * (1 if self.readout == "gap" else self.image_size[0] * self.image_size[1])
        itemsize = torch.empty((), dtype=dtype).element_size()
        n_weights = sum(a * b * k2 for a, b in zip(self.widths[:-2], self.widths[1:-1])) + readout_in * n_out
        check_memory("the model's parameters (channels, depth, kernel_size, image_size)", n_weights * (itemsize + 1))
        if isinstance(activation, (list, tuple)):
            if len(activation) != len(hidden):
                raise ValueError(
                    f"activation must be one activation or a list of {len(hidden)} (one per conv layer); "
                    f"got a list of {len(activation)}"
                )
            self.activations: list[Activation] = [
                resolve_activation(a, f"activation[{i}]") for i, a in enumerate(activation)
            ]
        else:
            self.activations = [resolve_activation(activation)] * len(hidden)
        gen = _generator(seed)
        self.layers = nn.ModuleList()
        for c_in, c_out in zip(self.widths[:-2], self.widths[1:-1]):
            conv = MaskedConv2d(
                c_in, c_out, self.kernel_size, bias, padding=self.padding,
                weight_scale=w_std / math.sqrt(c_in * k2), bias_scale=b_std,
                dtype=dtype, device=device, generator=gen,
            )
            self._init_bias(conv, gen)
            self.layers.append(conv)
        head = MaskedLinear(
            readout_in, n_out, bias, weight_scale=w_std / math.sqrt(readout_in), bias_scale=b_std,
            dtype=dtype, device=device, generator=gen,
        )
        self._init_bias(head, gen)
        self.layers.append(head)

    @staticmethod
    def _init_bias(layer: nn.Module, gen: torch.Generator) -> None:
        if layer.bias is not None:
            with torch.no_grad():
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen, dtype=layer.bias.dtype))

    # ------------------------------------------------------------------ basics
    @property
    def in_channels(self) -> int:
        return self.widths[0]

    @property
    def n_out(self) -> int:
        return self.widths[-1]

    @property
    def channels(self) -> list[int]:
        """``[C_1, ..., C_L]``."""
        return self.widths[1:-1]

    # ----------------------------------------------------------------- forward
    def _shape_error(self, name: str, shape) -> ValueError:
        hw = "H, W" if self.image_size is None else f"{self.image_size[0]}, {self.image_size[1]}"
        extra = ""
        if self.image_size is None and self.padding == "circular":
            extra = f" with H, W >= {(self.kernel_size - 1) // 2} (circular padding wraps once)"
        return ValueError(
            f"{name} must have shape (N, {self.in_channels}, {hw}) or ({self.in_channels}, {hw}){extra}; "
            f"got {tuple(shape)}"
        )

    def _shape_ok(self, shape) -> bool:
        if len(shape) not in (3, 4) or shape[-3] != self.in_channels:
            return False
        if self.image_size is not None:
            return tuple(shape[-2:]) == self.image_size
        return _wraps_once(self.padding, self.kernel_size, tuple(shape[-2:]))

    def check_input(self, x, name: str = "x") -> torch.Tensor:
        """Validate a batch (N, C_0, H, W) or one image (C_0, H, W): tensor, shape, finiteness.

        The API-boundary check; ``forward`` does not call it (it reads the data)."""
        x = check_tensor(name, x, ndim=(3, 4))
        if not self._shape_ok(x.shape):
            raise self._shape_error(name, x.shape)
        if not x.is_floating_point():
            x = x.to(self.layers[0].weight.dtype)
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The readout's input: (N, C_L) for GAP, (N, C_L H W) for flatten."""
        if not self._shape_ok(x.shape):
            raise self._shape_error("x", x.shape)
        single = x.ndim == 3
        h = x.to(self.layers[0].weight.dtype)
        if single:
            h = h.unsqueeze(0)
        for layer, act in zip(self.layers[:-1], self.activations):
            h = act(layer(h))
        h = h.mean(dim=(-2, -1)) if self.readout == "gap" else h.flatten(1)
        return h[0] if single else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_0, H, W) -> (N, n_out), or (C_0, H, W) -> (n_out,); cast to the weights' dtype.

        Only shapes are checked (no data-dependent control flow), so
        ``torch.func`` transforms and ``torch.compile`` apply."""
        return self.layers[-1](self.features(x))
