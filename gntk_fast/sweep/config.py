"""Sweep configs: the TOML file, its validation and its expansion into tasks.

A sweep config is a TOML file (read with :mod:`tomllib`) with two tables::

    [grid]                       # the axes; every combination is one task
    kinds = ["masks_sas", "entk_metrics"]   # task kinds (gntk_fast.experiments.tasks.KINDS)
    methods = ["random", "synflow"]         # pruning methods ("graphon" with source = "packed")
    widths = [64, 128]
    sparsities = [0.9]           # default [0.9]
    depths = [3]                 # default [3]
    scopes = ["global"]          # default ["global"]
    trials = 2                   # trials 0..trials-1 (default 1)

    [settings]                   # fixed task keys for every task (tasks.DEFAULTS)
    seed = 0
    data = "digits"
    K = 16
    [settings.entk_metrics]      # optional overrides for one kind
    n_samples = 32

Every task is a config dict for :func:`gntk_fast.experiments.tasks.run_task`
(validated by :func:`~gntk_fast.experiments.tasks.check_task_config`); its id
(:func:`task_id`) is the first 16 hex digits of the SHA-256 of the validated
config (without ``data_dir``, a location, not a content) as canonical JSON
together with the package version, so a rerun recognises finished tasks and a
new version recomputes them. Errors name the TOML key (``grid.widths``,
``settings.K``, ``settings.entk_metrics.n_samples``) and the file.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

__all__ = ["GRID_KEYS", "MAX_TASKS", "SweepConfig", "read_config", "parse_config", "expand", "task_id", "count_tasks"]

#: tasks one sweep may hold: the grid is counted (and refused above this) before it is expanded
MAX_TASKS = 100_000

#: grid key -> (task key, default)
GRID_KEYS: dict[str, tuple[str, Any]] = {
    "kinds": ("kind", None),
    "methods": ("method", None),
    "widths": ("width", None),
    "sparsities": ("sparsity", [0.9]),
    "depths": ("depth", [3]),
    "scopes": ("scope", ["global"]),
    "trials": ("trial", 1),
}
_TOP = ("grid", "settings")


class SweepConfig(dict):
    """A validated sweep config: ``{"grid": {...}, "settings": {...}}`` plus
    ``source`` (the file it came from, or "<dict>")."""

    source: str = "<dict>"


def _err(where: str, key: str, msg: str) -> ValueError:
    return ValueError(f"{where}: key {key!r}: {msg}")


def read_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep TOML file (ValueError naming the file and the key)."""
    import tomllib

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"sweep config {p} does not exist")
    if p.is_dir():
        raise ValueError(f"sweep config {p} is a directory, not a TOML file")
    try:
        with open(p, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"sweep config {p} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"sweep config {p} is not UTF-8 text: {exc}") from None
    return parse_config(raw, source=str(p))


def parse_config(raw: dict[str, Any], source: str = "<dict>") -> SweepConfig:
    """Validate a sweep config given as a dict (the TOML's tables); every task of
    the grid is checked, so a returned config expands without error."""
    from ..experiments.tasks import DEFAULTS, KINDS

    where = f"sweep config {source}"
    if not isinstance(raw, dict):
        raise TypeError(f"{where}: must be a table of tables; got {type(raw).__name__}")
    for k in raw:
        if k not in _TOP:
            raise _err(where, k, f"unknown table (known: {', '.join(_TOP)})")
    grid = raw.get("grid")
    if not isinstance(grid, dict):
        raise _err(where, "grid", "the [grid] table is required")
    settings = raw.get("settings", {})
    if not isinstance(settings, dict):
        raise _err(where, "settings", "must be a table")
    for k in grid:
        if k not in GRID_KEYS:
            raise _err(where, f"grid.{k}", f"unknown key (known: {', '.join(GRID_KEYS)})")
    g: dict[str, Any] = {}
    for k, (task_key, default) in GRID_KEYS.items():
        v = grid.get(k, default)
        if v is None:
            raise _err(where, f"grid.{k}", "required")
        if k == "trials":
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_TASKS:
                raise _err(where, "grid.trials", f"must be an int in [1, {MAX_TASKS}] (the number of trials); got {v!r}")
        else:
            if not isinstance(v, list) or not v:
                raise _err(where, f"grid.{k}", f"must be a non-empty list; got {v!r}")
            if len({json.dumps(x, sort_keys=True) for x in v}) != len(v):
                raise _err(where, f"grid.{k}", f"has repeated values: {v!r}")
        g[k] = v
    s: dict[str, Any] = {}
    per_kind: dict[str, dict[str, Any]] = {}
    grid_task_keys = {tk for tk, _ in GRID_KEYS.values()}
    for k, v in settings.items():
        if k in KINDS:
            if not isinstance(v, dict):
                raise _err(where, f"settings.{k}", "must be a table of task keys")
            for kk in v:
                if kk not in DEFAULTS or kk in grid_task_keys:
                    raise _err(where, f"settings.{k}.{kk}", _unknown_setting(kk, grid_task_keys))
            per_kind[k] = dict(v)
        elif k not in DEFAULTS or k in grid_task_keys:
            raise _err(where, f"settings.{k}", _unknown_setting(k, grid_task_keys))
        else:
            s[k] = v
    for k in per_kind:
        if k not in g["kinds"]:
            raise _err(where, f"settings.{k}", f"overrides a kind that is not in grid.kinds {g['kinds']}")
    out = SweepConfig(grid=g, settings=s, per_kind=per_kind)
    out.source = source
    n, sizes = _count(g)
    if n > MAX_TASKS:
        raise _err(where, "grid", f"spans {n:,} tasks ({sizes}), more than {MAX_TASKS:,}: "
                                  "split the sweep or shrink an axis")
    for cfg in _combinations(out):  # every task validated now, errors mapped to TOML keys
        _check(cfg, out, where)
    return out


def _unknown_setting(k: str, grid_task_keys: set[str]) -> str:
    if k in grid_task_keys:
        plural = next(g for g, (tk, _) in GRID_KEYS.items() if tk == k)
        return f"is a grid axis: set grid.{plural} instead"
    from ..experiments.tasks import DEFAULTS

    return f"unknown task setting (known: {', '.join(k for k in DEFAULTS if k not in grid_task_keys)})"


def _count(g: dict[str, Any]) -> tuple[int, str]:
    lens = {k: (g[k] if k == "trials" else len(g[k])) for k in GRID_KEYS}
    return math.prod(lens.values()), " x ".join(f"{v} {k}" for k, v in lens.items())


def count_tasks(cfg: SweepConfig) -> int:
    """The number of tasks of the grid (the product of its axes' lengths), counted without expanding it.

    Examples
    --------
    >>> from gntk_fast.sweep import count_tasks, parse_config
    >>> cfg = parse_config({"grid": {"kinds": ["masks_sas"], "methods": ["random"], "widths": [16, 32], "trials": 3}})
    >>> count_tasks(cfg)
    6
    """
    return _count(cfg["grid"])[0]


def _combinations(cfg: SweepConfig):
    g = cfg["grid"]
    axes = [g["kinds"], g["methods"], g["widths"], g["sparsities"], g["depths"], g["scopes"], range(g["trials"])]
    for kind, method, width, sp, depth, scope, trial in itertools.product(*axes):
        yield {**cfg["settings"], **cfg["per_kind"].get(kind, {}), "kind": kind, "method": method, "width": width,
               "sparsity": sp, "depth": depth, "scope": scope, "trial": trial}


_KEY_RE = re.compile(r"^config key '([^']+)': (.*)$", re.S)


def _check(task: dict[str, Any], cfg: SweepConfig, where: str) -> dict[str, Any]:
    from ..experiments.tasks import check_task_config

    try:
        return check_task_config(task)
    except (ValueError, TypeError) as exc:
        m = _KEY_RE.match(str(exc))
        if not m:
            raise type(exc)(f"{where}: {exc}") from None
        key, msg = m.groups()
        toml_key = next((f"grid.{g}" for g, (tk, _) in GRID_KEYS.items() if tk == key), None)
        if toml_key is None:
            kind = task["kind"]
            toml_key = f"settings.{kind}.{key}" if key in cfg["per_kind"].get(kind, {}) else f"settings.{key}"
        raise type(exc)(f"{where}: key {toml_key!r}: {msg} (task kind={task['kind']}, method={task['method']}, "
                        f"width={task['width']})") from None


def task_id(config: dict[str, Any]) -> str:
    """16 hex digits: SHA-256 of the validated config (less ``data_dir``) and the package version."""
    from .. import __version__

    cfg = {k: v for k, v in sorted(config.items()) if k != "data_dir"}
    blob = json.dumps({"config": cfg, "version": __version__}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def expand(cfg: SweepConfig) -> list[tuple[str, dict[str, Any]]]:
    """``[(task id, validated task config), ...]`` in grid order (kinds, methods,
    widths, sparsities, depths, scopes, trials; the last varies fastest)."""
    where = f"sweep config {cfg.source}"
    out = []
    seen = set()
    for task in _combinations(cfg):
        c = _check(task, cfg, where)
        tid = task_id(c)
        if tid not in seen:
            seen.add(tid)
            out.append((tid, c))
    return out
