"""minicnn.datasets.mnist: MNIST and Fashion-MNIST found, verified and loaded; other IDX datasets.

The one real-data test needs ``MINICNN_DATA``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from minicnn import datasets
from minicnn.datasets import (
    MNIST_FILES,
    DatasetError,
    cache_dir,
    download,
    load_fashion_mnist,
    load_idx_dataset,
    load_mnist,
    load_mnist_all,
)

from .fakes import (
    BOMB_ZEROS,
    assert_loaded,
    expect_error,
    gz_files,
    idx_bytes,
    peak_memory,
    serve,
    write_mnist,
)

REAL_DATA = os.environ.get("MINICNN_DATA")
REAL_SHA256 = dict(datasets.MNIST_SHA256)


# --- finding and verifying MNIST --------------------------------------------------------------


@pytest.mark.parametrize("subdir", ["", "mnist"])
def test_load_mnist_from_explicit_dir_verifies_and_loads(tmp_path, arrays, subdir):
    write_mnist(tmp_path / "data" / subdir, arrays)
    assert_loaded(load_mnist(tmp_path / "data"), arrays)


def test_load_mnist_rejects_checksum_mismatch_naming_file(tmp_path, arrays, monkeypatch):
    write_mnist(tmp_path, arrays)
    good = datasets.MNIST_SHA256["t10k-labels-idx1-ubyte"]
    monkeypatch.setitem(datasets.MNIST_SHA256, "t10k-labels-idx1-ubyte", "0" * 64)
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte") as info:
        load_mnist(tmp_path)
    assert "0" * 64 in str(info.value) and good in str(info.value)


def test_load_mnist_checks_content_not_file_bytes(tmp_path, arrays):
    """A file re-gzipped at another level has other bytes but the same, valid content."""
    write_mnist(tmp_path, arrays)
    name = "train-images-idx3-ubyte"
    (tmp_path / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(arrays[name]), 1, mtime=7))
    assert_loaded(load_mnist(tmp_path), arrays)


def test_load_mnist_lists_missing_files_in_explicit_dir_without_downloading(tmp_path, arrays):
    write_mnist(tmp_path, arrays, names=MNIST_FILES[:2])
    with pytest.raises(DatasetError) as info:
        load_mnist(tmp_path)  # the no-network guard fails the test if this downloads
    message = str(info.value)
    assert "t10k-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "train-images" not in message and str(tmp_path) in message


def test_load_mnist_honours_minicnn_data(tmp_path, arrays, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "shared"))
    with pytest.raises(DatasetError, match="MINICNN_DATA"):
        load_mnist()  # set but empty: an error, not a download into the cache
    write_mnist(tmp_path / "shared" / "mnist", arrays)
    assert_loaded(load_mnist(), arrays)


def test_load_mnist_honours_xdg_cache_home(tmp_path, arrays):
    assert cache_dir() == tmp_path / "xdg" / "minicnn"
    write_mnist(tmp_path / "xdg" / "minicnn" / "mnist", arrays)
    assert_loaded(load_mnist(download=False), arrays)


def test_load_mnist_without_download_reports_empty_cache(tmp_path):
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        load_mnist(download=False)


def test_load_idx_dataset_skips_checksums_for_drop_ins(tmp_path, arrays, monkeypatch):
    for name in MNIST_FILES:
        monkeypatch.setitem(datasets.MNIST_SHA256, name, "0" * 64)
    write_mnist(tmp_path, arrays)
    assert_loaded(load_idx_dataset(tmp_path), arrays)
    with pytest.raises(DatasetError, match="checksum"):
        load_mnist(tmp_path)


@pytest.mark.parametrize(
    ("name", "array", "problem"),
    [
        ("train-labels-idx1-ubyte", np.array([1, 2], dtype=np.uint8), "3 train images but 2"),
        ("t10k-labels-idx1-ubyte", np.array([7, 10], dtype=np.uint8), "0..9"),
        ("t10k-images-idx3-ubyte", np.zeros((2, 5, 4), dtype=np.uint8), r"\(4, 5\)"),
        ("train-images-idx3-ubyte", np.zeros((3, 20), dtype=np.uint8), r"\(N, H, W\)"),
        ("train-labels-idx1-ubyte", np.array([5, 0, 9], dtype=">i4"), "uint8"),
    ],
)
def test_load_idx_dataset_rejects_inconsistent_files(tmp_path, arrays, name, array, problem):
    write_mnist(tmp_path, {**arrays, name: array})
    with pytest.raises(DatasetError, match=problem):
        load_idx_dataset(tmp_path)


def test_load_mnist_all_puts_train_before_test(tmp_path, arrays):
    write_mnist(tmp_path, arrays)
    x, y = load_mnist_all(tmp_path)
    assert x.shape == (5, 4, 5) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, [5, 0, 9, 7, 2])
    np.testing.assert_array_equal(x[3:], arrays["t10k-images-idx3-ubyte"])


def test_loaders_pass_max_bytes_on(tmp_path, arrays):
    write_mnist(tmp_path, arrays)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.*max_bytes="):
        load_mnist(tmp_path, max_bytes=59)  # the 3x4x5 train images are 60 bytes
    with pytest.raises(DatasetError, match="max_bytes="):
        load_idx_dataset(tmp_path, max_bytes=59)
    assert_loaded(load_mnist(tmp_path, max_bytes=60), arrays)


# --- Fashion-MNIST ----------------------------------------------------------------------------


def write_fashion(directory: Path, arrays: dict[str, np.ndarray], monkeypatch) -> dict[str, bytes]:
    """The four files as published (NAME.gz), with their file checksums patched in."""
    directory.mkdir(parents=True, exist_ok=True)
    files = gz_files(arrays)
    for name, content in files.items():
        (directory / name).write_bytes(content)
        monkeypatch.setitem(datasets.FASHION_MNIST_SHA256, name, hashlib.sha256(content).hexdigest())
    return files


def test_fashion_mnist_published_checksums_are_of_the_gz_files():
    assert sorted(datasets.FASHION_MNIST_SHA256) == sorted(f"{n}.gz" for n in MNIST_FILES)
    assert datasets.FASHION_MNIST_SHA256["t10k-labels-idx1-ubyte.gz"] == (
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")


@pytest.mark.parametrize("where", ["data_dir", "data_dir/fashion-mnist", "MINICNN_DATA", "cache"])
def test_load_fashion_mnist_finds_verified_files(tmp_path, arrays, monkeypatch, where):
    folder = {"data_dir": tmp_path / "d", "data_dir/fashion-mnist": tmp_path / "d" / "fashion-mnist",
              "MINICNN_DATA": tmp_path / "shared" / "fashion-mnist",
              "cache": tmp_path / "xdg" / "minicnn" / "fashion-mnist"}[where]
    write_fashion(folder, arrays, monkeypatch)
    (tmp_path / "d").mkdir(exist_ok=True)
    if where == "MINICNN_DATA":
        monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "shared"))
    data_dir = tmp_path / "d" if where.startswith("data_dir") else None
    assert_loaded(load_fashion_mnist(data_dir, download=False), arrays)


def test_fashion_mnist_checksum_is_checked_before_decompressing(tmp_path, arrays, monkeypatch,
                                                                gzipped_zeros):
    write_fashion(tmp_path, arrays, monkeypatch)
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(struct.pack(">2xBBI", 0x08, 1, BOMB_ZEROS)) + gzipped_zeros)
    check = expect_error(lambda: load_fashion_mnist(tmp_path))
    assert peak_memory(check) < 32 * 2**20
    assert "checksum mismatch" in check.message and str(bomb) in check.message


def test_fashion_mnist_raw_files_are_not_accepted_unverified(tmp_path, arrays, monkeypatch):
    write_mnist(tmp_path / "fashion-mnist", arrays, names=[])
    for name, array in arrays.items():
        (tmp_path / "fashion-mnist" / name).write_bytes(idx_bytes(array))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz") as info:
        load_fashion_mnist(tmp_path)
    assert "load_idx_dataset" in str(info.value)
    assert_loaded(load_idx_dataset(tmp_path / "fashion-mnist"), arrays)


def test_fashion_mnist_download_falls_back_and_is_cached(tmp_path, arrays, monkeypatch):
    files = write_fashion(tmp_path / "elsewhere", arrays, monkeypatch)
    mirrors = datasets.FASHION_MNIST_MIRRORS
    requested = serve(monkeypatch, files, down=[mirrors[0]])
    assert_loaded(load_fashion_mnist(), arrays)
    assert requested[:2] == [f"{m}train-images-idx3-ubyte.gz" for m in mirrors[:2]]
    cache = tmp_path / "xdg" / "minicnn" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)
    requested.clear()
    assert_loaded(load_fashion_mnist(), arrays)
    assert requested == []


def test_fashion_mnist_missing_without_download_says_where(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_fashion_mnist(download=False)
    message = str(info.value)
    for part in ("Fashion-MNIST", str(tmp_path / "xdg" / "minicnn" / "fashion-mnist"),
                 "t10k-labels-idx1-ubyte.gz", "MINICNN_DATA", "DIR/fashion-mnist/", "data_dir="):
        assert part in message
    assert not (tmp_path / "xdg").exists()


# --- real MNIST -------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_mnist(monkeypatch):
    if not REAL_DATA or download.missing_files(Path(REAL_DATA) / "mnist", datasets.MNIST):
        pytest.skip("real MNIST needs MINICNN_DATA=DIR with the four files in DIR/mnist/")
    for name, sha in REAL_SHA256.items():
        monkeypatch.setitem(datasets.MNIST_SHA256, name, sha)
    monkeypatch.setenv("MINICNN_DATA", REAL_DATA)
    (x_train, y_train), (x_test, y_test) = load_mnist()
    assert (x_train.shape, x_test.shape) == ((60000, 28, 28), (10000, 28, 28))
    assert (y_train.shape, y_test.shape) == ((60000,), (10000,))
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert y_train[0] == 5 and y_test[0] == 7
    assert np.bincount(y_train, minlength=10).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_test, minlength=10).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
