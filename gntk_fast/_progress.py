"""Progress bars for long calls: one policy for the whole package.

``progress=None`` (the default of every public function that takes it)
shows a tqdm bar on a terminal only once the work has run for
:data:`DELAY` seconds, so short calls print nothing and long ones are never
silent; ``True`` shows it at once (also off a terminal), ``False`` never.
"""
from __future__ import annotations

from typing import Any, Iterable

from tqdm.auto import tqdm

from ._validation import check_bool

__all__ = ["DELAY", "progress_bar", "check_progress"]

#: seconds of work before a default (``progress=None``) bar appears
DELAY = 2.0


def check_progress(progress: Any) -> bool | None:
    """``progress`` must be None or a bool (TypeError naming ``progress``)."""
    return None if progress is None else check_bool("progress", progress)


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str, progress: bool | None = None,
                 unit: str = "it", leave: bool = False, initial: int = 0) -> tqdm:
    """A tqdm bar following the package's policy (module docstring)."""
    if progress is None:
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, initial=initial, disable=None,
                    delay=DELAY)
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, initial=initial, disable=not progress)
