"""The benchmark regression gate (bench/ratio_gate.py, ``--ratio-gate`` in bench/conftest.py).

In process: the gate's arithmetic on hand-made rows (direction of each field,
the tolerance boundary, rows that are not comparable, a gate with nothing to
compare, bad input, the command line). In a subprocess pytest: a throw-away
benchmark run beside copies of bench/conftest.py and bench/ratio_gate.py is
stored with ``--benchmark-save``, rerun with the gate (passes), then rerun
with an injected slowdown of "ours" (fails, naming the benchmark and field).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.ratio_gate import DEFAULT_TOLERANCE, compare, load_run, main, resolve, rows_of

ROOT = Path(__file__).resolve().parents[1]


def _run(speedup=None, mem=None, case="c"):
    row = {"case": case}
    if speedup is not None:
        row["speedup_vs_reference"] = speedup
    if mem is not None:
        row["mem_ratio_ours_over_ref_jacobians_once"] = mem
    return {"suite.py::test_a": [row]}


def test_higher_is_better_fails_only_past_tolerance():
    assert DEFAULT_TOLERANCE == 0.25
    assert compare(_run(speedup=10.0), _run(speedup=8.1)).ok  # 10 / 8.1 = 1.23
    res = compare(_run(speedup=10.0), _run(speedup=7.9))  # 10 / 7.9 = 1.27
    assert not res.ok and len(res.failures) == 1
    msg = res.failures[0]
    assert "suite.py::test_a" in msg and "speedup_vs_reference" in msg
    assert "stored 10" in msg and "now 7.9" in msg
    assert compare(_run(speedup=10.0), _run(speedup=100.0)).ok  # faster never fails


def test_lower_is_better_direction():
    assert compare(_run(mem=0.01), _run(mem=0.0124)).ok
    res = compare(_run(mem=0.01), _run(mem=0.013))
    assert not res.ok and "mem_ratio_ours_over_ref_jacobians_once" in res.failures[0]
    assert compare(_run(mem=0.01), _run(mem=0.001)).ok
    assert not compare(_run(speedup=2.0), _run(speedup=1.0), tolerance=0.5).ok
    assert compare(_run(speedup=2.0), _run(speedup=1.4), tolerance=0.5).ok


def test_rows_with_other_sizes_are_not_compared_and_nothing_to_compare_fails():
    res = compare(_run(speedup=10.0, case="N=128"), _run(speedup=1.0, case="N=12"))
    assert not res.failures and not res.checked and res.skipped
    assert not res.ok and "nothing to compare" in res.render()
    res = compare({"other::test": [{"speedup_vs_reference": 1.0}]}, _run(speedup=1.0))
    assert not res.ok and "not in the stored run" in res.render()
    nan = compare(_run(speedup=10.0), _run(speedup=float("nan")))
    assert not nan.checked and "not a positive number" in nan.skipped[0]


@pytest.mark.parametrize("tol", [0, -0.1, float("nan"), "x", None])
def test_bad_tolerance(tol):
    with pytest.raises(ValueError, match="tolerance"):
        compare(_run(speedup=1.0), _run(speedup=1.0), tolerance=tol)


def test_files_and_command_line(tmp_path, capsys):
    def doc(speedup):
        return {"benchmarks": [{"fullname": "suite.py::test_a", "stats": {},
                                "extra_info": {"rows": [{"case": "c", "speedup_vs_reference": speedup}]}}]}

    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(doc(4.0)))
    new.write_text(json.dumps(doc(2.0)))
    assert load_run(old) == {"suite.py::test_a": [{"case": "c", "speedup_vs_reference": 4.0}]}
    assert main([str(old), str(new)]) == 1
    assert "REGRESSION suite.py::test_a row 0 speedup_vs_reference" in capsys.readouterr().out
    assert main([str(old), str(new), "--tolerance", "1.5"]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_run(bad)
    with pytest.raises(ValueError, match="not a pytest-benchmark JSON"):
        rows_of({"rows": []})
    assert main([str(bad), str(new)]) == 2
    store = tmp_path / "store" / "Linux-x"
    store.mkdir(parents=True)
    (store / "0001_abc.json").write_text("{}")
    (store / "0002_abc.json").write_text("{}")
    assert resolve("0002", f"file://{tmp_path / 'store'}").name == "0002_abc.json"
    assert resolve(str(old), tmp_path / "store") == old
    with pytest.raises(ValueError, match="0003"):
        resolve("0003", tmp_path / "store")


_TINY_BENCH = '''
import os, time

SLOW = float(os.environ.get("GNTK_BENCH_INJECT_SLOWDOWN", "0"))


def ours():
    time.sleep(0.03 + SLOW)


def baseline():
    time.sleep(0.06)


def test_tiny(benchmark, bench_report, timeit):
    benchmark.pedantic(ours, rounds=1, iterations=1)
    t_ours = timeit(ours, repeat=3, warmup=0)
    t_ref = timeit(baseline, repeat=3, warmup=0)
    bench_report.add("tiny", case="sleep 30 ms vs 60 ms", t_ours_s=t_ours, reference_s=t_ref,
                     speedup_vs_reference=t_ref / t_ours)
'''


def _pytest(tmp_path, *args, slow=0.0):
    env = dict(os.environ, PYTHONPATH=str(ROOT), GNTK_BENCH_INJECT_SLOWDOWN=str(slow))
    env.pop("GNTK_BENCH_SMOKE", None)
    cmd = [sys.executable, "-m", "pytest", "bench_tiny.py", "-q", "-p", "no:cacheprovider",
           "--rootdir", str(tmp_path), "-o", "python_files=bench_*.py",
           "--benchmark-storage", f"file://{tmp_path / 'store'}", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_gate_fails_on_a_slowed_kernel(tmp_path):
    shutil.copy(ROOT / "bench" / "conftest.py", tmp_path / "conftest.py")
    shutil.copy(ROOT / "bench" / "ratio_gate.py", tmp_path / "ratio_gate.py")
    (tmp_path / "bench_tiny.py").write_text(_TINY_BENCH)

    first = _pytest(tmp_path, "--benchmark-save=before")
    assert first.returncode == 0, first.stdout + first.stderr
    (stored,) = (tmp_path / "store").glob("*/0001_before.json")
    data = json.loads(stored.read_text())
    (bench,) = data["benchmarks"]
    assert bench["extra_info"]["rows"][0]["case"] == "sleep 30 ms vs 60 ms"
    assert 1.3 < bench["extra_info"]["speedup_vs_reference"] < 2.2
    assert data["machine_info"]["gntk_fast"]["threads"]["available_cpus"] >= 1

    again = _pytest(tmp_path, "--ratio-gate=0001", "--ratio-tolerance=0.5")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "ratio gate" in again.stdout and "passed" in again.stdout

    slowed = _pytest(tmp_path, "--ratio-gate=0001", "--ratio-tolerance=0.5", slow=0.05)
    assert slowed.returncode == 1, slowed.stdout + slowed.stderr
    assert "FAILED" in slowed.stdout
    assert "REGRESSION bench_tiny.py::test_tiny row 0 speedup_vs_reference" in slowed.stdout

    missing = _pytest(tmp_path, "--ratio-gate=0042")
    assert missing.returncode == 4 and "0042" in missing.stderr  # a usage error, before anything runs
