"""Datasets: scikit-learn's digits (embedded, the default), MNIST from IDX files
and CIFAR-10 from its official binary batches.

``load(name, split="test", n=None, normalize=True, data_dir=None, seed=None,
per_class=None, *, shape="flat")`` returns ``(x, y)``: ``x`` float32 of shape
(n, d) (images flattened row-major, channel first) or, with ``shape="image"``,
(n, C, H, W) (:func:`image_shape`); ``y`` int64 of shape (n,) with labels in 0..9.

Datasets
--------
``"digits"`` (d = 64, 1797 images of 8 x 8, 10 classes), from
    :func:`sklearn.datasets.load_digits` (shipped with scikit-learn, no download).
    Splits: ``"train"`` (1437) / ``"test"`` (360) is a fixed stratified 80/20
    split (``sklearn.model_selection.train_test_split(test_size=0.2,
    stratify=labels, random_state=DIGITS_SPLIT_SEED)`` with
    ``DIGITS_SPLIT_SEED = 0``); each split is returned in the original dataset
    order. ``"all"`` is all 1797 images.
    Pixels are divided by 16 (-> [0, 1]); with ``normalize=True`` they are then
    standardised with the scalar mean and std of the *train* split's pixels
    (``DIGITS_MEAN``, ``DIGITS_STD``; same constants for every split, so no
    test information leaks into the transform).
``"mnist"`` (d = 784, 28 x 28, 10 classes), from the original IDX files in
    ``data_dir`` or ``$GNTK_MNIST_DIR``: ``train-images-idx3-ubyte`` +
    ``train-labels-idx1-ubyte`` (split ``"train"``) and
    ``t10k-images-idx3-ubyte`` + ``t10k-labels-idx1-ubyte`` (split
    ``"test"``), each gzip-compressed (``.gz``) or not. ``"all"`` is train
    followed by test and needs both. Pixels are divided by 255; with
    ``normalize=True`` they are then standardised with ``MNIST_MEAN = 0.1307``
    and ``MNIST_STD = 0.3081`` (torchvision's / the pruners' convention).
``"cifar10"`` (d = 3072, 3 x 32 x 32 colour images, 10 classes), from the
    official *binary* distribution in ``data_dir`` or ``$GNTK_CIFAR10_DIR``
    (the directory holding the files, or the one holding the extracted
    ``cifar-10-batches-bin`` folder): ``data_batch_1.bin`` ...
    ``data_batch_5.bin`` (split ``"train"``, in that order) and
    ``test_batch.bin`` (split ``"test"``). Each file is a sequence of
    3073-byte records: one label byte (0..9), then 3072 pixel bytes, the
    1024 red values of the 32 x 32 image row by row, then the green, then the
    blue. No pickle is ever read. Pixels are divided by 255; with
    ``normalize=True`` channel c is then standardised with ``CIFAR10_MEAN[c]``
    and ``CIFAR10_STD[c]`` (the pruners' convention).

Subsets (drawn with ``numpy.random.default_rng(seed)``; ``seed=None`` draws
fresh entropy): ``n`` keeps a uniformly random subset of n images,
``per_class=k`` a balanced subset of exactly k images of every class (the
pruners' batch is ``per_class=10``: 100 images for MNIST). The kept images are
returned in their dataset order.
"""
from __future__ import annotations

import gzip
import os
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ._validation import MAX_SAMPLES, check_bool, check_choice, check_seed, check_size

__all__ = [
    "DATASETS",
    "SPLITS",
    "MNIST_MEAN",
    "MNIST_STD",
    "DIGITS_SPLIT_SEED",
    "load",
    "pruning_batch",
    "num_classes",
    "input_dim",
    "available_splits",
    "mnist_files",
    "read_idx",
    "digits_stats",
    "SHAPES",
    "image_shape",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR10_RECORD_BYTES",
    "cifar10_files",
    "read_cifar10_batch",
]

DATASETS: tuple[str, ...] = ("digits", "mnist", "cifar10")
SPLITS: tuple[str, ...] = ("train", "test", "all")
#: layouts of ``load``'s inputs: (n, d) or (n, C, H, W)
SHAPES: tuple[str, ...] = ("flat", "image")

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2

CIFAR10_MEAN = (0.491, 0.482, 0.447)
CIFAR10_STD = (0.247, 0.243, 0.262)
#: one CIFAR-10 binary record: a label byte and 3 x 32 x 32 pixel bytes
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32
_CIFAR10_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
_CIFAR10_SUBDIR = "cifar-10-batches-bin"

_IMAGE_SHAPE = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
_INPUT_DIM = {k: int(np.prod(v)) for k, v in _IMAGE_SHAPE.items()}
_NUM_CLASSES = {"digits": 10, "mnist": 10, "cifar10": 10}

IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions (n, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension (n,)

# split -> file stem prefix of the original distribution
_MNIST_PREFIX = {"train": "train", "test": "t10k"}


# ------------------------------------------------------------------ metadata
def num_classes(name: str) -> int:
    """Number of classes of dataset ``name`` (10 for digits and MNIST)."""
    return _NUM_CLASSES[check_choice("name", name, DATASETS)]


def input_dim(name: str) -> int:
    """Flattened input dimension d of dataset ``name`` (64 for digits, 784 for MNIST, 3072 for CIFAR-10)."""
    return _INPUT_DIM[check_choice("name", name, DATASETS)]


def image_shape(name: str) -> tuple[int, int, int]:
    """(C, H, W) of one image of dataset ``name``: (1, 8, 8), (1, 28, 28) or (3, 32, 32).

    Examples
    --------
    >>> from gntk_fast import data
    >>> data.image_shape("mnist")
    (1, 28, 28)
    """
    return _IMAGE_SHAPE[check_choice("name", name, DATASETS)]


# ----------------------------------------------------------------- IDX files
def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Parse one IDX file (gzip-compressed or not) of unsigned bytes.

    The header is a big-endian uint32 magic ``0x000008NN`` (type code 0x08 =
    unsigned byte, NN = number of dimensions) followed by NN big-endian uint32
    sizes; the payload must hold exactly the product of the sizes in bytes.
    Returns a read-only uint8 array of that shape. Any violation (wrong magic,
    short header, truncated or over-long payload, corrupt gzip) raises a
    ValueError naming the file and the problem.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(raw)} bytes, shorter than the 4-byte magic number)")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"{path}: wrong IDX magic number 0x{magic:08x} (expected 0x{expected_magic:08x}"
            f" for {_magic_meaning(expected_magic)})"
        )
    if magic >> 16 != 0 or (magic >> 8) & 0xFF != 0x08:
        raise ValueError(
            f"{path}: wrong IDX magic number 0x{magic:08x} (expected 0x000008NN: unsigned-byte data with NN dimensions)"
        )
    ndim = magic & 0xFF
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes; {ndim} dimensions need {header})")
    dims = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(raw) - header
    if payload < expected:
        raise ValueError(
            f"{path}: truncated IDX payload: header dims {dims} need {expected} bytes, file holds {payload}"
        )
    if payload > expected:
        raise ValueError(
            f"{path}: IDX payload size mismatch: header dims {dims} need {expected} bytes, file holds {payload}"
        )
    arr = np.frombuffer(raw, dtype=np.uint8, count=expected, offset=header).reshape(dims)
    return arr


def _magic_meaning(magic: int) -> str:
    return {IDX_IMAGES_MAGIC: "3-d unsigned-byte images", IDX_LABELS_MAGIC: "1-d unsigned-byte labels"}.get(
        magic, "this file type"
    )


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":  # gzip magic, whatever the file name says
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({type(exc).__name__}: {exc})") from None
    if path.suffix == ".gz":
        raise ValueError(f"{path}: named .gz but is not gzip-compressed (no gzip magic bytes)")
    return path.read_bytes()


def _resolve_mnist_dir(data_dir) -> Path:
    if data_dir is None:
        env = os.environ.get("GNTK_MNIST_DIR")
        if not env:
            raise FileNotFoundError(
                "data_dir: MNIST needs a directory of IDX files; pass data_dir=... (CLI: --data-dir) "
                "or set GNTK_MNIST_DIR"
            )
        data_dir = env
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path (str or os.PathLike); got {type(data_dir).__name__}")
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise FileNotFoundError(f"data_dir: MNIST directory {str(d)!r} does not exist or is not a directory")
    return d


def _expected_names(split: str) -> tuple[str, str]:
    p = _MNIST_PREFIX[split]
    return f"{p}-images-idx3-ubyte", f"{p}-labels-idx1-ubyte"


def _find(d: Path, stem: str) -> Path | None:
    for cand in (d / f"{stem}.gz", d / stem):
        if cand.is_file():
            return cand
    return None


def mnist_files(split: str, data_dir=None) -> tuple[Path, Path]:
    """Paths of the (images, labels) IDX files of MNIST ``split`` ("train" or "test").

    Looks in ``data_dir`` (or ``$GNTK_MNIST_DIR``) for the original names, with
    or without ``.gz``. Raises FileNotFoundError naming the expected file names
    and the directory searched when either is missing.
    """
    split = check_choice("split", split, tuple(_MNIST_PREFIX))
    d = _resolve_mnist_dir(data_dir)
    found = [_find(d, stem) for stem in _expected_names(split)]
    if any(f is None for f in found):
        missing = [stem for stem, f in zip(_expected_names(split), found) if f is None]
        present = available_splits("mnist", d)
        raise FileNotFoundError(
            f"MNIST split {split!r} not found in {str(d)!r}: expected "
            + " and ".join(f"{s}.gz (or {s})" for s in _expected_names(split))
            + f"; missing {', '.join(missing)}; splits present: {', '.join(present) if present else 'none'}"
        )
    return found[0], found[1]  # type: ignore[return-value]


def available_splits(name: str, data_dir=None) -> list[str]:
    """Splits of ``name`` that can be loaded ("train"/"test"; digits always has both)."""
    name = check_choice("name", name, DATASETS)
    if name == "digits":
        return ["train", "test"]
    if name == "cifar10":
        d = _resolve_cifar10_dir(data_dir)
        return [s for s in ("train", "test") if all((d / f).is_file() for f in _CIFAR10_FILES[s])]
    d = _resolve_mnist_dir(data_dir)
    return [s for s in ("train", "test") if all(_find(d, stem) is not None for stem in _expected_names(s))]


@lru_cache(maxsize=4)
def _mnist_raw_cached(images: str, labels: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(images, IDX_IMAGES_MAGIC)
    y = read_idx(labels, IDX_LABELS_MAGIC)
    if x.shape[1:] != (28, 28):
        raise ValueError(f"{images}: MNIST images must be 28 x 28; header dims are {x.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{labels}: {y.shape[0]} labels but {images} holds {x.shape[0]} images")
    if y.size and int(y.max()) > 9:
        raise ValueError(f"{labels}: labels must be in 0..9; found {int(y.max())}")
    return x, y


def _mnist_raw(split: str, data_dir) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 28, 28) and labels (n,) of one MNIST split (cached by path + mtime + size)."""
    images, labels = mnist_files(split, data_dir)
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in (images, labels))
    return _mnist_raw_cached(str(images.resolve()), str(labels.resolve()), stamp)


# ------------------------------------------------------------------ CIFAR-10
def _resolve_cifar10_dir(data_dir) -> Path:
    if data_dir is None:
        env = os.environ.get("GNTK_CIFAR10_DIR")
        if not env:
            raise FileNotFoundError(
                "data_dir: CIFAR-10 needs the directory of its binary batches (data_batch_1.bin ... "
                "test_batch.bin); pass data_dir=... or set GNTK_CIFAR10_DIR"
            )
        data_dir = env
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path (str or os.PathLike); got {type(data_dir).__name__}")
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise FileNotFoundError(f"data_dir: CIFAR-10 directory {str(d)!r} does not exist or is not a directory")
    if not any((d / f).is_file() for fs in _CIFAR10_FILES.values() for f in fs) and (d / _CIFAR10_SUBDIR).is_dir():
        d = d / _CIFAR10_SUBDIR  # the folder the official archive extracts to
    return d


def cifar10_files(split: str, data_dir=None) -> list[Path]:
    """Paths of the binary batch files of CIFAR-10 ``split`` ("train": 5 files, "test": 1).

    Looks in ``data_dir`` (or ``$GNTK_CIFAR10_DIR``), or in its
    ``cifar-10-batches-bin`` sub-folder. Raises FileNotFoundError naming the
    missing files and the directory searched.

    Examples
    --------
    >>> from gntk_fast import data
    >>> [p.name for p in data.cifar10_files("test", "cifar-10-batches-bin")]  # doctest: +SKIP
    ['test_batch.bin']
    """
    split = check_choice("split", split, tuple(_CIFAR10_FILES))
    d = _resolve_cifar10_dir(data_dir)
    paths = [d / f for f in _CIFAR10_FILES[split]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 split {split!r} not found in {str(d)!r}: missing {', '.join(missing)} "
            f"(expected {', '.join(_CIFAR10_FILES[split])}, the official binary version)"
        )
    return paths


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse one CIFAR-10 binary batch file.

    The file is a whole number of 3073-byte records: a label byte in 0..9,
    then the image's 3072 pixel bytes, channel-major (1024 red values row by
    row, then green, then blue).

    Returns
    -------
    images : read-only uint8 array, shape (n, 3, 32, 32)
    labels : read-only uint8 array, shape (n,)

    Raises ValueError naming the file for an empty file, a size that is not a
    whole number of records (truncated or over-long), or a label above 9.

    Examples
    --------
    >>> from gntk_fast import data
    >>> x, y = data.read_cifar10_batch("cifar-10-batches-bin/test_batch.bin")  # doctest: +SKIP
    >>> x.shape, y.shape  # doctest: +SKIP
    ((10000, 3, 32, 32), (10000,))
    """
    path = Path(path)
    raw = path.read_bytes()
    rec = CIFAR10_RECORD_BYTES
    if len(raw) == 0:
        raise ValueError(f"{path}: empty CIFAR-10 batch file (expected {rec}-byte records)")
    if len(raw) % rec:
        raise ValueError(
            f"{path}: truncated or corrupt CIFAR-10 batch: {len(raw)} bytes is not a whole number of "
            f"{rec}-byte records (1 label byte + 3072 pixel bytes); {len(raw) // rec} whole records, "
            f"{len(raw) % rec} bytes left over"
        )
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, rec)
    labels = arr[:, 0]
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise ValueError(f"{path}: record {int(bad[0])} has label {int(labels[bad[0]])}; labels must be in 0..9")
    return arr[:, 1:].reshape(-1, 3, 32, 32), labels


@lru_cache(maxsize=2)
def _cifar10_raw_cached(paths: tuple[str, ...], stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_cifar10_batch(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _cifar10_raw(split: str, data_dir) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 3, 32, 32) and labels (n,) of one CIFAR-10 split (cached by path + mtime + size)."""
    paths = cifar10_files(split, data_dir)
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return _cifar10_raw_cached(tuple(str(p.resolve()) for p in paths), stamp)


# -------------------------------------------------------------------- digits
@lru_cache(maxsize=1)
def _digits_all() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels in [0, 1] float64 (1797, 64), labels int64, train indices)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    idx = np.arange(len(y))
    train, _ = train_test_split(idx, test_size=DIGITS_TEST_FRACTION, stratify=y, random_state=DIGITS_SPLIT_SEED)
    train = np.sort(train)
    x.setflags(write=False)
    y.setflags(write=False)
    train.setflags(write=False)
    return x, y, train


def _digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    x, y, train = _digits_all()
    if split == "all":
        return x, y
    is_train = np.zeros(len(y), dtype=bool)
    is_train[train] = True
    sel = is_train if split == "train" else ~is_train
    return x[sel], y[sel]


@lru_cache(maxsize=1)
def digits_stats() -> tuple[float, float]:
    """Scalar (mean, std) of the digits train split's pixels after dividing by 16."""
    x, _ = _digits_split("train")
    return float(x.mean()), float(x.std())


# ------------------------------------------------------------------- subsets
def _subset_indices(y: np.ndarray, n: int | None, per_class: int | None, seed, classes: int) -> np.ndarray | None:
    if n is None and per_class is None:
        return None
    rng = np.random.default_rng(seed)
    if n is not None:
        if n > len(y):
            raise ValueError(f"n={n} is larger than the split ({len(y)} examples)")
        return np.sort(rng.choice(len(y), size=n, replace=False))
    picks = []
    for c in range(classes):
        members = np.flatnonzero(y == c)
        if len(members) < per_class:
            raise ValueError(f"per_class={per_class} but class {c} has only {len(members)} examples in this split")
        picks.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(picks))


# ---------------------------------------------------------------------- load
def load(
    name: str = "digits",
    split: str = "test",
    n: int | None = None,
    normalize: bool = True,
    data_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    per_class: int | None = None,
    *,
    shape: str = "flat",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a dataset as float32 inputs (flat or images) and int64 labels.

    Parameters
    ----------
    name : "digits" | "mnist" | "cifar10"
    split : "train" | "test" | "all"
    n : int, optional
        Keep a uniformly random subset of n examples (1 <= n <= split size).
    normalize : bool
        Standardise pixels (see the module docstring); otherwise pixels in [0, 1].
    data_dir : path, optional
        MNIST directory (default ``$GNTK_MNIST_DIR``) or CIFAR-10 directory
        (default ``$GNTK_CIFAR10_DIR``); ignored for digits.
    seed : int >= 0, optional
        Seed of the subset draw (``n`` or ``per_class``).
    per_class : int, optional
        Keep exactly ``per_class`` random examples of every class (exclusive with ``n``).
    shape : "flat" | "image"
        "flat": (n, d); "image": (n, C, H, W) (:func:`image_shape`). The flat
        vector is the image flattened in (channel, row, column) order.

    Returns
    -------
    x : torch.Tensor, float32, shape (n, d) or (n, C, H, W)
        d = 64 (digits, 1 x 8 x 8), 784 (MNIST, 1 x 28 x 28), 3072 (CIFAR-10, 3 x 32 x 32).
    y : torch.Tensor, int64, shape (n,)

    Examples
    --------
    >>> from gntk_fast import data
    >>> x, y = data.load("digits", split="test", shape="image")
    >>> tuple(x.shape), tuple(y.shape)
    ((360, 1, 8, 8), (360,))
    """
    name = check_choice("name", name, DATASETS)
    split = check_choice("split", split, SPLITS)
    if n is not None:
        n = check_size("n", n, MAX_SAMPLES)
    if per_class is not None:
        per_class = check_size("per_class", per_class, MAX_SAMPLES)
    if n is not None and per_class is not None:
        raise ValueError(f"n and per_class are exclusive; got n={n} and per_class={per_class}")
    normalize = check_bool("normalize", normalize)
    seed = check_seed(seed)
    shape = check_choice("shape", shape, SHAPES)
    x, y = _load_flat(name, split, n, normalize, data_dir, seed, per_class)
    if shape == "image":
        x = x.reshape(len(x), *_IMAGE_SHAPE[name])
    return x, y


def _load_flat(name, split, n, normalize, data_dir, seed, per_class) -> tuple[torch.Tensor, torch.Tensor]:
    """``load`` with validated arguments, as (n, d)."""
    if name == "digits":
        x, y = _digits_split(split)
        idx = _subset_indices(y, n, per_class, seed, _NUM_CLASSES[name])
        if idx is not None:
            x, y = x[idx], y[idx]
        x = np.array(x, dtype=np.float64)
        if normalize:
            mean, std = digits_stats()
            x = (x - mean) / std
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(np.array(y, dtype=np.int64))

    parts = ["train", "test"] if split == "all" else [split]
    if name == "cifar10":
        raws = [_cifar10_raw(s, data_dir) for s in parts]
        x8 = np.concatenate([r[0] for r in raws]) if len(raws) > 1 else raws[0][0]
        y8 = np.concatenate([r[1] for r in raws]) if len(raws) > 1 else raws[0][1]
        idx = _subset_indices(y8, n, per_class, seed, _NUM_CLASSES[name])
        if idx is not None:
            x8, y8 = x8[idx], y8[idx]
        x = x8.astype(np.float32) / np.float32(255.0)
        if normalize:
            mean = np.asarray(CIFAR10_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
            std = np.asarray(CIFAR10_STD, dtype=np.float32).reshape(1, 3, 1, 1)
            x = (x - mean) / std
        x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
        return torch.from_numpy(x), torch.from_numpy(y8.astype(np.int64))
    raws = [_mnist_raw(s, data_dir) for s in parts]
    x8 = np.concatenate([r[0] for r in raws]) if len(raws) > 1 else raws[0][0]
    y8 = np.concatenate([r[1] for r in raws]) if len(raws) > 1 else raws[0][1]
    idx = _subset_indices(y8, n, per_class, seed, _NUM_CLASSES[name])
    if idx is not None:
        x8, y8 = x8[idx], y8[idx]
    x = x8.reshape(len(x8), -1).astype(np.float32) / np.float32(255.0)
    if normalize:
        x = (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y8.astype(np.int64))


def pruning_batch(
    name: str = "digits",
    per_class: int = 10,
    *,
    split: str | None = None,
    data_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    normalize: bool = True,
    shape: str = "flat",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pruners' data batch: ``per_class`` random *training* examples of every
    class (10 x num_classes = 100 for MNIST), normalised, in one batch.

    ``split=None`` uses "train" when that split is available and otherwise
    falls back to "test" with a warning (the shared MNIST directory holds only
    the test split). Returns ``(x, y)`` like :func:`load` (``shape="image"``
    for (n, C, H, W) inputs).

    Examples
    --------
    >>> from gntk_fast import data
    >>> x, y = data.pruning_batch("digits", per_class=2, seed=0, shape="image")
    >>> tuple(x.shape)
    (20, 1, 8, 8)
    """
    name = check_choice("name", name, DATASETS)
    per_class = check_size("per_class", per_class, MAX_SAMPLES)
    seed = check_seed(seed)
    shape = check_choice("shape", shape, SHAPES)
    if split is None:
        present = available_splits(name, data_dir)
        if "train" in present:
            split = "train"
        elif "test" in present:
            warnings.warn(
                f"{name}: no training split found; drawing the pruning batch from the test split",
                stacklevel=2,
            )
            split = "test"
        else:  # raises FileNotFoundError naming the expected files
            (cifar10_files if name == "cifar10" else mnist_files)("train", data_dir)
    return load(name, split=split, normalize=normalize, data_dir=data_dir, seed=seed, per_class=per_class, shape=shape)
