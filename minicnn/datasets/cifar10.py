"""CIFAR-10 in its binary version: six batch files of 3073-byte records, read in place.

:func:`load_cifar10` returns what ``keras.datasets.cifar10.load_data()`` returns (labels as
(N,), not Keras' (N, 1)), found or downloaded as :mod:`minicnn.datasets.download` says and
checked against the archive's published SHA-256; :func:`load_data` is Keras' path, with Keras'
(N, 1) labels. :func:`load_cifar10_binary` reads any
archive or folder in the format, checking the format only. Nothing is ever unpickled: the
Python version of CIFAR-10 is not read at all. The archive is never decompressed past
``max_bytes``, whatever its headers say.
"""

from __future__ import annotations

import gzip
import math
import os
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from minicnn.datasets.base import (
    MAX_BYTES,
    DatasetError,
    Split,
    check_sha256,
    checked_max_bytes,
    file_sha256,
    too_large,
)
from minicnn.datasets.download import Source, ensure_files

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

CIFAR10 = Source("cifar10", "CIFAR-10", (CIFAR10_ARCHIVE,), CIFAR10_SHA256, CIFAR10_MIRRORS)


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
    max_bytes = checked_max_bytes(max_bytes, "load_cifar10_binary")
    if not path.exists():
        raise DatasetError(f"load_cifar10_binary: {path} does not exist")
    if path.is_dir():
        folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
        batches = {name: _read_batch_file(folder / name, max_bytes)
                   for name in (*CIFAR10_TRAIN, CIFAR10_TEST)}
    else:
        batches = _read_archive(path, max_bytes)
    train = [_records(batches[name], path, name) for name in CIFAR10_TRAIN]
    test = _records(batches[CIFAR10_TEST], path, CIFAR10_TEST)
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])), test


def _read_batch_file(path: Path, max_bytes: int) -> bytes:
    """One extracted batch file, refused if larger than ``max_bytes``."""
    if not path.is_file():
        raise DatasetError(f"{path} is missing: a CIFAR-10 binary folder needs "
                           f"{', '.join(CIFAR10_TRAIN)} and {CIFAR10_TEST}")
    size = path.stat().st_size
    if size > max_bytes:
        raise DatasetError(too_large(path, f"{size:,}", max_bytes))
    return path.read_bytes()


def _read_archive(path: Path, max_bytes: int) -> dict[str, bytes]:
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
            raise DatasetError(too_large(self.path, f"at least {self.done:,}", self.max_bytes))
        return data


def _records(data: bytes, where: Path, name: str) -> Split:
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


def load_cifar10(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, max_bytes: int = MAX_BYTES
) -> tuple[Split, Split]:
    """CIFAR-10 from its binary version, verified by the archive's published SHA-256.

    ``((x_train, y_train), (x_test, y_test))``: x_train (50000, 32, 32, 3) uint8
    channels-last, y_train (50000,) uint8, x_test (10000, 32, 32, 3), y_test (10000,).
    As ``keras.datasets.cifar10.load_data()``, except that the labels are (N,) rather than
    (N, 1); labels 0..9 name :data:`CIFAR10_CLASSES`. The archive ``cifar-10-binary.tar.gz``
    is found and downloaded as :mod:`minicnn.datasets.download` says, in folders named
    ``cifar10``, and read in place (never extracted, never unpickled).
    """
    max_bytes = checked_max_bytes(max_bytes, "load_cifar10")
    directory = ensure_files(CIFAR10, data_dir, download, "load_cifar10")
    archive = directory / CIFAR10_ARCHIVE
    check_sha256(archive, file_sha256(archive), CIFAR10.expected(archive), "file")
    return load_cifar10_binary(archive, max_bytes=max_bytes)


def load_data() -> tuple[Split, Split]:
    """``keras.datasets.cifar10.load_data()``: :func:`load_cifar10` with its defaults, and the
    labels shaped as Keras shapes them.

    ``((x_train, y_train), (x_test, y_test))``: (50000, 32, 32, 3) and (10000, 32, 32, 3) uint8
    images, channels-last, and uint8 labels of shape (50000, 1) and (10000, 1), Keras' shapes
    (:func:`load_cifar10` gives them as (N,)). ``SparseCategoricalCrossentropy`` and
    :func:`minicnn.utils.to_categorical` take labels of either shape.
    """
    (x_train, y_train), (x_test, y_test) = load_cifar10()
    return (x_train, y_train[:, np.newaxis]), (x_test, y_test[:, np.newaxis])
