"""Shared benchmark fixtures.

Modes
-----
* full (default): ``python -m pytest bench`` runs the benchmark sizes with
  pytest-benchmark's timing and writes ``bench/results/<suite>.json``.
* smoke: ``--benchmark-disable`` or ``GNTK_BENCH_SMOKE=1`` runs every benchmark once at
  tiny sizes so the files cannot rot (this is what CI does); nothing is saved.

Each suite calls ``bench_report.add(...)`` with its measured medians and ratios;
at the end of the run the report is printed and, in full mode, saved as
JSON together with the machine description (CPU, cores, torch/numpy versions,
the C++ extension's build info and, when present, the CUDA device name).
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import pytest

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def pytest_addoption(parser):
    parser.addoption("--bench-tag", default=None, help="suffix for the results file name (e.g. the GPU name)")


def _smoke(config) -> bool:
    if os.environ.get("GNTK_BENCH_SMOKE", "0") not in ("", "0"):
        return True
    try:
        return bool(config.getoption("benchmark_disable"))
    except ValueError:
        return False


def machine_info() -> dict[str, Any]:
    import numpy
    import torch

    import gntk_fast
    from gntk_fast._backend import backends_info

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "gntk_fast": gntk_fast.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    b = backends_info()
    info["cpp"] = b.get("cpp")
    info["triton"] = b.get("triton")
    info["cuda"] = b.get("cuda")
    return info


class BenchReport:
    """Collects rows per suite; printed at the end, saved as JSON in full mode."""

    def __init__(self, smoke: bool, tag: str | None) -> None:
        self.smoke = smoke
        self.tag = tag
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, suite: str, **row: Any) -> None:
        self.rows[suite].append(row)

    def save(self) -> list[Path]:
        if self.smoke or not self.rows:
            return []
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        machine = machine_info()
        paths = []
        for suite, rows in self.rows.items():
            name = suite + (f"-{self.tag}" if self.tag else "")
            path = RESULTS_DIR / f"{name}.json"
            payload = {
                "suite": suite,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "machine": machine,
                "rows": rows,
            }
            path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
            paths.append(path)
        return paths

    def render(self) -> str:
        lines = []
        for suite, rows in self.rows.items():
            lines.append(f"== {suite} ==")
            for row in rows:
                lines.append("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()))
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


_REPORT: BenchReport | None = None


@pytest.fixture(scope="session")
def smoke(request) -> bool:
    """True in smoke mode (tiny sizes, one run, nothing saved)."""
    return _smoke(request.config)


@pytest.fixture(scope="session")
def bench_report(request) -> BenchReport:
    global _REPORT
    if _REPORT is None:
        _REPORT = BenchReport(_smoke(request.config), request.config.getoption("--bench-tag"))
    return _REPORT


def median_time(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1, sync: Callable[[], Any] | None = None) -> float:
    """Median wall time (seconds) of ``fn()`` over ``repeat`` runs after ``warmup`` runs.

    Used for the *other* sides of a ratio (reference, roofline) so that every
    number of a ratio is measured the same way in the same process.
    """
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _REPORT is None or not _REPORT.rows:
        return
    terminalreporter.write_sep("=", "gntk_fast benchmark ratios" + (" (smoke mode)" if _REPORT.smoke else ""))
    terminalreporter.write_line(_REPORT.render())
    for p in _REPORT.save():
        terminalreporter.write_line(f"saved {p}")


@pytest.fixture(scope="session")
def timeit():
    """The :func:`median_time` helper as a fixture."""
    return median_time
