"""``gntk-fast prune``: prune a fresh fc / MLP at initialisation, write the masks.

Writes ``--out FILE.npz`` (one bool array per prunable layer, ``layer0`` ..
``layerL`` in forward order, shaped (out_features, in_features), loadable
with ``numpy.load(FILE, allow_pickle=False)`` or
:func:`gntk_fast.pruning.load_masks`) and ``FILE.json`` beside it (per-layer
density, kept counts, dead neurons, totals, the configuration and the
per-iteration densities). Both are written atomically.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .._constants import COMPAT_MODES, DATASETS, DEFAULT_DEPTH, METHODS, SCHEDULES, SCOPE_ALIASES, SCOPES
from ._args import fraction

HELP = "prune a fresh fc/MLP at initialisation (random, magnitude, snip, grasp, synflow) and write the masks"

EXAMPLES = f"""\
examples:
  # SynFlow, 100 exponential iterations, keep exactly 10% of the weights (clean mode)
  gntk-fast prune --method synflow --sparsity 0.9 --width 256 --out m.npz
  # SNIP on MNIST's pruning batch (10 per class), as in the Synaptic-Flow code
  gntk-fast prune --method snip --compression 1 --data mnist --data-dir data/mnist \\
      --compat synaptic-flow --out snip.npz
  # layerwise magnitude masks with shuffled positions on the NTK-parameterized MLP
  gntk-fast prune --model mlp --method magnitude --sparsity 0.8 --scope layerwise --shuffle --out mag.npz

--sparsity is a fraction (0.9 prunes 90% of the weights), not a percentage.
--depth counts hidden layers (default {DEFAULT_DEPTH}; Synaptic-Flow's "L-layer" fc is
--depth L-1). The model's input width and number of classes come from --data
(digits: 64 inputs, mnist: 784; 10 classes); snip/grasp score on a pruning
batch of 10 training images per class.
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=("fc", "mlp"), default="fc",
                   help="fc: Synaptic-Flow fc (nn.Linear default init, biases; masks via torch.nn.utils.prune); "
                        "mlp: gntk_fast.MLP (NTK parameterization, no biases) (default: fc)")
    p.add_argument("--method", choices=METHODS, required=True, help="pruning score")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--sparsity", type=fraction("--sparsity"),
                        help="fraction of weights pruned, in [0, 1) (density d = 1 - s)")
    amount.add_argument("--compression", type=float, help="c >= 0 with density d = 10^-c")
    p.add_argument("--width", type=int, default=256, help="hidden width n (default: 256)")
    p.add_argument("--depth", type=int, default=DEFAULT_DEPTH,
                   help=f"number of hidden layers (default: {DEFAULT_DEPTH})")
    p.add_argument("--data", choices=DATASETS, default="digits",
                   help="dataset fixing the input width and classes, and snip/grasp's pruning batch (default: digits)")
    p.add_argument("--data-dir", default=None, help="MNIST IDX directory (default: $GNTK_MNIST_DIR)")
    p.add_argument("--scope", choices=SCOPES + tuple(SCOPE_ALIASES), default="global",
                   help="one global ranking or per layer ('local' = layerwise) (default: global)")
    p.add_argument("--iterations", type=int, default=None,
                   help="pruning iterations E (default: 100 for synflow, 1 otherwise)")
    p.add_argument("--schedule", choices=SCHEDULES, default="exponential",
                   help="density at iteration e: d^(e/E) or 1-(1-d)e/E (default: exponential)")
    p.add_argument("--compat", choices=COMPAT_MODES, default="clean",
                   help="clean: exactly round(dN) kept, ties by index, nested masks; synaptic-flow: the reference "
                        "code's kthvalue / <= rule (default: clean)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the model init, the pruning batch and the pruner (default: 0)")
    p.add_argument("--shuffle", action="store_true", help="randomise mask positions within each layer after pruning")
    p.add_argument("--invert", action="store_true", help="flip the ranking (prune the highest scores)")
    p.add_argument("--out", default="masks.npz",
                   help="output .npz (suffix added if missing); the JSON report goes beside it (default: masks.npz)")
    p.add_argument("--quiet", action="store_true", help="print only the output paths")


def output_paths(out: str | Path) -> tuple[Path, Path]:
    """``(masks.npz, report.json)`` for ``--out``, both checked before any work
    starts (ValueError naming --out for a directory, a parent that is a file, ...)."""
    from .._io import check_output_path

    out = check_output_path(out, "--out")
    if out.suffix != ".npz":
        out = check_output_path(out.with_name(out.name + ".npz"), "--out")
    js = check_output_path(out.with_suffix(".json"), "--out (its JSON report)")
    return out, js


def run(args: argparse.Namespace) -> int:
    out, js = output_paths(args.out)

    from .. import data as gdata
    from ..models import MLP, fc
    from ..pruning import prune

    d_in, classes = gdata.input_dim(args.data), gdata.num_classes(args.data)
    model = (fc if args.model == "fc" else MLP)(d_in, args.width, args.depth, classes, seed=args.seed)
    batch = None
    if args.method in ("snip", "grasp"):
        batch = gdata.pruning_batch(args.data, per_class=10, data_dir=args.data_dir, seed=args.seed)
    res = prune(
        model, args.method, args.sparsity, data=batch, scope=args.scope, iterations=args.iterations,
        schedule=args.schedule, compat=args.compat, seed=args.seed, compression=args.compression,
        shuffle=args.shuffle, invert=args.invert, progress=None if not args.quiet else False,
    )
    res.report["config"].update(model=args.model, width=args.width, depth=args.depth, data=args.data,
                                input_dim=d_in, num_classes=classes)
    res.save_npz(out)
    res.save_report(js)
    if not args.quiet:
        _print_summary(args, res, d_in, classes)
    print(f"masks: {out}")
    print(f"report: {js}")
    return 0


def _print_summary(args: argparse.Namespace, res, d_in: int, classes: int) -> None:
    c = res.config
    print(f"{args.method} on {args.model}({d_in}->{args.width}x{args.depth}->{classes}), {c['scope']}, "
          f"{c['iterations']} it. {c['schedule']}, {c['compat']}: target density {c['density']:.6g}")
    for e in res.report["layers"]:
        print(f"  layer{e['layer']} {e['shape'][0]:>6}x{e['shape'][1]:<6} kept {e['kept']:>9}/{e['weights']:<9} "
              f"density {e['density']:.4f}  dead neurons {e['dead_neurons']}")
    t = res.report["total"]
    print(f"  total kept {t['kept']}/{t['weights']} = {t['density']:.6f}; dead hidden neurons "
          f"{t['dead_hidden_neurons']}, collapsed layers {t['collapsed_layers']}")
