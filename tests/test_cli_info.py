"""``gntk-fast info``: in-process and as a subprocess, text and --json."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

import gntk_fast as gf
from gntk_fast import cli
from gntk_fast._backend import build_info


def test_info_text_in_process(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    bi = build_info()
    assert bi["openmp"], "this build is expected to have OpenMP"
    line = next(l for l in out.splitlines() if l.strip().startswith("cpp"))
    assert "available" in line and "UNAVAILABLE" not in line
    assert f"OpenMP {bi['openmp_version']}, {bi['threads']} threads" in line
    assert bi["compiler"] in line and bi["simd"] in line
    assert out.startswith(f"gntk_fast {gf.__version__}")
    assert re.search(r"^\s+triton\s+:", out, re.M) and re.search(r"^\s+cuda\s+:", out, re.M)


def test_info_json_in_process(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["gntk_fast"] == gf.__version__
    cpp = info["cpp"]
    assert cpp["available"] is True and cpp["openmp"] is True
    assert isinstance(cpp["threads"], int) and cpp["threads"] >= 1
    assert cpp["threads"] == build_info()["threads"]
    assert set(info) >= {"torch", "numpy", "numba", "triton", "cuda", "torch_threads"}
    assert isinstance(info["triton"]["available"], bool)


@pytest.mark.parametrize("threads", sorted({1, min(2, len(os.sched_getaffinity(0)))}))
def test_info_subprocess_reports_openmp_threads(threads):
    """The thread count is the runtime OpenMP value, not a constant: it follows OMP_NUM_THREADS."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    text = subprocess.run(
        [sys.executable, "-m", "gntk_fast.cli", "info"], env=env, capture_output=True, text=True, timeout=120
    )
    assert text.returncode == 0, text.stderr
    assert re.search(rf"cpp\s+: available .*OpenMP \d+, {threads} threads", text.stdout), text.stdout
    js = subprocess.run(
        [sys.executable, "-m", "gntk_fast.cli", "info", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert js.returncode == 0, js.stderr
    info = json.loads(js.stdout)
    assert info["cpp"]["available"] is True and info["cpp"]["threads"] == threads


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "info" in capsys.readouterr().out


def _cpu_has_avx512() -> bool:
    cpu = build_info()["cpu"]
    return all(cpu.get(f, False) for f in ("avx512f", "avx512vl", "avx512dq"))


@pytest.mark.parametrize("isa_env", [None, "avx2"])
def test_info_reports_the_entk_isa_in_use(isa_env):
    """Text and --json name the eNTK tile kernel's instruction set, from the kernel itself:
    avx512 on an AVX-512 CPU, and avx2 when GNTK_ENTK_ISA=avx2 forces the baseline."""
    env = {k: v for k, v in os.environ.items() if k != "GNTK_ENTK_ISA"}
    if isa_env is not None:
        env["GNTK_ENTK_ISA"] = isa_env
    expected = "avx2" if isa_env == "avx2" or not _cpu_has_avx512() else "avx512"
    cpu = build_info()["cpu"]
    if not (cpu["avx2"] and cpu["fma"]):  # the kernels pick their instruction set at run time
        expected = "generic"
    js = subprocess.run([sys.executable, "-m", "gntk_fast.cli", "info", "--json"], env=env, capture_output=True,
                        text=True, timeout=120)
    assert js.returncode == 0, js.stderr
    cpp = json.loads(js.stdout)["cpp"]
    assert cpp["entk_isa"] == expected
    assert set(cpp["cpu"]) >= {"avx2", "fma", "avx512f", "avx512vl", "avx512dq"}
    text = subprocess.run([sys.executable, "-m", "gntk_fast.cli", "info"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert text.returncode == 0, text.stderr
    line = next(l for l in text.stdout.splitlines() if l.strip().startswith("entk isa"))
    assert re.match(rf"\s+entk isa: {expected}\s", line), line
    listed = set(line.split("CPU flags:")[1].split(";")[0].split())
    assert all((flag in listed) == on for flag, on in cpp["cpu"].items()), line


def test_backends_info_entk_isa_matches_kernel():
    import gntk_fast._C as C

    info = gf.backends_info()
    assert info["cpp"]["entk_isa"] == C.entk_isa() in ("avx512", "avx2", "generic")
