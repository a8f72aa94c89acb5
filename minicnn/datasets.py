"""Datasets for the examples: MNIST, drop-ins in its IDX format, and scikit-learn's 8x8 digits.

:func:`load_mnist` returns the same arrays as ``keras.datasets.mnist.load_data()``.
It looks for the four MNIST files (each as ``NAME.gz`` or raw ``NAME``) in, by priority:

1. ``data_dir`` when given (the files directly in it, or in ``data_dir/mnist/``);
2. ``$MINICNN_DATA/mnist/`` when the environment variable ``MINICNN_DATA`` is set;
3. the per-user cache ``$XDG_CACHE_HOME/minicnn/mnist`` (default ``~/.cache/minicnn/mnist``),
   the only place it downloads missing files to.

Every file's decompressed content is checked against a known SHA-256, so a corrupt
download or a different dataset under MNIST's names is an error, never silently wrong data.
Fashion-MNIST and KMNIST use the same file names with other content: load them with
:func:`load_idx_dataset`, which checks the format but not the checksums.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from minicnn.files import atomic_write

Split = tuple[np.ndarray, np.ndarray]


class DatasetError(ValueError):
    """A dataset file is missing, corrupt, or not the data it is named after."""


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

DOWNLOAD_TIMEOUT = 30.0
"""Seconds a download may stall before that mirror counts as failed."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (gzipped or raw), native-endian, shaped by its header.

    Raises DatasetError naming the file if it is not well-formed IDX: a truncated file
    or trailing bytes would otherwise shift or silently drop samples.
    """
    path = Path(path)
    return _parse_idx(_read_content(path), path)


def _read_content(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic, whatever the name says."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


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
            f"the file has {got}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_idx_dataset(
    data_dir: str | os.PathLike, *, sha256: Mapping[str, str] | None = None
) -> tuple[Split, Split]:
    """``((x_train, y_train), (x_test, y_test))`` from the four MNIST-named files in ``data_dir``.

    Images are (N, H, W) uint8 and labels (N,) uint8 in 0..9, as MNIST and its drop-ins
    (Fashion-MNIST, KMNIST) store them. ``sha256`` maps file names to the expected hash of
    their decompressed content; without it only the format is checked, which is what
    drop-ins need since their content differs from MNIST's.
    """
    directory = Path(data_dir).expanduser()
    missing = _missing_files(directory)
    if missing:
        raise DatasetError(
            f"{directory} lacks {', '.join(missing)} (each may be NAME.gz or the raw NAME)"
        )
    arrays = {name: _load_file(_find(directory, name), sha256) for name in MNIST_FILES}
    train = _checked_split(arrays[TRAIN_IMAGES], arrays[TRAIN_LABELS], directory, "train")
    test = _checked_split(arrays[TEST_IMAGES], arrays[TEST_LABELS], directory, "t10k")
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DatasetError(
            f"{directory}: train images are {train[0].shape[1:]}, t10k images {test[0].shape[1:]}"
        )
    return train, test


def _load_file(path: Path, sha256: Mapping[str, str] | None) -> np.ndarray:
    """Read one IDX file, first checking its content hash when ``sha256`` lists one."""
    content = _read_content(path)
    if sha256 is not None:
        _check_sha256(path, content, sha256[_idx_name(path)])
    return _parse_idx(content, path)


def _check_sha256(path: Path, content: bytes, expected: str) -> None:
    """Raise DatasetError unless ``content`` (decompressed) hashes to ``expected``."""
    got = hashlib.sha256(content).hexdigest()
    if got != expected:
        raise DatasetError(
            f"{path}: checksum mismatch (SHA-256 of the decompressed content is {got}, "
            f"expected {expected}); the file is corrupt or not the dataset it is named after"
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


def _find(directory: Path, name: str) -> Path | None:
    """``directory/NAME.gz`` or else ``directory/NAME``, whichever exists first."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _missing_files(directory: Path) -> list[str]:
    """The MNIST file names found in ``directory`` neither gzipped nor raw."""
    return [name for name in MNIST_FILES if _find(directory, name) is None]


def cache_dir() -> Path:
    """The per-user cache, ``$XDG_CACHE_HOME/minicnn`` or ``~/.cache/minicnn``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minicnn"


def _mnist_dir(data_dir: str | os.PathLike | None) -> tuple[Path, bool]:
    """Where to look for MNIST, and whether that is the cache (the only place we download to)."""
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        if len(_missing_files(directory)) < len(MNIST_FILES):
            return directory, False
        return directory / "mnist", False
    if os.environ.get("MINICNN_DATA"):
        return Path(os.environ["MINICNN_DATA"]).expanduser() / "mnist", False
    return cache_dir() / "mnist", True


def _where_to_put(directory: Path) -> str:
    """How to supply MNIST by hand, for error messages."""
    return (
        f"Put the files (NAME.gz from {MNIST_MIRRORS[0]}, or raw NAME) in {directory}, "
        "or set MINICNN_DATA=DIR with the files in DIR/mnist/, or pass data_dir=DIR."
    )


def load_mnist(
    data_dir: str | os.PathLike | None = None, *, download: bool = True
) -> tuple[Split, Split]:
    """MNIST as ``keras.datasets.mnist.load_data()`` returns it, verified by SHA-256.

    ``((x_train, y_train), (x_test, y_test))``: x_train (60000, 28, 28) uint8,
    y_train (60000,) uint8, x_test (10000, 28, 28) uint8, y_test (10000,) uint8.
    Missing files are downloaded only into the cache (see the module docstring), and only
    when ``download``; a ``data_dir`` or ``MINICNN_DATA`` the user chose is never filled
    behind their back, so files missing there are an error.
    """
    directory, is_cache = _mnist_dir(data_dir)
    missing = _missing_files(directory)
    if missing and is_cache and download:
        _download_mnist(missing, directory)
    elif missing:
        raise DatasetError(
            f"MNIST files missing from {directory}: {', '.join(missing)}. "
            + _where_to_put(directory)
        )
    return load_idx_dataset(directory, sha256=MNIST_SHA256)


def load_mnist_all(
    data_dir: str | os.PathLike | None = None, *, download: bool = True
) -> Split:
    """All 70,000 MNIST digits as ``(x, y)``: (70000, 28, 28) uint8 and (70000,) uint8.

    The 60,000 training images come first, then the 10,000 test images: the order of
    ``sklearn.datasets.fetch_openml("mnist_784")``, for cross-validation over the whole set.
    """
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir, download=download)
    return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])


def _download_mnist(names: list[str], directory: Path) -> None:
    """Download ``names`` into ``directory`` as verified NAME.gz files, trying every mirror."""
    import http.client

    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        for mirror in MNIST_MIRRORS:
            try:
                _download_verified(f"{mirror}{name}.gz", directory / f"{name}.gz")
                break
            except (OSError, http.client.HTTPException, DatasetError) as exc:
                last_error = f"{mirror}{name}.gz: {exc}"
        else:
            raise DatasetError(
                f"MNIST files missing from {directory}: {', '.join(_missing_files(directory))}; "
                f"downloading them failed (last error: {last_error}). {_where_to_put(directory)}"
            )


def _download_verified(url: str, dest: Path) -> None:
    """Save ``url`` as ``dest`` only once complete and verified, so no half file is ever left."""
    expected = MNIST_SHA256[_idx_name(dest)]
    atomic_write(dest, lambda out: fetch(url, out, desc=dest.name),
                 verify=lambda tmp: _check_sha256(tmp, _read_content(tmp), expected))


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


def prepare_images(x: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) -> float32 (N, H, W, 1) in [0, 1], the NHWC input Conv2D expects.

    Only uint8 is accepted: scaling anything else by 1/255 (already-scaled floats, say)
    would silently give wrong inputs.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise ValueError(
            f"prepare_images: expected uint8 images of shape (N, H, W); got {x.dtype} {x.shape}"
        )
    return np.divide(x[..., np.newaxis], 255, dtype=np.float32)


def load_digits() -> Split:
    """scikit-learn's bundled 8x8 digits: x (1797, 8, 8, 1) float32 in [0, 1], y (1797,) int64.

    The pixels are counts 0..16, so they are divided by 16 (not 255) to reach [0, 1].
    Bundled with scikit-learn, so it needs no download: handy for quick runs and offline tests.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    digits = sklearn_load_digits()
    x = np.divide(digits.images[..., np.newaxis], 16, dtype=np.float32)
    return x, digits.target.astype(np.int64)
