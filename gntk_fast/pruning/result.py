"""``PruneResult`` and the layer-collapse report.

Report conventions (``mask_report``): layer l's mask M_l has the shape of its
weight, (n_out, n_in) for linear layers and (C_out, C_in / groups, *kernel)
for convolutions: the first axis indexes output units (neurons or channels),
the second input units. For every layer:

* ``zero_fan_in`` (= ``dead_outputs``): output units whose slice
  ``M_l[i]`` is all False (a neuron or channel with no input left);
* ``dead_inputs``: input units whose slice ``M_l[:, j]`` is all False (an
  input the layer no longer reads); ``inputs_disconnected`` repeats it for
  layer 0 (the network's inputs, when layer 0 reads them).

For layers applied one after the other (``chain=True``: gntk_fast.MLP and
nested ``nn.Sequential`` models; ``chain=None`` infers it from 2-D masks
whose sizes chain, as for MLPs) and whose sizes chain (n_out of layer l =
n_in of layer l+1), the output units of layer l are the hidden units feeding
layer l+1:

* ``zero_fan_out``: output units of layer l whose slice ``M_{l+1}[:, i]`` is
  all False (``None`` for the last layer and where the next layer's inputs
  are not layer l's outputs, e.g. a convolution followed by a flattening
  linear layer, or in residual nets);
* ``dead_neurons``: output units with zero fan-in OR zero fan-out (where
  zero fan-out is None: zero fan-in only).

Totals: weights, kept, density, dead hidden neurons, dead outputs,
collapsed layers (no weight kept). ``PruneResult.report`` adds ``dense`` (the
parameters left unpruned, see :func:`gntk_fast.pruning.layers.dense_parameters`)
and ``total["dense_parameters"]`` (their number of entries).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .._io import jsonable, load_npz, save_npz, write_text

__all__ = ["PruneResult", "mask_report", "load_masks", "check_mask_arrays", "layer_key"]


def layer_key(i: int) -> str:
    """Array name of layer i in the .npz files: ``"layer0"``, ``"layer1"``, ..."""
    return f"layer{i}"


def _chains(np_masks: Sequence[np.ndarray]) -> bool:
    """MLP-style inference: every mask 2-D (the sizes are checked per pair)."""
    return all(m.ndim == 2 for m in np_masks)


def mask_report(masks: Sequence[torch.Tensor], names: Sequence[str] | None = None, *, chain: bool | None = None,
                types: Sequence[str] | None = None) -> dict[str, Any]:
    """Per-layer density, kept counts and layer collapse (module docstring).

    ``chain``: whether layer l+1 reads layer l's outputs where the sizes
    agree (None: True when every mask is 2-D). ``types``: the layers' module
    types, recorded as ``type``.
    """
    names = list(names) if names is not None else [layer_key(i) for i in range(len(masks))]
    L = len(masks)
    layers = []
    dead_hidden = 0
    dead_out = 0
    np_masks = [np.asarray(m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else m, dtype=bool) for m in masks]
    if chain is None:
        chain = _chains(np_masks)
    for l, m in enumerate(np_masks):
        kept = int(np.count_nonzero(m))
        rest = tuple(range(1, m.ndim))
        zero_in = ~m.any(axis=rest) if m.ndim > 1 else ~m
        cols = (0,) + tuple(range(2, m.ndim))
        dead_in = int(np.count_nonzero(~m.any(axis=cols))) if m.ndim > 1 else 0
        entry: dict[str, Any] = {
            "layer": l,
            "name": names[l],
            "shape": [int(v) for v in m.shape],
            "weights": int(m.size),
            "kept": kept,
            "density": kept / max(int(m.size), 1),
            "zero_fan_in": int(np.count_nonzero(zero_in)),
            "dead_outputs": int(np.count_nonzero(zero_in)),
            "dead_inputs": dead_in,
        }
        if types is not None:
            entry["type"] = str(types[l])
        if l == 0:
            entry["inputs_disconnected"] = dead_in
        nxt = np_masks[l + 1] if l + 1 < L else None
        if chain and nxt is not None and nxt.ndim > 1 and nxt.shape[1] == m.shape[0]:
            zero_out = ~nxt.any(axis=(0,) + tuple(range(2, nxt.ndim)))
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
        shaped like its weight ((out, in) or (out, in / groups, *kernel));
        True = kept.
    names : module paths of the prunable layers.
    report : dict, see :func:`mask_report`, plus ``"config"`` and ``"history"``.
    scores : list of tensors, the scores of the last iteration (before
        ``invert``), shaped like the weights.
    history : one dict per iteration: ``iteration``, ``target_density`` (the
        schedule's d_e), ``density`` (achieved), ``kept``.
    config : the arguments (method, density, scope, iterations, schedule,
        compat, seed, shuffle, invert).
    layer_types : the prunable layers' module types (``report`` records them).
    dense : the parameters left unpruned (name, module, numel, reason), see
        :func:`gntk_fast.pruning.layers.dense_parameters`; in ``report["dense"]``.
    chain : whether the layers are applied one after the other (zero fan-out
        is reported then; see :func:`mask_report`).
    """

    masks: list[torch.Tensor]
    names: list[str]
    scores: list[torch.Tensor]
    history: list[dict[str, Any]]
    config: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)
    layer_types: list[str] | None = None
    dense: list[dict[str, Any]] = field(default_factory=list)
    chain: bool | None = None

    def __post_init__(self) -> None:
        if not self.report:
            self.report = mask_report(self.masks, self.names, chain=self.chain, types=self.layer_types)
            self.report["dense"] = [dict(d) for d in self.dense]
            self.report["total"]["dense_parameters"] = sum(int(d["numel"]) for d in self.dense)
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
        """Write the masks to ``path`` (".npz" appended when missing), atomically:
        bool arrays ``layer0``.. in forward order, loadable with
        ``np.load(path, allow_pickle=False)`` or :func:`load_masks`."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays = {layer_key(i): m.detach().cpu().numpy().astype(bool) for i, m in enumerate(self.masks)}
        return save_npz(path, arrays)

    def to_json(self) -> str:
        return json.dumps(jsonable(self.report, finite=False), indent=2, default=_json_default)

    def save_report(self, path: str | Path) -> Path:
        """Write the report (layers, totals, config, history) as JSON, atomically."""
        return write_text(path, self.to_json() + "\n")


def _json_default(o: Any):
    """The report's non-numeric values: a torch dtype by its name, anything else as str."""
    if isinstance(o, torch.dtype):
        return str(o).replace("torch.", "")
    return str(o)


def load_masks(path: str | Path, *, chain: bool = True) -> list[torch.Tensor]:
    """Read masks written by :meth:`PruneResult.save_npz`: bool tensors
    (n_out, n_in), one per layer in forward order.

    The file must hold arrays ``layer0``, ``layer1``, ... (consecutive, at least
    one), each 2-D with values 0/1 only (bool, or integer/float arrays of 0
    and 1), and the shapes must chain: layer l's n_out equals layer l+1's
    n_in. With ``chain=False`` (masks of conv or residual nets) each array
    may have 2 to 5 dimensions, (out, in, *kernel), and the shapes need not
    chain. Anything else (and an unreadable file) is a ValueError naming the
    file and the layer; a missing file is a FileNotFoundError.
    """
    arrays = load_npz(path, "masks file")
    return [torch.from_numpy(m) for m in check_mask_arrays(arrays, path, chain=chain)]


def check_mask_arrays(arrays: dict[str, np.ndarray], path: str | Path, *, chain: bool = True) -> list[np.ndarray]:
    """Validate the arrays of a masks file (see :func:`load_masks`); returns
    the masks as bool numpy arrays in layer order."""
    where = f"masks file {path}"
    layer_keys = [k for k in arrays if k.startswith("layer")]
    if not layer_keys:
        raise ValueError(f"{where} holds no layer arrays (expected layer0, layer1, ...; found {sorted(arrays)})")
    bad = [k for k in layer_keys if not k[5:].isdigit() or layer_key(int(k[5:])) != k]
    indices = sorted(int(k[5:]) for k in layer_keys if k not in bad)
    if bad or indices != list(range(len(indices))):
        raise ValueError(f"{where}: layer arrays must be consecutive layer0..layer{len(layer_keys) - 1}; "
                         f"found {sorted(layer_keys, key=lambda k: (len(k), k))}")
    masks = []
    for i in indices:
        key = layer_key(i)
        a = arrays[key]
        if chain and a.ndim != 2:
            raise ValueError(f"{where}: {key} must be 2-D (n_out, n_in); got shape {a.shape}")
        if not chain and not 2 <= a.ndim <= 5:
            raise ValueError(f"{where}: {key} must have 2 to 5 dimensions (out, in, *kernel); got shape {a.shape}")
        if a.dtype != bool:
            if a.dtype.kind not in "iuf":
                raise ValueError(f"{where}: {key} must hold 0/1 values (bool, int or float); got dtype {a.dtype}")
            if not np.isin(a, (0, 1)).all():
                raise ValueError(f"{where}: {key} holds values other than 0 and 1")
            a = a.astype(bool)
        if chain and masks and masks[-1].shape[0] != a.shape[1]:
            raise ValueError(f"{where}: shapes do not chain: {layer_key(i - 1)} has n_out={masks[-1].shape[0]} "
                             f"but {key} has n_in={a.shape[1]}")
        masks.append(a)
    return masks
