"""The GPU check: every CUDA test and the GPU benchmarks in one bounded run, one JSON.

Run through ``bench/gpu_check.sh`` (which picks the interpreter) on a machine
with one CUDA GPU; it installs nothing from the network. Stages, each under
its own time limit so the whole stays within ``--budget`` seconds (default
480, 8 minutes):

1. environment: device name and capability, versions (Python, torch and its
   CUDA, triton, numba, numpy, gntk_fast) and the backends gntk_fast sees;
2. the C++ extension: imported from the tree, or built in place with what is
   installed (``pip install --no-build-isolation --no-deps --no-index -e .``);
   the GPU stages do not need it, so a failed build is recorded, not fatal;
3. the CUDA tests: every test marked ``cuda`` and the whole Triton eNTK test
   file (its tensors live on the GPU when there is one), outcome per test;
4. the GPU benchmarks (full sizes): B1-GPU, the eNTK of N = 1024 inputs
   through 784 -> 4 x 4096 -> 1 at density 0.2, against torch.func's Jacobian
   oracle on the same GPU and as a fraction of the TF32 / FP32 matmul
   roofline (bench_entk_gpu.py::test_b1_gpu), and graphon_ntk's Triton
   backend against Numba on the host's CPUs (bench_analytic_gpu.py);
5. the JSON (``--out``, default ``$OUT/gpu_check.json`` or
   ``bench/results/gpu_check.json``): device, versions, each stage's exit
   status and seconds, each test's outcome, each benchmark's medians and ratios.

``--dry-run`` (no GPU needed; what CI runs) checks the same script end to end
on the CPU: the environment stage, the collection of exactly the tests and
benchmarks the real run would run, and the JSON writer, whose output is read
back and validated. Exit status: 0 when every stage passed, 1 otherwise
(the JSON is written in both cases), 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_FILES = ("bench/bench_entk_gpu.py::test_b1_gpu", "bench/bench_analytic_gpu.py")
TRITON_TEST_FILES = ("tests/test_entk_triton.py",)
SCHEMA = ("dry_run", "device", "versions", "backends", "stages", "tests", "benchmarks", "summary")
#: the share of the budget each stage may use (the rest is start-up and the JSON)
SHARES = {"build": 0.30, "tests": 0.35, "benchmarks": 0.55}


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` in the repository root; rc 124 when it ran past ``timeout``."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(1.0, timeout),
                           env={**os.environ, **(env or {})})
        rc, out = p.returncode, (p.stdout + p.stderr)
    except subprocess.TimeoutExpired as exc:
        rc = 124
        out = ((exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")) \
            + f"\n[gpu_check] timed out after {timeout:.0f} s"
    return {"cmd": " ".join(cmd), "rc": rc, "seconds": round(time.perf_counter() - t0, 3), "tail": out[-3000:]}


def cuda_test_files() -> list[str]:
    """Test files holding a ``pytest.mark.cuda`` test (run with ``-m cuda``)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if "pytest.mark.cuda" in p.read_text(encoding="utf-8"))


def environment() -> dict[str, Any]:
    """Device, versions and backends, from a child interpreter (nothing is imported here)."""
    code = r"""
import json, platform, sys
out = {"versions": {"python": platform.python_version()}, "device": None, "backends": None, "errors": []}
try:
    import torch
    out["versions"]["torch"] = torch.__version__
    out["versions"]["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out["device"] = {"name": p.name, "capability": list(torch.cuda.get_device_capability(0)),
                         "memory_gib": round(p.total_memory / 2**30, 2), "count": torch.cuda.device_count()}
except Exception as exc:
    out["errors"].append(f"torch: {type(exc).__name__}: {exc}")
for name in ("triton", "numba", "numpy"):
    try:
        out["versions"][name] = __import__(name).__version__
    except Exception as exc:
        out["versions"][name] = None
        out["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
try:
    import gntk_fast
    from gntk_fast._backend import backends_info
    out["versions"]["gntk_fast"] = gntk_fast.__version__
    out["backends"] = backends_info()
except Exception as exc:
    out["errors"].append(f"gntk_fast: {type(exc).__name__}: {exc}")
print("GPU_CHECK_ENV " + json.dumps(out, default=str))
"""
    r = _run([sys.executable, "-c", code], timeout=120)
    m = re.search(r"^GPU_CHECK_ENV (.*)$", r["tail"], re.M)
    env = json.loads(m.group(1)) if m else {"versions": {"python": platform.python_version()}, "device": None,
                                            "backends": None, "errors": [r["tail"][-500:]]}
    env["stage"] = {k: r[k] for k in ("cmd", "rc", "seconds")}
    return env


def ensure_extension(timeout: float) -> dict[str, Any]:
    """Import gntk_fast._C from the tree; if that fails, build it in place from installed tools only."""
    probe = [sys.executable, "-c", "import gntk_fast._C"]
    r = _run(probe, timeout=60)
    if r["rc"] == 0:
        return {**r, "action": "present"}
    b = _run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index", "-e", "."],
             timeout=timeout)
    again = _run(probe, timeout=60)
    return {**b, "action": "built" if again["rc"] == 0 else "unavailable (the GPU stages do not need it)",
            "rc": again["rc"]}


def parse_junit(path: Path) -> dict[str, str]:
    """``{node id: "passed" | "failed" | "error" | "skipped"}`` from a pytest JUnit XML file."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for case in ET.parse(path).getroot().iter("testcase"):
        cls, name = case.get("classname", ""), case.get("name", "")
        node = cls.replace(".", "/") + ".py::" + name if cls else name
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                break
        out[node] = outcome
    return out


def _collected(tail: str) -> dict[str, str]:
    return {line.strip(): "collected" for line in tail.splitlines() if "::" in line and not line.startswith(" ")}


def run_tests(dry: bool, timeout: float, work: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The CUDA tests (or, dry, their collection): stage record and per-test outcomes."""
    cuda_files = cuda_test_files()
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    runs = [(cuda_files, ["-m", "cuda"]), (list(TRITON_TEST_FILES), [])]
    stages, outcomes = [], {}
    t_end = time.perf_counter() + timeout
    for i, (files, sel) in enumerate(runs):
        left = t_end - time.perf_counter()
        if dry:
            r = _run(base + ["--collect-only", *sel, *files], timeout=left)
            outcomes.update(_collected(r["tail"]))
        else:
            xml = work / f"junit{i}.xml"
            r = _run(base + ["-rfE", f"--junitxml={xml}", *sel, *files], timeout=left)
            outcomes.update(parse_junit(xml))
        stages.append(r)
    rc = 0 if all(s["rc"] == 0 for s in stages) else max(s["rc"] for s in stages)
    if dry and not outcomes:
        rc = rc or 5  # nothing collected: the selection is broken
    return {"rc": rc, "seconds": round(sum(s["seconds"] for s in stages), 3), "runs": stages}, outcomes


def run_benchmarks(dry: bool, timeout: float, work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The GPU benchmarks at full size (or, dry, their collection); rows per suite."""
    results = work / "bench_results"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-rfEs",
           *BENCH_FILES]
    if dry:
        r = _run(cmd + ["--collect-only"], timeout=timeout)
        return r, {"collected": sorted(_collected(r["tail"]))}
    r = _run(cmd + ["--benchmark-disable-gc"], timeout=timeout, env={"GNTK_BENCH_RESULTS": str(results)})
    rows: dict[str, Any] = {}
    for p in sorted(results.glob("*.json")):
        doc = json.loads(p.read_text())
        rows[p.stem] = doc.get("rows", doc)
    return r, rows


def summarise(tests: dict[str, str], benchmarks: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for v in tests.values():
        counts[v] = counts.get(v, 0) + 1
    key = {}
    for suite, rows in benchmarks.items():
        if not isinstance(rows, list):
            continue
        for row in rows:
            if not isinstance(row, dict):
                continue
            for k, v in row.items():
                if k.startswith(("frac_of_", "speedup_", "t_ours_s", "t_triton", "t_numba", "rel_err", "max_rel_err")):
                    key[f"{suite}.{k}"] = v
    return {"tests": counts, "key_numbers": key}


def write_report(path: Path, report: dict[str, Any]) -> Path:
    """Write ``report`` as JSON atomically and check it reads back with every key of :data:`SCHEMA`."""
    missing = [k for k in SCHEMA if k not in report]
    if missing:
        raise ValueError(f"report lacks {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    back = json.loads(path.read_text())
    assert all(k in back for k in SCHEMA) and isinstance(back["tests"], dict) and isinstance(back["stages"], dict)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="check the script on the CPU (no GPU, nothing timed)")
    ap.add_argument("--out", default=None, help="the JSON (default $OUT/gpu_check.json or bench/results/gpu_check.json)")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for the whole run (default 480)")
    args = ap.parse_args(argv)
    if not args.budget > 0:
        ap.error(f"--budget must be > 0; got {args.budget}")
    out = Path(args.out) if args.out else (Path(os.environ["OUT"]) if os.environ.get("OUT") else
                                           ROOT / "bench" / "results") / "gpu_check.json"
    work = out.parent / "gpu_check_work"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = environment()
    stages: dict[str, Any] = {"environment": env.pop("stage")}
    ok_device = env["device"] is not None
    if not args.dry_run and not ok_device:
        stages["device"] = {"rc": 1, "seconds": 0.0, "tail": "no CUDA device visible to torch: nothing to check"}
        tests: dict[str, str] = {}
        benchmarks: dict[str, Any] = {}
    else:
        if not args.dry_run:
            stages["build"] = ensure_extension(SHARES["build"] * args.budget)
        left = args.budget - (time.perf_counter() - t0)
        stages["tests"], tests = run_tests(args.dry_run, min(SHARES["tests"] * args.budget, 0.45 * left), work)
        left = args.budget - (time.perf_counter() - t0) - 10.0
        stages["benchmarks"], benchmarks = run_benchmarks(args.dry_run, max(30.0, left), work)
    report = {
        "dry_run": bool(args.dry_run),
        "device": env["device"],
        "versions": env["versions"],
        "backends": env.get("backends"),
        "environment_errors": env.get("errors", []),
        "stages": stages,
        "tests": tests,
        "benchmarks": benchmarks,
        "summary": summarise(tests, benchmarks),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    write_report(out, report)
    failed = [k for k, s in stages.items() if k != "build" and s.get("rc", 0) != 0]
    bad = [k for k, v in tests.items() if v in ("failed", "error")]
    print(f"gpu_check: {'dry run, ' if args.dry_run else ''}{len(tests)} tests "
          f"({', '.join(f'{v} {k}' for k, v in report['summary']['tests'].items()) or 'none'}), "
          f"stages failed: {failed or 'none'}; {report['seconds']:.0f} s; wrote {out}")
    for k in bad:
        print(f"  {tests[k].upper()} {k}")
    return 0 if not failed and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
