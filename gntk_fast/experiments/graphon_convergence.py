"""The Graphon Limit Hypothesis experiment: SAS estimates of pruned fc masks
converging with width.

For every method, width and trial an fc model (Synaptic-Flow's: Flatten,
Linear(d, n), ReLU, ..., Linear(n, classes), PyTorch init) is pruned with
``gntk_fast.prune(..., compat="synaptic-flow")`` and every layer's mask is
estimated by SAS:

* hidden-to-hidden layers (mask index i = 1..depth-1, weights from hidden
  layer i to hidden layer i+1, shape (n, n)): rows and columns sorted,
  K x K blocks;
* the input layer (mask index 0, shape (n, d)): rows sorted, columns kept in
  pixel order with one column per pixel (``sort_cols=False``, K x d), giving
  a per-pixel kept-density image.

Estimates are averaged over trials; distances are measured to the widest
width's averaged estimate. The paper's setting is widths 100/500/1000/2000,
100 trials, K = 64 (``graphon_convergence(["synflow", ...], [100, 500,
1000, 2000], 0.9, depth, 100, 64, data="mnist")``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._validation import (
    MAX_BLOCKS,
    MAX_DEPTH,
    MAX_WIDTH,
    check_choice,
    check_fraction,
    check_int,
    check_memory,
    check_seed,
    check_size,
    check_sizes,
)

__all__ = ["GraphonConvergence", "graphon_convergence", "trial_seed"]

_HOM = ("edge", "row_cherry", "col_cherry", "path3", "cycle4")
_ARRAYS = (
    "H", "H_trials", "input_H", "input_density", "edges", "density", "hist", "hist_norm", "hist_trials",
    "cut", "cut_exact", "degree_rows", "degree_cols", "hom",
)


def trial_seed(seed: int, width: int, trial: int) -> int:
    """The model/pruning seed of one trial: a SeedSequence hash of (seed, width, trial),
    shared by every method so methods prune the same initial models."""
    return int(np.random.SeedSequence([int(seed), int(width), int(trial)]).generate_state(1, dtype=np.uint32)[0])


@dataclass
class GraphonConvergence:
    """Results of :func:`graphon_convergence`.

    Axes: M methods, W widths (ascending), L hidden-to-hidden layers, T trials,
    K blocks, d input pixels.

    Attributes
    ----------
    methods, widths, layers : list
        ``layers[l]`` is the mask index i (weights from hidden layer i to i+1).
    H : (M, W, L, K, K) trial-averaged SAS estimates (rows = outputs, layer i+1;
        columns = inputs, layer i).
    H_trials : (M, W, L, T, K, K) per-trial estimates, or None (``keep_trials=False``).
    input_H : (M, W, K, d) input-layer estimates (columns = pixels in order).
    input_density : (M, W, d) kept fraction per pixel (mean over trials).
    edges : (W, K + 1) block edges as fractions ``floor(b n / K) / n`` per width.
    density : (M, W, L) mean kept fraction of each hidden layer.
    hist, hist_norm : (M, W, L) histogram distance of the averaged estimate to
        the widest width's (raw and divided by K).
    hist_trials : (M, W, L, T) each trial's estimate's histogram distance to
        the widest width's averaged estimate (the spread).
    cut, cut_exact : (M, W, L) cut norm of H - H_widest, and whether exact.
    degree_rows, degree_cols : (M, W, L) degree-profile distances to the widest.
    hom : (M, W, L, 5) homomorphism densities of the averaged estimates
        (edge, row cherry, column cherry, 3-path, 4-cycle).
    config : dict (sparsity, depth, trials, K, seed, data, d_in, image_shape,
        compat, scope, iterations).
    """

    methods: list[str]
    widths: list[int]
    layers: list[int]
    H: np.ndarray
    H_trials: np.ndarray | None
    input_H: np.ndarray
    input_density: np.ndarray
    edges: np.ndarray
    density: np.ndarray
    hist: np.ndarray
    hist_norm: np.ndarray
    hist_trials: np.ndarray
    cut: np.ndarray
    cut_exact: np.ndarray
    degree_rows: np.ndarray
    degree_cols: np.ndarray
    hom: np.ndarray
    config: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ accessors
    def _index(self, method: str, width: int, layer: int | None = None) -> tuple[int, ...]:
        m = self.methods.index(check_choice("method", method, self.methods))
        if width not in self.widths:
            raise ValueError(f"width must be one of {self.widths}; got {width}")
        w = self.widths.index(width)
        if layer is None:
            return m, w
        if layer not in self.layers:
            raise ValueError(f"layer must be one of {self.layers}; got {layer}")
        return m, w, self.layers.index(layer)

    def graphon(self, method: str, width: int, layer: int):
        """The averaged estimate of one hidden layer as a StepGraphon."""
        from ..graphon.objects import StepGraphon

        m, w, l = self._index(method, width, layer)
        e = self.edges[w]
        return StepGraphon(np.clip(self.H[m, w, l], 0, 1), row_edges=e, col_edges=e)

    def input_graphon(self, method: str, width: int):
        """The averaged input-layer estimate as an InputGraphon (columns = pixels)."""
        from ..graphon.objects import InputGraphon

        m, w = self._index(method, width)
        return InputGraphon(np.clip(self.input_H[m, w], 0, 1), row_edges=self.edges[w])

    # ----------------------------------------------------------------- I/O
    def to_npz(self, path: str | Path) -> Path:
        """Save as .npz, atomically (no pickles; layout in :mod:`gntk_fast.cli.graphon`)."""
        from .._io import save_npz

        arrays: dict[str, np.ndarray] = {
            "methods": np.array(self.methods, dtype=str),
            "widths": np.array(self.widths, dtype=np.int64),
            "layers": np.array(self.layers, dtype=np.int64),
            "hom_names": np.array(_HOM, dtype=str),
            "config_json": np.array(json.dumps(self.config)),
        }
        for k in _ARRAYS:
            v = getattr(self, k)
            if v is not None:
                arrays[k] = np.asarray(v)
        for k, v in self.config.items():
            if isinstance(v, (int, float, str, bool)):
                arrays[k] = np.array(v)
            elif k == "image_shape" and v is not None:
                arrays[k] = np.array(v, dtype=np.int64)
        return save_npz(path, arrays)

    @staticmethod
    def check_arrays(z: dict[str, np.ndarray], path: str | Path, required: Sequence[str] | None = None) -> None:
        """Validate the arrays of an estimates file (layout of :meth:`to_npz`):
        every key in ``required`` present, and every present key of the right
        dtype kind and of a shape consistent with ``methods`` (M), ``widths``
        (W, positive, increasing), ``H`` (M, W, L, K, K) and ``input_H``
        (M, W, K, d); estimates finite in [0, 1]; each width's ``edges`` row
        increasing from 0 to 1. ValueError naming the file and the key."""
        where = f"estimates file {path}"
        if required is None:  # everything to_npz writes (H_trials is optional)
            required = ("methods", "widths", "layers", "config_json", *(k for k in _ARRAYS if k != "H_trials"))
        for key in required:
            if key not in z:
                raise ValueError(f"{where} lacks {key!r} (not written by `gntk-fast graphon`?)")

        def get(key: str, kinds: str, ndim: int) -> np.ndarray | None:
            a = z.get(key)
            if a is None:
                return None
            if a.dtype.kind not in kinds or a.ndim != ndim:
                raise ValueError(f"{where}: {key} must be a {ndim}-D array of kind {kinds!r}; "
                                 f"got dtype {a.dtype}, shape {a.shape}")
            return a

        methods, widths = get("methods", "U", 1), get("widths", "iu", 1)
        H, input_H, edges = get("H", "f", 5), get("input_H", "f", 4), get("edges", "f", 2)
        if methods is None or widths is None or H is None:
            raise ValueError(f"{where} lacks methods, widths or H")
        if len(methods) == 0 or len(widths) == 0 or (widths < 1).any() or (np.diff(widths) <= 0).any():
            raise ValueError(f"{where}: methods must be non-empty and widths positive and increasing; "
                             f"got {methods.tolist()}, {widths.tolist()}")
        M, W, L, K = len(methods), len(widths), H.shape[2], H.shape[3]
        layers = get("layers", "iu", 1)
        expect = {"H": (M, W, L, K, K), "layers": (L,), "edges": (W, K + 1)}
        if input_H is not None:
            expect["input_H"] = (M, W, K, input_H.shape[3])
            expect["input_density"] = (M, W, input_H.shape[3])
        for k in ("density", "hist", "hist_norm", "cut", "cut_exact", "degree_rows", "degree_cols"):
            expect[k] = (M, W, L)
        expect["hom"] = (M, W, L, len(_HOM))
        T = z["hist_trials"].shape[-1] if "hist_trials" in z and z["hist_trials"].ndim == 4 else None
        expect["hist_trials"] = (M, W, L, T)
        if T is not None:
            expect["H_trials"] = (M, W, L, T, K, K)
        for k, shape in expect.items():
            if k in z and z[k].shape != shape:
                raise ValueError(f"{where}: {k} has shape {z[k].shape}; expected {shape}")
            if k in z and z[k].dtype.kind not in ("b" if k == "cut_exact" else "iu" if k == "layers" else "f"):
                raise ValueError(f"{where}: {k} has dtype {z[k].dtype}")
        for k in ("H", "input_H", "H_trials", "input_density", "density"):
            if k in z and not (np.isfinite(z[k]).all() and z[k].min(initial=0) >= 0 and z[k].max(initial=0) <= 1):
                raise ValueError(f"{where}: {k} must hold values in [0, 1]")
        if edges is not None and not ((edges[:, 0] == 0).all() and (edges[:, -1] == 1).all()
                                      and (np.diff(edges, axis=1) > 0).all()):
            raise ValueError(f"{where}: every row of edges must increase strictly from 0 to 1")
        if "config_json" in z:
            try:
                config = json.loads(str(z["config_json"]))
            except ValueError:
                config = None
            if not isinstance(config, dict) or z["config_json"].shape != ():
                raise ValueError(f"{where}: config_json must be a JSON object string")

    @classmethod
    def from_npz(cls, path: str | Path) -> "GraphonConvergence":
        """Read what :meth:`to_npz` wrote (validated by :meth:`check_arrays`);
        an unreadable or inconsistent file is a ValueError naming it."""
        from .._io import load_npz

        z = load_npz(path, "estimates file")
        cls.check_arrays(z, path)
        return cls(
            methods=[str(s) for s in z["methods"]],
            widths=[int(w) for w in z["widths"]],
            layers=[int(x) for x in z["layers"]],
            config=json.loads(str(z["config_json"])),
            **{k: z.get(k) for k in _ARRAYS},
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready dict: config and every distance (not the estimates)."""
        out: dict[str, Any] = {"config": self.config, "methods": self.methods, "widths": self.widths, "layers": self.layers}
        for k in ("density", "hist", "hist_norm", "cut", "cut_exact", "degree_rows", "degree_cols", "hom"):
            out[k] = np.asarray(getattr(self, k)).tolist()
        out["hist_trials_mean"] = self.hist_trials.mean(axis=-1).tolist()
        out["hist_trials_std"] = self.hist_trials.std(axis=-1).tolist()
        out["hom_names"] = list(_HOM)
        return out

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`summary` as JSON, atomically."""
        from .._io import write_text

        return write_text(path, json.dumps(self.summary(), indent=2) + "\n")


def _load_batch(data: Any, seed: int, data_dir: Any):
    """(x, y, name, image_shape) of the pruning batch."""
    import torch

    from .. import data as gdata

    if isinstance(data, str):
        name = check_choice("data", data, ("digits", "mnist"))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MNIST without a train split falls back to test
            x, y = gdata.pruning_batch(name, seed=seed, data_dir=data_dir)
        side = 8 if name == "digits" else 28
        return x, y, name, (side, side)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        x = torch.as_tensor(x)
        y = torch.as_tensor(y)
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"data x must have shape (n, d) with n >= 1; got {tuple(x.shape)}")
        x = x.reshape(x.shape[0], -1).float()
        d = x.shape[1]
        side = int(round(d**0.5))
        return x, y.long(), "custom", ((side, side) if side * side == d else None)
    raise TypeError(f"data must be 'digits', 'mnist' or an (x, y) tuple; got {type(data).__name__}")


def graphon_convergence(
    methods: Sequence[str] = ("random", "synflow"),
    widths: Sequence[int] = (100, 500, 1000, 2000),
    sparsity: float = 0.9,
    depth: int = 3,
    trials: int = 100,
    K: int = 64,
    seed: int = 0,
    data: Any = "digits",
    *,
    scope: str = "global",
    iterations: int | None = None,
    smooth: float | None = None,
    keep_trials: bool = True,
    data_dir: Any = None,
    progress: bool | None = None,
) -> GraphonConvergence:
    """Prune fc models at several widths and measure how their SAS estimates converge.

    Parameters
    ----------
    methods : pruning methods ("random", "magnitude", "snip", "grasp", "synflow").
    widths : hidden widths n (>= K, <= MAX_WIDTH); distances are to the largest.
    sparsity : pruned fraction in [0, 1) (Synaptic-Flow semantics, global scope by default).
    depth : hidden layers (2..MAX_DEPTH, so there is a hidden-to-hidden layer); the fc
        model has depth + 1 Linear layers.
    trials : independent models per (method, width); trial t of width n uses
        :func:`trial_seed` (seed, n, t) for both init and pruning.
    K : SAS blocks per side (rows of the input layer too), 1..MAX_BLOCKS.
    seed : int in [0, 2**64 - 1].
    data : "digits" (default: the embedded dataset, 8 x 8), "mnist" (the paper's
        setting, 28 x 28, 100-image pruning batch; needs data_dir or GNTK_MNIST_DIR), or (x, y).
    scope, iterations : passed to :func:`gntk_fast.prune` (compat="synaptic-flow").
    smooth : optional TV weight applied to each averaged estimate.
    keep_trials : keep the per-trial estimates (M, W, L, T, K, K).
    progress : tqdm bar over all trials (default: on).

    The result arrays must fit in memory (checked before any model is built).
    """
    from ..graphon.sas import tv_smooth

    methods, widths, sparsity, depth, trials, K, seed = _convergence_arguments(
        methods, widths, sparsity, depth, trials, K, seed
    )
    x, y, data_name, image_shape = _load_batch(data, seed, data_dir)
    d_in = int(x.shape[1])
    n_classes = int(y.max().item()) + 1 if data_name == "custom" else 10
    layers = list(range(1, depth))
    M, W, L, T = len(methods), len(widths), len(layers), trials
    check_memory("the per-trial estimates (methods x widths x depth x trials x K x K)", 8 * M * W * L * T * K * K)
    check_memory("the input-layer estimates (methods x widths x K x d_in)", 8 * M * W * K * d_in)
    est = _estimate_all(methods, widths, layers, trials, K, seed, x, y, d_in, n_classes, depth, sparsity,
                        scope, iterations, progress)
    edges = np.stack([np.arange(K + 1) * w // K / w for w in widths])

    H = est["H_trials"].mean(axis=3)
    if smooth is not None:
        for idx in np.ndindex(M, W, L):
            H[idx] = tv_smooth(H[idx], smooth)
    dist = _distances(H, est["H_trials"], edges, seed)
    config = {
        "sparsity": sparsity, "depth": depth, "trials": trials, "K": K, "seed": seed, "data": data_name,
        "d_in": d_in, "image_shape": list(image_shape) if image_shape else None, "compat": "synaptic-flow",
        "scope": scope, "iterations": iterations, "smooth": smooth, "num_classes": n_classes,
    }
    return GraphonConvergence(
        methods, widths, layers, H, est["H_trials"] if keep_trials else None, est["input_H"],
        est["input_density"], edges, est["density"], dist["hist"], dist["hist_norm"], dist["hist_trials"],
        dist["cut"], dist["cut_exact"], dist["degree_rows"], dist["degree_cols"], dist["hom"], config,
    )


def _convergence_arguments(methods, widths, sparsity, depth, trials, K, seed):
    """Validated (methods, ascending widths, sparsity, depth, trials, K, seed)."""
    from ..pruning.scores import METHODS

    if isinstance(methods, str):
        methods = [methods]
    methods = [check_choice("methods", m, METHODS) for m in methods]
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be a non-empty list of distinct methods; got {methods}")
    widths = check_sizes("widths", widths, MAX_WIDTH, distinct=True)
    sparsity = check_fraction("sparsity", sparsity)
    depth = check_size("depth", depth, MAX_DEPTH, min_value=2)
    trials = check_int("trials", trials, min_value=1)
    K = check_size("K", K, MAX_BLOCKS)
    seed = check_seed(seed, allow_none=False)
    if K > widths[0]:
        raise ValueError(f"K={K} is larger than the smallest width {widths[0]}; use K <= {widths[0]}")
    return methods, widths, sparsity, depth, trials, K, seed


def _estimate_all(methods, widths, layers, trials, K, seed, x, y, d_in, n_classes, depth, sparsity,
                  scope, iterations, progress) -> dict[str, np.ndarray]:
    """Prune every (method, width, trial) model and SAS-estimate its masks.

    Returns ``H_trials`` (M, W, L, T, K, K) raw hidden-layer estimates,
    ``input_H`` (M, W, K, d_in) and ``input_density`` (M, W, d_in) trial means
    of the input layer, and ``density`` (M, W, L) mean kept fractions.
    """
    from tqdm.auto import tqdm

    from ..graphon.sas import sas
    from ..models import fc
    from ..pruning import prune

    M, W, L, T = len(methods), len(widths), len(layers), trials
    out = {
        "H_trials": np.zeros((M, W, L, T, K, K)),
        "input_H": np.zeros((M, W, K, d_in)),
        "input_density": np.zeros((M, W, d_in)),
        "density": np.zeros((M, W, L)),
    }
    show = True if progress is None else bool(progress)
    bar = tqdm(total=M * W * T, desc="graphon convergence", disable=not show)
    for mi, method in enumerate(methods):
        for wi, width in enumerate(widths):
            bar.set_postfix(method=method, width=width)
            for t in range(T):
                s = trial_seed(seed, width, t)
                model = fc(d_in, width, depth, n_classes, seed=s)
                res = prune(model, method, sparsity, data=(x, y), scope=scope, iterations=iterations,
                            compat="synaptic-flow", seed=s, progress=False)
                masks = [m_.detach().cpu().numpy() for m_ in res.masks]
                est_in = sas(masks[0], K, K_in=d_in, sort_cols=False)
                out["input_H"][mi, wi] += est_in.H_raw / T
                out["input_density"][mi, wi] += est_in.col_degrees / (width * T)
                for li, layer in enumerate(layers):
                    est = sas(masks[layer], K)
                    out["H_trials"][mi, wi, li, t] = est.H_raw
                    out["density"][mi, wi, li] += est.density() / T
                bar.update(1)
    bar.close()
    return out


def _distances(H: np.ndarray, H_trials: np.ndarray, edges: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Distances of every averaged estimate H[m, w, l] (and each trial's) to the
    widest width's H[m, -1, l], and the homomorphism densities of H[m, w, l]."""
    from .._progress import progress_bar
    from ..graphon.distances import cut_norm, degree_profile_distance, histogram_distance
    from ..graphon.objects import StepGraphon
    from ..graphon.stats import hom_densities

    M, W, L = H.shape[:3]
    ref = H[:, -1]  # widest width
    out = {k: np.zeros((M, W, L)) for k in ("hist", "hist_norm", "cut", "degree_rows", "degree_cols")}
    out["hist_trials"] = np.zeros((M, W, L, H_trials.shape[3]))
    out["cut_exact"] = np.zeros((M, W, L), dtype=bool)
    out["hom"] = np.zeros((M, W, L, len(_HOM)))
    for m, w, l in progress_bar(np.ndindex(M, W, L), total=M * W * L, desc="distances to the widest width"):
        out["hist"][m, w, l] = histogram_distance(H[m, w, l], ref[m, l])
        out["hist_norm"][m, w, l] = histogram_distance(H[m, w, l], ref[m, l], normalized=True)
        out["hist_trials"][m, w, l] = np.sqrt(((H_trials[m, w, l] - ref[m, l]) ** 2).sum(axis=(1, 2)))
        c = cut_norm(H[m, w, l] - ref[m, l], seed=seed)
        out["cut"][m, w, l], out["cut_exact"][m, w, l] = c.value, c.exact
        g = StepGraphon(np.clip(H[m, w, l], 0, 1), edges[w], edges[w])
        g_ref = StepGraphon(np.clip(ref[m, l], 0, 1), edges[-1], edges[-1])
        dd = degree_profile_distance(g, g_ref)
        out["degree_rows"][m, w, l], out["degree_cols"][m, w, l] = dd["rows"], dd["cols"]
        out["hom"][m, w, l] = hom_densities(g).as_array()
    return out
