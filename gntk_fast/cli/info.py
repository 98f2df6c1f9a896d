"""``gntk-fast info``: versions and the available backends."""
from __future__ import annotations

import argparse
import json

HELP = "versions and the available backends (C++/OpenMP, Triton, CUDA)"

EXAMPLES = """\
examples:
  gntk-fast info
  gntk-fast info --json            # machine-readable
  GNTK_ENTK_ISA=avx2 gntk-fast info  # the eNTK kernel's AVX2 tiles on an AVX-512 CPU
  GNTK_NUM_THREADS=1 gntk-fast info  # one thread for every backend (torch, C++/OpenMP, Numba)
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    from .._backend import backends_info

    info = backends_info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"gntk_fast {info['gntk_fast']}  (torch {info['torch']}, numpy {info['numpy']}, numba {info['numba']})")
    cpp = info["cpp"]
    if cpp["available"]:
        omp = f"OpenMP {cpp['openmp_version']}, {cpp['threads']} threads" if cpp["openmp"] else "no OpenMP"
        print(f"  cpp     : available  [{cpp['compiler']}, {cpp['flags']}, baseline={cpp['simd']}, tiles for {cpp.get('tile_isas', cpp['simd'])}, {omp}]")
        flags = " ".join(f for f, on in cpp["cpu"].items() if on) or "none of " + " ".join(cpp["cpu"])
        print(f"  entk isa: {cpp['entk_isa']}  (the eNTK tile kernel in use; CPU flags: {flags}; "
              "GNTK_ENTK_ISA=avx2 forces AVX2)")
    else:
        print(f"  cpp     : UNAVAILABLE ({cpp.get('error')})")
    tri = info["triton"]
    tri_s = f"available (triton {tri['version']})" if tri["available"] else "unavailable"
    if tri["interpret"]:
        tri_s += ", TRITON_INTERPRET=1 (CPU interpreter)"
    print(f"  triton  : {tri_s}")
    cuda = info["cuda"]
    cuda_s = "available: " + ", ".join(cuda.get("devices", [])) if cuda["available"] else "no CUDA device"
    print(f"  cuda    : {cuda_s}")
    thr = info["threads"]
    print(f"  threads : {thr['gntk_num_threads']} (GNTK_NUM_THREADS or the {thr['available_cpus']} CPUs available), "
          f"torch {info['torch_threads']}, OpenMP wait: {thr['omp_wait_policy']}")
    return 0
