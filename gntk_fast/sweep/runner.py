"""Running the tasks of a sweep on Dask distributed (or inline) and recording them.

The client submits one Dask task per unfinished task id and writes each
result as it arrives (:class:`~gntk_fast.sweep.store.Store`): rows and arrays
of a finished task, or the error of a failed one. The workers only compute,
so they need the package but no access to the result directory; a task that
raises is returned as a failure (the sweep goes on), and a worker that dies
(``KilledWorker``: out of memory, a crash) fails its task the same way.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["execute", "RunReport", "run_tasks", "worker_env"]

#: task kinds that use torch kernels: tagged with the "GPU" resource where workers advertise one
GPU_KINDS = ("entk_metrics", "analytic_metrics", "training_curve", "pruned_study")


def worker_env(threads: int = 1) -> dict[str, str]:
    """Environment of local worker processes: ``threads`` threads for every backend
    (one process per core), and Dask's own logging at the error level."""
    t = str(threads)
    return {"GNTK_NUM_THREADS": t, "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t,
            "NUMBA_NUM_THREADS": t, "DASK_LOGGING__DISTRIBUTED": "error"}


def execute(tid: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run one task (in a worker): ``{"id", "ok": True, "rows", "arrays", "seconds"}``
    or ``{"id", "ok": False, "error", "traceback", "seconds"}``."""
    from .._threads import thread_count
    from ..experiments.tasks import run_task
    from .store import format_exception

    t0 = time.perf_counter()
    try:
        with thread_count(_worker_threads()):
            out = run_task(config)
    except Exception as exc:  # noqa: BLE001 - recorded as the task's failure
        err, tb = format_exception(exc)
        return {"id": tid, "ok": False, "error": err, "traceback": tb, "seconds": time.perf_counter() - t0}
    return {"id": tid, "ok": True, "rows": out.rows, "arrays": out.arrays, "seconds": time.perf_counter() - t0}


def _worker_threads() -> int | None:
    """Threads for a task run by a Dask worker: 1, the policy of the local
    cluster (one single-threaded task per worker thread, one worker thread per
    core), applied in every worker, local or external, to the kernels, torch
    and Numba alike; None outside a worker (inline runs keep the process's own)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return None
    return 1


@dataclass
class RunReport:
    """What one run did: ``total`` tasks in the grid, ``skipped`` (finished
    before), ``done`` and ``failed`` by this run, wall ``seconds``, and the
    ``scheduler`` used ("inline", "local:N" or the address)."""

    total: int
    skipped: int
    done: int
    failed: int
    seconds: float
    scheduler: str
    failures: list[dict[str, Any]] = field(default_factory=list)


def _record(store, result: dict[str, Any], config: dict[str, Any], report: RunReport) -> None:
    tid = result["id"]
    if result["ok"]:
        store.write_result(tid, result["rows"], result["arrays"])
        store.log_event(tid, "done", result["seconds"])
        report.done += 1
    else:
        store.write_failure(tid, config, result["error"], result["traceback"])
        store.log_event(tid, "failed", result["seconds"])
        report.failed += 1
        report.failures.append({"id": tid, "error": result["error"]})


def run_tasks(store, todo: list[tuple[str, dict[str, Any]]], total: int, *, scheduler: str | None,
              workers: int | None, progress: bool | None, worker_timeout: float = 60.0) -> RunReport:
    """Run ``todo`` (``[(id, config)]``) and record every result in ``store``.

    ``scheduler``: None (a LocalCluster of ``workers`` processes, one thread
    each; default one per CPU), ``"inline"`` (serially in this process, no
    Dask) or a scheduler address ``tcp://HOST:PORT``. Tasks are submitted in a
    fixed shuffled order, so the progress bar's rate (and ETA) is an unbiased
    average over task sizes rather than the grid's first rows.
    """
    from tqdm.auto import tqdm

    todo = list(todo)
    random.Random(0).shuffle(todo)
    t0 = time.perf_counter()
    # progress None: tqdm shows the bar on a terminal only; smoothing 0: the rate is the run's average
    bar = tqdm(total=len(todo), desc="sweep", unit="task", disable=None if progress is None else not progress,
               smoothing=0.0)
    if scheduler == "inline" or not todo:  # nothing to run: no cluster is started
        report = RunReport(total, total - len(todo), 0, 0, 0.0, "inline" if todo else "none")
        try:
            for tid, cfg in todo:
                _record(store, execute(tid, cfg), cfg, report)
                bar.update(1)
                bar.set_postfix(failed=report.failed)
        finally:
            bar.close()
        report.seconds = time.perf_counter() - t0
        return report
    return _run_dask(store, todo, total, scheduler, workers, bar, t0, worker_timeout)


def _cpus() -> int:
    """CPUs this process may use (affinity mask and cgroup quota, as the kernels' thread default)."""
    from .._threads import available_cpus

    return max(1, int(available_cpus()))


def _gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False


def _run_dask(store, todo, total, scheduler, workers, bar, t0, worker_timeout=60.0) -> RunReport:
    from distributed import Client, LocalCluster, as_completed
    from distributed.client import FutureCancelledError

    from .store import format_exception

    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = None
    client = None
    # Dask sets its workers' environment (OMP_NUM_THREADS=1, ...) in this
    # process's os.environ before spawning them: it is put back afterwards
    saved_env = dict(os.environ)
    try:
        if scheduler is None:
            n = workers or _cpus()
            kw: dict[str, Any] = {}
            if _gpu_available():
                kw["resources"] = {"GPU": 1}
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   scheduler_kwargs={"dashboard": False},
                                   memory_limit=0, env=worker_env(1), silence_logs=logging.ERROR, **kw)
            client = Client(cluster)
            name = f"local:{n}"
        else:
            client = Client(scheduler, timeout="30s")
            name = scheduler
            try:
                client.wait_for_workers(1, timeout=worker_timeout)
            except (TimeoutError, asyncio.TimeoutError):
                raise TimeoutError(f"scheduler {scheduler} has no worker after {worker_timeout:g} s: start one "
                                   f"('dask worker {scheduler} --nthreads 1') or check the address") from None
        info = client.scheduler_info()
        gpu = any(w.get("resources", {}).get("GPU") for w in info.get("workers", {}).values())
        report = RunReport(total, total - len(todo), 0, 0, 0.0, name)
        configs = dict(todo)
        futures = [client.submit(execute, tid, cfg, key=f"gntk-sweep-{tid}", pure=False,
                                 resources={"GPU": 1} if gpu and cfg["kind"] in GPU_KINDS else None)
                   for tid, cfg in todo]
        keys = {f.key: tid for f, (tid, _) in zip(futures, todo)}
        for fut in as_completed(futures):
            tid = keys[fut.key]
            try:
                result = fut.result()
            except (Exception, FutureCancelledError) as exc:  # noqa: BLE001 - KilledWorker, lost worker, ...
                err, tb = format_exception(exc)
                result = {"id": tid, "ok": False, "error": err, "traceback": tb, "seconds": None}
            _record(store, result, configs[tid], report)
            fut.release()
            bar.update(1)
            bar.set_postfix(failed=report.failed)
        report.seconds = time.perf_counter() - t0
        return report
    finally:
        bar.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        _restore_env(saved_env)


def _restore_env(saved: dict[str, str]) -> None:
    """Make os.environ equal to ``saved`` again (changed, added and removed keys)."""
    for k in [k for k in os.environ if k not in saved]:
        del os.environ[k]
    for k, v in saved.items():
        if os.environ.get(k) != v:
            os.environ[k] = v
