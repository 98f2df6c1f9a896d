"""The ``gntk-fast`` command line.

``info`` lives here. Every other subcommand lives with its concept, in a module
that defines ``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``;
``SUBCOMMANDS`` below names those modules (imported only when the parser is
built, so the concept modules never import this one).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

__all__ = ["main", "build_parser"]

# name -> (help, configure(parser), run(args) -> int)
COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}


def _command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    def deco(fn: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (help, configure, fn)
        return fn

    return deco


# --------------------------------------------------------------------- info
def _configure_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


@_command("info", "versions and the available backends (C++/OpenMP, Triton, CUDA)", _configure_info)
def _run_info(args: argparse.Namespace) -> int:
    from ._backend import backends_info

    info = backends_info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"gntk_fast {info['gntk_fast']}  (torch {info['torch']}, numpy {info['numpy']}, numba {info['numba']})")
    cpp = info["cpp"]
    if cpp["available"]:
        omp = f"OpenMP {cpp['openmp_version']}, {cpp['threads']} threads" if cpp["openmp"] else "no OpenMP"
        print(f"  cpp     : available  [{cpp['compiler']}, {cpp['flags']}, simd={cpp['simd']}, {omp}]")
    else:
        print(f"  cpp     : UNAVAILABLE ({cpp.get('error')})")
    tri = info["triton"]
    tri_s = f"available (triton {tri['version']})" if tri["available"] else "unavailable"
    if tri["interpret"]:
        tri_s += ", TRITON_INTERPRET=1 (CPU interpreter)"
    print(f"  triton  : {tri_s}")
    cuda = info["cuda"]
    cuda_s = "available: " + ", ".join(cuda.get("devices", [])) if cuda["available"] else "no CUDA device"
    print(f"  cuda    : {cuda_s}")
    print(f"  torch threads: {info['torch_threads']}")
    return 0


# subcommand name -> module defining HELP, configure(parser), run(args)
SUBCOMMANDS: dict[str, str] = {
    "prune": "gntk_fast.pruning.cli",
    "graphon": "gntk_fast.graphon.cli",
    "gntk": "gntk_fast.ntk.cli",
}


def _register_subcommands() -> None:
    import importlib

    for name, mod_name in SUBCOMMANDS.items():
        if name in COMMANDS:
            continue
        mod = importlib.import_module(mod_name)
        COMMANDS[name] = (mod.HELP, mod.configure, mod.run)


def build_parser() -> argparse.ArgumentParser:
    _register_subcommands()
    parser = argparse.ArgumentParser(
        prog="gntk-fast",
        description="Pruned networks and their graphon limits: pruning at init, SAS graphon estimation, "
        "empirical and analytic Graphon NTK, spectral metrics.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  gntk-fast info\n"
        "  gntk-fast prune --method synflow --sparsity 0.9 --width 256 --depth 4 --out masks.npz\n"
        "  gntk-fast graphon --methods random synflow --widths 100 500 --trials 5 --out runs/graphon\n"
        "  gntk-fast gntk --estimates runs/graphon/estimates.npz --method synflow --out runs/gntk\n"
        "run 'gntk-fast COMMAND --help' for each command's options and examples",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, configure, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=argparse.RawDescriptionHelpFormatter)
        configure(p)
        p.set_defaults(_run=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"gntk-fast {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
