"""Plain PyTorch VGG and ResNet builders (the lottery-ticket CIFAR architectures).

These are ordinary ``nn.Module`` networks made of ``nn.Conv2d``,
``nn.BatchNorm2d`` and ``nn.Linear`` (no mask buffers, standard
parameterisation): the "your own network" inputs of the pruners and kernels,
which install ``torch.nn.utils.prune`` masks on them.

Architectures (as in the lottery-ticket code used by Synaptic-Flow):

* **VGG-11 / VGG-16**: 3x3 convolutions (padding 1, with bias), each followed
  by BatchNorm (optional) and ReLU, with 2x2 max-pooling between stages::

      vgg11: 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512
      vgg16: 64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512

  then a 2x2 average pool, flatten, and one ``nn.Linear`` classifier. On
  32 x 32 inputs the classifier sees 512 features.
* **ResNet-20**: a 3x3 conv (no bias) + BatchNorm + ReLU with ``width``
  channels, then three stages of three basic blocks with ``width``,
  ``2 width``, ``4 width`` channels. A block is conv3x3-BN-ReLU-conv3x3-BN
  plus the shortcut, then ReLU; the first block of stages 2 and 3 has stride 2
  and a projection shortcut (1x1 conv with stride 2, no bias, + BatchNorm);
  the other shortcuts are the identity. Then global average pooling and one
  ``nn.Linear``.

Initialisation follows that code: each layer is built in forward order (which
draws PyTorch's default initialisation), then every conv and linear weight is
redrawn with ``kaiming_normal_`` (fan-in, ReLU gain) in module order, biases
are set to 0, BatchNorm scales to 1 and shifts to 0. With an int ``seed`` the
draw runs on torch's global generator seeded with ``seed`` inside a forked RNG
state, so the global state is left as it was; with ``seed=None`` it advances
the global generator. One difference: that code's identity shortcut carries a
fixed per-channel scale of ones (neither trained nor pruned by default); here
it is a parameter-free identity.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import MAX_IMAGE, MAX_WIDTH, check_bool, check_choice, check_float, check_memory, check_seed, check_size

__all__ = ["vgg", "resnet20", "VGG", "ResNet", "BasicBlock", "VGG_PLANS"]

#: conv widths of each VGG stage; "M" is a 2x2 max-pool
VGG_PLANS: dict[str, tuple] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512),
}


def _seeded(seed: int | None):
    """Context: torch's global RNG seeded with ``seed`` and restored afterwards; a no-op for None."""
    if seed is None:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(torch.random.fork_rng(devices=[]))
    torch.manual_seed(int(seed))
    return stack


def _lottery_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class _ConvBlock(nn.Module):
    """conv3x3 (padding 1, bias) [+ BatchNorm] + ReLU."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(c_out) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x)


class VGG(nn.Module):
    """A VGG network for small images; build it with :func:`vgg`.

    ``layers`` holds the conv blocks (``layers[i].conv``, ``layers[i].bn``) and
    max-pools in forward order; ``fc`` is the classifier.
    """

    def __init__(self, plan, in_channels: int, n_out: int, batch_norm: bool, image_size: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c, side = in_channels, image_size
        for spec in plan:
            if spec == "M":
                mods.append(nn.MaxPool2d(kernel_size=2, stride=2))
                side //= 2
            else:
                mods.append(_ConvBlock(c, spec, batch_norm))
                c = spec
        self.layers = nn.Sequential(*mods)
        self.pool = nn.AvgPool2d(2)
        side //= 2
        self.fc = nn.Linear(c * side * side, n_out)
        self.image_size = image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.layers(x))
        return self.fc(x.flatten(1))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, then ReLU (convs without bias)."""

    def __init__(self, c_in: int, c_out: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if downsample or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """A CIFAR ResNet (stem, stages of :class:`BasicBlock`, GAP, linear); build it with :func:`resnet20`."""

    def __init__(self, plan, in_channels: int, n_out: int) -> None:
        super().__init__()
        c = plan[0][0]
        self.conv = nn.Conv2d(in_channels, c, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        blocks = []
        for stage, (filters, n_blocks) in enumerate(plan):
            for b in range(n_blocks):
                blocks.append(BasicBlock(c, filters, downsample=stage > 0 and b == 0))
                c = filters
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        return self.fc(out.mean(dim=(-2, -1)))


def vgg(
    name: str = "vgg11",
    *,
    in_channels: int = 3,
    n_out: int = 10,
    width: float = 1.0,
    batch_norm: bool = True,
    image_size: int = 32,
    seed: int | None = None,
) -> VGG:
    """A lottery-ticket VGG-11 or VGG-16 as a plain ``nn.Module``.

    Parameters
    ----------
    name : "vgg11" | "vgg16"
    in_channels : int
        Input channels (3 for CIFAR-10).
    n_out : int
        Number of classes.
    width : float > 0
        Multiplier of every conv width (``max(1, round(width * c))``): below 1
        for narrow nets, above 1 for wide ones.
    batch_norm : bool
        BatchNorm after every conv (the ``vgg*_bn`` variants).
    image_size : int
        Side of the square input images; the four max-pools and the final 2x2
        average pool divide it by 32 (rounding down), so it must be >= 32. At 32
        the classifier has ``512 * width`` inputs.
    seed : int or None
        See the module docstring.

    Returns
    -------
    VGG
        ``forward`` maps (N, in_channels, image_size, image_size) to (N, n_out).

    Examples
    --------
    >>> import torch
    >>> import gntk_fast as gf
    >>> net = gf.vgg("vgg11", width=0.25, seed=0)
    >>> net(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    name = check_choice("name", name, tuple(VGG_PLANS))
    in_channels = check_size("in_channels", in_channels, MAX_WIDTH)
    n_out = check_size("n_out", n_out, MAX_WIDTH)
    width = check_float("width", width, min_value=0.0, min_inclusive=False, max_value=1024.0)
    batch_norm = check_bool("batch_norm", batch_norm)
    image_size = check_size("image_size", image_size, MAX_IMAGE)
    seed = check_seed(seed)
    if image_size < 32:
        raise ValueError(
            f"image_size must be >= 32 ({name}'s four max-pools and final 2x2 average pool halve it five times); "
            f"got {image_size}"
        )
    plan = tuple(s if s == "M" else max(1, round(width * s)) for s in VGG_PLANS[name])
    convs = [s for s in plan if s != "M"]
    n_params = sum(9 * a * b for a, b in zip([in_channels, *convs[:-1]], convs)) + convs[-1] * (image_size // 32) ** 2 * n_out
    check_memory(f"{name}'s parameters (width={width})", 4 * n_params)
    with _seeded(seed):
        model = VGG(plan, in_channels, n_out, batch_norm, image_size)
        _lottery_init(model)
    return model


def resnet20(*, in_channels: int = 3, n_out: int = 10, width: int = 16, seed: int | None = None) -> ResNet:
    """The lottery-ticket CIFAR ResNet-20 as a plain ``nn.Module``.

    Parameters
    ----------
    in_channels : int
        Input channels (3 for CIFAR-10).
    n_out : int
        Number of classes.
    width : int
        Channels of the first stage W (16 in the standard ResNet-20; 32 is its
        "wide" variant); the stages have W, 2W, 4W channels.
    seed : int or None
        See the module docstring.

    Returns
    -------
    ResNet
        ``forward`` maps (N, in_channels, H, W) to (N, n_out) for any H, W >= 1
        (the two stride-2 stages round up: 32 -> 16 -> 8).

    Examples
    --------
    >>> import torch
    >>> import gntk_fast as gf
    >>> net = gf.resnet20(width=4, seed=0)
    >>> net(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    in_channels = check_size("in_channels", in_channels, MAX_WIDTH)
    n_out = check_size("n_out", n_out, MAX_WIDTH)
    width = check_size("width", width, MAX_WIDTH // 4)
    seed = check_seed(seed)
    plan = [(width, 3), (2 * width, 3), (4 * width, 3)]
    check_memory(f"resnet20's parameters (width={width})", 4 * 9 * (in_channels * width + 27 * width * width))
    with _seeded(seed):
        model = ResNet(plan, in_channels, n_out)
        _lottery_init(model)
    return model

