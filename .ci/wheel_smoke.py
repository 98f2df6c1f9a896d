"""Smoke test of an installed gntk_fast wheel, run from outside the source tree.

Checks that the package imported is the installed one (not a checkout), that
the compiled extension loads and its tile kernels agree with the plain twin
on every instruction set this CPU has, that the extension uses the OpenMP
runtime already in the process (no second, vendored libgomp), that LICENSE and
py.typed ship, and that the command line answers (``--version``, ``info``,
``python -m gntk_fast``). Exit status 0 when all pass.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def main() -> int:
    import torch

    import gntk_fast as gf
    import gntk_fast._C as C

    here = Path(gf.__file__).resolve().parent
    assert "site-packages" in str(here), f"gntk_fast imported from {here}, not from an installed wheel"
    dist = metadata.distribution("gntk_fast")
    files = {str(f) for f in dist.files or ()}
    assert any(f.endswith("py.typed") for f in files), "py.typed is not in the wheel"
    assert any(f.endswith("LICENSE") for f in files), "LICENSE is not in the wheel"
    assert not any("libgomp" in f for f in files), "the wheel vendors a libgomp (a second OpenMP runtime)"
    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
    gomps = {line.split()[-1] for line in maps.splitlines() if "libgomp" in line}
    assert len(gomps) <= 1, f"more than one OpenMP runtime loaded: {sorted(gomps)}"

    from gntk_fast.ops.entk_layer.cpp import masked_ntk_layer_cpp
    from gntk_fast.ops.entk_layer.naive import masked_ntk_layer_naive

    g = torch.Generator().manual_seed(0)
    D = torch.randn(19, 1, 23, generator=g, dtype=torch.float64)
    H = torch.randn(19, 17, generator=g, dtype=torch.float64)
    M = torch.rand(23, 17, generator=g) < 0.3
    ref = masked_ntk_layer_naive(D, H, None, None, M, trace=True)
    isas = []
    for isa in ("generic", "avx2", "auto"):
        code = ("import torch, gntk_fast._C as C\n"
                "from gntk_fast.ops.entk_layer.cpp import masked_ntk_layer_cpp as f\n"
                "g = torch.Generator().manual_seed(0)\n"
                "D = torch.randn(19, 1, 23, generator=g, dtype=torch.float64)\n"
                "H = torch.randn(19, 17, generator=g, dtype=torch.float64)\n"
                "M = torch.rand(23, 17, generator=g) < 0.3\n"
                "torch.save(f(D, H, None, None, M, trace=True, complement=False), 'o.pt'); print(C.entk_isa())\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "GNTK_ENTK_ISA": isa}, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        out = torch.load("o.pt")
        err = float((out - ref).norm() / ref.norm())
        assert err < 1e-12, (isa, err)
        isas.append(r.stdout.strip())
    assert isas[0] == "generic", isas
    x = torch.randn(6, 5, generator=g)
    m = gf.MLP(5, 16, 2, seed=0)
    theta = gf.empirical_ntk(m, x)
    assert theta.shape == (6, 6) and bool(torch.isfinite(theta).all())

    v = subprocess.run([sys.executable, "-m", "gntk_fast", "--version"], capture_output=True, text=True, timeout=120)
    assert v.returncode == 0 and v.stdout.strip() == f"gntk-fast {gf.__version__}", v.stdout + v.stderr
    info = subprocess.run(["gntk-fast", "info", "--json"], capture_output=True, text=True, timeout=300)
    assert info.returncode == 0, info.stderr
    cpp = json.loads(info.stdout)["cpp"]
    assert cpp["available"] and cpp["entk_isa"] == C.entk_isa()
    print(f"wheel smoke: ok ({dist.version} from {here}; tile isas tried {isas}; flags '{cpp['flags']}')")
    return 0


if __name__ == "__main__":
    os.chdir(os.environ.get("TMPDIR", "/tmp"))
    sys.exit(main())
