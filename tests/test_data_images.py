"""gntk_fast.data images: digits / MNIST as (N, 1, H, W), and CIFAR-10 from binary batch files
that the tests write byte by byte."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gntk_fast import data

REC = 3073


def pixel(label, c, r, col):
    """The byte written at channel c, row r, column col of a record with this label."""
    return (7 * c + 3 * r + 5 * col + 11 * label) % 256


def cifar_record(label: int) -> bytes:
    """One record laid out by hand: label byte, then channel c, row r, column col at 1 + 1024 c + 32 r + col."""
    rec = bytearray(REC)
    rec[0] = label
    for c in range(3):
        for r in range(32):
            for col in range(32):
                rec[1 + 1024 * c + 32 * r + col] = pixel(label, c, r, col)
    return bytes(rec)


_RECORDS = {}


def record(label):
    if label not in _RECORDS:
        _RECORDS[label] = cifar_record(label)
    return _RECORDS[label]


def expected_image(label):
    c, r, col = np.indices((3, 32, 32))
    return pixel(label, c, r, col).astype(np.uint8)


def write_cifar(directory, labels_per_file: dict[str, list[int]]):
    directory.mkdir(parents=True, exist_ok=True)
    for name, labels in labels_per_file.items():
        (directory / name).write_bytes(b"".join(record(l) for l in labels))


TRAIN = {f"data_batch_{i}.bin": [(2 * i + j) % 10 for j in range(4)] for i in range(1, 6)}  # each class twice
TEST = {"test_batch.bin": [9, 0, 3]}


@pytest.fixture
def cifar_dir(tmp_path):
    write_cifar(tmp_path, {**TRAIN, **TEST})
    return tmp_path


# ----------------------------------------------------------------- digits/MNIST
def test_digits_as_images_match_sklearn():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = data.load("digits", split="all", normalize=False, shape="image")
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    np.testing.assert_array_equal(x[:, 0].numpy(), (bunch.images / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), bunch.target)
    xf, _ = data.load("digits", split="test", n=20, seed=1)
    xi, _ = data.load("digits", split="test", n=20, seed=1, shape="image")
    assert torch.equal(xi.reshape(20, 64), xf)
    assert data.image_shape("digits") == (1, 8, 8) and data.input_dim("digits") == 64


def write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    path.write_bytes(struct.pack(">I", 0x0800 | arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes())


def test_mnist_as_images(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 10
    write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    x, y = data.load("mnist", data_dir=tmp_path, normalize=False, shape="image")
    assert x.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(x[:, 0].numpy(), imgs.astype(np.float32) / np.float32(255))
    xb, _ = data.pruning_batch("mnist", per_class=1, data_dir=tmp_path, seed=0, shape="image", split="test")
    assert xb.shape == (10, 1, 28, 28)


# --------------------------------------------------------------------- CIFAR-10
def test_read_cifar10_batch_decodes_bytes(tmp_path):
    write_cifar(tmp_path, {"b.bin": [3, 7]})
    x, y = data.read_cifar10_batch(tmp_path / "b.bin")
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, [3, 7])
    np.testing.assert_array_equal(x[0], expected_image(3))
    np.testing.assert_array_equal(x[1], expected_image(7))
    assert x[1, 2, 31, 0] == pixel(7, 2, 31, 0)  # blue channel, last row, first column


def test_cifar10_splits_and_order(cifar_dir):
    x, y = data.load("cifar10", split="train", data_dir=cifar_dir, normalize=False, shape="image")
    train_labels = [l for i in range(1, 6) for l in TRAIN[f"data_batch_{i}.bin"]]
    np.testing.assert_array_equal(y.numpy(), train_labels)
    assert x.shape == (20, 3, 32, 32) and y.dtype == torch.int64
    for i, l in enumerate(train_labels):
        np.testing.assert_array_equal(x[i].numpy(), expected_image(l).astype(np.float32) / np.float32(255))
    xt, yt = data.load("cifar10", data_dir=cifar_dir, normalize=False)  # default split "test", flat
    assert xt.shape == (3, 3072)
    np.testing.assert_array_equal(yt.numpy(), TEST["test_batch.bin"])
    # flat order = the record's own byte order (channel, row, column)
    np.testing.assert_array_equal(
        np.round(xt[0].numpy() * 255).astype(np.uint8), np.frombuffer(record(9)[1:], dtype=np.uint8)
    )
    xa, ya = data.load("cifar10", split="all", data_dir=cifar_dir, normalize=False)
    np.testing.assert_array_equal(ya.numpy(), train_labels + TEST["test_batch.bin"])
    assert data.available_splits("cifar10", cifar_dir) == ["train", "test"]


def test_cifar10_normalisation_per_channel(cifar_dir):
    raw, _ = data.load("cifar10", data_dir=cifar_dir, normalize=False, shape="image")
    x, _ = data.load("cifar10", data_dir=cifar_dir, shape="image")
    for c, (m, s) in enumerate([(0.491, 0.247), (0.482, 0.243), (0.447, 0.262)]):
        np.testing.assert_allclose(x[:, c].numpy(), (raw[:, c].numpy() - m) / s, rtol=1e-6, atol=1e-6)


def test_cifar10_subsets_subfolder_and_env(tmp_path, monkeypatch):
    write_cifar(tmp_path / "cifar-10-batches-bin", {**TRAIN, **TEST})
    x, y = data.load("cifar10", split="train", data_dir=tmp_path, per_class=2, seed=0, shape="image")
    assert x.shape == (20, 3, 32, 32) and sorted(y.tolist()) == sorted(list(range(10)) * 2)
    monkeypatch.setenv("GNTK_CIFAR10_DIR", str(tmp_path / "cifar-10-batches-bin"))
    xb, yb = data.pruning_batch("cifar10", per_class=1, seed=0)
    assert xb.shape == (10, 3072) and sorted(yb.tolist()) == list(range(10))


def test_cifar10_missing_files_named(tmp_path, monkeypatch):
    write_cifar(tmp_path, {f"data_batch_{i}.bin": [0] for i in (1, 2, 4, 5)})
    with pytest.raises(FileNotFoundError, match=r"missing data_batch_3\.bin"):
        data.load("cifar10", split="train", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing test_batch\.bin"):
        data.load("cifar10", split="test", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("cifar10", data_dir=tmp_path / "nowhere")
    monkeypatch.delenv("GNTK_CIFAR10_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="GNTK_CIFAR10_DIR"):
        data.load("cifar10")
    assert data.available_splits("cifar10", tmp_path) == []


@pytest.mark.parametrize(
    "content,pattern",
    [
        (b"", "empty CIFAR-10 batch file"),
        (None, r"truncated or corrupt CIFAR-10 batch: 6147 bytes .* 2 whole records, 1 bytes left over"),
        (b"\x0a" + bytes(3072), "record 0 has label 10"),
    ],
)
def test_cifar10_bad_files_named(tmp_path, content, pattern):
    write_cifar(tmp_path, TRAIN)
    if content is None:
        content = record(1) + record(2) + b"\x05"
    (tmp_path / "test_batch.bin").write_bytes(content)
    with pytest.raises(ValueError, match="test_batch.bin: " + pattern):
        data.load("cifar10", data_dir=tmp_path)
    cut = record(1)[:-10]
    (tmp_path / "data_batch_5.bin").write_bytes(record(0) + cut)
    with pytest.raises(ValueError, match=r"data_batch_5\.bin: truncated"):
        data.load("cifar10", split="train", data_dir=tmp_path)


def test_shape_argument_validated():
    with pytest.raises(ValueError, match="shape must be one of"):
        data.load("digits", shape="square")
    with pytest.raises(ValueError, match="shape must be one of"):
        data.pruning_batch("digits", shape=None)
    assert data.image_shape("cifar10") == (3, 32, 32) and data.input_dim("cifar10") == 3072


@settings(max_examples=20, deadline=None)
@given(labels=st.lists(st.integers(0, 9), min_size=1, max_size=5), seed=st.integers(0, 2**16))
def test_read_cifar10_batch_random_bytes(tmp_path_factory, labels, seed):
    rng = np.random.default_rng(seed)
    pix = [rng.integers(0, 256, size=3072, dtype=np.uint8) for _ in labels]
    blob = b"".join(bytes([l]) + bytes(p.tolist()) for l, p in zip(labels, pix))
    path = tmp_path_factory.mktemp("cifar") / "b.bin"
    path.write_bytes(blob)
    x, y = data.read_cifar10_batch(path)
    assert y.tolist() == labels
    for i, p in enumerate(pix):
        for c, r, col in [(0, 0, 0), (1, 5, 17), (2, 31, 31), (2, 0, 31)]:
            assert x[i, c, r, col] == p[1024 * c + 32 * r + col]
