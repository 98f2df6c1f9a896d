"""``gntk-fast gntk``: the analytic Graphon NTK of a data sample and its spectral metrics.

Graphons come either from SAS estimates saved by ``gntk-fast graphon``
(``--estimates DIR/estimates.npz``, one method and width: the input layer
``InputGraphon(input_H[m, w], edges[w])``, the hidden layers
``StepGraphon(H[m, w, l], edges[w], edges[w])``, and the read-out from
``--readout`` since the estimates hold none) or from named graphons
(``--graphons SPEC ...``, L + 1 of them, or one spec repeated with ``--depth``):

    constant:C     W = C (in [0, 1])
    linear         W = 0.15 + 0.7 u v          (the graphon of docs/graphon-ntk.md section 4, fact 3)
    linear:A,B     W = A + B u v
    exp:S          W = exp(-|u - v| / S)

Note: SAS sorts each layer's neurons by degree separately for every mask, so
adjacent estimates need not order a shared layer the same way; the kernel of
estimates is the kernel of those step graphons, as in the paper.

Prints the metrics table (:func:`gntk_fast.spectral_metrics`) and writes to
``--out DIR``: ``spectrum.png`` (log-log eigenvalues with the alpha fit),
``metrics.json`` (metrics, eigenvalues, config) and, with ``--save-kernel``,
``kernel.npz`` (``theta`` (N, N), ``labels`` (N,)), each written atomically.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._constants import DATASETS, DEFAULT_DEPTH

HELP = "analytic Graphon NTK of a data sample (from SAS estimates or named graphons) and its spectral metrics"

EXAMPLES = f"""\
examples:
  # the linear graphon 0.15 + 0.7 u v at every layer, {DEFAULT_DEPTH} hidden layers, 200 test digits
  gntk-fast gntk --graphons linear --out runs/linear
  # input, two hidden layers and read-out given one by one, kernel saved
  gntk-fast gntk --graphons constant:0.5 exp:0.3 linear:0.1,0.8 constant:1 --save-kernel --out runs/mix
  # SAS estimates of 'gntk-fast graphon': SynFlow at width 500, partial spectrum
  gntk-fast gntk --estimates runs/graphon --method synflow --width 500 --eigs lanczos --out runs/gntk

graphon specs: constant:C, linear, linear:A,B (A + B u v), exp:S (exp(-|u - v| / S)).
"""

__all__ = ["HELP", "EXAMPLES", "configure", "run", "named_graphon", "graphons_from_estimates"]


def named_graphon(spec: str):
    """:func:`gntk_fast.graphon.named_graphon` (imported when called: the parser stays light)."""
    from ..graphon.objects import named_graphon as _named

    return _named(spec)


def graphons_from_estimates(path, method: str | None = None, width: int | None = None, readout: str = "constant:1"):
    """``([input, hidden..., read-out] graphons, {"method", "width"})`` from a
    ``gntk-fast graphon`` estimates.npz (or its directory). The file is read
    with :func:`gntk_fast._io.load_npz` and its methods, widths, H, edges and
    input_H are validated (:meth:`GraphonConvergence.check_arrays`); any
    problem is a ValueError naming the file."""
    import numpy as np

    from .._io import load_npz
    from ..experiments.graphon_convergence import GraphonConvergence
    from ..graphon.objects import InputGraphon, StepGraphon

    path = Path(path)
    if path.is_dir():
        path = path / "estimates.npz"
    z = load_npz(path, "estimates file")
    GraphonConvergence.check_arrays(z, path, required=("methods", "widths", "H", "edges", "input_H"))
    methods = [str(m) for m in z["methods"]]
    widths = [int(w) for w in z["widths"]]
    m = methods[0] if method is None else method
    if m not in methods:
        raise ValueError(f"method {m!r} not in the estimates (have {methods})")
    w = widths[-1] if width is None else int(width)
    if w not in widths:
        raise ValueError(f"width {w} not in the estimates (have {widths})")
    mi, wi = methods.index(m), widths.index(w)
    edges = np.array(z["edges"][wi], dtype=np.float64)
    gs = [InputGraphon(np.clip(z["input_H"][mi, wi], 0, 1), row_edges=edges)]
    for li in range(z["H"].shape[2]):
        gs.append(StepGraphon(np.clip(z["H"][mi, wi, li], 0, 1), row_edges=edges, col_edges=edges))
    gs.append(named_graphon(readout))
    return gs, {"method": m, "width": w}


def configure(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--estimates", help="estimates.npz (or its directory) written by `gntk-fast graphon`")
    src.add_argument("--graphons", nargs="+", metavar="SPEC",
                     help="named graphons [input, hidden..., read-out] (constant:C, linear[:A,B], exp:S); "
                          "one spec is repeated for --depth hidden layers (default: linear)")
    p.add_argument("--method", default=None, help="pruning method in the estimates (default: the first)")
    p.add_argument("--width", type=int, default=None, help="width in the estimates (default: the largest)")
    p.add_argument("--readout", default="constant:1", help="read-out graphon spec with --estimates (default constant:1)")
    p.add_argument("--depth", type=int, default=DEFAULT_DEPTH,
                   help=f"hidden layers when one --graphons spec is given (default {DEFAULT_DEPTH})")
    p.add_argument("--data", choices=DATASETS, default="digits", help="dataset (default digits)")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default $GNTK_MNIST_DIR)")
    p.add_argument("--split", choices=("train", "test", "all"), default="test", help="data split (default test)")
    p.add_argument("--n", type=int, default=200, help="data sample size N (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data sample (default 0)")
    p.add_argument("--activation", default="relu", help="relu, erf, tanh or identity (default relu)")
    p.add_argument("--trainable", choices=("mask", "all"), default="mask", help="trainability convention (default mask)")
    p.add_argument("--K", type=int, default=256, help="quadrature nodes for callable graphons (default 256)")
    p.add_argument("--backend", default="auto", metavar="NAME",
                   help="backend of the analytic recursion: auto (default), triton, numba or naive; a backend "
                        "named that cannot serve the call is an error, never a silent switch")
    p.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    p.add_argument("--eigs", choices=("full", "lanczos"), default="full", help="eigen-solver (default full)")
    p.add_argument("--n-eigs", type=int, default=None, help="eigenvalues for --eigs lanczos (default min(N-1, 100))")
    p.add_argument("--top-k", type=int, default=None, help="k of the energy concentration, <= N (default min(5, N))")
    p.add_argument("--save-kernel", action="store_true", help="also write kernel.npz")
    p.add_argument("--out", required=True, help="output directory (spectrum.png, metrics.json)")


def _graphons(args: argparse.Namespace):
    """The graphons of the run and a description of their source."""
    if args.estimates:
        gs, info = graphons_from_estimates(args.estimates, args.method, args.width, args.readout)
        return gs, info, f"{info['method']} @ width {info['width']}"
    specs = args.graphons or ["linear"]
    if len(specs) == 1:
        if args.depth < 1:
            raise ValueError(f"depth must be >= 1; got {args.depth}")
        specs = specs * (args.depth + 1)
    gs = [named_graphon(s) for s in specs]
    return gs, {"graphons": specs}, " ".join(specs)


def run(args: argparse.Namespace) -> int:
    from .._io import check_output_path

    out = check_output_path(args.out, "--out", directory=True)
    gs, info, src = _graphons(args)

    import torch

    from .. import data, plots
    from .._io import save_npz, write_text
    from ..ntk.analytic import graphon_ntk
    from ..spectral import spectral_metrics

    x, y = data.load(args.data, split=args.split, n=args.n, seed=args.seed, data_dir=args.data_dir)
    dtype = torch.float32 if args.float32 else torch.float64
    theta = graphon_ntk(gs, x, activation=args.activation, trainable=args.trainable, K=args.K,
                        backend=args.backend, dtype=dtype)
    m = spectral_metrics(theta, y=y, k=args.top_k, method=args.eigs, n_eigs=args.n_eigs)
    print(f"analytic Graphon NTK: {args.data} N={x.shape[0]} d={x.shape[1]}, depth {len(gs) - 1}, "
          f"{args.activation}, trainable={args.trainable}, graphons: {src}")
    print(m.table())
    written = [plots.save_figure(
        plots.plot_spectrum(m, labels=[src], title=f"Graphon NTK spectrum ({args.data}, N={x.shape[0]})"),
        out / "spectrum.png",
    )]
    cfg = {k: v for k, v in vars(args).items()
           if not k.startswith("_") and isinstance(v, (str, int, float, bool, list, type(None)))}
    report = {"config": cfg, "source": info, "metrics": m.as_dict()}
    written.append(write_text(out / "metrics.json", json.dumps(report, indent=2, default=str) + "\n"))
    if args.save_kernel:
        written.append(save_npz(out / "kernel.npz", {"theta": theta.cpu().numpy(), "labels": y.numpy()},
                                compressed=False))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
