"""The result directory of a sweep.

Layout of ``DIR``::

    sweep.json              the config, the package version and the task list
                            ([{"id", "config"}], grid order), rewritten at each run
    tasks/<id>.npz          the task's arrays (``allow_pickle=False``)
    tasks/<id>.parquet      the task's rows (pyarrow), written LAST: a task is
                            finished when this file exists and reads as Parquet
    failed/<id>.json        a task that raised: its config, error and traceback
                            (removed when a later run finishes the task)
    events.jsonl            one JSON line per finished or failed task (id, event,
                            time, seconds), appended by the run that did it; a
                            task finished by a run killed before it could log
                            the event is logged by the next run with
                            ``"recovered": true`` and no seconds
    sweep.lock              held (``flock``) by the run in progress: one run per directory

Every file is written to a temporary name in its directory and renamed
(:func:`gntk_fast._io.atomic_path`), so a run killed at any moment leaves
either a complete file or only a temporary one (``.<name>.<pid>-<hex>.tmp.*``),
which is ignored and removed by the next run. A ``<id>.parquet`` that cannot
be read (it never should) is treated as not finished and redone.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

__all__ = ["Store"]


class Store:
    """Reads and writes one sweep directory (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.tasks = self.root / "tasks"
        self.failed = self.root / "failed"

    # ------------------------------------------------------------- paths
    def rows_path(self, tid: str) -> Path:
        return self.tasks / f"{tid}.parquet"

    def arrays_path(self, tid: str) -> Path:
        return self.tasks / f"{tid}.npz"

    def failure_path(self, tid: str) -> Path:
        return self.failed / f"{tid}.json"

    # ------------------------------------------------------------- lock
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``DIR/sweep.lock`` (an exclusive ``fcntl.flock``) for the block:
        a second run on the same directory is refused at once (ValueError naming
        ``out``) instead of computing every task again beside the first. The
        kernel drops the lock when the holder exits, however it ends."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "sweep.lock"
        fh = open(path, "a+")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise ValueError(f"out {self.root} is in use by another sweep run ({holder} holds {path}); "
                                 "wait for it to finish or give another directory") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            fh.flush()
            yield
        finally:
            fh.close()

    # ------------------------------------------------------------- state
    def is_done(self, tid: str) -> bool:
        """The task's Parquet file exists and its footer reads (and its npz exists)."""
        import pyarrow.parquet as pq

        p = self.rows_path(tid)
        if not p.is_file() or not self.arrays_path(tid).is_file():
            return False
        try:
            pq.read_metadata(p)
        except Exception:  # noqa: BLE001 - any unreadable file means "not finished"
            return False
        return True

    def done_ids(self, ids: Iterable[str]) -> set[str]:
        return {t for t in ids if self.is_done(t)}

    def remove_temporaries(self) -> int:
        """Delete the temporary files an interrupted run left; returns how many."""
        n = 0
        for d in (self.tasks, self.failed, self.root):
            if d.is_dir():
                for p in d.glob(".*.tmp*"):
                    p.unlink(missing_ok=True)
                    n += 1
        return n

    # ------------------------------------------------------------- writes
    def write_manifest(self, config: dict[str, Any], tasks: list[tuple[str, dict[str, Any]]], source: str) -> Path:
        from .. import __version__
        from .._io import write_text

        doc = {"version": __version__, "source": source, "config": config,
               "tasks": [{"id": t, "config": c} for t, c in tasks]}
        return write_text(self.root / "sweep.json", json.dumps(doc, indent=1, default=str) + "\n")

    def read_manifest(self) -> dict[str, Any]:
        p = self.root / "sweep.json"
        if not p.is_file():
            raise FileNotFoundError(f"{self.root} is not a sweep directory (no sweep.json)")
        try:
            doc = json.loads(p.read_text())
        except ValueError as exc:
            raise ValueError(f"{p} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), list):
            raise ValueError(f"{p} is not a sweep manifest (no task list)")
        return doc

    def write_result(self, tid: str, rows: list[dict[str, Any]], arrays: dict[str, np.ndarray]) -> None:
        """Arrays, then rows (the rows file marks the task finished); both atomic."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from .._io import atomic_path, save_npz

        save_npz(self.arrays_path(tid), arrays)
        table = pa.Table.from_pylist([{"task_id": tid, **r} for r in rows])
        with atomic_path(self.rows_path(tid)) as tmp:
            pq.write_table(table, tmp)
        self.failure_path(tid).unlink(missing_ok=True)

    def write_failure(self, tid: str, config: dict[str, Any], error: str, tb: str) -> None:
        from .._io import write_text

        doc = {"id": tid, "config": config, "error": error, "traceback": tb, "time": time.time()}
        write_text(self.failure_path(tid), json.dumps(doc, indent=1, default=str) + "\n")

    def read_failure(self, tid: str) -> dict[str, Any] | None:
        p = self.failure_path(tid)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except ValueError:
            return {"id": tid, "error": f"unreadable failure record {p}"}

    def recover_events(self, done: Iterable[str]) -> int:
        """Log ``done`` for each finished task in ``done`` whose event is missing
        (its run was killed between the rows file and the log line); returns how many."""
        logged = {e["id"] for e in self.events() if e.get("event") == "done"}
        missing = [t for t in done if t not in logged]
        for tid in missing:
            self.log_event(tid, "done", None, recovered=True)
        return len(missing)

    def log_event(self, tid: str, event: str, seconds: float | None = None, *, recovered: bool = False) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        doc = {"id": tid, "event": event, "time": time.time(), "seconds": seconds}
        if recovered:
            doc["recovered"] = True
        line = json.dumps(doc)
        path = self.root / "events.jsonl"
        with open(path, "ab") as fh:
            if fh.tell() > 0:  # a line cut by a kill is closed first, so this one stays whole
                with open(path, "rb") as rd:
                    rd.seek(-1, 2)
                    if rd.read(1) != b"\n":
                        fh.write(b"\n")
            fh.write((line + "\n").encode())
            fh.flush()

    def events(self) -> list[dict[str, Any]]:
        """The event log (a line cut by a kill is skipped)."""
        p = self.root / "events.jsonl"
        out = []
        if p.is_file():
            for line in p.read_text().splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


def format_exception(exc: BaseException) -> tuple[str, str]:
    """(one-line error, full traceback) of an exception."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}", "".join(traceback.format_exception(exc))
