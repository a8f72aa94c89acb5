"""Datasets for the examples: MNIST, Fashion-MNIST, CIFAR-10, files in MNIST's IDX format,
and scikit-learn's 8x8 digits.

:func:`load_mnist`, :func:`load_fashion_mnist` and :func:`load_cifar10` return the arrays
``keras.datasets.<name>.load_data()`` returns (CIFAR-10's labels as (N,), not Keras' (N, 1)).
Each looks for its files in, by priority:

1. ``data_dir`` when given (the files directly in it, or in ``data_dir/<name>/``);
2. ``$MINICNN_DATA/<name>/`` when the environment variable ``MINICNN_DATA`` is set;
3. the per-user cache ``$XDG_CACHE_HOME/minicnn/<name>`` (default ``~/.cache/minicnn/<name>``),
   the only place it downloads missing files to,

with ``<name>`` one of ``mnist``, ``fashion-mnist``, ``cifar10``. Every file is checked
against a published SHA-256 before it is decoded, so a corrupt download or another dataset
under the same names is an error, never silently wrong data. Files in these formats without
published checksums (KMNIST, synthetic test data) load with :func:`load_idx_dataset` and
:func:`load_cifar10_binary`, which check the format only.

Size limits: no file is decompressed beyond ``max_bytes`` (512 MiB by default, far above
the largest real file): an IDX header declaring more is refused before anything is
allocated, and a gzip stream is never read past what its header declares, so a gzip bomb
is not decompressed. Every reader and loader takes ``max_bytes=`` to raise the limit.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from minicnn.files import atomic_write

Split = tuple[np.ndarray, np.ndarray]


class DatasetError(ValueError):
    """A dataset file is missing, corrupt, too large, or not the data it is named after."""


MAX_BYTES = 512 * 2**20
"""Default limit on the decompressed size of one dataset file (or archive), in bytes."""

# IDX type codes -> big-endian dtypes (http://yann.lecun.com/exdb/mnist/, bottom of the page).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
MNIST_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# SHA-256 of each file's decompressed content, so NAME and NAME.gz verify alike.
MNIST_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Tried in order; each serves NAME.gz. (yann.lecun.com itself now often refuses downloads.)
MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

# SHA-256 of the published .gz files. Fashion-MNIST's README (github.com/zalandoresearch/
# fashion-mnist) lists only MD5s; these are TensorFlow Datasets' checksums of the same files
# (tensorflow_datasets/url_checksums/fashion_mnist.txt), also used by torchvision's prototype
# datasets.
FASHION_MNIST_SHA256 = {
    f"{TRAIN_IMAGES}.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    f"{TRAIN_LABELS}.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    f"{TEST_IMAGES}.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    f"{TEST_LABELS}.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FASHION_MNIST_MIRRORS = (
    # The files in the dataset's own repository, at a fixed commit.
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/"
    "b2617bb6d3ffa2e429640350f613e3291e10b141/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # plain HTTP; SHA-256 checked
)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
# SHA-256 of the archive, from TensorFlow Datasets (tensorflow_datasets/url_checksums/cifar10.txt;
# 170,052,171 bytes). https://www.cs.toronto.edu/~kriz/cifar.html publishes its MD5,
# c32a1d4ab5d03f1284b67883e8d87530.
CIFAR10_SHA256 = {CIFAR10_ARCHIVE: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"}
CIFAR10_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = "test_batch.bin"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR10_SHAPE = (3, 32, 32)
"""One CIFAR-10 image as stored: channels first (C, H, W); the loaders return (H, W, C)."""

DOWNLOAD_TIMEOUT = 30.0
"""Seconds a download may stall before that mirror counts as failed."""


@dataclass(frozen=True)
class _Source:
    """A published dataset: its folder name, files (as downloaded), checksums and mirrors.

    ``hash_content``: the checksums are of the decompressed content (MNIST's, so the raw
    NAME verifies as well as NAME.gz); otherwise of the file as downloaded.
    """

    name: str
    title: str
    files: tuple[str, ...]
    sha256: Mapping[str, str]
    mirrors: tuple[str, ...]
    hash_content: bool = False

    def expected(self, path: Path) -> str:
        """The published SHA-256 for ``path``."""
        return self.sha256[_idx_name(path) if self.hash_content else path.name]


MNIST = _Source("mnist", "MNIST", tuple(f"{n}.gz" for n in MNIST_FILES), MNIST_SHA256,
                MNIST_MIRRORS, hash_content=True)
FASHION_MNIST = _Source("fashion-mnist", "Fashion-MNIST", tuple(FASHION_MNIST_SHA256),
                        FASHION_MNIST_SHA256, FASHION_MNIST_MIRRORS)
CIFAR10 = _Source("cifar10", "CIFAR-10", (CIFAR10_ARCHIVE,), CIFAR10_SHA256, CIFAR10_MIRRORS)


# --- arguments ----------------------------------------------------------------------------------


def _checked_max_bytes(max_bytes: int, caller: str) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1:
        raise ValueError(f"{caller}: max_bytes must be a positive whole number of bytes; "
                         f"got {max_bytes!r}")
    return int(max_bytes)


def _checked_dir(data_dir: str | os.PathLike, caller: str, argument: str = "data_dir") -> Path:
    """``data_dir`` as an existing folder, or an error naming the argument."""
    if isinstance(data_dir, bytes) or not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"{caller}: {argument} must be a folder path (str or os.PathLike); "
                        f"got {data_dir!r} ({type(data_dir).__name__})")
    directory = Path(data_dir).expanduser()
    if not directory.is_dir():
        problem = "is not a folder" if directory.exists() else "does not exist"
        raise DatasetError(f"{caller}: {argument} {directory} {problem}")
    return directory


def _check_download(download: bool, caller: str) -> None:
    if not isinstance(download, bool):
        raise TypeError(f"{caller}: download must be True or False; got {download!r}")


# --- IDX files ----------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The array stored in an IDX file (gzipped or raw), native-endian, shaped by its header.

    Raises DatasetError naming the file if it is not well-formed IDX (a truncated file or
    trailing bytes would otherwise shift or silently drop samples), or if its header
    declares more than ``max_bytes`` of data.
    """
    path = Path(path)
    max_bytes = _checked_max_bytes(max_bytes, "read_idx")
    return _parse_idx(_read_idx_content(path, max_bytes), path)


def _read_idx_content(path: Path, max_bytes: int) -> bytes:
    """The file's IDX bytes (gunzipped when they start with the gzip magic, whatever the name).

    Reads the header first and refuses a declared size above ``max_bytes`` before reading
    on; then reads one byte more than declared, enough to detect trailing data, so a gzip
    stream is never decompressed beyond what its header announces.
    """
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        f = gzip.GzipFile(fileobj=raw) if gzipped else raw
        try:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_DTYPES:
                return head  # _parse_idx says what is wrong
            dtype, ndim = IDX_DTYPES[head[2]], head[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                return head + dims
            shape = struct.unpack(f">{ndim}I", dims)
            _check_size(path, shape, dtype, max_bytes)
            return head + dims + f.read(math.prod(shape) * dtype.itemsize + 1)
        except (EOFError, OSError, zlib.error) as exc:
            raise DatasetError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


def _check_size(path: Path, shape: tuple[int, ...], dtype: np.dtype, max_bytes: int) -> None:
    """Refuse an IDX file whose header declares more than ``max_bytes`` of data."""
    size = math.prod(shape) * dtype.itemsize
    if size > max_bytes:
        raise DatasetError(
            f"{path}: the IDX header declares {shape} of {dtype.name}, {size:,} bytes, more than "
            f"the limit of {max_bytes:,} bytes ({max_bytes / 2**20:,.0f} MiB); reading stopped "
            "after the header. If the file is genuine, pass a larger max_bytes= to raise the limit."
        )


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Decode IDX bytes; ``path`` only names the file in errors."""
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DatasetError(f"{path}: not an IDX file (it does not start with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise DatasetError(f"{path}: unknown IDX data type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header ({ndim} dimensions announced)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected, got = math.prod(shape) * dtype.itemsize, len(data) - header
    if got != expected:
        problem = "truncated" if got < expected else "trailing bytes"
        raise DatasetError(
            f"{path}: {problem}: shape {shape} of {dtype.name} needs {expected} data bytes, "
            f"the file has {'more' if got > expected else got}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_idx_dataset(
    data_dir: str | os.PathLike, *, sha256: Mapping[str, str] | None = None,
    max_bytes: int = MAX_BYTES,
) -> tuple[Split, Split]:
    """``((x_train, y_train), (x_test, y_test))`` from the four MNIST-named files in ``data_dir``.

    Images are (N, H, W) uint8 and labels (N,) uint8 in 0..9, as MNIST and its drop-ins
    (Fashion-MNIST, KMNIST) store them; each file may be NAME.gz or the raw NAME.
    ``sha256`` maps file names to the expected hash of their decompressed content; without
    it only the format is checked, which is what drop-ins need since their content differs
    from MNIST's.
    """
    directory = _checked_dir(data_dir, "load_idx_dataset")
    max_bytes = _checked_max_bytes(max_bytes, "load_idx_dataset")
    source = None if sha256 is None else _Source("idx", "IDX", MNIST.files, sha256, (),
                                                 hash_content=True)
    missing = _missing_files(directory, source or MNIST)
    if missing:
        raise DatasetError(
            f"{directory} lacks {', '.join(missing)} (each may be NAME.gz or the raw NAME)"
        )
    return _load_idx_files(directory, source, max_bytes)


def _load_idx_files(directory: Path, source: _Source | None, max_bytes: int) -> tuple[Split, Split]:
    """The four IDX files in ``directory``, verified against ``source``'s checksums if given.

    Raw files stand in for NAME.gz unless the checksums are of the .gz files.
    """
    raw_ok = source is None or source.hash_content
    arrays = {}
    for name in MNIST_FILES:
        path = _find(directory, f"{name}.gz", raw_ok)
        arrays[name] = _read_verified_idx(path, source, max_bytes)
    train = _checked_split(arrays[TRAIN_IMAGES], arrays[TRAIN_LABELS], directory, "train")
    test = _checked_split(arrays[TEST_IMAGES], arrays[TEST_LABELS], directory, "t10k")
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DatasetError(
            f"{directory}: train images are {train[0].shape[1:]}, t10k images {test[0].shape[1:]}"
        )
    return train, test


def _read_verified_idx(path: Path, source: _Source | None, max_bytes: int) -> np.ndarray:
    """Read one IDX file, checking its published SHA-256 first when ``source`` is given.

    A hash of the file as downloaded is checked before anything is decompressed.
    """
    if source is not None and not source.hash_content:
        _check_sha256(path, _file_sha256(path), source.expected(path), "file")
    content = _read_idx_content(path, max_bytes)
    if source is not None and source.hash_content:
        _check_sha256(path, hashlib.sha256(content).hexdigest(), source.expected(path),
                      "decompressed content")
    return _parse_idx(content, path)


def _file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(path: Path, got: str, expected: str, of: str) -> None:
    """Raise DatasetError unless the SHA-256 ``got`` (of the file or its content) is ``expected``."""
    if got != expected:
        raise DatasetError(
            f"{path}: checksum mismatch (SHA-256 of the {of} is {got}, expected {expected}); "
            "the file is corrupt or not the dataset it is named after"
        )


def _checked_split(images: np.ndarray, labels: np.ndarray, where: Path, split: str) -> Split:
    """Check that images (N, H, W) uint8 and labels (N,) uint8 in 0..9 belong together."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DatasetError(
            f"{where}: {split} images must be (N, H, W) uint8; got {images.shape} {images.dtype}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{where}: {split} labels must be (N,) uint8; got {labels.shape} {labels.dtype}"
        )
    if len(images) != len(labels):
        raise DatasetError(f"{where}: {len(images)} {split} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{where}: {split} labels must be 0..9; found {labels.max()}")
    return images, labels


def _idx_name(path: Path) -> str:
    """The dataset file name without a ``.gz`` suffix."""
    return path.name.removesuffix(".gz")


# --- CIFAR-10 (binary version) ------------------------------------------------------------------


def load_cifar10_binary(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> tuple[Split, Split]:
    """``((x_train, y_train), (x_test, y_test))`` from files in CIFAR-10's binary format.

    ``path`` is the archive ``cifar-10-binary.tar.gz`` or a folder of the batches
    (``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``, directly in it or in
    ``cifar-10-batches-bin/``). Each batch is a run of 3073-byte records, one label byte
    (0..9) and a 32x32 image stored channels-first (3 x 1024 bytes: red, green, blue).
    Returns images (N, 32, 32, 3) uint8 channels-last and labels (N,) uint8. Only the format
    is checked; :func:`load_cifar10` also verifies the published checksum.
    Never unpickles anything: the Python version of CIFAR-10 is not read at all.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load_cifar10_binary: path must be a file or folder path; got {path!r}")
    path = Path(path).expanduser()
    max_bytes = _checked_max_bytes(max_bytes, "load_cifar10_binary")
    if not path.exists():
        raise DatasetError(f"load_cifar10_binary: {path} does not exist")
    if path.is_dir():
        folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
        batches = {name: _read_batch_file(folder / name, max_bytes)
                   for name in (*CIFAR10_TRAIN, CIFAR10_TEST)}
    else:
        batches = _read_cifar10_archive(path, max_bytes)
    train = [_cifar10_records(batches[name], path, name) for name in CIFAR10_TRAIN]
    test = _cifar10_records(batches[CIFAR10_TEST], path, CIFAR10_TEST)
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])), test


def _read_batch_file(path: Path, max_bytes: int) -> bytes:
    """One extracted batch file, refused if larger than ``max_bytes``."""
    if not path.is_file():
        raise DatasetError(f"{path} is missing: a CIFAR-10 binary folder needs "
                           f"{', '.join(CIFAR10_TRAIN)} and {CIFAR10_TEST}")
    size = path.stat().st_size
    if size > max_bytes:
        raise DatasetError(_too_large(path, f"{size:,}", max_bytes))
    return path.read_bytes()


def _read_cifar10_archive(path: Path, max_bytes: int) -> dict[str, bytes]:
    """The six batches from the tar.gz archive, read in order in place (nothing extracted).

    The gzip stream is read through :class:`_CappedReader`, so it is never decompressed past
    ``max_bytes``, whatever the archive's headers say.
    """
    wanted = {f"{CIFAR10_FOLDER}/{name}": name for name in (*CIFAR10_TRAIN, CIFAR10_TEST)}
    batches = {}
    try:
        with gzip.open(path) as stream, tarfile.open(
                fileobj=_CappedReader(stream, max_bytes, path), mode="r|") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    batches[wanted[member.name]] = tar.extractfile(member).read()
                if len(batches) == len(wanted):
                    break
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DatasetError(f"{path}: not a readable tar.gz archive ({exc})") from exc
    missing = [name for name in wanted if wanted[name] not in batches]
    if missing:
        raise DatasetError(f"{path} lacks {', '.join(missing)}: not CIFAR-10's binary version "
                           f"({CIFAR10_ARCHIVE})")
    return batches


class _CappedReader:
    """A stream's ``read`` that raises DatasetError once more than ``max_bytes`` were read."""

    def __init__(self, stream: BinaryIO, max_bytes: int, path: Path):
        self.stream, self.max_bytes, self.path, self.done = stream, max_bytes, path, 0

    def read(self, size: int = -1) -> bytes:
        room = self.max_bytes + 1 - self.done
        data = self.stream.read(room if size < 0 else min(size, room))
        self.done += len(data)
        if self.done > self.max_bytes:
            raise DatasetError(_too_large(self.path, f"at least {self.done:,}", self.max_bytes))
        return data


def _too_large(path: Path, amount: str, max_bytes: int) -> str:
    """The error message for data beyond the size limit."""
    return (f"{path}: {amount} bytes of data, more than the limit of {max_bytes:,} bytes "
            f"({max_bytes / 2**20:,.0f} MiB); reading stopped there. If the file is genuine, "
            "pass a larger max_bytes= to raise the limit.")


def _cifar10_records(data: bytes, where: Path, name: str) -> Split:
    """Decode one batch: images (N, 32, 32, 3) uint8 channels-last, labels (N,) uint8."""
    record = 1 + math.prod(CIFAR10_SHAPE)
    if len(data) % record:
        raise DatasetError(f"{where}: {name} has {len(data):,} bytes, not a whole number of "
                           f"{record}-byte records (truncated or not CIFAR-10)")
    records = np.frombuffer(data, np.uint8).reshape(-1, record)
    labels = records[:, 0].copy()
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{where}: {name} has label {labels.max()}; CIFAR-10 labels are 0..9")
    images = records[:, 1:].reshape(-1, *CIFAR10_SHAPE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


# --- finding, verifying and downloading the published datasets ----------------------------------


def _find(directory: Path, file: str, raw_ok: bool) -> Path | None:
    """``directory/file`` or, if ``raw_ok``, the raw ``directory/NAME`` of a NAME.gz."""
    candidates = [file, file.removesuffix(".gz")] if raw_ok else [file]
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    return None


def _missing_files(directory: Path, source: _Source) -> list[str]:
    """The files of ``source`` not in ``directory`` (for MNIST: neither gzipped nor raw)."""
    raw_ok = source.hash_content
    return [_idx_name(Path(f)) if raw_ok else f for f in source.files
            if _find(directory, f, raw_ok) is None]


def cache_dir() -> Path:
    """The per-user cache, ``$XDG_CACHE_HOME/minicnn`` or ``~/.cache/minicnn``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minicnn"


def _dataset_dir(source: _Source, data_dir: str | os.PathLike | None,
                 caller: str) -> tuple[Path, bool]:
    """Where to look for ``source``, and whether that is the cache (the only place we download to)."""
    if data_dir is not None:
        directory = _checked_dir(data_dir, caller)
        if len(_missing_files(directory, source)) < len(source.files):
            return directory, False
        return directory / source.name, False
    if os.environ.get("MINICNN_DATA"):
        return Path(os.environ["MINICNN_DATA"]).expanduser() / source.name, False
    return cache_dir() / source.name, True


def _where_to_put(source: _Source, directory: Path) -> str:
    """How to supply the files by hand, for error messages."""
    raw = " (or the raw NAME)" if source.hash_content else ""
    return (
        f"Put the files{raw}, as downloaded from {source.mirrors[0]}, in {directory}, "
        f"or set MINICNN_DATA=DIR with the files in DIR/{source.name}/, or pass data_dir=DIR."
    )


def _ensure_files(source: _Source, data_dir: str | os.PathLike | None, download: bool,
                  caller: str) -> Path:
    """The folder holding all of ``source``'s files, downloading them into the cache if allowed."""
    _check_download(download, caller)
    directory, is_cache = _dataset_dir(source, data_dir, caller)
    missing = _missing_files(directory, source)
    if missing and is_cache and download:
        _download(source, directory)
    elif missing:
        raise DatasetError(
            f"{source.title} files missing from {directory}: {', '.join(missing)}. "
            + _where_to_put(source, directory) + _unverifiable_raw_files(source, directory, missing)
        )
    return directory


def _unverifiable_raw_files(source: _Source, directory: Path, missing: list[str]) -> str:
    """A hint when raw NAME files stand where NAME.gz files with published checksums are needed."""
    raw = [name.removesuffix(".gz") for name in missing
           if name.endswith(".gz") and (directory / name.removesuffix(".gz")).is_file()]
    if not raw:
        return ""
    return (f" The raw {', '.join(raw)} there cannot be verified ({source.title}'s published "
            "checksums are of the .gz files): use the .gz files, or load the folder unverified "
            "with minicnn.datasets.load_idx_dataset(DIR).")


def load_mnist(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, max_bytes: int = MAX_BYTES
) -> tuple[Split, Split]:
    """MNIST as ``keras.datasets.mnist.load_data()`` returns it, verified by SHA-256.

    ``((x_train, y_train), (x_test, y_test))``: x_train (60000, 28, 28) uint8,
    y_train (60000,) uint8, x_test (10000, 28, 28) uint8, y_test (10000,) uint8.
    Missing files are downloaded only into the cache (see the module docstring), and only
    when ``download``; a ``data_dir`` or ``MINICNN_DATA`` the user chose is never filled
    behind their back, so files missing there are an error.
    """
    max_bytes = _checked_max_bytes(max_bytes, "load_mnist")
    directory = _ensure_files(MNIST, data_dir, download, "load_mnist")
    return _load_idx_files(directory, MNIST, max_bytes)


def load_mnist_all(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, max_bytes: int = MAX_BYTES
) -> Split:
    """All 70,000 MNIST digits as ``(x, y)``: (70000, 28, 28) uint8 and (70000,) uint8.

    The 60,000 training images come first, then the 10,000 test images: the order of
    ``sklearn.datasets.fetch_openml("mnist_784")``, for cross-validation over the whole set.
    """
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir, download=download,
                                                      max_bytes=max_bytes)
    return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, max_bytes: int = MAX_BYTES
) -> tuple[Split, Split]:
    """Fashion-MNIST as ``keras.datasets.fashion_mnist.load_data()`` returns it, verified.

    Shapes and dtypes as :func:`load_mnist`; labels 0..9 name :data:`FASHION_MNIST_CLASSES`.
    Found and downloaded as the module docstring says, in folders named ``fashion-mnist``.
    The published checksums are of the ``.gz`` files, so the files must be the four
    ``NAME.gz`` as published (to read raw or other IDX files unverified, use
    :func:`load_idx_dataset`).
    """
    max_bytes = _checked_max_bytes(max_bytes, "load_fashion_mnist")
    directory = _ensure_files(FASHION_MNIST, data_dir, download, "load_fashion_mnist")
    return _load_idx_files(directory, FASHION_MNIST, max_bytes)


def load_cifar10(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, max_bytes: int = MAX_BYTES
) -> tuple[Split, Split]:
    """CIFAR-10 from its binary version, verified by the archive's published SHA-256.

    ``((x_train, y_train), (x_test, y_test))``: x_train (50000, 32, 32, 3) uint8
    channels-last, y_train (50000,) uint8, x_test (10000, 32, 32, 3), y_test (10000,).
    As ``keras.datasets.cifar10.load_data()``, except that the labels are (N,) rather than
    (N, 1); labels 0..9 name :data:`CIFAR10_CLASSES`. The archive ``cifar-10-binary.tar.gz``
    is found and downloaded as the module docstring says, in folders named ``cifar10``,
    and read in place (never extracted, never unpickled).
    """
    max_bytes = _checked_max_bytes(max_bytes, "load_cifar10")
    directory = _ensure_files(CIFAR10, data_dir, download, "load_cifar10")
    archive = directory / CIFAR10_ARCHIVE
    _check_sha256(archive, _file_sha256(archive), CIFAR10.expected(archive), "file")
    return load_cifar10_binary(archive, max_bytes=max_bytes)


def _download(source: _Source, directory: Path) -> None:
    """Download ``source``'s missing files into ``directory``, verified, trying every mirror.

    Folders made here are removed again if nothing could be downloaded into them.
    """
    import http.client

    made = [d for d in (directory, *directory.parents) if not d.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    try:
        for file in source.files:
            if _find(directory, file, source.hash_content) is not None:
                continue
            for mirror in source.mirrors:
                try:
                    _download_verified(f"{mirror}{file}", directory / file, source)
                    break
                except (OSError, http.client.HTTPException, DatasetError) as exc:
                    last_error = f"{mirror}{file}: {exc}"
            else:
                raise DatasetError(
                    f"{source.title} files missing from {directory}: "
                    f"{', '.join(_missing_files(directory, source))}; downloading them failed "
                    f"(last error: {last_error}). {_where_to_put(source, directory)}"
                )
    except BaseException:
        for folder in made:  # innermost first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _download_verified(url: str, dest: Path, source: _Source) -> None:
    """Save ``url`` as ``dest`` only once complete and verified, so no half file is ever left."""
    def verify(tmp: Path) -> None:
        if source.hash_content:
            content = _read_idx_content(tmp, MAX_BYTES)
            _check_sha256(tmp, hashlib.sha256(content).hexdigest(), source.expected(dest),
                          "decompressed content")
        else:
            _check_sha256(tmp, _file_sha256(tmp), source.expected(dest), "file")

    atomic_write(dest, lambda out: fetch(url, out, desc=dest.name), verify=verify)


def fetch(url: str, out: BinaryIO, *, desc: str = "") -> None:
    """Stream ``url`` into ``out`` with a progress bar sized by Content-Length.

    Uses ``urllib.request.urlopen`` looked up at call time, so tests can monkeypatch it.
    """
    import urllib.request

    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))


# --- small helpers ------------------------------------------------------------------------------


def prepare_images(x: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 NHWC in [0, 1], the input Conv2D expects.

    (N, H, W) gains a channel axis, (N, H, W, 1); (N, H, W, C) keeps its shape. Only
    uint8 is accepted: scaling anything else by 1/255 (already-scaled floats, say) would
    silently give wrong inputs.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise ValueError(
            "prepare_images: expected uint8 images of shape (N, H, W) or (N, H, W, C); "
            f"got {x.dtype} {x.shape}"
        )
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[3] not in (1, 3):
        raise ValueError(
            f"prepare_images: images of shape {x.shape} look channels-first (N, C, H, W); "
            "minicnn is channels-last: pass x.transpose(0, 2, 3, 1)"
        )
    return np.divide(x if x.ndim == 4 else x[..., np.newaxis], 255, dtype=np.float32)


def load_digits() -> Split:
    """scikit-learn's bundled 8x8 digits: x (1797, 8, 8, 1) float32 in [0, 1], y (1797,) int64.

    The pixels are counts 0..16, so they are divided by 16 (not 255) to reach [0, 1].
    Bundled with scikit-learn, so it needs no download: handy for quick runs and offline tests.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    digits = sklearn_load_digits()
    x = np.divide(digits.images[..., np.newaxis], 16, dtype=np.float32)
    return x, digits.target.astype(np.int64)
