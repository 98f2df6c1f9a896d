"""Input validation helpers shared by every public entry point.

Every helper raises ``ValueError`` or ``TypeError`` whose message starts with
the offending argument's name, so callers see *which* input is wrong and why.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np
import torch

__all__ = [
    "ArgumentTypeError",
    "check_bool",
    "check_choice",
    "check_int",
    "check_float",
    "check_fraction",
    "check_tensor",
    "check_finite",
    "as_float_tensor",
    "density_from",
    "check_seed",
    "check_size",
    "check_memory",
    "check_xy",
    "check_pair",
    "check_batch",
    "check_dtype",
    "check_float_dtype",
    "check_permutation",
    "check_odd_size",
    "check_sizes",
    "check_path",
    "real_array",
    "finite_array",
    "MAX_INT",
    "MAX_STEPS",
    "MAX_SEED",
    "MAX_WIDTH",
    "MAX_DEPTH",
    "MAX_BLOCKS",
    "MAX_SAMPLES",
    "MAX_KERNEL",
    "MAX_IMAGE",
    "FLOAT_DTYPES",
]

#: seeds are ints in [0, MAX_SEED] (the range of ``torch.Generator.manual_seed`` for non-negative seeds)
MAX_SEED = 2**64 - 1
#: size bounds checked before anything is allocated (errors name the argument)
MAX_WIDTH = 1 << 22  # neurons in one layer
MAX_DEPTH = 1024  # hidden layers
MAX_BLOCKS = 1 << 16  # graphon blocks / quadrature nodes per side (K)
MAX_SAMPLES = 1 << 24  # inputs in one kernel or data sample
MAX_KERNEL = 255  # side of a convolution window
MAX_IMAGE = 1 << 14  # side of an image (pixels)
#: repeat counts (optimisation steps, pruning iterations, restarts, trials)
MAX_STEPS = 10**7
#: every integer argument is at most this unless its own bound is given: an
#: int64 (so numpy, torch and C++ can hold it) and far beyond any real size
MAX_INT = 2**63 - 1
#: the floating dtypes a computation may run in
FLOAT_DTYPES = (torch.float32, torch.float64)


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a TypeError that is also a ValueError, so
    callers catching either one see it."""


def check_bool(name: str, value: Any) -> bool:
    """``value`` must be a bool (Python or numpy); returned as a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be a bool (True or False); got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices`` (strings)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_int(name: str, value: Any, *, min_value: int | None = None, max_value: int | None = MAX_INT) -> int:
    """``value`` must be an integer (bools rejected) within [min_value, max_value].

    The one integer check of the package: ``max_value`` defaults to
    :data:`MAX_INT`, so no integer argument is ever unbounded; sizes and
    repeat counts pass their own bounds (:data:`MAX_WIDTH`, :data:`MAX_STEPS`, ...).
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    value = int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}; got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}; got {value}")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """``value`` must be a finite real number within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if min_value is not None and (value < min_value or (not min_inclusive and value == min_value)):
        op = ">=" if min_inclusive else ">"
        raise ValueError(f"{name} must be {op} {min_value}; got {value}")
    if max_value is not None and (value > max_value or (not max_inclusive and value == max_value)):
        op = "<=" if max_inclusive else "<"
        raise ValueError(f"{name} must be {op} {max_value}; got {value}")
    return value


def check_fraction(name: str, value: Any, *, allow_one: bool = False) -> float:
    """A fraction in [0, 1) (or [0, 1] with ``allow_one``)."""
    return check_float(name, value, min_value=0.0, max_value=1.0, max_inclusive=allow_one)


def check_tensor(name: str, x: Any, *, ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """``x`` must be a torch tensor (numpy arrays are converted) of the given rank."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array; got {type(x).__name__}")
    if ndim is not None:
        dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in dims:
            raise ValueError(f"{name} must have {' or '.join(map(str, dims))} dimensions; got shape {tuple(x.shape)}")
    return x


def check_finite(name: str, x: torch.Tensor) -> torch.Tensor:
    """``x`` must contain no NaN or infinity."""
    if x.is_floating_point() or x.is_complex():
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return x


def as_float_tensor(name: str, x: Any, *, ndim: int | tuple[int, ...] | None = None, dtype=None) -> torch.Tensor:
    """Tensor check + floating dtype + finiteness, in one call."""
    x = check_tensor(name, x, ndim=ndim)
    if not (x.is_floating_point() or x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)):
        raise TypeError(f"{name} must be a real-valued tensor; got dtype {x.dtype}")
    if dtype is not None:
        x = x.to(dtype)
    elif not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return check_finite(name, x)


def density_from(sparsity: float | None = None, compression: float | None = None) -> float:
    """Kept fraction d from exactly one of ``sparsity`` (d = 1 - s, s in [0, 1)) or
    ``compression`` (d = 10**-compression, compression >= 0)."""
    if (sparsity is None) == (compression is None):
        raise ValueError("give exactly one of sparsity or compression")
    if sparsity is not None:
        return 1.0 - check_fraction("sparsity", sparsity)
    c = check_float("compression", compression, min_value=0.0)
    d = 10.0 ** (-c)
    if d == 0.0:  # 10**-c underflows to 0 for c > ~323: no weight could ever be kept
        raise ValueError(f"compression must give a positive density 10**-compression; got {c} (underflows to 0)")
    return d


def check_seed(seed: Any, *, allow_none: bool = True) -> int | None:
    """A seed: None (when ``allow_none``) or an int in [0, MAX_SEED]; TypeError/ValueError naming ``seed``."""
    if seed is None and allow_none:
        return None
    return check_int("seed", seed, min_value=0, max_value=MAX_SEED)


def check_size(name: str, value: Any, max_value: int, *, min_value: int = 1) -> int:
    """A size (width, depth, K, sample count): an int in [min_value, max_value]."""
    return check_int(name, value, min_value=min_value, max_value=max_value)


def _physical_memory() -> int | None:
    try:
        import os

        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def check_memory(name: str, n_bytes: int) -> int:
    """Refuse (ValueError naming ``name``) an allocation larger than the machine's physical memory."""
    total = _physical_memory()
    if total is not None and n_bytes > total:
        raise ValueError(
            f"{name} asks for {n_bytes / 2**30:.3g} GiB, more than this machine's {total / 2**30:.3g} GiB of memory"
        )
    return n_bytes


def check_no_downcast(name: str, x: torch.Tensor, dtype: torch.dtype | None, hint: str = "") -> None:
    """TypeError naming ``name`` when the floating tensor ``x`` would be cast to a
    lower precision ``dtype`` (precision is never lost silently); ``hint`` is
    appended to the message (e.g. how to compute in ``x``'s precision)."""
    if dtype is not None and x.is_floating_point() and torch.finfo(x.dtype).bits > torch.finfo(dtype).bits:
        raise TypeError(
            f"{name} is {x.dtype} but the computation is in {dtype}: it would lose precision silently; "
            f"convert it ({name}.to({dtype})) or compute in {x.dtype}{hint}"
        )


def check_xy(
    x: Any,
    y: Any,
    *,
    names: tuple[str, str] = ("x", "y"),
    dtype: torch.dtype | None = None,
    device: Any = None,
    n_classes: int | None = None,
    targets: bool = False,
    x_ndim: int | tuple[int, ...] = 2,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """The one check of a data set ``(x, y)``; returns ``(x, y, labels)``.

    * ``x``: a real (N, d) tensor or array (or of the ranks ``x_ndim`` allows,
      e.g. (2, 3, 4) for images (N, C, H, W)), 1 <= N <= :data:`MAX_SAMPLES`,
      finite. Cast to ``dtype`` (and moved to ``device``) when given, but never
      to a *lower* precision: a float64 ``x`` for float32 work is a TypeError
      naming ``x`` (convert it yourself, or compute in float64), so precision
      is never lost silently. Integer and bool ``x`` are converted.
    * ``y``: N integer class labels (1-D; ``labels`` is True), in
      ``[0, n_classes)`` when ``n_classes`` is given, else ``>= 0``; or, with
      ``targets=True``, real targets of shape (N,) or (N, C), finite, in ``dtype``.

    Errors are ValueError / TypeError naming ``names[0]`` or ``names[1]``.

    Examples
    --------
    >>> import torch
    >>> from gntk_fast._validation import check_xy
    >>> x, y, labels = check_xy(torch.zeros(3, 2), torch.tensor([0, 1, 1]), n_classes=2)
    >>> tuple(x.shape), labels
    ((3, 2), True)
    """
    xname, yname = names
    if y is None:
        raise TypeError(f"{yname} must be given (one label or target per row of {xname}); got None")
    x = check_tensor(xname, x, ndim=x_ndim)
    if x.is_complex():
        raise TypeError(f"{xname} must be real-valued; got dtype {x.dtype}")
    n = x.shape[0]
    if n < 1 or n > MAX_SAMPLES:
        raise ValueError(f"{xname} must hold between 1 and {MAX_SAMPLES} samples (rows); got shape {tuple(x.shape)}")
    check_no_downcast(xname, x, dtype)
    if not x.is_floating_point():
        x = x.to(dtype or torch.get_default_dtype())
    x = x.to(device=device, dtype=dtype) if (device is not None or dtype is not None) else x
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{xname} contains NaN or infinite values")
    y = check_tensor(yname, y, ndim=(1, 2))
    if y.shape[0] != n:
        raise ValueError(
            f"{xname} and {yname} must hold the same number of samples; got {xname} {tuple(x.shape)}, {yname} {tuple(y.shape)}"
        )
    if y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{yname} must hold integer class labels{' or real targets' if targets else ''}; got dtype {y.dtype}")
    if not y.is_floating_point():
        if y.ndim != 1:
            raise ValueError(f"{yname}: integer labels must have shape ({n},); got {tuple(y.shape)}")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or (n_classes is not None and hi >= n_classes):
            where = "be >= 0" if n_classes is None else f"lie in [0, {n_classes - 1}]"
            raise ValueError(f"{yname}: labels must {where}; got [{lo}, {hi}]")
        return x, y.to(device=device if device is not None else y.device, dtype=torch.int64), True
    if not targets:
        raise TypeError(f"{yname} must hold integer class labels; got dtype {y.dtype}")
    y = y.to(device=device, dtype=dtype) if (device is not None or dtype is not None) else y
    if not bool(torch.isfinite(y).all()):
        raise ValueError(f"{yname} contains NaN or infinite values")
    return x, y, False


def real_array(name: str, x: Any) -> np.ndarray:
    """``x`` (numpy array, torch tensor, number or nested sequence) as a real
    numpy array of its own dtype (bool, integer or float).

    Complex values are a TypeError naming ``name`` (never cast silently to
    their real part), and so is anything non-numeric (strings, objects).
    """
    try:
        import torch

        if isinstance(x, torch.Tensor):
            if x.is_complex():
                raise TypeError(f"{name} must be real-valued; got complex dtype {x.dtype}")
            x = x.detach().cpu()
            x = (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    except ImportError:  # pragma: no cover
        pass
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real numeric array; got {type(x).__name__} ({err})") from None
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            if any(isinstance(v, complex) for v in arr.flat):
                raise TypeError(f"{name} must be real-valued; got complex values") from None
            raise TypeError(f"{name} must be a real numeric array; got non-numeric values") from None
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued; got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    return arr


def check_pair(name: str, data: Any) -> tuple[Any, Any]:
    """``data`` must be a pair ``(x, y)`` (a tuple or list of two); returns it unpacked.

    The entries are checked by :func:`check_xy` (or by the caller's own
    tensor checks); this check only refuses anything that is not a pair.

    Examples
    --------
    >>> from gntk_fast._validation import check_pair
    >>> check_pair("data", ([1.0], [0]))
    ([1.0], [0])
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        got = f"{type(data).__name__} of length {len(data)}" if isinstance(data, (tuple, list)) else type(data).__name__
        raise TypeError(f"{name} must be a pair (x, y) of tensors; got {got}")
    return data[0], data[1]


def check_batch(name: str, x: Any, *, device: Any, dtype: torch.dtype,
                ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """A batch of inputs for a model on ``device`` computing in ``dtype``.

    ``x`` must be a real tensor (or numpy array) of the ranks ``ndim`` allows
    (any rank >= 1 when None) whose leading dimension holds at least one
    input, already on ``device`` (never moved silently), and not of a higher
    precision than ``dtype`` (:func:`check_no_downcast`); integer and bool
    inputs are converted. Returned in ``dtype``, checked finite.

    Examples
    --------
    >>> import torch
    >>> from gntk_fast._validation import check_batch
    >>> check_batch("x", torch.ones(2, 3, dtype=torch.int64), device=torch.device("cpu"), dtype=torch.float64).dtype
    torch.float64
    """
    x = check_tensor(name, x, ndim=ndim)
    if x.is_complex():
        raise TypeError(f"{name} must be real-valued; got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must have a leading batch dimension holding at least one input; "
                         f"got shape {tuple(x.shape)}")
    if x.device != torch.device(device):
        raise ValueError(f"{name} is on {x.device} but the model is on {device}; move them to one device")
    check_no_downcast(name, x, dtype, f" (dtype={x.dtype})")
    x = x.to(dtype)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_dtype(name: str, x: torch.Tensor, dtypes: Iterable[torch.dtype], what: str = "") -> torch.Tensor:
    """The tensor ``x``'s dtype must be one of ``dtypes`` (an :class:`ArgumentTypeError`
    naming ``name`` otherwise; ``what`` says what the dtype means, e.g. "True = kept weight").

    Examples
    --------
    >>> import torch
    >>> from gntk_fast._validation import check_dtype
    >>> check_dtype("mask", torch.ones(2, dtype=torch.bool), (torch.bool,)).dtype
    torch.bool
    """
    dtypes = tuple(dtypes)
    if x.dtype not in dtypes:
        allowed = " or ".join(str(d).replace("torch.", "") for d in dtypes)
        note = f" ({what})" if what else ""
        raise ArgumentTypeError(f"{name} must have dtype {allowed}{note}; got {x.dtype}")
    return x


def check_float_dtype(name: str, dtype: Any, *, allow_none: bool = True) -> torch.dtype:
    """A computation dtype: torch.float32 or torch.float64, or None for torch's
    default dtype (when ``allow_none``); returned resolved.

    Examples
    --------
    >>> import torch
    >>> from gntk_fast._validation import check_float_dtype
    >>> check_float_dtype("dtype", torch.float64)
    torch.float64
    """
    if dtype is None and allow_none:
        resolved = torch.get_default_dtype()
        if resolved not in FLOAT_DTYPES:
            raise ValueError(f"{name} must be torch.float32 or torch.float64; got None "
                             f"(torch's default dtype is {resolved!r})")
        return resolved
    if not isinstance(dtype, torch.dtype) or dtype not in FLOAT_DTYPES:
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be torch.float32, torch.float64{none}; got {dtype!r}")
    return dtype


def check_permutation(name: str, p: Any, n: int) -> np.ndarray:
    """``p`` (array, tensor or sequence) must be a permutation of ``range(n)``; returned int64 (n,).

    Examples
    --------
    >>> from gntk_fast._validation import check_permutation
    >>> check_permutation("order", [2, 0, 1], 3).tolist()
    [2, 0, 1]
    """
    a = real_array(name, p)
    if a.shape != (n,) or a.dtype.kind not in "iu" or not np.array_equal(np.sort(a), np.arange(n)):
        raise ValueError(f"{name} must be a permutation of range({n}) (integers, shape ({n},)); "
                         f"got shape {a.shape}, dtype {a.dtype}")
    return a.astype(np.int64)


def check_odd_size(name: str, value: Any, max_value: int) -> int:
    """An odd size in [1, max_value], e.g. a convolution window centred on each pixel.

    Examples
    --------
    >>> from gntk_fast._validation import MAX_KERNEL, check_odd_size
    >>> check_odd_size("kernel_size", 3, MAX_KERNEL)
    3
    """
    k = check_size(name, value, max_value)
    if k % 2 == 0:
        raise ValueError(f"{name} must be odd (a window centred on each pixel); got {k}")
    return k


def check_sizes(name: str, values: Any, max_value: int, *, min_value: int = 1, distinct: bool = False) -> list[int]:
    """A non-empty list of sizes (e.g. widths), each in [min_value, max_value],
    returned sorted ascending; with ``distinct``, repeated sizes are refused.

    Examples
    --------
    >>> from gntk_fast._validation import MAX_WIDTH, check_sizes
    >>> check_sizes("widths", [256, 64], MAX_WIDTH)
    [64, 256]
    """
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of ints; got {type(values).__name__} {values!r}")
    out = sorted(check_size(name, v, max_value, min_value=min_value) for v in values)
    if not out:
        raise ValueError(f"{name} must be a non-empty list of ints; got {values!r}")
    if distinct and len(set(out)) != len(out):
        raise ValueError(f"{name} must be a non-empty list of distinct ints; got {out}")
    return out


def check_path(name: str, value: Any, *, allow_none: bool = False, what: str = "a path") -> Any:
    """``value`` must be a path (str or os.PathLike), or None when ``allow_none``;
    returned as a :class:`pathlib.Path` (None stays None).

    Examples
    --------
    >>> from gntk_fast._validation import check_path
    >>> check_path("out", "runs/a").name
    'a'
    """
    import os
    from pathlib import Path

    if value is None and allow_none:
        return None
    if not isinstance(value, (str, os.PathLike)):
        none = " or None" if allow_none else ""
        raise TypeError(f"{name} must be {what} (str or os.PathLike){none}; got {type(value).__name__} {value!r}")
    return Path(value)


def finite_array(name: str, x: Any, *, ndim: int | None = None) -> np.ndarray:
    """``x`` (numpy array, torch tensor or nested sequence of real numbers) as a
    float64 numpy array with no NaN or infinity, of rank ``ndim`` when given:
    the numpy counterpart of :func:`as_float_tensor`. Errors name ``name``.

    Examples
    --------
    >>> from gntk_fast._validation import finite_array
    >>> finite_array("weights[0]", [[1, 2]], ndim=2).dtype
    dtype('float64')
    """
    arr = real_array(name, x).astype(np.float64, copy=False)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {arr.shape}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains {int((~np.isfinite(arr)).sum())} non-finite value(s) (NaN or inf)")
    return arr
