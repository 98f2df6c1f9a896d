"""``gntk-fast report``: the main job - every experiment of the paper, its claims
tested, one report (:func:`gntk_fast.experiments.report.run_report`).

Writes ``OUT/report.md`` (figures, tables, the claims section),
``OUT/results.json``, ``OUT/tables/*.json|.parquet`` and ``OUT/figures/*.png``.
Sections are saved as they finish: Ctrl-C keeps them, and rerunning the same
command resumes from them.
"""
from __future__ import annotations

import argparse

from .._constants import DATASETS

HELP = "run every experiment of the paper and write a report with figures, tables and the claims tested"

EXAMPLES = """\
examples:
  # the main job on the embedded digits data (minutes on 2 CPU cores)
  gntk-fast report --out runs/report
  # the paper's sizes on MNIST (the train split where present, else the 10k test split)
  gntk-fast report --scale paper --data mnist --data-dir ../shared/data/mnist --out runs/paper

  # re-render report.md from a finished report's tables (no recomputation)
  gntk-fast report --from-tables runs/report/tables

Rerunning the same command resumes: finished sections and cases are reused.
"""

__all__ = ["HELP", "EXAMPLES", "configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", choices=("small", "paper"), default="small",
                   help="small (default: reduced sizes, digits) or paper (the paper's sizes)")
    p.add_argument("--data", choices=DATASETS, default=None,
                   help="dataset (default: digits for small, mnist for paper)")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default $GNTK_MNIST_DIR)")
    p.add_argument("--out", default="report", help="output directory (default ./report)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--from-tables", default=None, metavar="DIR",
                   help="re-render DIR/../report.md and the claims from a report's tables folder, computing nothing")


def run(args: argparse.Namespace) -> int:
    from .._io import check_output_path

    if args.from_tables is not None:
        from pathlib import Path

        from ..experiments.report import rerender

        d = Path(args.from_tables)
        if not (d.is_dir() and (d / "report_meta.json").is_file()):
            raise ValueError(f"--from-tables: {d} is not a report's tables folder (no report_meta.json)")
        print(f"wrote {rerender(d)}")
        return 0

    out = check_output_path(args.out, "--out", directory=True)
    from ..experiments.report import run_report

    res = run_report(out, scale=args.scale, data=args.data, data_dir=args.data_dir,
                     progress=False if args.no_progress else None)
    held = sum(1 for c in res.claims if c["held"] is True)
    failed = sum(1 for c in res.claims if c["held"] is False)
    print(f"wrote {res.report} ({len(res.figures)} figures); claims: {held} held, {failed} did not, "
          f"{len(res.claims) - held - failed} not measurable")
    return 0
