"""Files: atomic writes and safe .npz reading.

* :func:`atomic_path` yields a temporary name in the target's directory; the
  file appears under its real name (``os.replace``) only when the block
  finishes, so an interrupted write (an exception, Ctrl-C) never leaves a
  partial file, and the temporary one is removed.
* :func:`load_npz` reads an ``.npz`` with ``allow_pickle=False`` and turns
  every way a file can be unreadable (missing, a directory, empty, truncated,
  corrupt, not a zip, holding pickled objects) into one ``ValueError`` (or
  ``FileNotFoundError``) that names the file.
* :func:`jsonable` (and :func:`clean` for one scalar) turns numpy arrays and
  scalars into Python lists and scalars for ``json.dumps``, NaN/inf into None
  (the package's one JSON-cleaning step).
"""
from __future__ import annotations

import contextlib
import math
import os
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["atomic_path", "save_npz", "write_text", "load_npz", "check_output_path", "clean", "jsonable"]


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


def _member_arrays(zf: zipfile.ZipFile, p: Path, what: str) -> None:
    """Check every member of an .npz before anything is loaded: a ``.npy``
    name, the .npy magic and header, no pickled (object) dtype, and a
    declared shape the member can hold (its uncompressed size in the zip
    directory) and this machine's memory can hold."""
    from ._validation import check_memory

    total = 0
    for info in zf.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise ValueError(f"{what} {p}: member {name!r} is not a .npy array (an .npz holds only .npy members)")
        with zf.open(info) as fh:
            try:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f".npy format version {version} is not supported")
            except ValueError as exc:
                raise ValueError(f"{what} {p}: member {name!r} is not a valid .npy array ({exc})") from None
            header = fh.tell()
        if dtype.hasobject:
            raise ValueError(f"{what} {p} holds pickled objects (member {name!r}), which are never loaded; "
                             "only plain numeric/bool/string arrays are accepted")
        n_bytes = math.prod(shape) * dtype.itemsize
        if n_bytes > info.file_size - header:
            raise ValueError(f"{what} {p}: member {name!r} claims shape {shape} of {dtype} ({n_bytes:,} bytes) "
                             f"but holds only {max(info.file_size - header, 0):,} bytes of data")
        total += n_bytes
    check_memory(f"{what} {p}", total)


def load_npz(path: str | Path, what: str = "file") -> dict[str, np.ndarray]:
    """All arrays of an .npz file as a dict (loaded eagerly, ``allow_pickle=False``).

    Raises FileNotFoundError when ``path`` does not exist and ValueError naming
    the file for anything else that makes it unreadable (a directory, empty,
    not a zip, truncated or corrupt, an unsupported zip feature, a member that
    is not a ``.npy`` array, pickled objects, a header claiming more data than
    the member holds); ``what`` says what the file should have been
    ("masks file", ...). Every member's header is checked before any array
    is allocated.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from gntk_fast._io import load_npz, save_npz
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> _ = save_npz(path, {"a": np.arange(3)})
    >>> load_npz(path)["a"].tolist()
    [0, 1, 2]
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
        with zipfile.ZipFile(p) as zf:
            _member_arrays(zf, p, what)
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (NotImplementedError, RuntimeError) as exc:  # an unsupported compression or version, encryption
        raise ValueError(f"{what} {p} uses a zip feature that cannot be read ({exc})") from None
    except ValueError as exc:
        if str(exc).startswith(f"{what} {p}"):
            raise
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


def clean(value: Any, *, finite: bool = True) -> Any:
    """A JSON-ready scalar: numpy scalars as Python ones; with ``finite`` (the
    default) NaN and infinities as None (strict JSON has no NaN), else kept.

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast._io import clean
    >>> clean(np.float32(0.5)), clean(np.int64(3)), clean(float("nan"))
    (0.5, 3, None)
    """
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if (math.isfinite(v) or not finite) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def jsonable(x: Any, *, finite: bool = True) -> Any:
    """``x`` with numpy arrays and scalars as Python lists and scalars (dicts,
    lists and tuples walked, dict keys as str); NaN/inf as None unless
    ``finite=False`` (see :func:`clean`).

    Examples
    --------
    >>> import numpy as np
    >>> from gntk_fast._io import jsonable
    >>> jsonable({"a": np.array([1.0, np.nan]), 2: (np.int64(1),)})
    {'a': [1.0, None], '2': [1]}
    """
    if isinstance(x, dict):
        return {str(k): jsonable(v, finite=finite) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v, finite=finite) for v in x]
    if isinstance(x, np.ndarray):
        return [jsonable(v, finite=finite) for v in x.tolist()]
    return clean(x, finite=finite)
