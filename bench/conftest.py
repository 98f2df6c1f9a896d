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

pytest-benchmark's own storage (``--benchmark-autosave`` / ``--benchmark-save``,
under ``.benchmarks/``) holds the same rows: ``bench_report.add`` also appends
the row to the current test's ``benchmark.extra_info["rows"]`` (and, when the
test adds a single row, sets its fields at the top level of ``extra_info``),
and :func:`pytest_benchmark_update_machine_info` adds the package's build,
eNTK tile ISA, thread settings and CUDA device. ``--ratio-gate=PATH_OR_ID``
compares the in-run ratios of this pytest run with a stored run
(``bench/ratio_gate.py``) and fails the run on a regression beyond
``--ratio-tolerance``.
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

from ratio_gate import DEFAULT_TOLERANCE, GateResult, check_tolerance, compare, load_run, resolve

#: where full runs save their JSON (GNTK_BENCH_RESULTS overrides: the GPU check collects them there)
RESULTS_DIR = Path(os.environ.get("GNTK_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def pytest_addoption(parser):
    parser.addoption("--bench-tag", default=None, help="suffix for the results file name (e.g. the GPU name)")
    parser.addoption("--ratio-gate", default=None, metavar="PATH_OR_ID",
                     help="stored pytest-benchmark run (a .json path, a run id such as 0001 under "
                          "--benchmark-storage, or 'last'); fail the run when an in-run ratio of this "
                          "run is worse than the stored one by more than --ratio-tolerance")
    parser.addoption("--ratio-tolerance", default=DEFAULT_TOLERANCE, type=float, metavar="FRACTION",
                     help="relative worsening allowed by --ratio-gate (default 0.25)")


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
    """Collects rows per suite (printed at the end, saved as JSON in full mode)
    and per test id (what the ratio gate compares)."""

    def __init__(self, smoke: bool, tag: str | None) -> None:
        self.smoke = smoke
        self.tag = tag
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_test: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, suite: str, test: str | None = None, **row: Any) -> dict[str, Any]:
        """Record ``row`` for ``suite`` (and for the test id ``test``); returns
        the row with its values made JSON-ready."""
        row = {k: _jsonable(v) for k, v in row.items()}
        self.rows[suite].append(row)
        if test is not None:
            self.by_test[test].append(row)
        return row

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


class TestReport:
    """``bench_report`` as a test sees it: :meth:`add` records a row in the
    run's :class:`BenchReport` and in the test's ``benchmark.extra_info``
    (``rows``: every row of the test in order; a single row's fields also at
    the top level), which pytest-benchmark stores with ``--benchmark-save``."""

    __test__ = False  # not a test class

    def __init__(self, report: BenchReport, request) -> None:
        self.report = report
        self.request = request
        self.rows: list[dict[str, Any]] = []
        self._flat: set[str] = set()

    def add(self, suite: str, **row: Any) -> None:
        self.rows.append(self.report.add(suite, test=self.request.node.nodeid, **row))
        if "benchmark" not in self.request.fixturenames:
            return  # not a pytest-benchmark benchmark: nothing of it is stored by pytest-benchmark
        extra = self.request.getfixturevalue("benchmark").extra_info
        for k in self._flat:
            extra.pop(k, None)
        self._flat = set(self.rows[0]) - {"rows"} if len(self.rows) == 1 else set()
        extra.update({k: self.rows[0][k] for k in self._flat})
        extra["rows"] = self.rows


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    item = getattr(v, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


_REPORT: BenchReport | None = None
_GATE: GateResult | None = None


def _session_report(config) -> BenchReport:
    global _REPORT
    if _REPORT is None:
        _REPORT = BenchReport(_smoke(config), config.getoption("--bench-tag"))
    return _REPORT


@pytest.fixture(scope="session")
def smoke(request) -> bool:
    """True in smoke mode (tiny sizes, one run, nothing saved)."""
    return _smoke(request.config)


@pytest.fixture
def bench_report(request) -> TestReport:
    """Where a benchmark records its medians, ratios and rates (:class:`TestReport`)."""
    return TestReport(_session_report(request.config), request)


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


def pytest_benchmark_update_machine_info(config, machine_info):
    """Stored runs name what the numbers depend on: the C++ build, the eNTK
    tile ISA in use, the thread settings and the CUDA device."""
    import torch

    from gntk_fast import _threads
    from gntk_fast._backend import _load_c

    info: dict[str, Any] = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    mod, err = _load_c()
    if mod is None:
        info["cpp"] = {"available": False, "error": str(err)}
    else:
        info["cpp"] = dict(mod.build_info())
        isa = getattr(mod, "entk_isa", None)
        info["entk_isa"] = isa() if callable(isa) else "unknown"
    try:
        threads = _threads.num_threads()
    except ValueError as exc:  # a bad GNTK_NUM_THREADS: recorded, the suites report it where used
        threads = f"invalid: {exc}"
    info["threads"] = {
        "gntk_num_threads": threads,
        "GNTK_NUM_THREADS": os.environ.get("GNTK_NUM_THREADS", "(unset)"),
        "available_cpus": _threads.available_cpus(),
        "omp_wait_policy": _threads.wait_policy(),
    }
    info["cuda_device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    machine_info["gntk_fast"] = _jsonable_tree(info)


def _jsonable_tree(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable_tree(x) for k, x in v.items()}
    return _jsonable(v)


def pytest_configure(config):
    """Resolve ``--ratio-gate`` before the run, so that ``last`` names the run
    stored before this one (not the one this run may autosave)."""
    spec = config.getoption("--ratio-gate", None)
    config._gntk_ratio_gate = None
    if spec is None:
        return
    storage = config.getoption("benchmark_storage", "file://./.benchmarks")
    try:
        check_tolerance(config.getoption("--ratio-tolerance"))
    except ValueError as exc:
        raise pytest.UsageError(f"--ratio-tolerance: {exc}") from None
    try:
        path = resolve(spec, storage)
        config._gntk_ratio_gate = (path, load_run(path))
    except (ValueError, OSError) as exc:
        raise pytest.UsageError(f"--ratio-gate: {exc}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Apply the ratio gate; a regression or nothing to compare fails the session."""
    global _GATE
    gate = getattr(session.config, "_gntk_ratio_gate", None)
    if gate is None or exitstatus != 0:
        return
    now = _REPORT.by_test if _REPORT is not None else {}
    _GATE = compare(gate[1], now, session.config.getoption("--ratio-tolerance"))
    if not _GATE.ok:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _REPORT is not None and _REPORT.rows:
        terminalreporter.write_sep("=", "gntk_fast benchmark ratios" + (" (smoke mode)" if _REPORT.smoke else ""))
        terminalreporter.write_line(_REPORT.render())
        for p in _REPORT.save():
            terminalreporter.write_line(f"saved {p}")
    if _GATE is not None:
        path = config._gntk_ratio_gate[0]
        terminalreporter.write_sep("=", f"ratio gate against {path}: {'passed' if _GATE.ok else 'FAILED'}",
                                   red=not _GATE.ok, green=_GATE.ok)
        terminalreporter.write_line(_GATE.render())


@pytest.fixture(scope="session")
def timeit():
    """The :func:`median_time` helper as a fixture."""
    return median_time
