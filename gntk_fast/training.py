"""``train``: minibatch training of a masked network with its masks enforced.

Supported models: a :class:`gntk_fast.MLP` or :class:`gntk_fast.ConvNet`
(masks in each layer's ``weight_mask`` buffer; forward multiplies ``weight``
by it) and any ``nn.Module`` mapping (N, d) or images (N, C, H, W) to (N, k)
whose masked layers were pruned with
``torch.nn.utils.prune`` (``weight_orig`` parameter + ``weight_mask`` buffer),
for instance :func:`gntk_fast.fc` after :func:`gntk_fast.prune`. Other
parameters (biases, unpruned layers) are trained freely.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._validation import (
    MAX_STEPS,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_pair,
    check_seed,
    check_size,
    check_tensor,
    check_xy,
)
from .models import MaskedConv2d, MaskedLinear

__all__ = ["train", "TrainResult", "OPTIMIZERS", "LOSSES"]

OPTIMIZERS = ("adam", "sgd")
LOSSES = ("cross_entropy", "squared")


@dataclass
class TrainResult:
    """What :func:`train` returns (numpy arrays; the model itself is trained in place).

    Attributes
    ----------
    steps : (steps,) int64, 0, 1, ..., steps - 1: ``loss[s]`` is the loss of the
        minibatch drawn at step s, measured after s updates (before update s + 1).
    loss : (steps,) float64 training loss per step (see :func:`train` for the
        loss conventions).
    accuracy : (steps,) float64 minibatch accuracy per step when ``y`` holds
        integer labels (argmax of the outputs), else None.
    eval_steps : int64 update counts at which ``eval_data`` was scored
        (0, eval_every, 2 eval_every, ..., and ``steps``), or None.
    eval_loss, eval_accuracy : float64 arrays aligned with ``eval_steps``, or
        None (no ``eval_data``; ``eval_accuracy`` also None for float targets).
    config : the resolved arguments (optimizer, lr, momentum, steps,
        batch_size, loss, seed, eval_every, n_train, n_eval).
    """

    steps: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    eval_steps: np.ndarray | None
    eval_loss: np.ndarray | None
    eval_accuracy: np.ndarray | None
    config: dict[str, Any]


# ----------------------------------------------------------------- masks
def _masked_parameters(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(stored parameter, bool keep-mask) for every masked weight of ``model``."""
    pairs = []
    for module in model.modules():
        if isinstance(module, (MaskedLinear, MaskedConv2d)):
            pairs.append((module.weight, module.weight_mask != 0))
        elif isinstance(getattr(module, "weight_orig", None), nn.Parameter) and torch.is_tensor(
            getattr(module, "weight_mask", None)
        ):
            pairs.append((module.weight_orig, module.weight_mask != 0))
    return pairs


@torch.no_grad()
def _enforce_masks(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    for param, keep in pairs:
        param.masked_fill_(~keep, 0.0)


@torch.no_grad()
def _refresh_pruned_weights(model: nn.Module) -> None:
    """Recompute ``weight = weight_orig * weight_mask`` of torch.nn.utils.prune
    layers, which their forward pre-hook otherwise only does on the next forward."""
    from torch.nn.utils.prune import BasePruningMethod

    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, BasePruningMethod):
                setattr(module, hook._tensor_name, hook.apply_mask(module))


# ------------------------------------------------------------ validation
def _train_data(name: str, data: Any, loss: str, d_out: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``data`` = (x, y): x (n, d) or images (n, C, H, W) (or (n, L, d)) finite; y int labels (n,) in [0, d_out) or, for the
    squared loss, float targets (n, d_out) (or (n,) when d_out = 1).
    Returns (x, y, labels?) on the model's device, x in the model's dtype
    (:func:`gntk_fast._validation.check_xy`: a float64 x for a float32 model is refused)."""
    x, y = check_pair(name, data)
    x, y, labels = check_xy(x, y, names=(f"{name}[0] (x)", f"{name}[1] (y)"), dtype=dtype,
                            device=device, n_classes=d_out, targets=loss == "squared", x_ndim=(2, 3, 4))
    if labels:
        return x, y, True
    n = x.shape[0]
    y = y.reshape(n, -1) if (y.ndim == 1 and d_out == 1) else y
    if tuple(y.shape) != (n, d_out):
        raise ValueError(f"{name}[1] (y): float targets must have shape ({n}, {d_out}) (the model's outputs); got {tuple(y.shape)}")
    return x, y, False


def _probe_model(model: Any) -> tuple[int, torch.device, torch.dtype, list[nn.Parameter]]:
    """(device, dtype, trainable parameters) of ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (a gntk_fast.MLP or a torch network); got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (requires_grad=True)")
    first = params[0]
    if not first.is_floating_point():
        raise TypeError(f"model parameters must be floating point; got {first.dtype}")
    return first.device, first.dtype, params


def _output_width(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        out = model(x[:1])
    if not torch.is_tensor(out) or out.ndim != 2 or out.shape[0] != 1:
        got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ValueError(f"model must map a batch (N, d) to outputs (N, k); got {got} for one input")
    return int(out.shape[1])


# ---------------------------------------------------------------- losses
def _loss_and_correct(out: torch.Tensor, y: torch.Tensor, loss: str, labels: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean loss over the batch (a scalar tensor) and the number of correct argmax predictions."""
    if loss == "cross_entropy":
        value = F.cross_entropy(out, y)
    else:
        target = F.one_hot(y, out.shape[1]).to(out.dtype) if labels else y
        value = 0.5 * (out - target).pow(2).sum(1).mean()
    correct = (out.detach().argmax(1) == y).sum() if labels else None
    return value, correct


def _make_optimizer(name: str, params, lr: float, momentum: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


class _Batches:
    """Minibatch indices: a fresh random permutation (private generator) per epoch,
    consumed ``batch_size`` at a time; a remainder shorter than a batch is dropped."""

    def __init__(self, n: int, batch_size: int, seed: int, device) -> None:
        self.n, self.batch_size, self.device = n, batch_size, device
        self.gen = torch.Generator(device="cpu")
        self.gen.manual_seed(seed)
        self.perm = torch.empty(0, dtype=torch.int64)
        self.pos = 0

    def next(self) -> torch.Tensor | None:
        if self.batch_size == self.n:
            return None  # full batch: no indexing
        if self.pos + self.batch_size > self.perm.numel():
            self.perm = torch.randperm(self.n, generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx.to(self.device)


def _diverged(lr: float, step: int, what: str) -> ValueError:
    return ValueError(
        f"lr={lr:g} is too large: training diverged at step {step} ({what}); lower lr"
    )


@torch.no_grad()
def _evaluate(model, x, y, loss, labels) -> tuple[float, float | None]:
    model.eval()
    try:
        out = model(x)
    finally:
        model.train()
    value, correct = _loss_and_correct(out, y, loss, labels)
    return float(value), (None if correct is None else int(correct) / x.shape[0])


def _train_config(steps, optimizer, lr, loss, momentum, progress) -> tuple[int, str, float, str, float, bool | None]:
    steps = check_int("steps", steps, min_value=1, max_value=MAX_STEPS)
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    lr = check_float("lr", lr, min_value=0.0, min_inclusive=False)
    loss = check_choice("loss", loss, LOSSES)
    momentum = check_float("momentum", momentum, min_value=0.0, max_value=1.0, max_inclusive=False)
    if optimizer != "sgd" and momentum != 0.0:
        raise ValueError(f"momentum applies to optimizer='sgd' only; got momentum={momentum} with optimizer={optimizer!r}")
    if progress is not None:
        progress = check_bool("progress", progress)
    return steps, optimizer, lr, loss, momentum, progress


def train(
    model: nn.Module,
    data: tuple[Any, Any],
    *,
    steps: int = 200,
    optimizer: str = "adam",
    lr: float = 1e-3,
    batch_size: int | None = None,
    loss: str = "cross_entropy",
    momentum: float = 0.0,
    seed: int | None = 0,
    eval_data: tuple[Any, Any] | None = None,
    eval_every: int | None = None,
    progress: bool | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``steps`` optimizer updates, masks enforced.

    Parameters
    ----------
    model : gntk_fast.MLP, or an nn.Module (N, d) -> (N, k) whose masked layers
        use torch.nn.utils.prune. Trained **in place** (like a torch training
        loop); copy it first (``copy.deepcopy``) to keep the initialisation.
        Masks: the stored weights at pruned positions (``weight`` of an MLP
        layer, ``weight_orig`` of a torch-pruned layer) are set to exactly 0
        before the first step and after every optimizer step, so the stored
        and effective weights agree and no optimizer state revives them.
    data : (x, y). x: (n, d) or (n, C, H, W) real tensor (cast to the model's dtype and device),
        finite. y: int labels (n,) in [0, k), or, with ``loss="squared"``, real
        targets (n, k) ((n,) when k = 1).
    steps : number of optimizer updates, >= 1.
    optimizer : "adam" (torch.optim.Adam, default betas) or "sgd"
        (torch.optim.SGD with ``momentum``).
    lr : learning rate > 0.
    batch_size : None (default: full batch, the same n samples every step) or an
        int in [1, n]. Minibatches are drawn without replacement: a fresh
        random permutation per epoch from a private generator seeded with
        ``seed``; an epoch's remainder shorter than a batch is dropped.
    loss : "cross_entropy" (mean softmax cross-entropy over the batch) or
        "squared": ``0.5 * mean_i ||f(x_i) - Y_i||^2`` with Y the one-hot
        (not centred) labels or the given targets: the value
        :func:`gntk_fast.predicted_loss` predicts. Its gradient is that of the
        batch *mean*, so full-batch SGD with ``lr`` follows (for a wide
        net) ``predicted_loss(K, y, lr / n, steps, f0=model(x))`` with K the
        per-output kernel of the n training inputs,
        ``empirical_ntk(model, x) / k`` (its default sums the k outputs).
    momentum : SGD momentum in [0, 1); must be 0 for Adam.
    seed : int in [0, 2**64 - 1] or None (a random seed, recorded in
        ``config``). Fixes the batch order; the model's initialisation is the
        model's own. With a fixed seed, two runs from the same model state give
        bitwise-identical curves on CPU.
    eval_data : optional (x, y) like ``data``, scored (full batch, no
        gradients) after 0, eval_every, 2 eval_every, ... updates and at the end.
    eval_every : int >= 1 (default max(1, steps // 10)); only with ``eval_data``.
    progress : tqdm bar over the steps: None (default) lets tqdm decide
        (shown on a terminal), True/False force it.
    callback : optional ``callback(step, model)`` called after each update
        (step = 1..steps) once the masks are enforced.

    Returns
    -------
    TrainResult (numpy curves; see its docstring).

    Raises
    ------
    ValueError naming ``lr`` when the loss or the weights become non-finite
    (the step is in the message); ValueError/TypeError naming the argument for
    bad input.
    """
    steps, optimizer, lr, loss, momentum, progress = _train_config(steps, optimizer, lr, loss, momentum, progress)
    seed = check_seed(seed)
    if seed is None:
        seed = secrets.randbits(63)
    device, dtype, params = _probe_model(model)
    x0 = check_tensor("data[0] (x)", check_pair("data", data)[0], ndim=(2, 3, 4))
    if x0.shape[0] < 1:
        raise ValueError("data: x must hold at least one sample")
    if callable(getattr(model, "check_input", None)):  # gf.MLP / gf.ConvNet: shape against the model
        model.check_input(x0, "data[0] (x)")
        if eval_data is not None and isinstance(eval_data, (tuple, list)) and len(eval_data) == 2:
            model.check_input(check_tensor("eval_data[0] (x)", eval_data[0], ndim=(2, 3, 4)), "eval_data[0] (x)")
    d_out = _output_width(model, x0[:1].to(device=device, dtype=dtype))
    x, y, labels = _train_data("data", data, loss, d_out, device, dtype)
    n = x.shape[0]
    batch_size = n if batch_size is None else check_size("batch_size", batch_size, n)
    ev = None
    if eval_data is not None:
        ev = _train_data("eval_data", eval_data, loss, d_out, device, dtype)
        eval_every = max(1, steps // 10) if eval_every is None else check_int("eval_every", eval_every, min_value=1)
    elif eval_every is not None:
        raise ValueError("eval_every needs eval_data")
    config = dict(optimizer=optimizer, lr=lr, momentum=momentum, steps=steps, batch_size=batch_size, loss=loss,
                  seed=seed, eval_every=eval_every, n_train=n, n_eval=None if ev is None else ev[0].shape[0])
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
    return _run(model, params, x, y, labels, ev, config, progress, callback)


def _run(model, params, x, y, labels, ev, config, progress, callback) -> TrainResult:
    steps, lr, loss, eval_every = config["steps"], config["lr"], config["loss"], config["eval_every"]
    pairs = _masked_parameters(model)
    _enforce_masks(pairs)
    opt = _make_optimizer(config["optimizer"], params, lr, config["momentum"])
    batches = _Batches(x.shape[0], config["batch_size"], config["seed"], x.device)
    losses = np.empty(steps, dtype=np.float64)
    correct = np.empty(steps, dtype=np.float64) if labels else None
    eval_at, eval_loss, eval_acc = [], [], []
    was_training = model.training
    model.train()

    def score(s: int) -> None:
        value, acc = _evaluate(model, ev[0], ev[1], loss, ev[2])
        if not np.isfinite(value):
            raise _diverged(lr, s, f"evaluation loss {value}")
        eval_at.append(s), eval_loss.append(value), eval_acc.append(acc)

    try:
        bar = tqdm(range(steps), desc=f"train {config['optimizer']}", leave=False,
                   disable=(not progress) if progress is not None else None)
        for s in bar:
            if ev is not None and s % eval_every == 0:
                score(s)
            idx = batches.next()
            xb, yb = (x, y) if idx is None else (x[idx], y[idx])
            opt.zero_grad(set_to_none=True)
            value, n_correct = _loss_and_correct(model(xb), yb, loss, labels)
            losses[s] = float(value.detach())
            if not np.isfinite(losses[s]):
                raise _diverged(lr, s, f"training loss {losses[s]}")
            if labels:
                correct[s] = int(n_correct) / xb.shape[0]
            value.backward()
            opt.step()
            _enforce_masks(pairs)
            if callback is not None:
                callback(s + 1, model)
            if s % max(1, steps // 100) == 0:
                bar.set_postfix(loss=f"{losses[s]:.4g}", refresh=False)
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise _diverged(lr, steps, "non-finite weights after the last update")
        if ev is not None:
            score(steps)
    finally:
        _refresh_pruned_weights(model)
        model.train(was_training)
    has_eval = ev is not None
    return TrainResult(
        steps=np.arange(steps, dtype=np.int64),
        loss=losses,
        accuracy=correct,
        eval_steps=np.asarray(eval_at, dtype=np.int64) if has_eval else None,
        eval_loss=np.asarray(eval_loss, dtype=np.float64) if has_eval else None,
        eval_accuracy=np.asarray(eval_acc, dtype=np.float64) if has_eval and ev[2] else None,
        config=config,
    )
