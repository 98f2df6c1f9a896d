"""Regression gate on ratios measured inside one benchmark run.

A time measured on a shared machine moves with whatever else runs there; a
ratio of two times measured in the same run (ours over an in-run baseline:
the naive twin, the reference implementation, one memory pass, torch.matmul)
moves much less. The gate compares such ratios, stored by pytest-benchmark in
each benchmark's ``extra_info["rows"]`` (see ``bench/conftest.py``), between a
stored run and a new one and fails when one is worse than the stored value by
more than a tolerance.

"Worse by more than ``tol``" means, for a field where higher is better
(a speedup, a rate ratio), ``stored / now > 1 + tol``; for a field where lower
is better (time or memory over a baseline's), ``now / stored > 1 + tol``.
The default tolerance 0.25 fails a ratio that lost more than a quarter.

Rows are matched by benchmark (pytest-benchmark's ``fullname``, the test id)
and position in the test's rows; a pair of rows whose labels (their str and
int fields: case, sizes, thread count, ...) differ is reported as not
comparable and skipped, so a small-size run is never gated against a
full-size one. A gate that finds nothing to compare fails.

Command line::

    python -m bench.ratio_gate OLD.json NEW.json [--tolerance 0.25]

(both files as written by ``--benchmark-save``/``--benchmark-autosave``);
exit status 1 on a regression or when nothing is comparable. The same check
runs at the end of a pytest session with ``--ratio-gate=PATH_OR_ID``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

#: The gated fields and which direction is better. Each is a ratio of two
#: quantities measured in the same run (see bench/README.md for the suites).
GATED_FIELDS: dict[str, str] = {
    # pruning
    "clean_speedup": "higher",
    "compat_speedup": "higher",
    "speedup": "higher",
    # sas, analytic
    "speedup_vs_reference": "higher",
    "ratio_to_memory_pass": "lower",
    "ratio_to_memory_pass_1thread": "lower",
    "ratio_to_packed_memory_pass": "lower",
    "peak_over_output": "lower",
    "auto_speedup_vs_naive_backend": "higher",
    # mlp_vs_nt
    "speedup_vs_neural_tangents": "higher",
    # entk
    "speedup_vs_ref_jacobians_once": "higher",
    "speedup_vs_vmap_jacrev": "higher",
    "ours_over_floor": "lower",
    "speedup_vs_ref_chunked": "higher",
    "rate_ratio_ours_over_matmul": "higher",
    "mem_ratio_ours_over_ref_jacobians_once": "lower",
    "ratio_t01_over_t10_kernel_only": "lower",
    "traced_k10_over_k1": "lower",
}

DEFAULT_TOLERANCE = 0.25


@dataclass
class GateResult:
    """Outcome of :func:`compare`: ``failures`` and ``checked`` are lines of text."""

    tolerance: float
    checked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checked) and not self.failures

    def render(self) -> str:
        head = (f"ratio gate (tolerance {self.tolerance:.0%}): {len(self.checked)} ratios checked, "
                f"{len(self.failures)} regressed")
        lines = [head]
        lines += ["  REGRESSION " + s for s in self.failures]
        lines += ["  ok " + s for s in self.checked if s not in self.failures]
        lines += ["  skipped " + s for s in self.skipped]
        if not self.checked:
            lines.append("  nothing to compare: no benchmark row with a gated field is in both runs")
        return "\n".join(lines)


def _label(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if isinstance(v, (str, int)) and not isinstance(v, bool)}


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) and v > 0 else None


def check_tolerance(tolerance: Any) -> float:
    """The tolerance as a float > 0 (ValueError naming ``tolerance`` otherwise)."""
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be a number > 0, got {tolerance!r}") from None
    if not math.isfinite(tol) or tol <= 0:
        raise ValueError(f"tolerance must be a number > 0, got {tolerance!r}")
    return tol


def compare(stored: Mapping[str, list[dict]], now: Mapping[str, list[dict]],
            tolerance: float = DEFAULT_TOLERANCE, fields: Mapping[str, str] = GATED_FIELDS) -> GateResult:
    """Gate ``now`` against ``stored``; both map a benchmark's fullname to its rows."""
    res = GateResult(check_tolerance(tolerance))
    for name, new_rows in now.items():
        old_rows = stored.get(name)
        if old_rows is None:
            if any(f in r for r in new_rows for f in fields):
                res.skipped.append(f"{name}: not in the stored run")
            continue
        for i, (old, new) in enumerate(zip(old_rows, new_rows)):
            gated = [f for f in fields if f in old and f in new]
            if not gated:
                continue
            if _label(old) != _label(new):
                res.skipped.append(f"{name} row {i}: not comparable ({_label(old)} vs {_label(new)})")
                continue
            for f in gated:
                a, b = _number(old[f]), _number(new[f])
                if a is None or b is None:
                    res.skipped.append(f"{name} row {i} {f}: not a positive number ({old[f]!r} vs {new[f]!r})")
                    continue
                worse = a / b if fields[f] == "higher" else b / a
                line = (f"{name} row {i} {f} ({fields[f]} is better): stored {a:.4g}, now {b:.4g} "
                        f"({worse:.3g}x worse)" if worse > 1 else f"({1 / worse:.3g}x better)")
                res.checked.append(line)
                if worse > 1 + res.tolerance:
                    res.failures.append(line)
    return res


def rows_of(run: Mapping[str, Any], what: str = "run") -> dict[str, list[dict]]:
    """fullname -> rows of a pytest-benchmark JSON document (``extra_info["rows"]``)."""
    try:
        benches = run["benchmarks"]
        return {b["fullname"]: list(b.get("extra_info", {}).get("rows", [])) for b in benches}
    except (KeyError, TypeError, AttributeError):
        raise ValueError(f"{what} is not a pytest-benchmark JSON file (no 'benchmarks' list with 'fullname')") from None


def load_run(path: str | Path) -> dict[str, list[dict]]:
    """Rows of a stored pytest-benchmark JSON file (ValueError naming the file when unreadable)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read a pytest-benchmark JSON file ({exc})") from None
    return rows_of(data, str(path))


def resolve(spec: str, storage: str | Path) -> Path:
    """The stored run named by ``spec``: an existing file; ``last`` (the newest
    ``*.json`` under ``storage``); or a run id / name prefix such as ``0003`` or
    ``0003_before`` matched against ``storage/*/<spec>*.json``."""
    p = Path(spec)
    if p.is_file():
        return p
    root = Path(str(storage).removeprefix("file://"))
    runs = sorted(root.glob("*/*.json"), key=lambda q: q.stat().st_mtime)
    if spec == "last":
        if not runs:
            raise ValueError(f"no stored run under {root} (for 'last')")
        return runs[-1]
    hits = [q for q in runs if q.name.startswith(spec)]
    if len(hits) != 1:
        found = ", ".join(str(q) for q in hits) or "none"
        raise ValueError(f"{spec!r} is not a file; expected one stored run {root}/*/{spec}*.json, found {found}")
    return hits[0]


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ratio_gate", description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="stored pytest-benchmark JSON (the run before the change)")
    ap.add_argument("new", help="pytest-benchmark JSON of the run after the change")
    ap.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                    help="fail when a gated ratio is worse by more than this fraction (default 0.25)")
    args = ap.parse_args(None if argv is None else list(argv))
    try:
        res = compare(load_run(args.old), load_run(args.new), args.tolerance)
    except (ValueError, FileNotFoundError) as exc:
        print(f"ratio gate: {exc}", file=sys.stderr)
        return 2
    print(res.render())
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
