"""Test configuration.

Without a CUDA GPU the Triton kernels run under the CPU interpreter: set
TRITON_INTERPRET=1 before anything imports triton (it is read when a kernel is
decorated). CUDA-only tests carry ``@pytest.mark.cuda`` and skip cleanly.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

MNIST_DIR = Path(os.environ.get("GNTK_MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def mnist_dir() -> Path:
    """The shared MNIST directory (../shared/data/mnist or GNTK_MNIST_DIR); skips when absent."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {MNIST_DIR} (set GNTK_MNIST_DIR)")
    return MNIST_DIR
