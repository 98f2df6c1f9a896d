"""Files: atomic writes and safe .npz reading.

* :func:`atomic_path` yields a temporary name in the target's directory; the
  file appears under its real name (``os.replace``) only when the block
  finishes, so an interrupted write (an exception, Ctrl-C) never leaves a
  partial file, and the temporary one is removed.
* :func:`load_npz` reads an ``.npz`` with ``allow_pickle=False`` and turns
  every way a file can be unreadable (missing, a directory, empty, truncated,
  corrupt, not a zip, holding pickled objects) into one ``ValueError`` (or
  ``FileNotFoundError``) that names the file.
"""
from __future__ import annotations

import contextlib
import os
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["atomic_path", "save_npz", "write_text", "load_npz", "check_output_path"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Context manager: write to the yielded temporary path; on success it is
    renamed to ``path`` (parents created), on any exception removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def save_npz(path: str | Path, arrays: dict[str, Any], *, compressed: bool = True) -> Path:
    """``np.savez[_compressed]`` to ``path`` atomically (no pickled objects: every
    value must be a plain array)."""
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise TypeError(f"{k}: object arrays cannot be saved (no pickling)")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            (np.savez_compressed if compressed else np.savez)(fh, **arrays)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def load_npz(path: str | Path, what: str = "file") -> dict[str, np.ndarray]:
    """All arrays of an .npz file as a dict (loaded eagerly, ``allow_pickle=False``).

    Raises FileNotFoundError when ``path`` does not exist and ValueError naming
    the file for anything else that makes it unreadable; ``what`` says what
    the file should have been ("masks file", ...).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{what} {p} does not exist")
    if p.is_dir():
        raise ValueError(f"{what} {p} is a directory, not an .npz file")
    if p.stat().st_size == 0:
        raise ValueError(f"{what} {p} is empty (0 bytes)")
    if not zipfile.is_zipfile(p):
        raise ValueError(f"{what} {p} is not an .npz archive (not a zip file)")
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ValueError(f"{what} {p} holds pickled objects, which are never loaded; "
                             "only plain numeric/bool/string arrays are accepted") from None
        raise ValueError(f"{what} {p} cannot be read: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, zipfile.LargeZipFile) as exc:
        raise ValueError(f"{what} {p} is truncated or corrupt ({type(exc).__name__}: {exc})") from None


def check_output_path(path: str | Path, what: str = "--out", *, directory: bool = False,
                      overwrite: bool = True) -> Path:
    """Validate an output path before any work starts: its parent must be (or be
    creatable as) a directory; a file target must not be an existing directory,
    a directory target not an existing file. ValueError naming ``what``."""
    p = Path(path)
    if directory:
        if p.exists() and not p.is_dir():
            raise ValueError(f"{what} {p} exists and is not a directory")
    else:
        if p.is_dir():
            raise ValueError(f"{what} {p} is a directory; give a file name")
        if p.exists() and not overwrite:
            raise ValueError(f"{what} {p} already exists")
    parent = p if directory else p.parent
    for anc in [parent, *parent.parents]:
        if anc.exists():
            if not anc.is_dir():
                raise ValueError(f"{what} {p}: {anc} is a file, not a directory")
            if not os.access(anc, os.W_OK):
                raise ValueError(f"{what} {p}: {anc} is not writable")
            break
    return p
