"""``PruneResult`` and the layer-collapse report.

Report conventions (``mask_report``): layer l's mask M_l has shape
(n_{l+1}, n_l), rows = output units, columns = input units. For consecutive
layers whose sizes chain (n_{l+1} = in_features of layer l+1), the output
units of layer l are the hidden neurons of hidden layer l+1:

* ``zero_fan_in``: output units of layer l whose row of M_l is all False;
* ``zero_fan_out``: output units of layer l whose column in M_{l+1} is all
  False (``None`` for the last layer, whose outputs are the network's);
* ``dead_neurons``: output units with zero fan-in OR zero fan-out (for the
  last layer: zero fan-in only);
* ``inputs_disconnected`` (layer 0 only): input features whose column of M_0
  is all False.

Totals: weights, kept, density, dead hidden neurons, dead outputs,
collapsed layers (no weight kept).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["PruneResult", "mask_report", "load_masks", "layer_key"]


def layer_key(i: int) -> str:
    """Array name of layer i in the .npz files: ``"layer0"``, ``"layer1"``, ..."""
    return f"layer{i}"


def mask_report(masks: Sequence[torch.Tensor], names: Sequence[str] | None = None) -> dict[str, Any]:
    """Per-layer density, kept counts and dead neurons (module docstring)."""
    names = list(names) if names is not None else [layer_key(i) for i in range(len(masks))]
    L = len(masks)
    layers = []
    dead_hidden = 0
    dead_out = 0
    np_masks = [np.asarray(m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else m, dtype=bool) for m in masks]
    for l, m in enumerate(np_masks):
        kept = int(np.count_nonzero(m))
        zero_in = ~m.any(axis=1)
        entry: dict[str, Any] = {
            "layer": l,
            "name": names[l],
            "shape": [int(m.shape[0]), int(m.shape[1])],
            "weights": int(m.size),
            "kept": kept,
            "density": kept / max(int(m.size), 1),
            "zero_fan_in": int(np.count_nonzero(zero_in)),
        }
        if l == 0:
            entry["inputs_disconnected"] = int(np.count_nonzero(~m.any(axis=0)))
        if l + 1 < L and np_masks[l + 1].shape[1] == m.shape[0]:
            zero_out = ~np_masks[l + 1].any(axis=0)
            entry["zero_fan_out"] = int(np.count_nonzero(zero_out))
            entry["dead_neurons"] = int(np.count_nonzero(zero_in | zero_out))
            dead_hidden += entry["dead_neurons"]
        else:
            entry["zero_fan_out"] = None
            entry["dead_neurons"] = int(np.count_nonzero(zero_in))
            if l + 1 == L:
                dead_out += entry["dead_neurons"]
            else:
                dead_hidden += entry["dead_neurons"]
        layers.append(entry)
    total_w = sum(e["weights"] for e in layers)
    total_k = sum(e["kept"] for e in layers)
    return {
        "layers": layers,
        "total": {
            "weights": total_w,
            "kept": total_k,
            "density": total_k / max(total_w, 1),
            "dead_hidden_neurons": dead_hidden,
            "dead_outputs": dead_out,
            "collapsed_layers": sum(1 for e in layers if e["kept"] == 0),
        },
    }


@dataclass
class PruneResult:
    """What :func:`gntk_fast.prune` returns.

    Attributes
    ----------
    masks : list of bool tensors, one per prunable layer in forward order,
        shaped like its weight (out_features, in_features); True = kept.
    names : module paths of the prunable layers.
    report : dict, see :func:`mask_report`, plus ``"config"`` and ``"history"``.
    scores : list of tensors, the scores of the last iteration (before
        ``invert``), shaped like the weights.
    history : one dict per iteration: ``iteration``, ``target_density`` (the
        schedule's d_e), ``density`` (achieved), ``kept``.
    config : the arguments (method, density, scope, iterations, schedule,
        compat, seed, shuffle, invert).
    """

    masks: list[torch.Tensor]
    names: list[str]
    scores: list[torch.Tensor]
    history: list[dict[str, Any]]
    config: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.report:
            self.report = mask_report(self.masks, self.names)
            self.report["config"] = dict(self.config)
            self.report["history"] = list(self.history)

    @property
    def density(self) -> float:
        """Fraction of all prunable weights kept."""
        return self.report["total"]["density"]

    @property
    def target_density(self) -> float:
        return float(self.config["density"])

    @property
    def densities(self) -> list[float]:
        """Achieved density after each iteration."""
        return [h["density"] for h in self.history]

    @property
    def layer_densities(self) -> list[float]:
        return [e["density"] for e in self.report["layers"]]

    def save_npz(self, path: str | Path) -> Path:
        """Write the masks to ``path`` (.npz): bool arrays ``layer0``.. in forward
        order, loadable with ``np.load(path, allow_pickle=False)``."""
        path = Path(path)
        np.savez_compressed(path, **{layer_key(i): m.detach().cpu().numpy().astype(bool) for i, m in enumerate(self.masks)})
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    def to_json(self) -> str:
        return json.dumps(self.report, indent=2, default=_json_default)

    def save_report(self, path: str | Path) -> Path:
        """Write the report (layers, totals, config, history) as JSON."""
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path


def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, torch.dtype):
        return str(o).replace("torch.", "")
    return str(o)


def load_masks(path: str | Path) -> list[torch.Tensor]:
    """Read masks written by :meth:`PruneResult.save_npz` (``layer0``, ``layer1``, ...)."""
    with np.load(Path(path), allow_pickle=False) as z:
        keys = sorted((k for k in z.files if k.startswith("layer")), key=lambda k: int(k[5:]))
        if [layer_key(i) for i in range(len(keys))] != keys:
            raise ValueError(f"path: {path} does not hold arrays layer0..layerN; found {z.files}")
        return [torch.from_numpy(z[k].astype(bool)) for k in keys]
