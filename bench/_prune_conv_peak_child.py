"""Time and peak resident memory of pruning a conv net once, in a fresh process.

Usage: python _prune_conv_peak_child.py JSON

JSON fields: ``model`` ("vgg16" | "resnet20"), ``width`` (VGG width
multiplier / ResNet base width), ``method`` (a pruning score or "graphon"),
``impl`` ("ours": ``gntk_fast.prune``; "plain": the Synaptic-Flow loop
written plainly with torch.nn.utils.prune masks, see :func:`plain_prune`),
``iterations``, ``n`` (pruning batch of random CIFAR-shaped images),
``side`` (image side). Both run the Synaptic-Flow rule (global scope,
sparsity 0.9 = 10% of the weights kept). After a warm-up prune of a tiny
model (imports, first-call costs), the model and the data are built, the
process's VmHWM is read, the prune is timed, VmHWM is read again. Prints
JSON: seconds, peak and the peak before the call, and a digest of the masks
(equal for "ours" and "plain").
"""
import hashlib
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as tprune


def hwm_gib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 2**20


def build(name: str, width: float, side: int):
    import gntk_fast as gf

    if name == "vgg16":
        return gf.vgg("vgg16", width=width, image_size=max(side, 32), seed=0)
    return gf.resnet20(width=int(width), seed=0)


def plain_prune(model: nn.Module, method: str, density: float, data, iterations: int) -> list[torch.Tensor]:
    """The reference prune loop as plainly as it is written there: float mask
    buffers (torch.nn.utils.prune), scores of every Linear/Conv2d weight by
    .backward(), global ``torch.kthvalue`` threshold with k = int((1 - d_e) N),
    ``score <= threshold`` pruned, eval mode, exponential schedule."""
    mods = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for m in mods:
        tprune.identity(m, "weight")
    masked = [(m.weight_mask, m.weight_orig) for m in mods]
    model.eval()
    for e in range(iterations):
        if method == "random":
            scores = [torch.randn_like(p) for _, p in masked]
        elif method == "magnitude":
            scores = [p.detach().abs() for _, p in masked]
        elif method == "snip":
            for m, _ in masked:
                m.requires_grad_(True)
            for x, y in data:
                F.cross_entropy(model(x), y).backward()
            scores = [m.grad.detach().abs() for m, _ in masked]
            for m, p in masked:
                m.grad = None
                p.grad = None
                m.requires_grad_(False)
            norm = torch.cat([s.flatten() for s in scores]).sum()
            scores = [s / norm for s in scores]
        elif method == "grasp":
            params = [p for _, p in masked]
            stopped = 0
            for x, y in data:
                g = torch.autograd.grad(F.cross_entropy(model(x) / 200, y), params)
                stopped = stopped + torch.cat([t.reshape(-1) for t in g])
            for x, y in data:
                g = torch.autograd.grad(F.cross_entropy(model(x) / 200, y), params, create_graph=True)
                (stopped * torch.cat([t.reshape(-1) for t in g])).sum().backward()
            scores = [(p.grad * p.detach()) for _, p in masked]
            for _, p in masked:
                p.grad = None
            norm = torch.cat([s.flatten() for s in scores]).sum().abs() + 1e-10
            scores = [s / norm for s in scores]
        else:  # synflow
            with torch.no_grad():
                signs = {k: torch.sign(v) for k, v in model.state_dict().items()}
                for v in model.state_dict().values():
                    v.abs_()
            x = torch.ones((1, *data[0][0].shape[1:]))
            model(x).sum().backward()
            scores = [(p.grad * p.detach()).abs() for _, p in masked]
            for _, p in masked:
                p.grad = None
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    v.mul_(signs[k])
        d_e = density ** ((e + 1) / iterations)
        flat = torch.cat([s.flatten() for s in scores])
        k = int((1.0 - d_e) * flat.numel())
        if k >= 1:
            threshold = torch.kthvalue(flat, k).values
            with torch.no_grad():
                for (m, _), s in zip(masked, scores):
                    m.copy_((s > threshold).to(m.dtype))
        del scores, flat
    return [m.detach() != 0 for m, _ in masked]


def run(cfg: dict) -> dict:
    import gntk_fast as gf

    g = torch.Generator().manual_seed(0)
    x = torch.randn(cfg["n"], 3, cfg["side"], cfg["side"], generator=g)
    y = torch.randint(0, 10, (cfg["n"],), generator=g)
    method, E = cfg["method"], cfg["iterations"]

    def call(model):
        if cfg["impl"] == "plain":
            return plain_prune(model, method, 0.1, [(x, y)], E)
        if method == "graphon":
            n_layers = sum(isinstance(m, (nn.Linear, nn.Conv2d)) for m in model.modules())
            return gf.prune(model, "graphon", 0.9, graphons=[0.5] * n_layers, seed=0).masks
        return gf.prune(model, method, 0.9, data=(x, y), iterations=E, compat="synaptic-flow", seed=0,
                        progress=False).masks

    call(build(cfg["model"], 1 / 32 if cfg["model"] == "vgg16" else 2, cfg["side"]))  # warm-up
    model = build(cfg["model"], cfg["width"], cfg["side"])
    n_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    before = hwm_gib()
    t0 = time.perf_counter()
    masks = call(model)
    dt = time.perf_counter() - t0
    h = hashlib.sha256()
    for m in masks:
        h.update(m.cpu().numpy().tobytes())
    return {**cfg, "weights": n_weights, "seconds": dt, "peak_rss_GiB": hwm_gib(), "rss_before_GiB": before,
            "masks_sha256": h.hexdigest()[:16]}


if __name__ == "__main__":
    torch.manual_seed(0)
    print(json.dumps(run(json.loads(sys.argv[1]))))
