"""``gntk-fast graphon``: the graphon convergence experiment, its figures and its estimates.

Two modes.

``gntk-fast graphon --masks MASKS.npz --out DIR`` estimates every layer of one
pruned network (a file from ``gntk-fast prune --out``: arrays layer0..layerN, read and
validated by :func:`gntk_fast.pruning.load_masks`)
with :func:`gntk_fast.graphon.io.sas_layers` and writes
``mask_estimates.npz`` (layout in :mod:`gntk_fast.graphon.io`),
``mask_estimates.png`` (one panel per layer) and ``input_density.png``.

Otherwise it runs :func:`gntk_fast.experiments.graphon_convergence` (pruned fc
models at several widths and trials, SAS estimates per layer) and writes to
``--out DIR``:

* ``estimates.npz`` — everything needed downstream (``gntk-fast gntk`` reads
  it; ``GraphonConvergence.from_npz`` loads and validates it);
* ``summary.json`` — config and every distance (``GraphonConvergence.summary()``);
* ``estimates_layer{i}.png`` (methods x widths grid of hidden layer i -> i+1),
  ``distance_layer{i}.png`` (histogram distance vs width with spread over
  trials), ``cut_layer{i}.png`` (cut norm vs width), ``input_density.png``
  (per-pixel kept density of the input layer).

npz layout (M methods, W widths ascending, L hidden-to-hidden layers, T trials,
K blocks, d input pixels; no pickled objects)
-------------------------------------------------------------------------------
``methods`` (M,) str; ``widths`` (W,) int64; ``layers`` (L,) int64 — mask index
i of each hidden-to-hidden layer (weights from hidden layer i to i+1, shape
(n, n), i = 1..depth-1; index 0 is the input layer);
``H`` (M, W, L, K, K) float64 — trial-averaged SAS estimates, rows = outputs
(layer i+1) sorted by degree descending, columns = inputs (layer i) sorted;
``H_trials`` (M, W, L, T, K, K) — per-trial estimates (absent with ``--no-trials``);
``edges`` (W, K+1) — block edges as fractions floor(b n / K) / n (rows and
columns of a width share them): ``StepGraphon(H[m, w, l], edges[w], edges[w])``;
``input_H`` (M, W, K, d) — input-layer estimates, rows sorted (edges[w]),
columns = pixels in pixel order: ``InputGraphon(input_H[m, w], edges[w])``;
``input_density`` (M, W, d) — per-pixel kept fraction (mean over trials);
``density`` (M, W, L) — kept fraction per hidden layer;
``hist``, ``hist_norm`` (M, W, L) — histogram distance of H to the widest
width's H (raw, / K); ``hist_trials`` (M, W, L, T) — per-trial distances;
``cut`` (M, W, L) and ``cut_exact`` (bool) — cut norm of H - H_widest;
``degree_rows``, ``degree_cols`` (M, W, L) — degree-profile distances;
``hom`` (M, W, L, 5) with ``hom_names`` (5,) — homomorphism densities;
``config_json`` (0-d str) — the full config as JSON, and its scalars
(``sparsity``, ``depth``, ``trials``, ``K``, ``seed``, ``data``, ``d_in``,
``compat``, ``scope``, ``num_classes``) and ``image_shape`` (2,) as arrays.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._constants import DATASETS, DEFAULT_DEPTH, METHODS, SCOPES
from ._args import fraction

HELP = "graphon convergence of pruned fc masks: SAS estimates over widths and trials, distances, figures"

EXAMPLES = f"""\
examples:
  # the SAS estimate of every layer of one pruned network
  gntk-fast prune --method synflow --sparsity 0.9 --width 256 --out m.npz
  gntk-fast graphon --masks m.npz --K 32 --out runs/m
  # a quick convergence run on the embedded digits
  gntk-fast graphon --methods random synflow --widths 100 200 --trials 5 --K 16 --out runs/graphon
  # the paper's setting (MNIST, widths 100..2000, 100 trials, K = 64)
  gntk-fast graphon --methods synflow --data mnist --data-dir data/mnist --out runs/paper

--sparsity is a fraction (0.9 prunes 90% of the weights); --depth counts hidden
layers (default {DEFAULT_DEPTH}, at least 2). Outputs go to --out DIR and are
written atomically; 'gntk-fast gntk --estimates DIR' reads estimates.npz.
"""

__all__ = ["HELP", "EXAMPLES", "configure", "run", "run_masks", "write_outputs"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--methods", nargs="+", choices=METHODS, default=["random", "synflow"], metavar="METHOD",
                   help=f"pruning methods ({' '.join(METHODS)}); default: random synflow")
    p.add_argument("--widths", nargs="+", type=int, default=[100, 500, 1000, 2000], metavar="N",
                   help="hidden widths (distances are to the largest); default: the paper's 100 500 1000 2000")
    p.add_argument("--sparsity", type=fraction("--sparsity"), default=0.9,
                   help="pruned fraction in [0, 1) (default 0.9)")
    p.add_argument("--depth", type=int, default=DEFAULT_DEPTH,
                   help=f"hidden layers of the fc model, >= 2 (default {DEFAULT_DEPTH})")
    p.add_argument("--trials", type=int, default=100, help="trials per method and width (default 100, the paper's)")
    p.add_argument("--K", type=int, default=64, help="SAS blocks per side (default 64)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--data", choices=DATASETS, default="digits",
                   help="dataset of the pruning batch and input size (default digits, embedded, 8 x 8; "
                        "mnist = the paper's 28 x 28, needs --data-dir or GNTK_MNIST_DIR)")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default $GNTK_MNIST_DIR)")
    p.add_argument("--scope", choices=SCOPES, default="global", help="pruning scope (default global)")
    p.add_argument("--iterations", type=int, default=None, help="pruning iterations (default: 100 synflow, 1 others)")
    p.add_argument("--smooth", type=float, default=None,
                   help="TV smoothing weight of the averaged estimates (larger = smoother)")
    p.add_argument("--no-trials", action="store_true", help="do not store per-trial estimates in the npz")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--masks", default=None,
                   help="estimate the layers of this mask file (from 'gntk-fast prune --out') "
                        "instead of running the experiment")
    p.add_argument("--out", required=True, help="output directory (estimates.npz, summary.json, PNG figures)")


def write_outputs(result, out: str | Path) -> list[Path]:
    """Write estimates.npz, summary.json and the figures of ``result`` into ``out`` (each atomically)."""
    from .. import plots
    from .._progress import progress_bar

    out = Path(out)
    with progress_bar(total=3 + 3 * len(result.layers), desc="graphon outputs", unit="file") as bar:
        written = [result.to_npz(out / "estimates.npz"), result.to_json(out / "summary.json")]
        bar.update(2)
        for layer in result.layers:
            written.append(plots.save_figure(plots.plot_estimate_grid(result, layer),
                                             out / f"estimates_layer{layer}.png"))
            written.append(plots.save_figure(plots.plot_distance_curves(result, layer, "hist"),
                                             out / f"distance_layer{layer}.png"))
            written.append(plots.save_figure(plots.plot_distance_curves(result, layer, "cut"),
                                             out / f"cut_layer{layer}.png"))
            bar.update(3)
        written.append(plots.save_figure(plots.plot_input_density(result), out / "input_density.png"))
        bar.update(1)
    return written


def run_masks(path: str | Path, K: int, out: str | Path, smooth: float | None = None) -> list[Path]:
    """The ``--masks`` mode: SAS of every layer of a mask file, npz + figures in ``out``."""
    from ..graphon.io import sas_layers, save_estimates
    from ..pruning import load_masks

    ests = sas_layers(load_masks(path), K, smooth=smooth)
    out = Path(out)
    written = [save_estimates(ests, out / "mask_estimates.npz")]
    written.append(_plot_mask_estimates(ests, out / "mask_estimates.png"))
    written.append(_plot_input_density(ests[0], out / "input_density.png"))
    return written


def _plot_mask_estimates(ests, path: Path) -> Path:
    from .. import plots

    fig, axes = plots.new_figure(1, len(ests), size=(3.6 * len(ests) + 0.8, 3.6))
    for i, e in enumerate(ests):
        plots.plot_estimate(e, axes[0, i], layer=i, colorbar=i == len(ests) - 1,
                            title=f"mask {i}: {e.shape[0]}x{e.shape[1]}, density {e.density():.3g}"
                            + (" (columns = inputs in order)" if not e.sort_cols else ""))
    return plots.save_figure(fig, path)


def _plot_input_density(est, path: Path) -> Path:
    """Per-pixel kept density of the input layer (an image when d is a square)."""
    import math

    import numpy as np

    from .. import plots

    d = est.shape[1]
    side = math.isqrt(d)
    fig, axes = plots.new_figure(1, 1, size=(4.4, 3.8))
    dens = est.col_degrees / est.shape[0]
    ax = axes[0, 0]
    if side * side == d:
        im = ax.imshow(dens.reshape(side, side), cmap="magma", vmin=0, interpolation="nearest")
        fig.colorbar(im, ax=ax, label="kept fraction of the pixel's edges to layer 1")
        ax.set_xlabel("pixel column (input layer 0)")
        ax.set_ylabel("pixel row (input layer 0)")
    else:
        ax.bar(np.arange(d), dens)
        ax.set_xlabel("input j (layer 0, in order)")
        ax.set_ylabel("kept fan-out / width")
    ax.set_title("input layer: per-pixel kept density", fontsize=10)
    return plots.save_figure(fig, path)


def run(args: argparse.Namespace) -> int:
    from .._io import check_output_path

    out = check_output_path(args.out, "--out", directory=True)
    if args.masks is not None:
        for p in run_masks(args.masks, args.K, out, args.smooth):
            print(p)
        return 0

    from ..experiments.graphon_convergence import graphon_convergence

    result = graphon_convergence(
        args.methods, args.widths, args.sparsity, args.depth, args.trials, args.K, args.seed, args.data,
        scope=args.scope, iterations=args.iterations, smooth=args.smooth, keep_trials=not args.no_trials,
        data_dir=args.data_dir, progress=not args.no_progress,
    )
    for p in write_outputs(result, out):
        print(p)
    s = result.summary()
    print(json.dumps({"widths": s["widths"], "methods": s["methods"], "layers": s["layers"], "hist": s["hist"]}))
    return 0
