"""Helpers of the thread and load benchmarks: a timed child process and CPU-bound neighbours."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["median_in_child", "CpuNeighbours", "NT_IMPORT"]

#: child-process code that imports jax and neural-tangents (in float64), for the benchmarks
#: that compare with neural-tangents in a side environment; needs ``sys`` and ``types`` imported
NT_IMPORT = r"""
try:
    import tf2jax  # noqa: F401
except Exception:  # an installed tf2jax built for another jax: the stax kernels do not need it
    sys.modules["tf2jax"] = types.ModuleType("tf2jax")
import jax
import neural_tangents as nt
jax.config.update("jax_enable_x64", True)
"""

_REPO = str(Path(__file__).resolve().parents[1])


def median_in_child(code: str, spec: dict, env_update: dict, drop: tuple[str, ...] = ()) -> float:
    """Run ``code`` (which reads ``json.loads(sys.argv[1])`` and prints a JSON line
    with ``median_s`` last) in a fresh interpreter with the environment changed
    by ``env_update`` after removing ``drop``; the repository goes first on
    PYTHONPATH. Returns the child's median in seconds."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_update)
    env["PYTHONPATH"] = os.pathsep.join([_REPO, env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True,
                         env=env, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return float(json.loads(res.stdout.strip().splitlines()[-1])["median_s"])


class CpuNeighbours:
    """``n`` CPU-bound processes for the duration of the block."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()
