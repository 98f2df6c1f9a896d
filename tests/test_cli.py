"""The ``gntk-fast`` command line as a whole: light parsers, one default depth,
one-line user errors (exit 2), Ctrl-C (exit 130, no partial file), output
paths checked before any work, and atomic writes of every output file."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import gntk_fast.cli.info as info_cmd
from gntk_fast import plots
from gntk_fast._constants import DEFAULT_DEPTH
from gntk_fast.cli import build_parser, main
from gntk_fast.experiments.graphon_convergence import GraphonConvergence
from gntk_fast.graphon import sas, save_estimates
from gntk_fast.ops._registry import BackendError
from gntk_fast.pruning import PruneResult, load_masks

ROOT = Path(__file__).resolve().parents[1]


def _run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


# ----------------------------------------------------------------- parsers
def test_help_and_argument_errors_import_neither_torch_nor_numba():
    r = _run_python("""
        import contextlib, io, sys
        from gntk_fast.cli import main
        codes = []
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for argv in (["--help"], ["prune", "--help"], ["graphon", "--help"], ["gntk", "--help"],
                         ["info", "--help"], ["prune", "--method", "synflow", "--sparsity", "90"],
                         ["graphon", "--widths", "x", "--out", "o"], ["bogus"], []):
                codes.append(main(argv))
        print(codes, "torch" in sys.modules, "numba" in sys.modules)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[0,", "0,", "0,", "0,", "0,", "2,", "2,", "2,", "2]", "False", "False"]


def test_python_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "gntk_fast.cli", "prune", "--method", "random", "--sparsity", "50"],
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert "did you mean --sparsity 0.5?" in _one_line(r.stderr)


@pytest.mark.parametrize("command", ["info", "prune", "graphon", "gntk"])
def test_every_command_help_has_examples(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    assert text.count(f"gntk-fast {command} ") >= 2 or command == "info"


def test_one_default_depth_across_commands():
    p = build_parser()
    depths = {
        "prune": p.parse_args(["prune", "--method", "random", "--sparsity", "0.5"]).depth,
        "graphon": p.parse_args(["graphon", "--out", "o"]).depth,
        "gntk": p.parse_args(["gntk", "--out", "o"]).depth,
    }
    assert depths == {"prune": DEFAULT_DEPTH, "graphon": DEFAULT_DEPTH, "gntk": DEFAULT_DEPTH}


@pytest.mark.parametrize("argv, hint", [
    (["prune", "--method", "random", "--sparsity", "90"], "did you mean --sparsity 0.9?"),
    (["prune", "--method", "random", "--sparsity", "99.5"], "did you mean --sparsity 0.995?"),
    (["graphon", "--sparsity", "80", "--out", "o"], "did you mean --sparsity 0.8?"),
    (["prune", "--method", "random", "--sparsity", "1"], "1 would prune every weight"),
    (["prune", "--method", "random", "--sparsity", "-0.1"], "must be a fraction in [0, 1); got -0.1"),
    (["prune", "--method", "random", "--sparsity", "nan"], "must be a fraction in [0, 1); got nan"),
    (["prune", "--method", "random", "--sparsity", "half"], "expected a fraction in [0, 1); got 'half'"),
])
def test_sparsity_must_be_a_fraction(argv, hint, capsys):
    assert main(argv) == 2
    err = _one_line(capsys.readouterr().err)
    assert hint in err and "--sparsity" in err


# ------------------------------------------------------------- user errors
@pytest.mark.parametrize("exc", [
    ValueError("width must be >= 1;\n got 0"),
    TypeError("seed must be an int"),
    FileNotFoundError(2, "No such file or directory", "x.npz"),
    IsADirectoryError(21, "Is a directory", "d"),
    FileExistsError(17, "File exists", "f"),
    PermissionError(13, "Permission denied", "p"),
    NotADirectoryError(20, "Not a directory", "n/x"),
    OSError(28, "No space left on device"),
    zipfile.BadZipFile("File is not a zip file"),
    EOFError("unexpected end of data"),
    BackendError("backend 'triton' cannot serve this call: no CUDA device"),
])
def test_user_errors_exit_2_with_one_line(monkeypatch, capsys, exc):
    def boom(args):
        raise exc

    monkeypatch.setattr(info_cmd, "run", boom)
    assert main(["info"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("gntk-fast info: error: ")
    assert str(exc).split()[0] in err


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(info_cmd, "run", interrupted)
    assert main(["info"]) == 130
    assert capsys.readouterr().err == "gntk-fast info: interrupted\n"


def test_programming_errors_are_not_swallowed(monkeypatch):
    def bug(args):
        raise AttributeError("internal")

    monkeypatch.setattr(info_cmd, "run", bug)
    with pytest.raises(AttributeError):
        main(["info"])


# ---------------------------------------------- --out checked before work
def _forbid(monkeypatch, *targets):
    def fail(*args, **kwargs):
        raise AssertionError("work started before --out was checked")

    for t in targets:
        module, _, name = t.rpartition(".")
        monkeypatch.setattr(importlib.import_module(module), name, fail)


def test_prune_checks_out_before_pruning(tmp_path, monkeypatch, capsys):
    _forbid(monkeypatch, "gntk_fast.models.fc", "gntk_fast.models.MLP", "gntk_fast.pruning.prune")
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "m.npz").mkdir()
    (tmp_path / "r.json").mkdir()
    base = ["prune", "--method", "random", "--sparsity", "0.5"]
    for out, msg in [(tmp_path / "file.txt" / "m.npz", "is a file, not a directory"),
                     (tmp_path / "dir", "is a directory"),
                     (tmp_path / "m", "m.npz is a directory"),
                     (tmp_path / "r.npz", "r.json is a directory")]:
        assert main(base + ["--out", str(out)]) == 2
        assert msg in _one_line(capsys.readouterr().err)


def test_graphon_and_gntk_check_out_before_work(tmp_path, monkeypatch, capsys):
    _forbid(monkeypatch, "gntk_fast.experiments.graphon_convergence.graphon_convergence",
            "gntk_fast.pruning.load_masks", "gntk_fast.cli.gntk.named_graphon",
            "gntk_fast.cli.gntk.graphons_from_estimates")
    f = tmp_path / "file.txt"
    f.write_text("x")
    for argv in (["graphon", "--out", str(f)], ["graphon", "--masks", "m.npz", "--out", str(f)],
                 ["graphon", "--out", str(f / "sub")], ["gntk", "--out", str(f)],
                 ["gntk", "--estimates", "e.npz", "--out", str(f / "sub")]):
        assert main(argv) == 2, argv
        assert "--out" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------ atomic writes
def _partial_writer(exc):
    """A stand-in for np.savez[_compressed] that writes some bytes, then fails."""
    def write(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise exc

    return write


def _result() -> PruneResult:
    g = torch.Generator().manual_seed(0)
    masks = [torch.rand(6, 4, generator=g) < 0.5, torch.rand(3, 6, generator=g) < 0.5]
    return PruneResult(masks=masks, names=["0", "2"], scores=[], history=[], config={"density": 0.5})


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_library_writers_leave_no_partial_file(tmp_path, monkeypatch, exc):
    res = _result()
    good = res.save_npz(tmp_path / "keep.npz")
    before = good.read_bytes()
    gc = GraphonConvergence(
        ["random"], [4], [1], np.zeros((1, 1, 1, 2, 2)), None, np.zeros((1, 1, 2, 3)), np.zeros((1, 1, 3)),
        np.array([[0, 0.5, 1.0]]), *(np.zeros((1, 1, 1)),) * 3, np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1)),
        np.zeros((1, 1, 1), bool), np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), np.zeros((1, 1, 1, 5)), {},
    )
    est = sas(np.eye(4, dtype=bool), 2)
    monkeypatch.setattr(np, "savez_compressed", _partial_writer(exc))
    monkeypatch.setattr(np, "savez", _partial_writer(exc))
    for write in (lambda: res.save_npz(tmp_path / "m.npz"), lambda: res.save_npz(good),
                  lambda: save_estimates([est], tmp_path / "e.npz"), lambda: gc.to_npz(tmp_path / "g.npz")):
        with pytest.raises(type(exc)):
            write()
    assert good.read_bytes() == before  # an interrupted overwrite keeps the old file

    def partial_text(self, text, *a, **k):
        with open(self, "w") as fh:
            fh.write(text[:5])
        raise exc

    monkeypatch.setattr(Path, "write_text", partial_text)
    for write in (lambda: res.save_report(tmp_path / "r.json"), lambda: gc.to_json(tmp_path / "s.json")):
        with pytest.raises(type(exc)):
            write()
    fig, _ = plots.new_figure()

    def partial_png(path, **kwargs):
        Path(path).write_bytes(b"\x89PNG partial")
        raise exc

    monkeypatch.setattr(fig, "savefig", partial_png)
    with pytest.raises(type(exc)):
        plots.save_figure(fig, tmp_path / "f.png")
    assert _files(tmp_path) == ["keep.npz"]


def test_library_writers_round_trip(tmp_path):
    res = _result()
    p = res.save_npz(tmp_path / "m")
    assert p == tmp_path / "m.npz"
    assert [torch.equal(a, b) for a, b in zip(load_masks(p), res.masks)] == [True, True]
    rep = json.loads(res.save_report(tmp_path / "m.json").read_text())
    assert rep["total"]["kept"] == sum(int(m.sum()) for m in res.masks)
    fig, _ = plots.new_figure()
    assert plots.save_figure(fig, tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert _files(tmp_path) == ["f.png", "m.json", "m.npz"]


def test_prune_ctrl_c_while_writing_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(np, "savez_compressed", _partial_writer(KeyboardInterrupt()))
    out = tmp_path / "runs" / "m.npz"
    rc = main(["prune", "--method", "random", "--sparsity", "0.5", "--width", "8", "--depth", "1", "--quiet",
               "--out", str(out)])
    assert rc == 130
    assert capsys.readouterr().err == "gntk-fast prune: interrupted\n"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_prune_ctrl_c_during_work_writes_nothing(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("gntk_fast.pruning.prune", interrupted)
    rc = main(["prune", "--method", "random", "--sparsity", "0.5", "--width", "8", "--depth", "1",
               "--out", str(tmp_path / "m.npz")])
    assert rc == 130 and _one_line(capsys.readouterr().err) == "gntk-fast prune: interrupted\n"
    assert _files(tmp_path) == []


def test_gntk_ctrl_c_while_writing_metrics(tmp_path, monkeypatch, capsys):
    real = Path.write_text

    def partial_text(self, text, *a, **k):
        if "metrics" in self.name:
            real(self, text[:10])
            raise KeyboardInterrupt
        return real(self, text, *a, **k)

    monkeypatch.setattr(Path, "write_text", partial_text)
    out = tmp_path / "o"
    rc = main(["gntk", "--graphons", "constant:0.5", "--depth", "1", "--n", "6", "--K", "8", "--out", str(out)])
    assert rc == 130
    assert capsys.readouterr().err == "gntk-fast gntk: interrupted\n"
    assert _files(tmp_path) == ["o", "o/spectrum.png"]  # the figure is complete; no partial metrics.json
    assert (out / "spectrum.png").read_bytes()[:4] == b"\x89PNG"
