"""minicnn.datasets: IDX parsing, MNIST lookup/verification/download, and the small helpers.

No test touches the network: ``urllib.request.urlopen`` is replaced for every test, by a
guard that fails the test or by a fake server. MNIST is faked with tiny IDX files whose
checksums are patched into ``MNIST_SHA256``; the one real-data test needs ``MINICNN_DATA``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from minicnn import datasets
from minicnn.datasets import (
    MNIST_FILES,
    MNIST_MIRRORS,
    DatasetError,
    cache_dir,
    load_digits,
    load_idx_dataset,
    load_mnist,
    load_mnist_all,
    prepare_images,
    read_idx,
)

REAL_DATA = os.environ.get("MINICNN_DATA")
REAL_SHA256 = dict(datasets.MNIST_SHA256)
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


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    return fake_mnist()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path, arrays):
    """No network, no real cache or data dir, and checksums that match the fake files."""
    def no_network(*args, **kwargs):
        raise AssertionError(f"test tried to use the network: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    sha = {n: hashlib.sha256(idx_bytes(a)).hexdigest() for n, a in arrays.items()}
    monkeypatch.setattr(datasets, "MNIST_SHA256", sha)


# --- read_idx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8"])
def test_read_idx_round_trips(tmp_path, dtype, gz):
    expected = (np.arange(24).reshape(2, 3, 4) * 37 - 300).astype(dtype)
    content = idx_bytes(expected)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(content) if gz else content)
    got = read_idx(path)
    assert got.shape == (2, 3, 4)
    assert got.dtype.isnative and got.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(got, expected)


def test_read_idx_decodes_big_endian_values(tmp_path):
    """A reader that forgot the byte order would read 1 as 16777216."""
    path = tmp_path / "a.idx"
    path.write_bytes(struct.pack(">2xBBI3i", 0x0C, 1, 3, 1, -2, 70000))
    np.testing.assert_array_equal(read_idx(path), [1, -2, 70000])


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
MALFORMED = {
    "truncated": (GOOD[:-1], "truncated"),
    "trailing": (GOOD + b"\0", "trailing"),
    "magic": (b"\x01" + GOOD[1:], "not an IDX file"),
    "dtype": (GOOD[:2] + b"\x0a" + GOOD[3:], "0x0a"),
    "header": (GOOD[:6], "header"),
    "gzip-truncated": (gzip.compress(GOOD * 50)[:30], "gzip"),
    "gzip-corrupt": (gzip.compress(GOOD)[:12] + b"\xff" * 20, "gzip"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_read_idx_rejects_malformed_file_naming_it(tmp_path, case):
    content, problem = MALFORMED[case]
    path = tmp_path / f"bad-{case}.idx"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=problem) as info:
        read_idx(path)
    assert str(path) in str(info.value)


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
    monkeypatch.setattr(datasets, "MNIST_SHA256", {n: "0" * 64 for n in MNIST_FILES})
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


# --- downloading into the cache ---------------------------------------------------------------


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


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "xdg" / "minicnn" / "mnist"


def test_download_fills_cache_with_verified_files_once(monkeypatch, arrays, cache):
    requested = serve(monkeypatch, gz_files(arrays))
    assert_loaded(load_mnist(), arrays)
    assert requested == [f"{MNIST_MIRRORS[0]}{name}.gz" for name in MNIST_FILES]
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES)
    requested.clear()
    assert_loaded(load_mnist(), arrays)
    assert requested == []


def test_download_fetches_only_missing_files(monkeypatch, arrays, cache):
    write_mnist(cache, arrays, names=MNIST_FILES[:3])
    requested = serve(monkeypatch, gz_files(arrays))
    assert_loaded(load_mnist(), arrays)
    assert requested == [f"{MNIST_MIRRORS[0]}t10k-labels-idx1-ubyte.gz"]


def test_download_falls_back_to_next_mirror(monkeypatch, arrays, cache):
    requested = serve(monkeypatch, gz_files(arrays), down=[MNIST_MIRRORS[0]])
    assert_loaded(load_mnist(), arrays)
    assert requested[:2] == [f"{m}train-images-idx3-ubyte.gz" for m in MNIST_MIRRORS]


def test_failed_download_leaves_no_partial_file(monkeypatch, arrays, cache):
    serve(monkeypatch, gz_files(arrays), down=[MNIST_MIRRORS[0]], fail_after=20)
    with pytest.raises(DatasetError) as info:
        load_mnist()
    message = str(info.value)
    assert "connection dropped midway" in message and "MINICNN_DATA" in message
    assert all(name in message for name in MNIST_FILES)
    assert list(cache.iterdir()) == []


def test_download_with_wrong_checksum_is_not_kept(monkeypatch, arrays, cache):
    wrong = {**arrays, "train-images-idx3-ubyte": np.zeros((3, 4, 5), dtype=np.uint8)}
    serve(monkeypatch, gz_files(wrong))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_mnist()
    assert list(cache.iterdir()) == []


def test_offline_download_says_what_is_missing_and_where_to_put_it(monkeypatch, cache):
    serve(monkeypatch, {}, down=MNIST_MIRRORS)
    with pytest.raises(DatasetError, match="mirror is down") as info:
        load_mnist()
    assert "train-labels-idx1-ubyte" in str(info.value) and str(cache) in str(info.value)


# --- real MNIST -------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_mnist(monkeypatch):
    if not REAL_DATA or datasets._missing_files(Path(REAL_DATA) / "mnist"):
        pytest.skip("real MNIST needs MINICNN_DATA=DIR with the four files in DIR/mnist/")
    monkeypatch.setattr(datasets, "MNIST_SHA256", REAL_SHA256)
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


# --- small helpers ----------------------------------------------------------------------------


def test_load_digits():
    x, y = load_digits()
    assert x.shape == (1797, 8, 8, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert y.shape == (1797,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))


def test_prepare_images_scales_and_adds_channel():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    got = prepare_images(x)
    assert got.shape == (1, 2, 2, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got[..., 0], [[[0.0, 1.0], [0.2, 0.4]]], rtol=1e-6)


@pytest.mark.parametrize(
    "x", [np.zeros((2, 4, 4), dtype=np.float32), np.zeros((2, 4, 4, 1), dtype=np.uint8)]
)
def test_prepare_images_rejects_wrong_dtype_or_shape(x):
    with pytest.raises(ValueError, match=r"uint8 images of shape \(N, H, W\)"):
        prepare_images(x)
