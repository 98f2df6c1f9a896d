"""How many threads gntk_fast uses, and the one knob that sets it.

On a shared or busy machine two things make multi-threaded code slower than
one thread: more threads than CPUs the process may really use (an affinity
mask or a cgroup CPU quota smaller than ``os.cpu_count()``), and OpenMP
threads that spin at every barrier while a sibling thread is descheduled
(each parallel region then waits for the slowest thread). gntk_fast

* counts the CPUs it may use as ``available_cpus()``: the affinity mask,
  capped by the cgroup (v2 ``cpu.max`` or v1 ``cfs_quota_us``) quota;
* uses ``num_threads()`` threads for its parallel kernels: the environment
  variable ``GNTK_NUM_THREADS`` when set (the knob), else ``available_cpus()``.
  Imported before ``torch``, ``gntk_fast`` passes that count on as the default
  ``OMP_NUM_THREADS`` (torch, the C++ kernels) and ``NUMBA_NUM_THREADS`` when
  the knob is set or the CPUs available are fewer than ``os.cpu_count()``;
* runs small work on one thread (:func:`threads_for`, :func:`torch_threads`):
  waking a second thread costs more than it saves there, and on a busy
  machine it can cost several times the work itself;
* bounds how long idle OpenMP threads spin. GCC's OpenMP runtime (the one
  torch ships and the C++ kernels share) lets a thread that waits at a
  barrier spin about 300,000 times before it sleeps; on a busy machine those
  spins steal the CPU from the sibling the barrier waits for, and a parallel
  region can take several times longer. ``OMP_WAIT_POLICY=PASSIVE`` (sleep at
  once) cures that but makes every tiny multi-threaded op on an idle machine
  pay a wake-up. Unless the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``,
  gntk_fast sets ``GOMP_SPINCOUNT`` to :data:`SPINCOUNT` (a few tens of
  microseconds of spinning: back-to-back ops still find their threads awake,
  a descheduled sibling no longer costs a millisecond per barrier) when it is
  imported before torch and numba, i.e. before the runtime reads it.
  ``gntk-fast info`` reports the policy in force.

bench/README.md has the measurements behind these rules.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
from pathlib import Path
from typing import Iterator

__all__ = ["available_cpus", "num_threads", "threads_for", "torch_threads", "thread_count", "wait_policy",
           "SMALL_WORK", "SPINCOUNT"]

#: below this many multiply-adds (or element operations) a call runs on one thread
SMALL_WORK = 1 << 24
#: GOMP_SPINCOUNT set on import when the user chose no OpenMP wait policy (bench/bench_load.py)
SPINCOUNT = 10000


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup CPU quota, or None when unlimited/unknown."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask capped by the cgroup quota (>= 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def num_threads() -> int:
    """Threads for gntk_fast's parallel kernels: ``GNTK_NUM_THREADS`` or :func:`available_cpus`."""
    env = os.environ.get("GNTK_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"GNTK_NUM_THREADS must be a positive integer; got {env!r}") from None
        if n < 1:
            raise ValueError(f"GNTK_NUM_THREADS must be a positive integer; got {env!r}")
        return n
    return available_cpus()


def threads_for(work: float) -> int:
    """Threads for a call doing about ``work`` operations: 1 below :data:`SMALL_WORK`, else :func:`num_threads`."""
    return 1 if work < SMALL_WORK else num_threads()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with torch's intra-op thread count set to ``n`` (restored after)."""
    import torch

    prev = torch.get_num_threads()
    n = max(1, int(n))
    if n != prev:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if n != prev:
            torch.set_num_threads(prev)


@contextlib.contextmanager
def thread_count(n: int | None) -> Iterator[int | None]:
    """Run the block with ``n`` threads for every backend: the C++ kernels
    (``GNTK_NUM_THREADS``), torch's intra-op pool and Numba's parallel loops;
    all restored after. ``None`` changes nothing (a sweep task outside a
    Dask worker)."""
    if n is None:
        yield None
        return
    n = max(1, int(n))
    prev_env = os.environ.get("GNTK_NUM_THREADS")
    os.environ["GNTK_NUM_THREADS"] = str(n)
    prev_numba = None
    try:
        import numba

        prev_numba = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass
    try:
        with torch_threads(n):
            yield n
    finally:
        if prev_env is None:
            os.environ.pop("GNTK_NUM_THREADS", None)
        else:
            os.environ["GNTK_NUM_THREADS"] = prev_env
        if prev_numba is not None:
            import numba

            numba.set_num_threads(prev_numba)


def wait_policy() -> str:
    """The OpenMP wait policy requested for this process: ``OMP_WAIT_POLICY``
    ("PASSIVE", "ACTIVE"), else ``"spin N"`` for ``GOMP_SPINCOUNT=N`` (gntk_fast's
    own default, :data:`SPINCOUNT`, unless the user set one), else "default"."""
    policy = os.environ.get("OMP_WAIT_POLICY")
    if policy:
        return policy
    spin = os.environ.get("GOMP_SPINCOUNT")
    return f"spin {spin}" if spin else "default"


def _configure_on_import() -> None:
    """Before any OpenMP/Numba runtime has loaded: the OpenMP spin count
    :data:`SPINCOUNT` unless the user chose a wait policy, and the thread count
    of :func:`num_threads` as the default OMP_NUM_THREADS / NUMBA_NUM_THREADS when
    GNTK_NUM_THREADS is set or the CPUs available are restricted."""
    if "torch" in sys.modules or "numba" in sys.modules or "gntk_fast._C" in sys.modules:
        return
    if not os.environ.get("OMP_WAIT_POLICY") and not os.environ.get("GOMP_SPINCOUNT"):
        os.environ["GOMP_SPINCOUNT"] = str(SPINCOUNT)
    try:
        n = num_threads()
    except ValueError:
        return  # reported where the count is used
    if os.environ.get("GNTK_NUM_THREADS", "").strip() or n < (os.cpu_count() or n):
        os.environ.setdefault("OMP_NUM_THREADS", str(n))
        os.environ.setdefault("NUMBA_NUM_THREADS", str(n))
