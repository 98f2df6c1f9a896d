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
