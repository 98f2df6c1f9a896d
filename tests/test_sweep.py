"""Sweeps (gntk_fast.sweep): config validation, ids, a two-worker LocalCluster run,
failures, resumption after SIGKILL, partial files, the CLI."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

import gntk_fast  # noqa: E402
from gntk_fast import sweep  # noqa: E402
from gntk_fast.cli import main  # noqa: E402
from gntk_fast.sweep.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _grid(**over):
    g = {"kinds": ["masks_sas"], "methods": ["random", "magnitude"], "widths": [32], "trials": 2}
    g.update(over)
    return {"grid": g, "settings": {"K": 8, "seed": 0}}


def _rows(table) -> list[tuple]:
    """Rows without the wall time, sorted (order-free comparison)."""
    cols = [c for c in table.column_names if c != "seconds"]
    d = table.select(cols).to_pylist()
    return sorted((tuple((k, r[k]) for k in cols) for r in d), key=repr)


# ----------------------------------------------------------------- config
def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("text, key", [
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[0]\n', "grid.widths"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\nwidth=[3]\n', "grid.width"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["rand"]\nwidths=[32]\n', "grid.methods"),
    ('[grid]\nkinds=["sas"]\nmethods=["random"]\nwidths=[32]\n', "grid.kinds"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\n', "grid.widths"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\ntrials=0\n', "grid.trials"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32, 32]\n', "grid.widths"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\nsparsities=[1.5]\n', "grid.sparsities"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\n[settings]\nK=64\n', "settings.K"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\n[settings]\nKK=4\n', "settings.KK"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\n[settings]\nwidth=4\n', "settings.width"),
    ('[grid]\nkinds=["entk_metrics"]\nmethods=["random"]\nwidths=[32]\n[settings.entk_metrics]\nn_samples=1\n',
     "settings.entk_metrics.n_samples"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\n[settings.entk_metrics]\nn_samples=8\n',
     "settings.entk_metrics"),
    ('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\n[run]\nx=1\n', "run"),
    ('[settings]\nK=4\n', "grid"),
])
def test_bad_config_names_the_key(tmp_path, text, key):
    p = _write(tmp_path, text)
    with pytest.raises((ValueError, TypeError)) as e:
        sweep.read_config(p)
    assert f"key '{key}'" in str(e.value) and str(p) in str(e.value)


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="not valid TOML"):
        sweep.read_config(_write(tmp_path, "[grid\n"))
    with pytest.raises(FileNotFoundError):
        sweep.read_config(tmp_path / "none.toml")


def test_expand_and_ids(monkeypatch):
    cfg = sweep.parse_config(_grid(widths=[32, 48], sparsities=[0.5, 0.9]))
    tasks = sweep.expand(cfg)
    assert len(tasks) == 2 * 2 * 2 * 2 and len({t for t, _ in tasks}) == 16
    assert tasks[0][1]["method"] == "random" and tasks[0][1]["width"] == 32 and tasks[1][1]["trial"] == 1
    tid, c = tasks[0]
    assert tid == sweep.task_id(dict(c)) and len(tid) == 16
    assert sweep.task_id({**c, "data_dir": "/elsewhere"}) == tid  # a location is not a content
    assert sweep.task_id({**c, "K": 4}) != tid
    monkeypatch.setattr(gntk_fast, "__version__", "9.9.9")
    assert sweep.task_id(c) != tid  # a new version recomputes


# ----------------------------------------------------------------- runs
def test_two_worker_local_cluster_matches_inline(tmp_path):
    cfg = _grid(kinds=["masks_sas", "entk_metrics"])
    cfg["settings"]["n_samples"] = 8
    env = dict(os.environ)
    rep = sweep.run(cfg, tmp_path / "d", workers=2, progress=False)
    assert dict(os.environ) == env  # the cluster's worker settings (OMP_NUM_THREADS=1, ...) do not leak
    assert (rep.total, rep.done, rep.failed, rep.scheduler) == (8, 8, 0, "local:2")
    st = sweep.status(tmp_path / "d")
    assert (st.total, st.done, st.pending, st.failed) == (8, 8, 0, [])
    assert st.by_kind == {"masks_sas": (4, 4), "entk_metrics": (4, 4)}
    t = sweep.load(tmp_path / "d")
    # masks_sas: 4 masks per task; entk_metrics: 4 layers + the network row
    assert t.num_rows == 4 * 4 + 4 * 5
    assert set(t.column_names) >= {"task_id", "kind", "method", "width", "trial", "layer", "density", "alpha"}
    ref = sweep.run(cfg, tmp_path / "inline", scheduler="inline", progress=False)
    assert ref.done == 8
    assert _rows(t) == _rows(sweep.load(tmp_path / "inline"))
    # the arrays of a task are its task function's
    tid = t.column("task_id")[0].as_py()
    z = np.load(tmp_path / "d" / "tasks" / f"{tid}.npz", allow_pickle=False)
    assert set(z.files) >= {"input_H", "H_layer1", "H_layer2"}
    again = sweep.run(cfg, tmp_path / "d", workers=2, progress=False)
    assert (again.skipped, again.done, again.scheduler) == (8, 0, "none")  # nothing started


def test_failed_task_recorded_and_sweep_goes_on(tmp_path):
    cfg = _grid(kinds=["masks_sas", "entk_metrics"], methods=["random"], trials=1)
    cfg["settings"].update(data="mnist", data_dir=str(tmp_path / "no_mnist"))
    rep = sweep.run(cfg, tmp_path / "d", scheduler="inline", progress=False)
    assert (rep.done, rep.failed) == (0, 2)
    st = sweep.status(tmp_path / "d")
    assert st.done == 0 and len(st.failed) == 2 and st.pending == 0
    assert all("FileNotFoundError" in f["error"] and "MNIST" in f["error"] for f in st.failed)
    assert "2 failed" in st.summary() and "FAILED" in st.summary()
    # one failing kind among good ones: the good ones finish
    good = _grid(methods=["random"], trials=1)
    rep = sweep.run(good, tmp_path / "d2", scheduler="inline", progress=False)
    assert rep.done == 1


def test_partial_files_ignored_and_redone(tmp_path):
    cfg = sweep.parse_config(_grid())
    d = tmp_path / "d"
    sweep.run(cfg, d, scheduler="inline", progress=False)
    full = _rows(sweep.load(d))
    tasks = sweep.expand(cfg)
    store = Store(d)
    t0, t1 = tasks[0][0], tasks[1][0]
    # a truncated rows file (as a non-atomic writer killed mid-write would leave)
    data = store.rows_path(t0).read_bytes()
    store.rows_path(t0).write_bytes(data[: len(data) // 2])
    # a temporary file of a killed write and a missing arrays file
    (store.tasks / f".{t1}.parquet.123-abcd.tmp.parquet").write_bytes(b"PAR1 partial")
    store.arrays_path(t1).unlink()
    assert sweep.status(d).done == 2
    with open(d / "events.jsonl", "a") as fh:  # an event line cut by a kill
        fh.write('{"id": "abc", "ev')
    n_events = len(store.events())
    rep = sweep.run(cfg, d, scheduler="inline", progress=False)
    assert (rep.skipped, rep.done) == (2, 2)
    assert not list(store.tasks.glob(".*tmp*"))
    assert _rows(sweep.load(d)) == full
    redone = [e["id"] for e in store.events()[n_events:]]
    assert sorted(redone) == sorted([t0, t1])


def test_finished_task_without_event_is_logged_once_as_recovered(tmp_path):
    # a run killed after a task's rows file was renamed into place but before its event line
    cfg = sweep.parse_config(_grid())
    d = tmp_path / "d"
    sweep.run(cfg, d, scheduler="inline", progress=False)
    store = Store(d)
    lost = sweep.expand(cfg)[0][0]
    lines = (d / "events.jsonl").read_text().splitlines(keepends=True)
    (d / "events.jsonl").write_text("".join(ln for ln in lines if f'"{lost}"' not in ln))
    for _ in range(2):  # the second resume finds the event and adds nothing
        rep = sweep.run(cfg, d, scheduler="inline", progress=False)
        assert rep.done == 0 and rep.skipped == rep.total
        done = [e for e in store.events() if e["event"] == "done"]
        assert sorted(e["id"] for e in done) == sorted(t for t, _ in sweep.expand(cfg))
        assert [e["id"] for e in done if e.get("recovered")] == [lost]


KILL_CONFIG = """\
[grid]
kinds = ["masks_sas"]
methods = ["random", "synflow"]
widths = [48]
trials = 12

[settings]
K = 8
iterations = 60
"""


@pytest.mark.slow
def test_sigkill_midway_then_resume_equals_uninterrupted(tmp_path):
    cfg_path = tmp_path / "kill.toml"
    cfg_path.write_text(KILL_CONFIG)
    d = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "gntk_fast.cli", "sweep", str(cfg_path), "--out", str(d), "--workers", "2",
           "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and len([p for p in (d / "tasks").glob("*.parquet")
                                              if not p.name.startswith(".")]) < 4:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its worker processes, at once
        proc.wait()
    total = 24
    st = sweep.status(d)
    assert 4 <= st.done < total, st.summary()
    first = {e["id"] for e in Store(d).events() if e["event"] == "done"}
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{st.done} already done" in r.stdout
    st2 = sweep.status(d)
    assert (st2.done, st2.failed) == (total, [])
    done_events = [e["id"] for e in Store(d).events() if e["event"] == "done"]
    assert len(done_events) == len(set(done_events)) == total  # nothing done twice
    assert first <= set(done_events)
    ref = tmp_path / "ref"
    sweep.run(cfg_path, ref, scheduler="inline", progress=False)
    killed, clean = sweep.load(d), sweep.load(ref)
    assert killed.num_rows == clean.num_rows == total * 4
    assert _rows(killed) == _rows(clean)
    ids = killed.column("task_id").to_pylist()
    assert all(ids.count(i) == 4 for i in set(ids))  # none twice


# ----------------------------------------------------------------- CLI
def test_cli_run_status_and_errors(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\ntrials=2\n[settings]\nK=8\n')
    assert main(["sweep", str(p), "--out", str(tmp_path / "d"), "--scheduler", "inline", "--no-progress"]) == 0
    assert "2 done, 0 failed" in capsys.readouterr().out
    assert main(["sweep", "--status", str(tmp_path / "d")]) == 0
    assert capsys.readouterr().out.startswith("2 / 2 tasks done, 0 failed, 0 pending")
    bad = tmp_path / "bad.toml"
    bad.write_text('[grid]\nkinds=["masks_sas"]\nmethods=["random"]\nwidths=[32]\n[settings]\nK=99\n')
    assert main(["sweep", str(bad), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "key 'settings.K'" in err and "Traceback" not in err
    assert not (tmp_path / "e").exists()  # rejected before anything is written
    assert main(["sweep", str(p)]) == 2
    assert main(["sweep", "--status", str(tmp_path / "nothing")]) == 2
    assert main(["sweep", str(p), "--out", str(tmp_path / "f"), "--workers", "0"]) == 2
    capsys.readouterr()


def test_import_and_help_do_not_import_dask():
    code = ("import sys, contextlib, io\nimport gntk_fast\nfrom gntk_fast.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    rc = main(['sweep', '--help'])\n"
            "print(rc, [m for m in ('dask', 'distributed', 'torch', 'pyarrow') if m in sys.modules])")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["0", "[]"], r.stdout + r.stderr
