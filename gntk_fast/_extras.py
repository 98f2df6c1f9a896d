"""Optional dependencies: one clear error naming the extra to install.

Parts of gntk_fast need packages that plain ``pip install gntk_fast`` does
not bring: the sweep runner (``dask[distributed]``, ``pyarrow``: extra
``sweep``), Parquet tables (``pyarrow``: ``tables``), TV smoothing
(``scikit-image``: ``smooth``), the CUDA kernels (``triton``: ``cuda``).
:func:`require` imports such a module or raises :class:`MissingExtraError`
saying which extra provides it.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the pip extra that installs it."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """``importlib.import_module(module)``, or MissingExtraError naming ``extra``.

    Examples
    --------
    >>> from gntk_fast._extras import require
    >>> require("json", "none", "the JSON writer").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingExtraError(
            f"{what} needs the package {top!r}, which is not installed ({exc}); "
            f"install it with: pip install \"gntk_fast[{extra}]\""
        ) from None
