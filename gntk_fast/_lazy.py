"""Lazy package attributes: a package's public names imported from their modules on first use.

A package lists ``{name: module}`` and binds the pair this module returns as
its ``__getattr__`` and ``__dir__``; ``import gntk_fast.<package>`` then
imports none of the modules behind the names until one is used, and a used
name is cached in the package's namespace.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Iterable, Mapping

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, names: Mapping[str, str], submodules: Iterable[str] = (),
                    moved: Mapping[str, str] | None = None) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps each public name
    to the module defining it; ``submodules`` are reachable as attributes too;
    ``moved`` maps names that used to live here to their new package, named in
    the AttributeError (nothing is imported from there).

    Examples
    --------
    >>> import types, sys
    >>> pkg = types.ModuleType("demo_pkg"); sys.modules["demo_pkg"] = pkg
    >>> pkg.__getattr__, pkg.__dir__ = lazy_attributes("demo_pkg", {"sqrt": "math"})
    >>> pkg.sqrt(4.0), "sqrt" in dir(pkg)
    (2.0, True)
    """
    subs = frozenset(submodules)
    moved = dict(moved or {})

    def __getattr__(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f"{package}.{name}")
        if name in moved:
            raise AttributeError(f"module {package!r} has no attribute {name!r}: it moved to {moved[name]}.{name}")
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names) | subs)

    return __getattr__, __dir__
