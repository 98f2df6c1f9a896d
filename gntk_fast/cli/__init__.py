"""The ``gntk-fast`` command line, a thin layer above the library.

One module per command (``info``, ``prune``, ``graphon``, ``gntk``, ``report``, ``sweep``), each
defining ``HELP`` (one line), ``EXAMPLES`` (the ``--help`` epilog),
``configure(parser)`` and ``run(args) -> int``. Parsers are built from
:mod:`gntk_fast._constants` and plain literals only, so ``--help`` and
argument errors never import torch, numba or numpy; each ``run`` imports what
it needs.

Exit codes: 0 success; 2 a user error (bad argument, unreadable or invalid
input file, unusable output path, a value the library rejects), reported as
ONE line on stderr without a traceback; 130 interrupted (Ctrl-C). Every output
file is written atomically, so an error or Ctrl-C never leaves a partial file.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import zipfile

from .._extras import MissingExtraError

__all__ = ["main", "build_parser", "COMMANDS", "USER_ERRORS"]

#: command name -> module defining HELP, EXAMPLES, configure(parser), run(args)
COMMANDS: dict[str, str] = {
    "info": "gntk_fast.cli.info",
    "prune": "gntk_fast.cli.prune",
    "graphon": "gntk_fast.cli.graphon",
    "gntk": "gntk_fast.cli.gntk",
    "report": "gntk_fast.cli.report",
    "sweep": "gntk_fast.cli.sweep",
}

#: exceptions reported as a one-line user error (exit 2). OSError covers
#: FileNotFoundError, IsADirectoryError, FileExistsError, PermissionError and
#: NotADirectoryError; ValueError covers the backend registry's BackendError.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, zipfile.BadZipFile, EOFError,
                                                MissingExtraError)

_DESCRIPTION = ("Pruned networks and their graphon limits: pruning at initialisation, SAS graphon estimation, "
                "the analytic Graphon NTK and its spectral metrics.")
_EPILOG = """\
examples:
  gntk-fast report --out runs/report
  gntk-fast info
  gntk-fast prune --method synflow --sparsity 0.9 --width 256 --out masks.npz
  gntk-fast graphon --masks masks.npz --K 32 --out runs/masks
  gntk-fast graphon --methods random synflow --widths 100 500 --trials 5 --out runs/graphon
  gntk-fast gntk --estimates runs/graphon/estimates.npz --method synflow --out runs/gntk
  gntk-fast sweep examples/sweeps/tiny.toml --out runs/tiny   (then: gntk-fast sweep --status runs/tiny)
run 'gntk-fast COMMAND --help' for each command's options and examples;
exit status: 0 success, 2 user error (one line on stderr), 130 interrupted
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see '{self.prog} --help')\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def build_parser() -> argparse.ArgumentParser:
    """The ``gntk-fast`` parser with one subparser per command (no heavy imports)."""
    parser = _Parser(prog="gntk-fast", description=_DESCRIPTION, epilog=_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"gntk-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        mod = importlib.import_module(module_name)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP, epilog=mod.EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``gntk-fast`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argument error (2, already printed)
        return exc.code if isinstance(exc.code, int) else 2
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    prog = f"gntk-fast {args.command}"
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        print(f"{prog}: error: {_one_line(exc) or type(exc).__name__}", file=sys.stderr)
        return 2
