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
import pickle
import struct
import tarfile
import tracemalloc
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest

from minicnn import datasets
from minicnn.datasets import (
    MNIST_FILES,
    MNIST_MIRRORS,
    DatasetError,
    cache_dir,
    load_cifar10,
    load_cifar10_binary,
    load_digits,
    load_fashion_mnist,
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
    for name, array in arrays.items():
        monkeypatch.setitem(datasets.MNIST_SHA256, name, hashlib.sha256(idx_bytes(array)).hexdigest())


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


def test_failed_download_leaves_no_partial_file(monkeypatch, arrays, cache, tmp_path):
    serve(monkeypatch, gz_files(arrays), down=[MNIST_MIRRORS[0]], fail_after=20)
    with pytest.raises(DatasetError) as info:
        load_mnist()
    message = str(info.value)
    assert "connection dropped midway" in message and "MINICNN_DATA" in message
    assert all(name in message for name in MNIST_FILES)
    assert not (tmp_path / "xdg").exists()  # no empty cache folders left behind


def test_download_with_wrong_checksum_is_not_kept(monkeypatch, arrays, cache):
    wrong = {**arrays, "train-images-idx3-ubyte": np.zeros((3, 4, 5), dtype=np.uint8)}
    serve(monkeypatch, gz_files(wrong))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_mnist()
    assert not cache.exists()


def test_offline_download_says_what_is_missing_and_where_to_put_it(monkeypatch, cache):
    serve(monkeypatch, {}, down=MNIST_MIRRORS)
    with pytest.raises(DatasetError, match="mirror is down") as info:
        load_mnist()
    assert "train-labels-idx1-ubyte" in str(info.value) and str(cache) in str(info.value)


# --- size limits ------------------------------------------------------------------------------

BOMB_ZEROS = datasets.MAX_BYTES + 2**20  # just past the default limit


@pytest.fixture(scope="module")
def gzipped_zeros() -> bytes:
    """A gzip member of BOMB_ZEROS zero bytes: about 0.5 MB on disk, 513 MiB decompressed."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    chunk = bytes(2**24)
    parts = [compressor.compress(chunk) for _ in range(BOMB_ZEROS // len(chunk))]
    parts.append(compressor.compress(bytes(BOMB_ZEROS % len(chunk))))
    return b"".join(parts) + compressor.flush()


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


def test_idx_header_declaring_too_much_is_refused_before_decompressing(tmp_path, gzipped_zeros):
    """Two gzip members: an IDX header declaring 513 MiB, then 513 MiB of zeros."""
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">2xBBI", 0x08, 1, BOMB_ZEROS)) + gzipped_zeros)
    assert path.stat().st_size < 2**20
    check = expect_error(lambda: read_idx(path))
    assert peak_memory(check) < 32 * 2**20
    for part in (str(path), f"{BOMB_ZEROS:,} bytes", f"{datasets.MAX_BYTES:,} bytes", "max_bytes="):
        assert part in check.message


def test_gzip_stream_is_not_read_past_the_declared_size(tmp_path, gzipped_zeros):
    """A well-formed small IDX file followed by a 513 MiB tail of zeros: the tail is not inflated."""
    path = tmp_path / "tail-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(12, dtype=np.uint8))) + gzipped_zeros)
    check = expect_error(lambda: read_idx(path))
    assert peak_memory(check) < 32 * 2**20
    assert "trailing bytes" in check.message and str(path) in check.message


def test_max_bytes_is_the_declared_data_size_limit(tmp_path):
    path = tmp_path / "a.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(12, dtype=">i4").reshape(3, 4))))
    np.testing.assert_array_equal(read_idx(path, max_bytes=48), np.arange(12).reshape(3, 4))
    with pytest.raises(DatasetError, match=r"\(3, 4\) of int32, 48 bytes.* 47 bytes") as info:
        read_idx(path, max_bytes=47)
    assert str(path) in str(info.value)


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


# --- CIFAR-10 ---------------------------------------------------------------------------------


def cifar_arrays(per_batch=(2, 1, 3, 1, 2), n_test=3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random (images NHWC uint8, labels) for each of the six batch files."""
    rng = np.random.default_rng(1)
    names = [*datasets.CIFAR10_TRAIN, datasets.CIFAR10_TEST]
    sizes = [*per_batch, n_test]
    return {name: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                   rng.integers(0, 10, n, dtype=np.uint8)) for name, n in zip(names, sizes, strict=True)}


def cifar_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: a label byte, then the red, green and blue 32x32 planes."""
    return b"".join(bytes([label]) + b"".join(image[:, :, c].tobytes() for c in range(3))
                    for image, label in zip(images, labels, strict=True))


def add_member(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def cifar_archive(path: Path, batches, extra=()) -> bytes:
    """Write a cifar-10-binary.tar.gz laid out like the real one; return its bytes.

    ``batches`` maps file names to (images, labels) or to the raw content; ``extra`` are
    (name, content) members put first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in extra:
            add_member(tar, name, content)
        add_member(tar, "cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n")
        for name, batch in batches.items():
            content = batch if isinstance(batch, bytes) else cifar_bytes(*batch)
            add_member(tar, f"cifar-10-batches-bin/{name}", content)
    return path.read_bytes()


def assert_cifar(result, batches) -> None:
    (x_train, y_train), (x_test, y_test) = result
    train = [batches[name] for name in datasets.CIFAR10_TRAIN]
    assert x_train.shape == (9, 32, 32, 3) and y_train.shape == (9,)
    assert x_test.shape == (3, 32, 32, 3) and y_test.shape == (3,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(x_train, np.concatenate([x for x, _ in train]))
    np.testing.assert_array_equal(y_train, np.concatenate([y for _, y in train]))
    np.testing.assert_array_equal(x_test, batches[datasets.CIFAR10_TEST][0])
    np.testing.assert_array_equal(y_test, batches[datasets.CIFAR10_TEST][1])


@pytest.fixture
def cifar(monkeypatch):
    """The batches, and a function writing them as a verified archive at a given folder."""
    batches = cifar_arrays()

    def write(folder: Path, extra=()) -> bytes:
        content = cifar_archive(folder / datasets.CIFAR10_ARCHIVE, batches, extra)
        monkeypatch.setitem(datasets.CIFAR10_SHA256, datasets.CIFAR10_ARCHIVE,
                            hashlib.sha256(content).hexdigest())
        return content

    return batches, write


def test_cifar10_records_are_decoded_channels_last():
    """Byte 1 + c*1024 + h*32 + w of a record is channel c of pixel (h, w)."""
    record = bytearray(3073)
    record[0] = 7
    record[1 + 1 * 1024 + 2 * 32 + 5] = 200  # green of pixel (2, 5)
    x, y = datasets._cifar10_records(bytes(record), Path("x"), "test_batch.bin")
    assert x.shape == (1, 32, 32, 3) and y.tolist() == [7]
    assert x[0, 2, 5, 1] == 200 and x.sum() == 200


@pytest.mark.parametrize("where", ["data_dir", "data_dir/cifar10", "MINICNN_DATA", "cache"])
def test_load_cifar10_finds_the_verified_archive(tmp_path, cifar, monkeypatch, where):
    batches, write = cifar
    folder = {"data_dir": tmp_path / "d", "data_dir/cifar10": tmp_path / "d" / "cifar10",
              "MINICNN_DATA": tmp_path / "shared" / "cifar10",
              "cache": tmp_path / "xdg" / "minicnn" / "cifar10"}[where]
    write(folder)
    (tmp_path / "d").mkdir(exist_ok=True)
    if where == "MINICNN_DATA":
        monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "shared"))
    data_dir = tmp_path / "d" if where.startswith("data_dir") else None
    assert_cifar(load_cifar10(data_dir, download=False), batches)


def test_load_cifar10_rejects_checksum_mismatch_naming_file(tmp_path, cifar, monkeypatch):
    _, write = cifar
    good = hashlib.sha256(write(tmp_path)).hexdigest()
    monkeypatch.setitem(datasets.CIFAR10_SHA256, datasets.CIFAR10_ARCHIVE, "0" * 64)
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        load_cifar10(tmp_path)
    assert str(tmp_path / datasets.CIFAR10_ARCHIVE) in str(info.value) and good in str(info.value)


def test_cifar10_published_checksum():
    assert datasets.CIFAR10_SHA256 == {
        "cifar-10-binary.tar.gz": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"}
    assert datasets.CIFAR10_MIRRORS[0] + datasets.CIFAR10_ARCHIVE == (
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz")


def test_load_cifar10_downloads_into_the_cache_once(tmp_path, cifar, monkeypatch):
    batches, write = cifar
    content = write(tmp_path / "elsewhere")
    requested = serve(monkeypatch, {datasets.CIFAR10_ARCHIVE: content})
    assert_cifar(load_cifar10(), batches)
    assert requested == [datasets.CIFAR10_MIRRORS[0] + datasets.CIFAR10_ARCHIVE]
    cache = tmp_path / "xdg" / "minicnn" / "cifar10"
    assert [p.name for p in cache.iterdir()] == [datasets.CIFAR10_ARCHIVE]
    requested.clear()
    assert_cifar(load_cifar10(), batches)
    assert requested == []


def test_load_cifar10_offline_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    serve(monkeypatch, {}, down=datasets.CIFAR10_MIRRORS)
    with pytest.raises(DatasetError, match="mirror is down") as info:
        load_cifar10()
    message = str(info.value)
    for part in ("cifar-10-binary.tar.gz", str(tmp_path / "xdg" / "minicnn" / "cifar10"),
                 "https://www.cs.toronto.edu/~kriz/", "MINICNN_DATA", "DIR/cifar10/"):
        assert part in message
    assert not (tmp_path / "xdg").exists()


def test_load_cifar10_download_with_wrong_checksum_is_not_kept(tmp_path, cifar, monkeypatch):
    _, write = cifar
    content = write(tmp_path / "elsewhere")
    damaged = content[:100] + bytes([content[100] ^ 1]) + content[101:]
    serve(monkeypatch, {datasets.CIFAR10_ARCHIVE: damaged})
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_cifar10()
    assert not (tmp_path / "xdg").exists()


def test_load_cifar10_binary_reads_an_extracted_folder(tmp_path, cifar):
    batches, _ = cifar
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name, (images, labels) in batches.items():
        (folder / name).write_bytes(cifar_bytes(images, labels))
    assert_cifar(load_cifar10_binary(tmp_path), batches)
    assert_cifar(load_cifar10_binary(folder), batches)
    (folder / "data_batch_3.bin").unlink()
    with pytest.raises(DatasetError, match="data_batch_3.bin"):
        load_cifar10_binary(folder)


def test_cifar10_python_version_is_refused_not_unpickled(tmp_path, monkeypatch):
    def no_pickle(*args, **kwargs):
        raise AssertionError("the loader unpickled something")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in ("data_batch_1", "test_batch"):
            add_member(tar, f"cifar-10-batches-py/{name}", b"\x80\x04K\x01.")  # pickled 1
    with pytest.raises(DatasetError, match="not CIFAR-10's binary version") as info:
        load_cifar10_binary(path)
    assert "cifar-10-batches-bin/data_batch_1.bin" in str(info.value)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("truncated-record", "not a whole number of 3073-byte records"),
        ("label-10", "label 10"),
        ("not-gzip", "not a readable tar.gz archive"),
        ("truncated-archive", "not a readable tar.gz archive"),
    ],
)
def test_load_cifar10_binary_rejects_damaged_files_naming_them(tmp_path, cifar, damage, problem):
    batches, _ = cifar
    path = tmp_path / datasets.CIFAR10_ARCHIVE
    if damage == "truncated-record":
        images, labels = batches["data_batch_2.bin"]
        cifar_archive(path, {**batches, "data_batch_2.bin": cifar_bytes(images, labels)[:-1]})
    elif damage == "label-10":
        images, labels = batches["test_batch.bin"]
        cifar_archive(path, {**batches, "test_batch.bin": (images, np.array([1, 10, 2], np.uint8))})
    elif damage == "not-gzip":
        path.write_bytes(b"<html>Not found</html>")
    else:
        path.write_bytes(cifar_archive(path, batches)[:500])
    with pytest.raises(DatasetError, match=problem) as info:
        load_cifar10_binary(path)
    assert str(path) in str(info.value)


def test_cifar10_archive_is_not_decompressed_past_the_limit(tmp_path, cifar):
    """A tar bomb: a large junk member before the batches; reading stops at max_bytes."""
    batches, _ = cifar
    path = tmp_path / datasets.CIFAR10_ARCHIVE
    cifar_archive(path, batches, extra=[("junk", bytes(8 * 2**20))])
    assert path.stat().st_size < 2**20
    limit = 2**20
    check = expect_error(lambda: load_cifar10_binary(path, max_bytes=limit))
    assert peak_memory(check) < 4 * limit
    assert str(path) in check.message and f"{limit:,} bytes" in check.message
    assert "max_bytes=" in check.message
    assert_cifar(load_cifar10_binary(path), batches)  # the default limit is far above 9 MiB


# --- argument checks --------------------------------------------------------------------------

LOADERS = {"load_mnist": load_mnist, "load_fashion_mnist": load_fashion_mnist,
           "load_cifar10": load_cifar10, "load_mnist_all": load_mnist_all}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("kwargs", "exception", "problem"),
    [
        ({"data_dir": 5}, TypeError, r"data_dir must be a folder path .* got 5 \(int\)"),
        ({"data_dir": b"/tmp"}, TypeError, "data_dir must be a folder path"),
        ({"data_dir": "MISSING"}, DatasetError, "data_dir .*MISSING does not exist"),
        ({"data_dir": "FILE"}, DatasetError, "data_dir .*FILE is not a folder"),
        ({"download": "no"}, TypeError, "download must be True or False; got 'no'"),
        ({"download": 1}, TypeError, "download must be True or False"),
        ({"max_bytes": 0}, ValueError, "max_bytes must be a positive whole number of bytes; got 0"),
        ({"max_bytes": -5}, ValueError, "max_bytes"),
        ({"max_bytes": 1.5e9}, ValueError, "max_bytes"),
        ({"max_bytes": True}, ValueError, "max_bytes"),
        ({"max_bytes": "1GB"}, ValueError, "max_bytes"),
    ],
)
def test_loaders_reject_bad_arguments_naming_them(tmp_path, loader, kwargs, exception, problem):
    (tmp_path / "FILE").write_bytes(b"")
    if isinstance(kwargs.get("data_dir"), str):
        kwargs = {"data_dir": tmp_path / kwargs["data_dir"]}
    with pytest.raises(exception, match=problem) as info:
        LOADERS[loader](**kwargs)
    if loader != "load_mnist_all":
        assert loader in str(info.value)


@pytest.mark.parametrize(
    ("call", "exception", "problem"),
    [
        (lambda p: read_idx(p / "a.idx", max_bytes=0), ValueError, "read_idx: max_bytes"),
        (lambda p: read_idx(p / "missing.idx"), FileNotFoundError, "missing.idx"),
        (lambda p: load_idx_dataset(p / "missing"), DatasetError, "missing does not exist"),
        (lambda p: load_idx_dataset(7), TypeError, "load_idx_dataset: data_dir must be"),
        (lambda p: load_idx_dataset(p, max_bytes=-1), ValueError, "load_idx_dataset: max_bytes"),
        (lambda p: load_cifar10_binary(None), TypeError, "load_cifar10_binary: path must be"),
        (lambda p: load_cifar10_binary(p / "missing.tar.gz"), DatasetError, "does not exist"),
        (lambda p: load_cifar10_binary(p, max_bytes=0), ValueError, "load_cifar10_binary: max_bytes"),
    ],
)
def test_readers_reject_bad_arguments_naming_them(tmp_path, call, exception, problem):
    (tmp_path / "a.idx").write_bytes(GOOD)
    with pytest.raises(exception, match=problem):
        call(tmp_path)


# --- real MNIST -------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_mnist(monkeypatch):
    if not REAL_DATA or datasets._missing_files(Path(REAL_DATA) / "mnist", datasets.MNIST):
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


def test_prepare_images_keeps_channels_last_images():
    x = np.zeros((2, 3, 4, 3), dtype=np.uint8)
    x[1, 2, 3, 0] = 255
    got = prepare_images(x)
    assert got.shape == (2, 3, 4, 3) and got.dtype == np.float32
    assert got[1, 2, 3, 0] == 1.0 and got.sum() == 1.0


@pytest.mark.parametrize(
    "x", [np.zeros((2, 4, 4), dtype=np.float32), np.zeros((2, 4), dtype=np.uint8),
          np.zeros((2, 4, 4, 1, 1), dtype=np.uint8), np.zeros((2, 4, 4, 1), dtype=np.int64)]
)
def test_prepare_images_rejects_wrong_dtype_or_shape(x):
    with pytest.raises(ValueError, match=r"uint8 images of shape \(N, H, W\) or \(N, H, W, C\)"):
        prepare_images(x)


def test_prepare_images_says_how_to_fix_channels_first():
    with pytest.raises(ValueError, match=r"channels-first.*transpose\(0, 2, 3, 1\)"):
        prepare_images(np.zeros((2, 3, 32, 32), dtype=np.uint8))
