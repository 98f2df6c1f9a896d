"""Which compute backends this installation can use.

Backends
--------
``"cpp"``    the compiled C++17/OpenMP extension ``gntk_fast._C`` (CPU tensors).
``"triton"`` Triton kernels (CUDA tensors; on CPU only under ``TRITON_INTERPRET=1``).
``"torch"``  the pure-torch reference twins (always available).
"""
from __future__ import annotations

import importlib
import os
from functools import lru_cache
from typing import Any

__all__ = [
    "build_info",
    "cpp_available",
    "cuda_available",
    "triton_available",
    "triton_interpret",
    "require_cpp",
    "backends_info",
]


@lru_cache(maxsize=None)
def _load_c() -> tuple[Any, str | None]:
    try:
        # torch first: its wheels ship libgomp.so.1, so _C's OpenMP (the same soname,
        # never vendored in gntk_fast's wheels) binds to torch's runtime: one thread pool
        import torch  # noqa: F401

        mod = importlib.import_module("gntk_fast._C")
    except ImportError as exc:  # pragma: no cover - exercised only on broken installs
        return None, f"{type(exc).__name__}: {exc}"
    return mod, None


def cpp_available() -> bool:
    """True when the compiled extension ``gntk_fast._C`` imports."""
    return _load_c()[0] is not None


def require_cpp():
    """Return the ``gntk_fast._C`` module or raise a RuntimeError saying why it is missing."""
    mod, err = _load_c()
    if mod is None:
        raise RuntimeError(
            "the C++ backend is unavailable (gntk_fast._C failed to import: "
            f"{err}); reinstall with `pip install .` to build it"
        )
    return mod


def build_info() -> dict:
    """The C++ extension's build description (compiler, flags, OpenMP, threads)."""
    return dict(require_cpp().build_info())


@lru_cache(maxsize=None)
def _triton_version() -> str | None:
    try:
        import triton  # noqa: F401
    except Exception:
        return None
    return getattr(triton, "__version__", "unknown")


def triton_available() -> bool:
    """True when Triton imports (it can run on CUDA, or on CPU under TRITON_INTERPRET=1)."""
    return _triton_version() is not None


def triton_interpret() -> bool:
    """True when ``TRITON_INTERPRET=1`` is set (Triton kernels run on CPU tensors)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def backends_info() -> dict:
    """Versions and availability of every backend, as printed by ``gntk-fast info``.

    ``info["cpp"]`` holds the extension's :func:`build_info` (compiler, flags,
    OpenMP, threads, the CPU's flags under ``"cpu"``) and ``"entk_isa"``: the
    instruction set the eNTK tile kernel runs in this process, ``"avx512"``
    (chosen at run time on a CPU with AVX-512F/VL/DQ unless the environment
    variable ``GNTK_ENTK_ISA=avx2`` is set), else ``"avx2"`` (or ``"generic"``
    for a build without AVX2).
    """
    import numba
    import numpy
    import torch

    from . import __version__

    info: dict[str, Any] = {
        "gntk_fast": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    from . import _threads

    info["threads"] = {
        "available_cpus": _threads.available_cpus(),
        "gntk_num_threads": _threads.num_threads(),
        "omp_wait_policy": _threads.wait_policy(),
    }
    mod, err = _load_c()
    info["cpp"] = {"available": mod is not None}
    if mod is not None:
        info["cpp"].update(dict(mod.build_info()))
        info["cpp"]["entk_isa"] = str(mod.entk_isa())
    else:
        info["cpp"]["error"] = err
    info["triton"] = {
        "available": triton_available(),
        "version": _triton_version(),
        "interpret": triton_interpret(),
    }
    cuda = {"available": cuda_available(), "torch_cuda": torch.version.cuda}
    if cuda["available"]:
        cuda["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    info["cuda"] = cuda
    return info
