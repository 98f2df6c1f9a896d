"""Sweeps: a grid of independent tasks on Dask distributed, resumable and recorded as they finish.

::

    import gntk_fast as gf
    report = gf.sweep.run("examples/sweeps/tiny.toml", "runs/tiny")   # LocalCluster, one process per CPU
    gf.sweep.status("runs/tiny")      # done / total, failures with their errors
    table = gf.sweep.load("runs/tiny")   # pyarrow.Table: one row per task and layer (or step)

or ``gntk-fast sweep CONFIG.toml --out DIR [--scheduler tcp://HOST:PORT]
[--workers N]`` and ``gntk-fast sweep --status DIR``.

A sweep config (TOML, :mod:`gntk_fast.sweep.config`) spans kinds x methods x
widths x sparsities x depths x scopes x trials; each combination is one task
of :mod:`gntk_fast.experiments.tasks` (masks + SAS, eNTK + metrics, analytic
kernel + metrics, training curve), identified by the hash of its validated
config and the package version. Every finished task is written at once and
atomically (:mod:`gntk_fast.sweep.store`): its rows as Parquet, its arrays as
``.npz``. A rerun skips the finished ids and redoes the rest, so a sweep
killed at any moment resumes with nothing lost and nothing done twice; a task
that raises is recorded as failed with its error (retried by the next run)
and does not stop the sweep.

Dask is imported only here (``import gntk_fast`` stays light); install it with
the ``sweep`` extra (``pip install "gntk_fast[sweep]"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._validation import check_path
from .config import MAX_TASKS, SweepConfig, count_tasks, expand, parse_config, read_config, task_id
from .runner import RunReport
from .store import Store

__all__ = ["run", "status", "load", "SweepStatus", "RunReport", "read_config", "parse_config", "expand", "task_id",
           "count_tasks", "MAX_TASKS"]


def _as_config(config: Any) -> SweepConfig:
    if isinstance(config, SweepConfig):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    if isinstance(config, (str, Path)):
        return read_config(config)
    raise TypeError(f"config must be a TOML path or a dict; got {type(config).__name__}")


def _require_extra(distributed: bool) -> None:
    from .._extras import require

    require("pyarrow.parquet", "sweep", "gntk_fast.sweep (Parquet results)")
    if distributed:
        require("distributed", "sweep", "gntk_fast.sweep on Dask (use scheduler='inline' to run without it)")


def run(config: Any, out: str | Path, *, scheduler: str | None = None, workers: int | None = None,
        progress: bool | None = None, worker_timeout: float = 60.0) -> RunReport:
    """Run every unfinished task of ``config`` and record the results in ``out``.

    Parameters
    ----------
    config : path of a sweep TOML file, or its tables as a dict
        (:mod:`gntk_fast.sweep.config`); validated before anything runs
        (errors name the key).
    out : result directory (created; see :mod:`gntk_fast.sweep.store`).
    scheduler : None (a Dask LocalCluster: ``workers`` processes of one thread
        each, default one per CPU the process may use), a Dask scheduler
        address ``"tcp://HOST:PORT"`` (its workers need gntk_fast installed;
        results come back to this process, which writes them), or
        ``"inline"`` (serially in this process, without Dask).
    workers : processes of the LocalCluster (int >= 1); only without ``scheduler``.
    progress : tqdm bar over the tasks (default: on a terminal).
    worker_timeout : seconds to wait for the scheduler at ``scheduler`` to
        have a worker; then a TimeoutError says so (never a silent hang).

    Returns a :class:`RunReport`. Ctrl-C stops the run; every task finished
    before it is kept. One run at a time per ``out``: a second run on the
    same directory while the first holds its lock (``out/sweep.lock``) is a
    ValueError, so no task is ever computed twice at once.

    Examples
    --------
    >>> import gntk_fast as gf  # doctest: +SKIP
    >>> report = gf.sweep.run("examples/sweeps/tiny.toml", "runs/tiny", scheduler="inline")  # doctest: +SKIP
    >>> report.done + report.skipped == report.total  # doctest: +SKIP
    True
    """
    from .._io import check_output_path
    from .._validation import check_bool, check_float, check_int
    from .runner import run_tasks

    check_path("out", out, what="the sweep's result directory")
    cfg = _as_config(config)
    worker_timeout = check_float("worker_timeout", worker_timeout, min_value=0.0, min_inclusive=False)
    _require_extra(scheduler != "inline")
    if workers is not None:
        workers = check_int("workers", workers, min_value=1, max_value=4096)
        if scheduler is not None:
            raise ValueError("workers is for the local cluster; the scheduler at the given address has its own")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string or 'inline'; got {type(scheduler).__name__}")
    if progress is not None:
        progress = check_bool("progress", progress)
    root = check_output_path(out, "out", directory=True)
    store = Store(root)
    root.mkdir(parents=True, exist_ok=True)
    with store.lock():
        tasks = expand(cfg)
        store.remove_temporaries()
        store.write_manifest({"grid": cfg["grid"], "settings": cfg["settings"], "per_kind": cfg["per_kind"]}, tasks,
                             cfg.source)
        done = store.done_ids(t for t, _ in tasks)
        store.recover_events(t for t, _ in tasks if t in done)
        todo = [(t, c) for t, c in tasks if t not in done]
        return run_tasks(store, todo, len(tasks), scheduler=scheduler, workers=workers, progress=progress,
                         worker_timeout=worker_timeout)


@dataclass
class SweepStatus:
    """Where a sweep directory stands: ``total`` tasks in its manifest, ``done``,
    ``failed`` (failed in their last attempt and not finished since; each
    ``{"id", "error", "config"}``), ``pending`` (neither), and per-kind counts
    ``by_kind[kind] = (done, total)``."""

    total: int
    done: int
    pending: int
    failed: list[dict[str, Any]] = field(default_factory=list)
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)

    def summary(self) -> str:
        """Human-readable lines (the ``--status`` output)."""
        lines = [f"{self.done} / {self.total} tasks done, {len(self.failed)} failed, {self.pending} pending"]
        for k, (d, t) in self.by_kind.items():
            lines.append(f"  {k}: {d} / {t}")
        for f in self.failed:
            c = f.get("config") or {}
            lines.append(f"  FAILED {f['id']} ({c.get('kind')} {c.get('method')} width={c.get('width')} "
                         f"trial={c.get('trial')}): {f.get('error')}")
        return "\n".join(lines)


def status(out: str | Path) -> SweepStatus:
    """The :class:`SweepStatus` of the sweep directory ``out`` (FileNotFoundError
    when it holds no ``sweep.json``)."""
    store = Store(check_path("out", out, what="the sweep's result directory"))
    _require_extra(False)
    doc = store.read_manifest()
    tasks = [(t["id"], t["config"]) for t in doc["tasks"]]
    done = store.done_ids(t for t, _ in tasks)
    failed, by_kind = [], {}
    for tid, cfg in tasks:
        d, t = by_kind.get(cfg["kind"], (0, 0))
        by_kind[cfg["kind"]] = (d + (tid in done), t + 1)
        if tid not in done:
            rec = store.read_failure(tid)
            if rec is not None:
                failed.append({"id": tid, "error": rec.get("error"), "config": cfg})
    return SweepStatus(len(tasks), len(done), len(tasks) - len(done) - len(failed), failed, by_kind)


def load(out: str | Path, *, kind: str | None = None):
    """One ``pyarrow.Table`` of every finished task of the sweep in ``out``.

    One row per task and layer (``layer`` = mask index; None for a
    network-level row) or per training step (``step``); columns ``task_id``,
    the config (kind, method, width, sparsity, depth, scope, trial, seed,
    data, compat, K, source, ...) and every measured quantity of the task
    kinds present (a column a kind does not measure is null in its rows).
    Rows follow the manifest's grid order, then the task's own order.
    ``kind`` keeps one task kind. ``table.to_pandas()`` needs pandas.
    """
    store = Store(check_path("out", out, what="the sweep's result directory"))
    _require_extra(False)
    import pyarrow as pa
    import pyarrow.parquet as pq

    doc = store.read_manifest()
    tables = []
    for t in doc["tasks"]:
        if kind is not None and t["config"]["kind"] != kind:
            continue
        if store.is_done(t["id"]):
            tables.append(pq.read_table(store.rows_path(t["id"])))
    if not tables:
        return pa.table({"task_id": pa.array([], pa.string())})
    return pa.concat_tables(tables, promote_options="permissive")
