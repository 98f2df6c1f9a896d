"""Thread policy: CPUs from affinity and cgroup quota, the GNTK_NUM_THREADS knob
(also the runtimes' default thread count), small work on one thread, the
OpenMP wait policy left to the user."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gntk_fast import _threads


def test_available_cpus_is_affinity_capped_by_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(_threads, "_cgroup_quota", lambda: None)
    assert _threads.available_cpus() == 4
    monkeypatch.setattr(_threads, "_cgroup_quota", lambda: 1.5)  # 150% of a CPU: two threads can run
    assert _threads.available_cpus() == 2
    monkeypatch.setattr(_threads, "_cgroup_quota", lambda: 0.25)
    assert _threads.available_cpus() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    monkeypatch.setattr(_threads, "_cgroup_quota", lambda: 8.0)
    assert _threads.available_cpus() == 1


def test_num_threads_knob(monkeypatch):
    monkeypatch.setattr(_threads, "available_cpus", lambda: 7)
    monkeypatch.delenv("GNTK_NUM_THREADS", raising=False)
    assert _threads.num_threads() == 7
    monkeypatch.setenv("GNTK_NUM_THREADS", "3")
    assert _threads.num_threads() == 3
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv("GNTK_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="GNTK_NUM_THREADS"):
            _threads.num_threads()


def test_threads_for_small_and_large_work(monkeypatch):
    monkeypatch.setattr(_threads, "num_threads", lambda: 5)
    assert _threads.threads_for(_threads.SMALL_WORK - 1) == 1
    assert _threads.threads_for(_threads.SMALL_WORK) == 5


def test_torch_threads_restores_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with _threads.torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def _env_after(code: str, env_extra: dict, var: str = "OMP_WAIT_POLICY") -> str:
    drop = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "GNTK_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", code + f"\nimport os; print(os.environ.get({var!r}, 'unset'))"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]




def test_spin_count_is_bounded_unless_the_user_chose_a_policy():
    from gntk_fast._threads import SPINCOUNT

    # imported first: the OpenMP runtime will read a short spin count
    assert _env_after("import gntk_fast", {}, "GOMP_SPINCOUNT") == str(SPINCOUNT)
    assert _env_after("import gntk_fast", {}) == "unset"  # no wait policy imposed
    # the user's choice wins, either knob
    assert _env_after("import gntk_fast", {"OMP_WAIT_POLICY": "PASSIVE"}, "GOMP_SPINCOUNT") == "unset"
    assert _env_after("import gntk_fast", {"OMP_WAIT_POLICY": "PASSIVE"}) == "PASSIVE"
    assert _env_after("import gntk_fast", {"GOMP_SPINCOUNT": "7"}, "GOMP_SPINCOUNT") == "7"
    # torch first: its runtime may already have read the environment, which is then left alone
    assert _env_after("import torch, gntk_fast", {}, "GOMP_SPINCOUNT") == "unset"



def test_wait_policy_names_the_knob_in_force(monkeypatch):
    from gntk_fast._threads import wait_policy

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    assert wait_policy() == "spin 10000"
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert wait_policy() == "PASSIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.delenv("GOMP_SPINCOUNT")
    assert wait_policy() == "default"


def test_prune_scores_small_models_on_one_thread(monkeypatch):
    import gntk_fast as gf
    from gntk_fast.pruning import core

    seen = []
    real = core._iterate

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "_iterate", spy)
    monkeypatch.setenv("GNTK_NUM_THREADS", "2")
    before = torch.get_num_threads()
    gf.prune(gf.MLP(16, 64, 2, seed=0), "synflow", 0.5, iterations=2, seed=0)
    assert seen == [1] and torch.get_num_threads() == before
    monkeypatch.setattr(core, "threads_for", lambda work: 2)  # large work: the knob's count
    gf.prune(gf.MLP(16, 64, 2, seed=0), "magnitude", 0.5, seed=0)
    assert seen[-1] == 2


def test_knob_becomes_the_runtimes_default_thread_count():
    assert _env_after("import gntk_fast", {"GNTK_NUM_THREADS": "1"}, "OMP_NUM_THREADS") == "1"
    assert _env_after("import gntk_fast", {"GNTK_NUM_THREADS": "1"}, "NUMBA_NUM_THREADS") == "1"
    assert _env_after("import gntk_fast, torch; print(torch.get_num_threads())", {"GNTK_NUM_THREADS": "1"},
                      "GNTK_NUM_THREADS") == "1"
    # an explicit OMP_NUM_THREADS wins; with no knob and no CPU restriction nothing is set
    assert _env_after("import gntk_fast", {"GNTK_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}, "OMP_NUM_THREADS") == "2"
    if _threads.available_cpus() == (os.cpu_count() or 1):
        assert _env_after("import gntk_fast", {}, "OMP_NUM_THREADS") == "unset"
