"""The package's import graph points down only.

Every ``import`` of every module (module level and inside functions) is read
with :mod:`ast`. Layers, lowest first:

0. core: the top-level private modules (``gntk_fast._validation``, ``_io``,
   ``_threads``, ...), ``gntk_fast.activations`` and the package itself;
1. ``gntk_fast.ops`` (the kernels and their registry);
2. the library: ``models``, ``pruning``, ``ntk``, ``graphon``, ``training``,
   ``spectral``, ``data``, ``plots``;
3. ``pai``, the theory of pruning-at-initialisation masks (it uses the pruners,
   the graphon toolkit and the kernels);
4. ``experiments`` and ``sweep``;
5. ``cli`` (and ``gntk_fast.__main__``, its ``python -m`` entry point).

Checked: no module imports a higher layer; no import cycle between modules;
no cycle between the packages of one layer; no module imports another
package's private module (``pkg/_name``; the core's private modules are
shared by design).
"""
from __future__ import annotations

import ast
import collections
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "gntk_fast"

LAYERS = {
    "core": 0,
    "ops": 1,
    "models": 2, "pruning": 2, "ntk": 2, "graphon": 2, "training": 2, "spectral": 2, "data": 2, "plots": 2,
    "pai": 3,
    "experiments": 4, "sweep": 4,
    "cli": 5,
}
CORE = {"activations"}  # public top-level modules of the core layer

#: known edges waiting for their fix, each (importer prefix, imported prefix)
ALLOWED: set[tuple[str, str]] = set()
#: known imports of another package's private module, waiting for their fix
PRIVATE_PENDING: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The gntk_fast modules ``name`` imports (a ``from X import y`` names X.y when that is a module)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: None if is_pkg else -1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        for t in targets:
            if not t.startswith("gntk_fast"):
                continue
            while t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def _unit(module: str) -> str:
    """The layer unit of a module: its subpackage / top-level module, or "core"."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "__main__":  # ``python -m gntk_fast``: the command line's entry point
        return "cli"
    if len(parts) == 1 or parts[1].startswith("_") or parts[1] in CORE:
        return "core"
    return parts[1]


def _allowed(a: str, b: str) -> bool:
    return any(a.startswith(x) and b.startswith(y) for x, y in ALLOWED)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_every_module_has_a_layer():
    units = {_unit(m) for m in _graph()}
    assert units <= set(LAYERS), f"modules outside every layer: {sorted(units - set(LAYERS))}"


def test_no_upward_import():
    bad = [f"{a} -> {b}" for a, deps in _graph().items() for b in deps
           if LAYERS[_unit(b)] > LAYERS[_unit(a)] and not _allowed(a, b)]
    assert not bad, "imports pointing up the layers:\n" + "\n".join(sorted(bad))


def test_no_import_cycle_between_modules():
    assert not _cycles(_graph())


def test_no_cycle_between_packages_of_a_layer():
    pkg = collections.defaultdict(set)
    for a, deps in _graph().items():
        for b in deps:
            if _unit(a) != _unit(b) and not _allowed(a, b):
                pkg[_unit(a)].add(_unit(b))
    assert not _cycles(dict(pkg))


def test_no_private_module_of_another_package():
    bad = []
    for a, deps in _graph().items():
        for b in deps:
            private = [p for p in b.split(".")[2:] if p.startswith("_")]
            if private and _unit(b) != "core" and _unit(a) != _unit(b) and (a, b) not in PRIVATE_PENDING:
                bad.append(f"{a} -> {b}")
    assert not bad, "private modules imported across packages:\n" + "\n".join(sorted(bad))


def test_the_checks_can_fail():
    """The rules catch what they are for (a synthetic graph, not the package)."""
    up = {"gntk_fast.ops.x": {"gntk_fast.graphon.y"}, "gntk_fast.graphon.y": set()}
    assert [f"{a} -> {b}" for a, d in up.items() for b in d if LAYERS[_unit(b)] > LAYERS[_unit(a)]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    pai_down = {"gntk_fast.graphon.x": {"gntk_fast.pai.limit"}, "gntk_fast.pai.limit": set()}
    assert [f"{a} -> {b}" for a, d in pai_down.items() for b in d if LAYERS[_unit(b)] > LAYERS[_unit(a)]]
