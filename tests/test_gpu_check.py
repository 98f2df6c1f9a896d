"""bench/gpu_check.sh: the CPU-side dry run (the script, the collection of the
CUDA tests and GPU benchmarks, the JSON writer) and the JUnit reader."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402


def test_dry_run_collects_the_cuda_tests_and_writes_the_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(out.read_text())
    assert doc["dry_run"] is True and set(gpu_check.SCHEMA) <= set(doc)
    assert doc["versions"]["torch"] and doc["versions"]["python"]
    tests = doc["tests"]
    # every cuda-marked test and every Triton eNTK test is in the selection
    assert any(t.startswith("tests/test_entk_triton.py::") for t in tests)
    assert "tests/test_analytic.py::test_triton_cuda_equals_reference[relu]" in tests
    assert set(tests.values()) == {"collected"}
    assert doc["benchmarks"]["collected"] == ["bench/bench_analytic_gpu.py::test_graphon_ntk_triton_vs_numba",
                                              "bench/bench_entk_gpu.py::test_b1_gpu"]
    assert all(s["rc"] == 0 for s in doc["stages"].values())


def test_junit_outcomes(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_a" name="test_ok" time="0.1"/>'
        '<testcase classname="tests.test_a" name="test_bad[1]"><failure message="x">tb</failure></testcase>'
        '<testcase classname="tests.test_b" name="test_gpu"><skipped message="no gpu"/></testcase>'
        '<testcase classname="tests.test_b" name="test_err"><error message="boom"/></testcase>'
        '</testsuite></testsuites>')
    assert gpu_check.parse_junit(xml) == {
        "tests/test_a.py::test_ok": "passed", "tests/test_a.py::test_bad[1]": "failed",
        "tests/test_b.py::test_gpu": "skipped", "tests/test_b.py::test_err": "error"}
    assert gpu_check.parse_junit(tmp_path / "missing.xml") == {}


def test_report_writer_refuses_an_incomplete_report(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        gpu_check.write_report(tmp_path / "r.json", {"dry_run": True})
    assert not (tmp_path / "r.json").exists()
