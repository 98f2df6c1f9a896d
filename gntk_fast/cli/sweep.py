"""``gntk-fast sweep``: a grid of tasks on Dask distributed, resumable; ``--status`` summarises a run.

``gntk-fast sweep CONFIG.toml --out DIR`` runs every unfinished task of the
grid (:mod:`gntk_fast.sweep.config`) on a Dask LocalCluster (``--workers N``
processes, default one per CPU) or on the scheduler at ``--scheduler
tcp://HOST:PORT``, writing each finished task at once (layout in
:mod:`gntk_fast.sweep.store`). Rerunning the same command resumes: finished
tasks are skipped, failed and unstarted ones run. ``gntk-fast sweep --status
DIR`` prints done / total and the failures with their errors;
``gntk_fast.sweep.load(DIR)`` returns the results as one table.

Exit status: 0 when every task is done, 1 when some task failed (the run
went on; see ``--status``), 2 a user error (bad config key, bad path), 130
interrupted (Ctrl-C; finished tasks are kept).
"""
from __future__ import annotations

import argparse

HELP = "run a grid of tasks (masks + SAS, eNTK, analytic kernel, training) on Dask, resumable; --status DIR"

EXAMPLES = """\
examples:
  gntk-fast sweep examples/sweeps/tiny.toml --out runs/tiny            # LocalCluster, one process per CPU
  gntk-fast sweep examples/sweeps/tiny.toml --out runs/tiny --workers 2
  gntk-fast sweep --status runs/tiny                                    # done / total, failures
  gntk-fast sweep examples/sweeps/fig1.toml --out runs/fig1 --scheduler tcp://10.0.0.5:8786
  python -c "import gntk_fast as gf; print(gf.sweep.load('runs/tiny'))"

A killed sweep resumes by running the same command again (finished tasks are skipped).
"""

__all__ = ["HELP", "EXAMPLES", "configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None, metavar="CONFIG.toml",
                   help="sweep config (TOML: [grid] axes and [settings]; see examples/sweeps/)")
    p.add_argument("--out", default=None, help="result directory (Parquet rows and .npz arrays per task)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler, e.g. tcp://HOST:8786 (default: a local cluster); "
                        "'inline' runs the tasks one by one in this process without Dask")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local cluster (default: one per CPU)")
    p.add_argument("--status", default=None, metavar="DIR", help="summarise the sweep in DIR and exit")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    if args.status is not None:
        if args.config is not None or args.out is not None:
            raise ValueError("--status DIR takes no CONFIG or --out")
        from ..sweep import status

        st = status(args.status)
        print(st.summary())
        return 0
    if args.config is None or args.out is None:
        raise ValueError("give CONFIG.toml and --out DIR (or --status DIR)")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1; got {args.workers}")
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("--workers is for the local cluster; a --scheduler has its own workers")
    from ..sweep import count_tasks, read_config, run as run_sweep

    cfg = read_config(args.config)  # counted (at most sweep.MAX_TASKS), then validated before any cluster starts
    print(f"{count_tasks(cfg)} tasks in the grid of {args.config}", flush=True)
    report = run_sweep(cfg, args.out, scheduler=args.scheduler, workers=args.workers,
                       progress=False if args.no_progress else None)
    print(f"{report.done} done, {report.failed} failed, {report.skipped} already done, {report.total} in the grid "
          f"({report.seconds:.1f} s on {report.scheduler}); results in {args.out}")
    for f in report.failures:
        print(f"  FAILED {f['id']}: {f['error']}")
    return 1 if report.failed else 0
