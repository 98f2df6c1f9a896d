"""gntk_fast.data: MNIST IDX parsing (real and synthetic files), digits splits,
normalisation, subsets and argument validation."""
from __future__ import annotations

import gzip
import re
import struct
import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gntk_fast as gf
from gntk_fast import data
from gntk_fast._validation import MAX_SAMPLES

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------------ helpers
def write_idx(path, arr: np.ndarray, magic: int | None = None, *, gz: bool | None = None, dims=None, cut: int = 0):
    """Write ``arr`` (uint8) as an IDX file by hand; ``dims`` overrides the header
    sizes, ``cut`` drops that many trailing payload bytes."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    dims = arr.shape if dims is None else dims
    magic = (0x0800 | len(dims)) if magic is None else magic
    blob = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + arr.tobytes()
    if cut:
        blob = blob[:-cut]
    gz = str(path).endswith(".gz") if gz is None else gz
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as fh:
        fh.write(blob)
    return path


def synthetic_split(rng, n, prefix, directory, *, gz=True):
    """A valid MNIST-format split with pixels that encode their own label."""
    y = np.arange(n, dtype=np.uint8) % 10
    rng.shuffle(y)
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    x[:, 0, 0] = y * 20  # recoverable from the image
    ext = ".gz" if gz else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{ext}", x)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{ext}", y)
    return x, y


def raw_mnist_test(mnist_dir):
    """Independent reading of the shared test split: skip the fixed-size headers."""
    with gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz", "rb") as fh:
        img = np.frombuffer(fh.read(), dtype=np.uint8)[16:].reshape(10000, 784)
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz", "rb") as fh:
        lab = np.frombuffer(fh.read(), dtype=np.uint8)[8:]
    return img, lab


# -------------------------------------------------------------- real MNIST
def test_mnist_test_split(mnist_dir):
    x, y = data.load("mnist", split="test", data_dir=mnist_dir)
    assert x.shape == (10000, 784) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert torch.bincount(y, minlength=10).tolist() == MNIST_TEST_COUNTS
    img, lab = raw_mnist_test(mnist_dir)
    assert np.array_equal(y.numpy(), lab.astype(np.int64))
    # normalisation: (p/255 - 0.1307)/0.3081, checked on the global mean and on every pixel
    raw_mean = img.astype(np.float64).mean() / 255.0
    expect_mean = (raw_mean - 0.1307) / 0.3081
    assert abs(float(x.double().mean()) - expect_mean) < 1e-5
    assert -0.1 < expect_mean < 0.1  # the test split is close to the train statistics
    expect = (img.astype(np.float64) / 255.0 - 0.1307) / 0.3081
    assert np.allclose(x.numpy(), expect, atol=1e-5)
    assert float(x.min()) == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    assert float(x.max()) == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-5)


def test_mnist_unnormalised_and_env_var(mnist_dir, monkeypatch):
    monkeypatch.setenv("GNTK_MNIST_DIR", str(mnist_dir))
    x, y = data.load("mnist", normalize=False)
    img, _ = raw_mnist_test(mnist_dir)
    assert np.array_equal(x.numpy(), img.astype(np.float32) / np.float32(255.0))
    assert float(x.max()) == 1.0 and float(x.min()) == 0.0
    assert data.available_splits("mnist") == ["test"]


def test_mnist_balanced_batch(mnist_dir):
    x, y = data.load("mnist", data_dir=mnist_dir, per_class=10, seed=3)
    assert x.shape == (100, 784)
    assert torch.bincount(y, minlength=10).tolist() == [10] * 10
    full_x, full_y = data.load("mnist", data_dir=mnist_dir)
    # every row is a genuine (image, label) pair of the split
    rows = {tuple(r) for r in np.round(full_x.numpy(), 5)}
    assert all(tuple(r) in rows for r in np.round(x.numpy(), 5))
    x2, y2 = data.load("mnist", data_dir=mnist_dir, per_class=10, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = data.load("mnist", data_dir=mnist_dir, per_class=10, seed=4)
    assert not torch.equal(x, x3)


def test_pruning_batch_falls_back_to_test_with_warning(mnist_dir):
    with pytest.warns(UserWarning, match="test split"):
        x, y = data.pruning_batch("mnist", data_dir=mnist_dir, seed=0)
    assert x.shape == (100, 784) and torch.bincount(y, minlength=10).tolist() == [10] * 10
    x2, y2 = data.load("mnist", "test", data_dir=mnist_dir, seed=0, per_class=10)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_mnist_train_missing_names_expected_files(mnist_dir):
    with pytest.raises(FileNotFoundError) as err:
        data.load("mnist", split="train", data_dir=mnist_dir)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert str(mnist_dir) in msg and "splits present: test" in msg


# --------------------------------------------------------- synthetic MNIST
def test_synthetic_splits_gz_and_plain(tmp_path):
    rng = np.random.default_rng(0)
    xtr, ytr = synthetic_split(rng, 50, "train", tmp_path, gz=False)
    xte, yte = synthetic_split(rng, 30, "t10k", tmp_path, gz=True)
    assert data.available_splits("mnist", tmp_path) == ["train", "test"]
    x, y = data.load("mnist", "train", data_dir=tmp_path, normalize=False)
    assert np.array_equal(x.numpy(), xtr.reshape(50, 784).astype(np.float32) / 255)
    assert np.array_equal(y.numpy(), ytr)
    x, y = data.load("mnist", "all", data_dir=tmp_path, normalize=False)
    assert x.shape == (80, 784)
    assert np.array_equal(y.numpy(), np.concatenate([ytr, yte]))
    assert np.array_equal(np.round(x[:, 0].numpy() * 255), np.concatenate([ytr, yte]) * 20.0)
    # train is used for the pruning batch when present (no warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xb, yb = data.pruning_batch("mnist", per_class=3, data_dir=tmp_path, seed=1, normalize=False)
    assert torch.bincount(yb, minlength=10).tolist() == [3] * 10
    assert np.array_equal(np.round(xb[:, 0].numpy() * 255), yb.numpy() * 20.0)


def test_file_cache_sees_rewritten_files(tmp_path):
    rng = np.random.default_rng(1)
    synthetic_split(rng, 20, "t10k", tmp_path)
    x1, _ = data.load("mnist", data_dir=tmp_path)
    xnew, _ = synthetic_split(np.random.default_rng(2), 21, "t10k", tmp_path)
    x2, _ = data.load("mnist", data_dir=tmp_path, normalize=False)
    assert x2.shape == (21, 784)
    assert np.array_equal(x2.numpy(), xnew.reshape(21, 784).astype(np.float32) / 255)


def _valid_pair(tmp_path, n=12):
    x = np.random.default_rng(0).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.uint8)
    return x, y


@pytest.mark.parametrize(
    "case,pattern",
    [
        ("images_wrong_magic", r"wrong IDX magic number 0x00000801"),
        ("labels_wrong_magic", r"wrong IDX magic number 0x00000803"),
        ("images_not_ubyte", r"wrong IDX magic number 0x00000d03"),
        ("images_truncated", r"truncated IDX payload"),
        ("labels_truncated", r"truncated IDX payload"),
        ("images_too_long", r"payload size mismatch"),
        ("images_wrong_dims", r"28 x 28"),
        ("images_header_cut", r"truncated IDX header"),
        ("count_mismatch", r"11 labels but .* 12 images"),
        ("label_out_of_range", r"labels must be in 0\.\.9"),
        ("gzip_truncated", r"corrupt or truncated gzip"),
        ("fake_gz", r"not gzip-compressed"),
    ],
)
def test_bad_idx_files(tmp_path, case, pattern):
    x, y = _valid_pair(tmp_path)
    img = tmp_path / "t10k-images-idx3-ubyte.gz"
    lab = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(img, x)
    write_idx(lab, y)
    bad = img
    if case == "images_wrong_magic":
        write_idx(img, x, magic=0x00000801)
    elif case == "labels_wrong_magic":
        write_idx(lab, y, magic=0x00000803)
        bad = lab
    elif case == "images_not_ubyte":
        write_idx(img, x, magic=0x00000D03)  # float32 type code
    elif case == "images_truncated":
        write_idx(img, x, cut=100)
    elif case == "labels_truncated":
        write_idx(lab, y, cut=1)
        bad = lab
    elif case == "images_too_long":
        write_idx(img, x, dims=(11, 28, 28))
    elif case == "images_wrong_dims":
        write_idx(img, x.reshape(12, 784)[:, :756].reshape(12, 27, 28))
    elif case == "images_header_cut":
        with gzip.open(img, "wb") as fh:
            fh.write(struct.pack(">II", 0x803, 12))
    elif case == "count_mismatch":
        write_idx(lab, y[:11])
        bad = lab
    elif case == "label_out_of_range":
        y[3] = 10
        write_idx(lab, y)
        bad = lab
    elif case == "gzip_truncated":
        blob = img.read_bytes()
        img.write_bytes(blob[: len(blob) // 2])
    elif case == "fake_gz":
        write_idx(img, x, gz=False)  # raw IDX under a .gz name
        img.write_bytes(b"\x00\x00" + img.read_bytes()[2:])
    with pytest.raises(ValueError, match=pattern) as err:
        data.load("mnist", data_dir=tmp_path)
    assert str(bad) in str(err.value)


def test_read_idx_roundtrip_any_rank(tmp_path):
    arr = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    p = write_idx(tmp_path / "a.idx", arr)
    out = data.read_idx(p)
    assert out.shape == (2, 3, 4, 5) and np.array_equal(out, arr)
    with pytest.raises(ValueError, match="0x00000803"):
        data.read_idx(p, data.IDX_IMAGES_MAGIC)
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="shorter than the 4-byte magic"):
        data.read_idx(tiny)


def test_missing_files(tmp_path, monkeypatch):
    x, y = _valid_pair(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", x)  # labels missing
    with pytest.raises(FileNotFoundError) as err:
        data.load("mnist", data_dir=tmp_path)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "missing t10k-labels-idx1-ubyte;" in msg and str(tmp_path) in msg
    assert "splits present: none" in msg
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("mnist", data_dir=tmp_path / "nowhere")
    monkeypatch.delenv("GNTK_MNIST_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="GNTK_MNIST_DIR"):
        data.load("mnist")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.pruning_batch("mnist", data_dir=tmp_path)
    with pytest.raises(TypeError, match="data_dir"):
        data.load("mnist", data_dir=3)


# ------------------------------------------------------------------ digits
def test_digits_splits():
    from sklearn.datasets import load_digits

    raw = load_digits()
    xa, ya = data.load("digits", "all", normalize=False)
    assert xa.shape == (1797, 64) and xa.dtype == torch.float32 and ya.dtype == torch.int64
    assert np.array_equal(xa.numpy() * 16, raw.data.astype(np.float32))
    assert np.array_equal(ya.numpy(), raw.target)
    xtr, ytr = data.load("digits", "train", normalize=False)
    xte, yte = data.load("digits", "test", normalize=False)
    assert len(ytr) == 1437 and len(yte) == 360 and len(ytr) + len(yte) == len(ya)
    # the two splits partition the data (rows + labels, as multisets)
    key = lambda x, y: sorted(map(tuple, np.column_stack([x.numpy() * 16, y.numpy()]).astype(int).tolist()))  # noqa: E731
    assert key(torch.cat([xtr, xte]), torch.cat([ytr, yte])) == key(xa, ya)
    # stratified: each class within one example of 20% in the test split
    total = np.bincount(raw.target, minlength=10)
    assert np.all(np.abs(np.bincount(yte.numpy(), minlength=10) - 0.2 * total) <= 1)
    # deterministic
    xte2, yte2 = data.load("digits", "test", normalize=False)
    assert torch.equal(xte, xte2) and torch.equal(yte, yte2)
    assert data.num_classes("digits") == 10 and data.input_dim("digits") == 64
    assert data.num_classes("mnist") == 10 and data.input_dim("mnist") == 784


def test_digits_normalisation_uses_train_statistics():
    xtr_raw, _ = data.load("digits", "train", normalize=False)
    mean = xtr_raw.double().mean().item()
    std = xtr_raw.double().std(unbiased=False).item()
    assert 0.2 < mean < 0.4  # digits pixels are mostly dark
    for split in ("train", "test", "all"):
        raw, _ = data.load("digits", split, normalize=False)
        x, _ = data.load(split=split)  # digits is the default dataset
        assert torch.allclose(x.double(), (raw.double() - mean) / std, atol=1e-5)
    x, _ = data.load("digits", "train")
    assert abs(x.double().mean().item()) < 1e-6 and abs(x.double().std(unbiased=False).item() - 1) < 1e-5


def is_sub_multiset(x, y, xf, yf) -> bool:
    """Every (row, label) of the subset comes from the full split, no more often than there."""
    sub = Counter(tuple(r) + (c,) for r, c in zip(x.numpy().tolist(), y.tolist()))
    full = Counter(tuple(r) + (c,) for r, c in zip(xf.numpy().tolist(), yf.tolist()))
    return all(full[k] >= v for k, v in sub.items())


def test_digits_subsets():
    xf, yf = data.load("digits", "train")
    x, y = data.load("digits", "train", per_class=7, seed=11)
    assert torch.bincount(y, minlength=10).tolist() == [7] * 10
    assert is_sub_multiset(x, y, xf, yf)
    xn, yn = data.load("digits", "train", n=200, seed=5)
    assert xn.shape == (200, 64) and is_sub_multiset(xn, yn, xf, yf)
    xn2, yn2 = data.load("digits", "train", n=200, seed=5)
    xn3, _ = data.load("digits", "train", n=200, seed=6)
    assert torch.equal(xn, xn2) and torch.equal(yn, yn2) and not torch.equal(xn, xn3)
    # n = split size returns the split itself (subsets keep dataset order)
    xall, yall = data.load("digits", "test", n=360, seed=0)
    xt, yt = data.load("digits", "test")
    assert torch.equal(xall, xt) and torch.equal(yall, yt)
    # the sub-multiset check itself catches a duplicated example
    assert not is_sub_multiset(torch.cat([xt[:1], xt[:1]]), torch.cat([yt[:1], yt[:1]]), xt[:1], yt[:1])


def test_subset_errors():
    with pytest.raises(ValueError, match="n=361"):
        data.load("digits", "test", n=361)
    with pytest.raises(ValueError, match=r"per_class=36 but class 2 has only 35"):
        data.load("digits", "test", per_class=36)
    with pytest.raises(ValueError, match="n and per_class"):
        data.load("digits", n=10, per_class=1)
    with pytest.raises(TypeError, match="normalize"):
        data.load("digits", normalize="yes")
    with pytest.raises(ValueError, match="seed"):
        data.load("digits", n=3, seed=-1)


def test_public_api():
    assert gf.data.load is data.load


# ------------------------------------------------------ hypothesis: arguments
@settings(max_examples=25, deadline=None)
@given(name=st.text(max_size=8).filter(lambda s: s not in data.DATASETS))
def test_unknown_name(name):
    with pytest.raises(ValueError, match="name"):
        data.load(name)
    with pytest.raises(ValueError, match="name"):
        data.num_classes(name)


@settings(max_examples=25, deadline=None)
@given(split=st.text(max_size=8).filter(lambda s: s not in data.SPLITS))
def test_unknown_split(split):
    with pytest.raises(ValueError, match="split"):
        data.load("digits", split=split)


@settings(max_examples=25, deadline=None)
@given(value=st.integers(max_value=0), which=st.sampled_from(["n", "per_class"]))
def test_non_positive_sizes(value, which):
    with pytest.raises(ValueError, match=rf"^{which} must be >= 1"):
        data.load("digits", **{which: value})


@settings(max_examples=25, deadline=None)
@given(value=st.one_of(st.floats(), st.text(max_size=3), st.booleans()), which=st.sampled_from(["n", "per_class", "seed"]))
def test_wrong_types(value, which):
    with pytest.raises(TypeError, match=rf"^{which} must be an int"):
        data.load("digits", **{which: value})


@settings(max_examples=25, deadline=None)
@given(
    split=st.sampled_from(["train", "test", "all"]),
    n=st.integers(min_value=1, max_value=400),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_random_subset_property(split, n, seed):
    xf, yf = data.load("digits", split)
    if n > len(yf):
        with pytest.raises(ValueError, match=re.escape(f"n={n}")):
            data.load("digits", split, n=n, seed=seed)
        return
    x, y = data.load("digits", split, n=n, seed=seed)
    assert x.shape == (n, 64) and y.shape == (n,)
    assert is_sub_multiset(x, y, xf, yf)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(min_value=1, max_value=40), seed=st.integers(min_value=0, max_value=1000))
def test_balanced_subset_property(k, seed):
    if k > 35:
        with pytest.raises(ValueError, match=f"per_class={k}"):
            data.load("digits", "test", per_class=k, seed=seed)
        return
    x, y = data.load("digits", "test", per_class=k, seed=seed)
    assert torch.bincount(y, minlength=10).tolist() == [k] * 10
    x2, y2 = data.load("digits", "test", per_class=k, seed=seed)
    assert torch.equal(x, x2) and torch.equal(y, y2)


@pytest.mark.parametrize("which", ["n", "per_class"])
def test_sizes_bounded(which):
    with pytest.raises(ValueError, match=rf"^{which} must be <= {MAX_SAMPLES}"):
        data.load("digits", **{which: MAX_SAMPLES + 1})


def test_pruning_batch_checks_arguments_before_reading_files(tmp_path):
    # an empty directory would give FileNotFoundError: the bad argument is reported first
    with pytest.raises(ValueError, match="^per_class must be <="):
        data.pruning_batch("mnist", per_class=2**40, data_dir=tmp_path)
    with pytest.raises(ValueError, match="^seed must be <="):
        data.pruning_batch("mnist", seed=2**64, data_dir=tmp_path)


def test_seed_bounded():
    with pytest.raises(ValueError, match="^seed must be <="):
        data.load("digits", n=3, seed=2**64)
