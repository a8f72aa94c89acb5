"""Fake dataset files and a fake server for the tests of :mod:`minicnn.datasets`.

MNIST is faked with tiny IDX files whose checksums the ``isolated`` fixture
(``conftest.py``) patches into ``MNIST_SHA256``; ``serve`` replaces ``urlopen``.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from minicnn import datasets
from minicnn.datasets import MNIST_FILES, DatasetError

CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
         np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array: np.ndarray, code: int | None = None) -> bytes:
    """IDX encoding of ``array`` (already big-endian), built independently of the reader."""
    code = CODES[array.dtype] if code is None else code
    header = struct.pack(f">2xBB{array.ndim}I", code, array.ndim, *array.shape)
    return header + array.tobytes()


def fake_mnist() -> dict[str, np.ndarray]:
    """Tiny stand-ins for the four MNIST files: 3 train and 2 test 4x5 images."""
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (3, 4, 5), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.array([5, 0, 9], dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (2, 4, 5), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([7, 2], dtype=np.uint8),
    }


def write_mnist(directory: Path, arrays: dict[str, np.ndarray], names=MNIST_FILES) -> None:
    """Write ``names`` into ``directory``, alternately gzipped and raw."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        content = idx_bytes(arrays[name])
        if i % 2 == 0:
            (directory / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (directory / name).write_bytes(content)


def assert_loaded(result, arrays: dict[str, np.ndarray]) -> None:
    (x_train, y_train), (x_test, y_test) = result
    for got, name in zip((x_train, y_train, x_test, y_test), MNIST_FILES, strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[name])


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


class FakeResponse(io.BytesIO):
    """What ``urlopen`` returns: readable, a context manager, with Content-Length."""

    def __init__(self, data: bytes, fail_after: int | None = None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}
        self.fail_after = fail_after

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection dropped midway")
        return super().read(size if self.fail_after is None else min(size, self.fail_after))


def serve(monkeypatch, files: dict[str, bytes], *, down=(), fail_after=None) -> list[str]:
    """Fake ``urlopen`` serving ``files`` by URL basename; mirrors in ``down`` refuse.

    Returns the list of requested URLs.
    """
    requested = []

    def urlopen(url, timeout=None):
        requested.append(url)
        if url.startswith(tuple(down)):
            raise urllib.error.URLError("mirror is down")
        return FakeResponse(files[url.rsplit("/", 1)[1]], fail_after)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


def gz_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {f"{n}.gz": gzip.compress(idx_bytes(a)) for n, a in arrays.items()}


BOMB_ZEROS = datasets.MAX_BYTES + 2**20  # just past the default limit


def peak_memory(function) -> int:
    """Peak bytes allocated (as tracemalloc sees them) while ``function()`` runs."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def expect_error(function, exception=DatasetError):
    def run():
        with pytest.raises(exception) as info:
            function()
        run.message = str(info.value)
    return run
